"""``make scan``: checkov's Kubernetes checks over the planned manifests of each stack.

Reads ``build/<stack>/manifests.yaml`` (``make plan`` writes it), prints per stack the checks passed,
failed and skipped, each skip with the reason its object gives (``checkov.io/skip<N>`` annotations),
and each failure; exits 1 when a check fails. checkov runs offline (``--skip-download``: no platform
API, no guideline download) from its own pinned virtualenv (requirements-scan.txt).

    python -m tools.scan --checkov .venv-scan/bin/checkov dev prod
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def scan(checkov: str, manifests: Path) -> dict[str, Any]:
    """checkov's JSON report of one manifests file (its exit code says only whether a check failed)."""
    done = subprocess.run(
        [checkov, "-f", str(manifests), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        # A bare environment: no BC_API_KEY or proxy settings can send the manifests anywhere.
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "CHECKOV_LOG_LEVEL": "ERROR"},
    )
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"checkov failed on {manifests} ({done.returncode}):\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def render(stack: str, report: dict[str, Any]) -> tuple[list[str], int]:
    """Summary lines of one stack's report, and its number of failed checks."""
    summary, results = report["summary"], report.get("results", {})
    lines = [
        f"{stack}: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped "
        f"(checkov {summary.get('checkov_version', '?')}, {summary.get('resource_count', '?')} objects)"
    ]
    # checkov reports in the order its workers finish: sort for a stable report.
    lines += sorted(
        f"  skipped {item['check_id']} on {item['resource']}: "
        f"{(item.get('check_result') or {}).get('suppress_comment', '')}"
        for item in results.get("skipped_checks", [])
    )
    lines += sorted(
        f"  FAILED  {item['check_id']} on {item['resource']}: {item.get('check_name', '')}"
        for item in results.get("failed_checks", [])
    )
    return lines, int(summary["failed"]) + int(summary.get("parsing_errors", 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", nargs="+")
    parser.add_argument("--checkov", required=True, help="the checkov executable")
    parser.add_argument("--build-dir", type=Path, default=PROJECT_ROOT / "build")
    args = parser.parse_args(argv)
    failed = 0
    for stack in args.stacks:
        manifests = args.build_dir / stack / "manifests.yaml"
        if not manifests.is_file():
            print(f"{stack}: {manifests} is missing: run make plan STACK={stack}", file=sys.stderr)
            return 2
        lines, stack_failed = render(stack, scan(args.checkov, manifests))
        print("\n".join(lines))
        failed += stack_failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
