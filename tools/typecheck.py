"""Type-check what a team copies: ``python -m tools.typecheck`` (make typecheck).

mypy checks ``examples/team-service`` and every Python example of the README and the reference pages
(``tools/doc_examples.py``; a reference example after the pages' shared start) against the library's
own annotations (``py.typed``): an argument of the wrong type, a misspelled keyword, an ``Optional``
read as if it were set. The library is seen as the package ``aiplatform`` through a link in
``build/typecheck`` (the editable install's finder is invisible to mypy); errors inside the library
and its dependencies are not reported (``--follow-imports=silent``). mypy's cache lives outside the
repository (``~/.cache/aiplatform-mypy``): the first run analyses pulumi-aws (about a minute), later
ones take seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tools import doc_examples

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEAM_SERVICE = PROJECT_ROOT / "examples" / "team-service" / "__main__.py"
CACHE = Path(os.environ.get("AIPLATFORM_MYPY_CACHE", Path.home() / ".cache" / "aiplatform-mypy"))


def write_examples(folder: Path) -> list[Path]:
    """Each Python example as a module of its own in ``folder`` (named after where it is written)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    written = []
    for block in doc_examples.all_blocks():
        if block.kind != "python":
            continue
        name = re.sub(r"\W", "_", block.where.removesuffix(f":{block.line}")) + f"_{block.line}"
        path = folder / f"{name}.py"
        path.write_text(f"# {block.where}\n{doc_examples.program(block)}", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "typecheck")
    args = parser.parse_args(argv)
    package_root = args.out / "path"
    package_root.mkdir(parents=True, exist_ok=True)
    link = package_root / "aiplatform"
    if not link.is_symlink():
        link.symlink_to(PROJECT_ROOT / "components", target_is_directory=True)
    files = [TEAM_SERVICE, *write_examples(args.out / "examples")]
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--python-version",
        "3.11",
        "--follow-imports=silent",
        "--cache-dir",
        str(CACHE),
        *map(str, files),
    ]
    print(f"mypy over {len(files)} programs: examples/team-service and the documents' Python examples")
    return subprocess.run(command, env={**os.environ, "MYPYPATH": str(package_root)}, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
