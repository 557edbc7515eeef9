"""A stack deployed with an earlier revision of the program, then updated with the working tree's code:
a change to the code that must not change what a deployed stack sees (a refactor, a move of modules)
shows 0 changes under the real engine.

    python -m tools.e2e.code_upgrade --from REV [--stack dev] [--config-file FILE]

Starts the local cluster and simulated cloud (as ``make e2e`` does), runs ``up`` with the program as it
is at ``REV`` (``git archive``: committed files only), then ``preview`` and ``up`` with the working
tree's program on the same stack, and prints what each saw. Exit 0 when both report nothing but
``same``, 1 otherwise, 2 when the toolchain cannot be had. Both revisions run in this one process: the
``aiplatform`` package is imported from REV's ``components/`` for the first ``up`` (and put back
after), then the working tree's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.util
import json
import runpy
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tools.e2e.harness import OUT, PROJECT_ROOT, E2eRun
from tools.e2e.toolchain import ToolchainError, ensure_all

PACKAGE = "aiplatform"


class _PackageAt(importlib.abc.MetaPathFinder):
    """Finds ``aiplatform`` in another checkout's ``components/`` (its submodules follow its path)."""

    def __init__(self, root: Path):
        self.root = root

    def find_spec(self, name, path=None, target=None):
        if name != PACKAGE:
            return None
        package = self.root / "components"
        return importlib.util.spec_from_file_location(
            PACKAGE, package / "__init__.py", submodule_search_locations=[str(package)]
        )


def _loaded() -> dict[str, object]:
    return {n: m for n, m in sys.modules.items() if n == PACKAGE or n.startswith(PACKAGE + ".")}


@contextlib.contextmanager
def package_from(root: Path) -> Iterator[None]:
    """``aiplatform`` imported afresh from ``root``'s ``components/`` while inside; the modules loaded
    before are put back after, so nothing else in the process sees the other revision."""
    saved = _loaded()
    for name in saved:
        del sys.modules[name]
    finder = _PackageAt(root)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in _loaded():
            del sys.modules[name]
        sys.modules.update(saved)


def program_at(root: Path | None) -> Callable[[], None]:
    """The program of the checkout at ``root`` (None: the working tree), run inline. Run an engine
    operation of ``root``'s program inside ``package_from(root)``: the SDK resolves the components'
    type hints from their modules until the operation ends, after the program function returns."""
    main = (root or PROJECT_ROOT) / "__main__.py"

    def run() -> None:
        runpy.run_path(str(main), run_name="__main__")

    return run


def export_revision(rev: str, into: Path) -> str:
    """The committed files of ``rev`` in ``into``; returns the full commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(["git", "archive", commit], cwd=PROJECT_ROOT, capture_output=True, check=True)
    into.mkdir(parents=True, exist_ok=True)
    archive_file = into.parent / "revision.tar"
    archive_file.write_bytes(archive.stdout)
    with tarfile.open(archive_file) as tar:
        tar.extractall(into, filter="data")
    return commit


def _changes(summary) -> dict[str, int]:
    return {str(k): int(v) for k, v in (summary or {}).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="rev", required=True, help="the revision that deploys first")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--config-file", type=Path)
    parser.add_argument("--report", type=Path, default=OUT / "code-upgrade.json")
    args = parser.parse_args(argv)
    try:
        binaries = ensure_all(log=lambda line: print(line, file=sys.stderr, flush=True))
    except ToolchainError as exc:
        print(f"e2e: {exc}", file=sys.stderr)
        return 2
    report: dict = {"stack": args.stack}
    with tempfile.TemporaryDirectory(prefix="aiplatform-code-upgrade-") as tmp:
        old_root = Path(tmp) / "old"
        report["from"] = export_revision(args.rev, old_root)
        with E2eRun(binaries, stack=args.stack, config_file=args.config_file) as run:
            stack = run.stack

            def timed(name: str, op: Callable, root: Path | None):
                start = time.monotonic()
                with package_from(root) if root is not None else contextlib.nullcontext():
                    outcome = op(program=program_at(root), color="never", on_output=run.log)
                summary = getattr(outcome, "summary", None)
                changes = summary.resource_changes if summary is not None else outcome.change_summary
                report[name] = {"seconds": round(time.monotonic() - start, 1), "changes": _changes(changes)}
                print(f"{name}: {report[name]}", flush=True)

            timed("up with the earlier revision", stack.up, old_root)
            report["resources"] = len(stack.export_stack().deployment.get("resources", []))
            timed("preview with the working tree", stack.preview, None)
            timed("up with the working tree", stack.up, None)
            with contextlib.suppress(Exception):  # the cluster and the backend go with the run anyway
                stack.destroy(program=program_at(None), color="never", on_output=run.log)
    unchanged = all(
        set(report[k]["changes"]) <= {"same"}
        for k in ("preview with the working tree", "up with the working tree")
    )
    report["unchanged"] = unchanged
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{report['resources']} resources; the working tree changes {'nothing' if unchanged else 'something'}"
    )
    return 0 if unchanged else 1


if __name__ == "__main__":
    sys.exit(main())
