"""The README's component example runs as written, in under 15 lines."""

from __future__ import annotations

import re

from pulumi.runtime.config import set_all_config

from tests.stacks import EXAMPLE_STACKS, PROJECT_ROOT, STACKS, sections


def readme_example(marker: str) -> str:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {marker} -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, f"no example '{marker}' in README.md"
    return match.group(1)


def test_the_inference_service_example_builds_a_service(build, monitor):
    code = readme_example("inference-service")
    assert len([line for line in code.splitlines() if line.strip()]) < 15
    set_all_config({"team:kubeconfig": "apiVersion: v1"}, ["team:kubeconfig"])

    build(lambda: exec(compile(code, "README.md", "exec"), {"__name__": "readme"}))

    (deployment,) = monitor.of_type("kubernetes:apps/v1:Deployment")
    assert deployment.parent == monitor.named("summarizer").urn
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/ai/summarizer:2.1.0"
    hpa = next(
        r for r in monitor.registrations if r.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
    )
    assert (hpa.inputs["spec"]["minReplicas"], hpa.inputs["spec"]["maxReplicas"]) == (2, 6)
    assert monitor.named("cluster").inputs["kubeconfig"] == "[secret]"


def test_the_version_table_gives_every_pinned_chart_with_its_release_evidence():
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Chart versions and their release evidence", 1)
    assert len(section) == 2, "README.md: no chart version table"
    rows = re.findall(
        r"^\| [\w-]+ \(`(\w+)`[^|]*\| ([\w.]+) \| ([^|]+) \| ([\w.]+) \|$", section[1], re.MULTILINE
    )
    table = {key: (version, evidence) for key, version, evidence, _ in rows}
    for stack in (*STACKS, *EXAMPLE_STACKS):
        pins = {
            k: str(v) for k, v in sections(stack)["charts"].items() if k not in ("mirror", "repositories")
        }
        for key, version in pins.items():
            assert key in table, f"{stack}: chart {key} is not in the README's version table"
            assert table[key][0] == version, (
                f"{stack}: {key} is pinned at {version}, the table says {table[key][0]}"
            )
            assert re.search(r"^(project|third-party): .*\d{4}-\d{2}-\d{2}", table[key][1]), key
