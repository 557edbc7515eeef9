"""Run the end-to-end scenarios on one stack file, under the real Pulumi engine and a local cluster.

    python -m tools.e2e --stack dev                               # Pulumi.dev.yaml
    python -m tools.e2e --stack what-if --config-file my.yaml      # any stack file

Builds (or finds) the toolchain, with the control plane of the stack's Kubernetes minor, starts a
cluster, runs the stack's scenarios in order (deploy first, teardown last; a teardown runs even when a
scenario before it failed), stops everything, prints one verdict line per scenario and writes
build/e2e/report.json (or --report). Exit 0 when every scenario
passed, 1 otherwise, 2 when the toolchain cannot be had.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.e2e.harness import OUT, E2eRun
from tools.e2e.operators.scenarios import scenarios_for
from tools.e2e.report import Report
from tools.e2e.scenarios import StackUnderTest, teardown
from tools.e2e.stacks import PROJECT_ROOT, kubernetes_minor, stack_config
from tools.e2e.toolchain import ToolchainError, ensure_all


def run_stack(binaries, report: Report, stack: str, config_file: Path | None = None) -> list:
    results = []
    with E2eRun(binaries, stack=stack, config_file=config_file) as run:
        report.add_run(run)
        under_test = StackUnderTest(run)
        scenarios = scenarios_for(run.config)
        try:
            for scenario in scenarios:
                if scenario is not teardown and scenario is not scenarios[0] and not under_test.deployed:
                    continue  # nothing deployed to change: only the teardown still runs
                result = scenario(under_test)
                results.append(result)
                report.add(result)
                print(result.verdict(), flush=True)
        finally:
            if under_test.deployed:  # a scenario stopped before teardown: leave nothing behind
                report.add(teardown(under_test))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--config-file", type=Path)
    parser.add_argument("--report", type=Path, default=OUT / "report.json")
    args = parser.parse_args(argv)
    report = Report(args.report)
    try:
        with report.timing("toolchain_seconds"):
            config_file = args.config_file or PROJECT_ROOT / f"Pulumi.{args.stack}.yaml"
            binaries = ensure_all(
                log=lambda line: print(line, file=sys.stderr, flush=True),
                minors=[kubernetes_minor(stack_config(config_file))],
            )
    except ToolchainError as exc:
        print(f"e2e: {exc}", file=sys.stderr)
        return 2
    report.toolchain(binaries)
    try:
        run_stack(binaries, report, args.stack, args.config_file)
    finally:
        report.write()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
