"""The offline plan: run the real program under the mock engine and write what it would deploy.

    python -m aiplatform.plan --stack dev
    python -m aiplatform.plan --stack prod --config-file what-if.yaml --out build/what-if

It plans the Pulumi project in the current directory (its ``__main__.py`` and ``Pulumi.<stack>.yaml``).

Writes ``resources.json`` (every registered resource, secrets redacted), ``manifests.yaml`` (every
Kubernetes object as the API server would receive it) and ``outputs.json`` (stack outputs, secrets
redacted), then prints a summary and the reports in ``REPORTS``. Exit codes: 0 planned, 1 anything else
failed, 2 invalid config, stack file or component arguments, 3 planned but a report blocks the deployment.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pulumi.config import ConfigMissingError

from .capacity_report import capacity_report
from .compute_report import compute_report
from .cost import cost_report
from .critical_path import critical_path_report
from .lifecycle_report import lifecycle_report
from .mock_engine import ANY_STACK
from .model import Plan, Report
from .policy_report import policy_report
from .program_errors import argument_problems
from .runner import StackFileError, read_project, read_stack_file, read_stack_outputs, run_program

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_BLOCKED = 0, 1, 2, 3

# Each report reads a finished Plan; add one by appending its function here.
REPORTS: list[Callable[[Plan], Report]] = [
    policy_report,
    compute_report,
    critical_path_report,
    cost_report,
    capacity_report,
    lifecycle_report,
]


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def plan(
    stack: str,
    config_file: Path | None = None,
    out_dir: Path | None = None,
    project_dir: Path | None = None,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    today: date | None = None,
) -> Plan:
    """Plan ``stack`` of the project in ``project_dir`` (default: the current directory).

    ``stack_outputs`` answer the program's StackReferences, by stack name or ``"*"`` for any. ``today``
    is the day the reports judge lifecycle dates by (default: the real date).
    Raises ``StackFileError`` or the program's ``ConfigError`` on bad input.
    """
    project_dir = project_dir or Path.cwd()
    project = read_project(project_dir)
    config = project.stack_config(stack, read_stack_file(config_file or project_dir / f"Pulumi.{stack}.yaml"))
    collector = _WarningCollector()
    logger = logging.getLogger("aiplatform.plan")
    logger.propagate = False
    logger.addHandler(collector)
    try:
        run = run_program(
            config,
            stack,
            program=project.program,
            logger=logger,
            project=project.name,
            stack_outputs=stack_outputs,
        )
    finally:
        logger.removeHandler(collector)
    return Plan(
        stack=stack,
        out_dir=out_dir or project_dir / "build" / stack,
        run=run,
        warnings=collector.messages,
        today=today or date.today(),
        stack_outputs=dict(stack_outputs or {}),
    )


def _stack_outputs(values: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--stack-outputs [STACK=]FILE`` values: outputs by referenced stack (``*``: any stack)."""
    by_stack = {}
    for value in values:
        stack, _, file = value.rpartition("=")
        by_stack[stack or ANY_STACK] = read_stack_outputs(Path(file))
    return by_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiplatform.plan", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev", help="stack name (reads Pulumi.<stack>.yaml); default dev")
    parser.add_argument("--config-file", type=Path, help="plan this stack file instead (a what-if config)")
    parser.add_argument("--out", type=Path, help="output folder; default build/<stack>")
    parser.add_argument(
        "--project-dir", type=Path, help="the Pulumi project to plan; default the current directory"
    )
    parser.add_argument(
        "--stack-outputs",
        action="append",
        default=[],
        metavar="[STACK=]FILE",
        help="outputs.json of a planned stack, read by the program's StackReference to STACK (or to any "
        "stack); repeat for several",
    )
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="judge support windows and price age as of this day; default the real date",
    )
    args = parser.parse_args(argv)

    from ..config import ConfigError  # imported late: the program's own error type
    from ..outputs import PlatformOutputsError

    try:
        outputs = _stack_outputs(args.stack_outputs)
        result = plan(args.stack, args.config_file, args.out, args.project_dir, outputs, args.today)
    except (StackFileError, ConfigError, PlatformOutputsError, ConfigMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except Exception as exc:  # noqa: BLE001 - the plan reports any failure as exit 1
        program = read_project(args.project_dir or Path.cwd()).program
        if (problems := argument_problems(exc, program)) is not None:
            for problem in problems:
                print(f"error: {problem}", file=sys.stderr)
            return EXIT_INVALID
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
