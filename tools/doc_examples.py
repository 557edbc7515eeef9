"""The code blocks of the README and the reference pages (docs/reference), and what each one is.

Every fenced block is one of:

- a Python example (```python): it runs as written (``tests/test_doc_examples.py`` plans it under the
  offline plan's mock engine, and ``make typecheck`` type-checks it); on the reference pages, after
  the pages' shared start, the block marked ``<!-- example: preamble -->`` in docs/reference/README.md;
- an illustrative excerpt: a Python block right after a ``<!-- illustrative: <why> -->`` line, such
  as lines of library files with ``...`` for what is left out; it is not run;
- a shell session (```bash): not run, but every ``make <target>`` and ``python -m <module>`` in it
  must exist;
- a stack-file excerpt (```yaml right after a ``<!-- excerpt: <stack file> -->`` line): every key and
  value it shows is in that stack file (list items matched by their ``name``), which the tests plan;
- text (a diagram, a layout, a program's output): no language, or ``mermaid``.

A Python block named ``<!-- example: <name> -->`` runs like any other; its name lets a test find it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT_ROOT / "docs" / "reference"
PREAMBLE_MARKER = "example: preamble"
EXCERPT_MARKER = "excerpt:"
SHELL = ("bash", "sh", "shell", "console")
TEXT = ("", "mermaid", "text")

_FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<marker>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its code (dedented) and the marker before it."""

    path: Path
    line: int  # the opening fence's line, from 1
    language: str
    code: str
    marker: str = ""  # the text of a ``<!-- ... -->`` line right before the fence

    @property
    def kind(self) -> str:
        """``python`` (runs), ``preamble`` (runs before each reference example), ``illustrative``,
        ``shell``, ``excerpt`` (of a stack file) or ``text``; anything else is ``unknown`` (a test names
        it)."""
        if self.language == "python":
            if self.marker == PREAMBLE_MARKER:
                return "preamble"
            return "illustrative" if self.marker.startswith("illustrative:") else "python"
        if self.language in SHELL:
            return "shell"
        if self.language == "yaml" and self.marker.startswith(EXCERPT_MARKER):
            return "excerpt"
        return "text" if self.language in TEXT else "unknown"

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(PROJECT_ROOT)}:{self.line}"

    @property
    def on_reference_page(self) -> bool:
        return self.path.parent == REFERENCE

    @property
    def excerpt_of(self) -> Path:
        """The stack file a stack-file excerpt is taken from."""
        return PROJECT_ROOT / self.marker.removeprefix(EXCERPT_MARKER).strip()


def missing_from(excerpt: object, whole: object, at: str = "") -> list[str]:
    """Where ``excerpt`` shows a key or value that ``whole`` does not have (list items are matched by
    their ``name`` when they have one, else by position)."""
    if isinstance(excerpt, dict):
        if not isinstance(whole, dict):
            return [at or "."]
        return [
            found
            for key, value in excerpt.items()
            for found in (
                missing_from(value, whole[key], f"{at}.{key}" if at else str(key))
                if key in whole
                else [f"{at}.{key}" if at else str(key)]
            )
        ]
    if isinstance(excerpt, list):
        if not isinstance(whole, list):
            return [at]
        found: list[str] = []
        for i, item in enumerate(excerpt):
            name = item.get("name") if isinstance(item, dict) else None
            if name is not None:
                match = [w for w in whole if isinstance(w, dict) and w.get("name") == name]
                found += missing_from(item, match[0], f"{at}[{name}]") if match else [f"{at}[{name}]"]
            else:
                found += missing_from(item, whole[i], f"{at}[{i}]") if i < len(whole) else [f"{at}[{i}]"]
        return found
    return [] if excerpt == whole else [f"{at}: {excerpt!r} (the file has {whole!r})"]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order (fences may be indented, in a list item)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent = len(opening["indent"])
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[indent:] for line in lines[i + 1 : end])
        before = _MARKER.match(lines[i - 1]) if i else None
        found.append(Block(path, i + 1, opening["language"], code + "\n", before["marker"] if before else ""))
        i = end + 1
    return found


def documents() -> list[Path]:
    """The README and every reference page."""
    return [PROJECT_ROOT / "README.md", *sorted(REFERENCE.glob("*.md"))]


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def preamble() -> str:
    """The start every reference example runs after."""
    (found,) = [b for b in blocks(REFERENCE / "README.md") if b.kind == "preamble"]
    return found.code


def program(block: Block) -> str:
    """The program a Python example is: the block itself, after the preamble on a reference page."""
    return (preamble() + "\n" + block.code) if block.on_reference_page else block.code


def commands(block: Block) -> list[tuple[str, str]]:
    """``("make", target)`` and ``("module", name)`` of each ``make`` and ``python -m`` in a shell block."""
    found: list[tuple[str, str]] = []
    for line in block.code.splitlines():
        command = line.split("#", 1)[0].strip().removeprefix("$ ")
        for target in re.findall(r"(?:^|&&\s*)make\s+([\w-]+)", command):
            found.append(("make", target))
        found += [("module", m) for m in re.findall(r"python[\d.]*\s+-m\s+([\w.]+)", command)]
    return found
