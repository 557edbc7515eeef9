"""``make test-rules``: Prometheus's own checker over the rules and queries every stack's plan carries.

For each stack, from its offline plan (``build/<stack>/``):

- the platform's PrometheusRule, written as a rule file (``build/<stack>/promtool/alerts.yaml``) and
  checked by ``promtool check rules --lint-fatal`` (syntax, templates, duplicate rules);
- the prometheus-adapter's queries, their templates filled in as the adapter fills them for a pod
  metric, written as recording rules (``build/<stack>/promtool/adapter.yaml``) so promtool parses them;

then ``promtool test rules tests/promtool/*.yaml``: the alerts' unit tests on synthetic series.
promtool is built from the Go module proxy by the toolchain (``tools/e2e/toolchain.py``), cached.

    python -m tools.rules                      # plan and check every stack
    python -m tools.rules --stacks dev prod    # some of them
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.e2e.toolchain import PROMTOOL, ToolchainError, ensure_one

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "prod", "prod-karpenter", "dev-auto-mode", "dev-nginx")
UNIT_TESTS = PROJECT_ROOT / "tests" / "promtool"
ADAPTER_CHART = "prometheus-adapter"

# What the adapter puts in a pod metric's query template: the series, the namespace and pods asked
# for, and the label it groups by.
ADAPTER_TEMPLATE_VALUES = {
    "<<.LabelMatchers>>": 'namespace="ml-serving",pod=~"llama-inference-0|llama-inference-1"',
    "<<.GroupBy>>": "pod",
}


def stack_file(stack: str) -> Path:
    committed = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    return committed if committed.exists() else PROJECT_ROOT / "examples" / "stacks" / f"Pulumi.{stack}.yaml"


def plan(stack: str, out: Path) -> None:
    """The stack's offline plan into ``out`` (its summary is not needed here)."""
    command = [sys.executable, "-m", "tools.plan", "--stack", stack, "--config-file", str(stack_file(stack))]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{stack}: the plan failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}"
        )


def alert_rules(manifests: Path) -> dict[str, Any]:
    """The rule file of the plan's PrometheusRule: its ``spec`` (``groups``), as Prometheus loads it."""
    rules = [
        doc
        for doc in yaml.safe_load_all(manifests.read_text(encoding="utf-8"))
        if doc and doc.get("kind") == "PrometheusRule"
    ]
    if len(rules) != 1:
        raise RuntimeError(f"{manifests}: {len(rules)} PrometheusRules, expected one")
    return rules[0]["spec"]


def adapter_queries(resources: Path) -> dict[str, Any]:
    """The adapter's series and metrics queries as recording rules (a rule file promtool parses)."""
    values = next(
        (
            r["inputs"].get("values") or {}
            for r in json.loads(resources.read_text(encoding="utf-8"))
            if r["type"] == "kubernetes:helm.sh/v3:Release" and r["inputs"].get("chart") == ADAPTER_CHART
        ),
        None,
    )
    if values is None:
        return {"groups": []}
    rules = []
    for rule in (values.get("rules") or {}).get("custom") or []:
        name = rule["name"]["as"]
        series = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"])
        filled = rule["metricsQuery"].replace("<<.Series>>", series.group(0) if series else "")
        for template, value in ADAPTER_TEMPLATE_VALUES.items():
            filled = filled.replace(template, value)
        if "<<" in filled:
            raise RuntimeError(f"adapter rule {name}: a template the check does not fill: {filled}")
        rules += [
            {"record": f"aiplatform:adapter_series:{name}", "expr": rule["seriesQuery"]},
            {"record": f"aiplatform:adapter:{name}", "expr": filled},
        ]
    return {"groups": [{"name": "prometheus-adapter", "rules": rules}]} if rules else {"groups": []}


def promtool(binary: str, *args: str) -> tuple[bool, str]:
    done = subprocess.run([binary, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def check_stack(binary: str, stack: str, build: Path) -> list[str]:
    """Plan one stack, write its rule files and check them: the failures, empty when it passes."""
    out = build / stack
    plan(stack, out)
    files = out / "promtool"
    files.mkdir(parents=True, exist_ok=True)
    failures = []
    for name, content in (
        ("alerts.yaml", alert_rules(out / "manifests.yaml")),
        ("adapter.yaml", adapter_queries(out / "resources.json")),
    ):
        path = files / name
        path.write_text(yaml.safe_dump(content, sort_keys=False, width=1000), encoding="utf-8")
        ok, output = promtool(binary, "check", "rules", "--lint-fatal", str(path))
        print(f"{stack}: promtool check rules --lint-fatal {path}: {'ok' if ok else 'FAILED'}")
        if not ok:
            failures.append(f"{stack} {name}:\n{output}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rules", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stacks",
        nargs="+",
        default=list(STACKS),
        help="the unit tests read dev's rules: keep dev among them",
    )
    args = parser.parse_args(argv)
    try:
        binary = ensure_one(PROMTOOL, log=lambda line: print(line, file=sys.stderr, flush=True))
    except ToolchainError as exc:
        print(f"promtool: {exc}", file=sys.stderr)
        return 1
    print(f"promtool {binary.version} ({binary.source}: {binary.path})")
    failures = [f for stack in args.stacks for f in check_stack(binary.path, stack, PROJECT_ROOT / "build")]
    tests = sorted(str(p.relative_to(PROJECT_ROOT)) for p in UNIT_TESTS.glob("*.yaml"))
    ok, output = promtool(binary.path, "test", "rules", *tests)
    print(output)
    if not ok:
        failures.append("promtool test rules failed")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
