"""The library as a team gets it: a wheel, installed into a fresh virtualenv outside this repository.

From that virtualenv, with nothing of this repository on its path, the platform's program is planned
for prod and then the team project in examples/team-service on top of its outputs.

Slow (it builds a wheel and installs the runtime dependencies from the package index, or pip's cache),
so ``make test`` leaves it out; ``make test-wheel`` runs it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

import aiplatform
from tests.stacks import PROJECT_ROOT

pytestmark = pytest.mark.wheel

# What the wheel is built from, and what a platform team's project and a team's project consist of.
SOURCES = ("pyproject.toml", "README.md", "components")
PLATFORM_PROJECT = ("__main__.py", "Pulumi.yaml", "Pulumi.prod.yaml")


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def copy(names: tuple[str, ...], source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for name in names:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / name, target / name)
    return target


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wheel")
    assert PROJECT_ROOT not in path.parents
    return path


@pytest.fixture(scope="module")
def wheel(work: Path) -> Path:
    source = copy(SOURCES, PROJECT_ROOT, work / "source")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", work / "dist", source, cwd=work)
    (built,) = (work / "dist").glob("aiplatform-*.whl")
    return built


@pytest.fixture(scope="module")
def python(work: Path, wheel: Path) -> Path:
    """A fresh virtualenv with the wheel and the versions requirements.txt pins for its dependencies."""
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    # A constraint is a name and a version: pip refuses extras there (moto[s3,events]==...).
    pins = [
        re.sub(r"\[[^\]]*\]", "", line)
        for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line
    ]
    (work / "constraints.txt").write_text("\n".join(pins) + "\n")
    interpreter = work / "venv" / "bin" / "python"
    run(interpreter, "-m", "pip", "install", "--quiet", "-c", work / "constraints.txt", wheel, cwd=work)
    return interpreter


def test_the_wheel_holds_the_package_under_its_import_name_with_its_data(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name == f"aiplatform-{aiplatform.__version__}-py3-none-any.whl"
    assert {"aiplatform/__init__.py", "aiplatform/py.typed", "aiplatform/plan/pricing.json"} <= set(names)
    assert {"aiplatform/outputs.py", "aiplatform/guardrails.py", "aiplatform/plan/__main__.py"} <= set(names)
    assert not [n for n in names if n.startswith(("components/", "tools/", "tests/", "policy/"))]
    metadata = zipfile.ZipFile(wheel).read(f"aiplatform-{aiplatform.__version__}.dist-info/METADATA").decode()
    assert "Requires-Dist: pulumi<4,>=" in metadata or "Requires-Dist: pulumi>=" in metadata


def test_the_installed_library_is_the_one_in_the_virtualenv(python: Path, work: Path):
    found = run(
        python, "-c", "import aiplatform; print(aiplatform.__file__, aiplatform.__version__)", cwd=work
    )
    path, version = found.stdout.split()
    assert Path(path).is_relative_to(work / "venv") and version == aiplatform.__version__


def test_a_team_plans_its_project_on_the_prod_platform_from_the_installed_wheel(python: Path, work: Path):
    platform = copy(PLATFORM_PROJECT, PROJECT_ROOT, work / "platform")
    run(python, "-m", "aiplatform.plan", "--stack", "prod", cwd=platform)
    platform_outputs = platform / "build" / "prod" / "outputs.json"
    outputs = json.loads(platform_outputs.read_text())
    assert outputs["kubeconfig"] == "[secret]"

    team = work / "team-service"
    shutil.copytree(PROJECT_ROOT / "examples" / "team-service", team, ignore=shutil.ignore_patterns("build"))
    planned = run(
        python, "-m", "aiplatform.plan", "--stack", "prod", "--stack-outputs", platform_outputs, cwd=team
    )
    assert "0 mandatory violations" in planned.stdout

    out = team / "build" / "prod"
    kinds = {m["kind"] for m in yaml.safe_load_all((out / "manifests.yaml").read_text())}
    assert {"Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "CronJob"} <= kinds
    roles = [r for r in json.loads((out / "resources.json").read_text()) if r["type"] == "aws:iam/role:Role"]
    assert roles
    for role in roles:
        (statement,) = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Federated": outputs["oidcProviderArn"]}
    policy = json.loads((out / "policy.json").read_text())
    assert [v for v in policy["violations"] if v["level"] == "mandatory"] == []
