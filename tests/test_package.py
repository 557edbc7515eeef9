"""The library as others install it: one import name, and nothing that exists only in this repository."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import aiplatform
from tools import syntax

PACKAGE_DIR = Path(aiplatform.__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def _absolute_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level module) of every absolute import in a file."""
    found = []
    for node in ast.walk(syntax.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _declared_import_names() -> set[str]:
    """Import names of the library's dependencies and of what they depend on, as installed."""
    by_dist: dict[str, set[str]] = {}
    for top, dists in metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(dist.lower().replace("_", "-"), set()).add(top)
    names: set[str] = set()
    pending = [r for r in metadata.requires("aiplatform") or []]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
            continue
        dist = requirement.split(";")[0].split("[")[0]
        for stop in "<>=!~ ":
            dist = dist.split(stop)[0]
        dist = dist.strip().lower().replace("_", "-")
        if dist in seen:
            continue
        seen.add(dist)
        names |= by_dist.get(dist, set())
        pending += metadata.requires(dist) or []
    return names


def test_the_package_is_the_components_folder_under_its_import_name():
    assert PACKAGE_DIR == REPO_ROOT / "components"
    assert aiplatform.__name__ == "aiplatform"
    assert (PACKAGE_DIR / "py.typed").exists()


def test_no_module_imports_a_name_that_exists_only_in_this_repository():
    allowed = set(sys.stdlib_module_names) | _declared_import_names()
    assert {"pulumi", "pulumi_aws", "pulumi_kubernetes", "pydantic", "yaml"} <= allowed
    offending = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {name}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for line, name in _absolute_imports(path)
        if name not in allowed or name == "aiplatform"
    ]
    assert offending == [], "import these relatively or declare the dependency in pyproject.toml"


def _plan_imports(path: Path) -> set[str]:
    """The sibling modules of aiplatform.plan that a plan module imports, anywhere in the file."""
    siblings = set()
    for node in ast.walk(syntax.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            siblings |= {node.module} if node.module else {alias.name for alias in node.names}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("aiplatform.plan.")
        ):
            siblings.add(node.module.split(".")[2])
    return siblings


def test_the_plan_modules_import_one_way():
    plan_dir = PACKAGE_DIR / "plan"
    graph = {p.stem: _plan_imports(p) for p in plan_dir.glob("*.py") if p.stem != "__main__"}
    assert {"cloud", "mock_engine", "runner", "model", "cli"} <= set(graph)
    order: list[str] = []  # a topological order exists exactly when there is no cycle
    while len(order) < len(graph):
        ready = sorted(m for m, deps in graph.items() if m not in order and deps <= set(order))
        assert ready, f"import cycle among {sorted(set(graph) - set(order))}"
        order += ready
    assert order.index("cloud") < order.index("mock_engine") < order.index("model") < order.index("cli")
    assert graph["cloud"] == set()


def test_the_pinned_requirements_satisfy_the_declared_ranges():
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.partition("==")
        if sep:
            pins[canonicalize_name(name.strip())] = version.strip()
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]
    assert declared
    for requirement in map(Requirement, declared):
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is a dependency but not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned), f"{requirement} does not admit the pinned {pinned}"
        assert requirement.specifier, f"{requirement.name}: declare a range, not any version"


def test_the_version_is_semantic_and_its_release_is_in_the_changelog():
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", aiplatform.__version__)
    assert metadata.version("aiplatform") == aiplatform.__version__
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", changelog, re.M)
    assert releases and releases[0] == aiplatform.__version__, "the newest CHANGELOG section is this version"
