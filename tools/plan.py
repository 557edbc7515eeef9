"""The offline plan: run the real program under the mock engine and write what it would deploy.

    python -m tools.plan --stack dev
    python -m tools.plan --stack prod --config-file what-if.yaml --out build/what-if

Writes ``resources.json`` (every registered resource, secrets redacted), ``manifests.yaml`` (every
Kubernetes object as the API server would receive it) and ``outputs.json`` (stack outputs, secrets
redacted), then prints a summary and the reports in ``REPORTS``. Exit codes: 0 planned, 1 anything else
failed, 2 invalid config or stack file, 3 planned but a report blocks the deployment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tools.cost import cost_report
from tools.critical_path import critical_path_report
from tools.mock_engine import Registration, auto_name
from tools.policy_report import policy_report
from tools.runner import PROJECT_ROOT, ProgramRun, StackFileError, read_stack_file, run_program

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BLOCKED = 0, 1, 2, 3

# Registrations that are not Kubernetes objects, although their type says kubernetes.
_NOT_MANIFESTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")


def is_manifest(registration: Registration) -> bool:
    return (
        registration.custom
        and registration.type.startswith("kubernetes:")
        and not registration.type.startswith(_NOT_MANIFESTS)
    )


def manifest_of(registration: Registration) -> dict:
    """The object Kubernetes would receive: apiVersion, kind and metadata first, auto-names filled in."""
    inputs = dict(registration.inputs)
    metadata = dict(inputs.pop("metadata", None) or {})
    if not metadata.get("name"):
        metadata["name"] = auto_name(registration.name)
    head = {
        "apiVersion": inputs.pop("apiVersion", None),
        "kind": inputs.pop("kind", None),
        "metadata": metadata,
    }
    return {**head, **inputs}


def manifests(registrations: Iterable[Registration]) -> list[dict]:
    return [manifest_of(r) for r in registrations if is_manifest(r)]


@dataclass
class Report:
    """One section of the plan's output, computed from what the program registered."""

    title: str
    lines: list[str]
    files: dict[str, str] = field(default_factory=dict)  # written to the output folder
    blocking: bool = False  # the deployment must not go ahead (exit 3)

    def render(self) -> str:
        return "\n".join([f"{self.title}:", *(f"  {line}" for line in self.lines)])


# Each report reads a finished Plan; add one by appending its function here.
REPORTS: list[Callable[[Plan], Report]] = [policy_report, critical_path_report, cost_report]


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class Plan:
    stack: str
    out_dir: Path
    run: ProgramRun
    warnings: list[str] = field(default_factory=list)

    @property
    def registrations(self) -> list[Registration]:
        return self.run.registrations

    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        entries = [r.as_plan_entry() for r in self.registrations]
        (self.out_dir / "resources.json").write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        documents = manifests(self.registrations)
        (self.out_dir / "manifests.yaml").write_text(
            yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False), encoding="utf-8"
        )
        (self.out_dir / "outputs.json").write_text(
            json.dumps(self.run.outputs, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def summary(self) -> str:
        by_urn = {r.urn: r for r in self.registrations}

        def top_component(r: Registration) -> str:
            # Group by the platform's direct children (network, cluster, ...).
            while r.parent in by_urn and by_urn[r.parent].parent in by_urn:
                r = by_urn[r.parent]
            return f"{r.name} ({r.type})"

        per_component: dict[str, Counter] = defaultdict(Counter)
        for r in self.registrations:
            per_component[top_component(r)][r.type] += 1
        lines = [f"Plan for stack '{self.stack}': {len(self.registrations)} resources"]
        for component in sorted(per_component):
            counts = per_component[component]
            lines.append(f"  {component}: {sum(counts.values())}")
            lines += [f"      {count:3d}  {typ}" for typ, count in sorted(counts.items())]
        releases = [r for r in self.registrations if r.type == "kubernetes:helm.sh/v3:Release"]
        if releases:
            lines.append("Helm releases:")
            for r in releases:
                repo = (r.inputs.get("repositoryOpts") or {}).get("repo", "")
                lines.append(f"  {r.inputs.get('chart')} {r.inputs.get('version')}  ({repo}) as {r.name}")
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        lines.append(f"Kubernetes objects: {sum(1 for r in self.registrations if is_manifest(r))}")
        lines.append(f"Written: {self.out_dir}/resources.json, manifests.yaml, outputs.json")
        return "\n".join(lines)


def plan(stack: str, config_file: Path | None = None, out_dir: Path | None = None) -> Plan:
    """Plan ``stack``; raises ``StackFileError`` or the program's ``ConfigError`` on bad input."""
    config = read_stack_file(config_file or PROJECT_ROOT / f"Pulumi.{stack}.yaml")
    collector = _WarningCollector()
    logger = logging.getLogger("aiplatform.plan")
    logger.propagate = False
    logger.addHandler(collector)
    try:
        run = run_program(config, stack, logger=logger)
    finally:
        logger.removeHandler(collector)
    return Plan(
        stack=stack, out_dir=out_dir or PROJECT_ROOT / "build" / stack, run=run, warnings=collector.messages
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml); default dev")
    parser.add_argument("--config-file", type=Path, help="plan this stack file instead (a what-if config)")
    parser.add_argument("--out", type=Path, help="output folder; default build/<stack>")
    args = parser.parse_args(argv)

    from aiplatform.config import ConfigError  # imported late: the program's own error type

    try:
        result = plan(args.stack, args.config_file, args.out)
    except (StackFileError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 - the plan reports any failure as exit 1
        traceback.print_exc()
        print(f"error: planning failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    result.write()
    print(result.summary())
    reports = [make_report(result) for make_report in REPORTS]
    for report in reports:
        for name, content in report.files.items():
            (result.out_dir / name).write_text(content, encoding="utf-8")
        print(report.render())
    return EXIT_BLOCKED if any(r.blocking for r in reports) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
