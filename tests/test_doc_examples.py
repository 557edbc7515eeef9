"""Every example of the README and the reference pages runs as written, so none can go stale.

A Python block is planned as a program of its own (``python -m aiplatform.plan``'s function) in a
throw-away project: the reference pages' examples after their shared start, a StackReference answered
by the prod platform's planned outputs. Shell blocks name only make targets and modules that exist;
illustrative excerpts say why they are not run (``tools/doc_examples.py``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pytest
import yaml

from aiplatform.compute import instance_types
from aiplatform.plan import cli as plan_tool
from tests.program import planned
from tests.stacks import PROJECT_ROOT
from tools import doc_examples

BLOCKS = doc_examples.all_blocks()
PYTHON = [b for b in BLOCKS if b.kind == "python"]
SHELL = [b for b in BLOCKS if b.kind == "shell"]
PROJECT = "name: examples\nruntime: python\n"
# The README's component example reads the cluster's kubeconfig from the team's config.
CONFIG = "config:\n  team:kubeconfig:\n    secure: v1:planned\n"


EXCERPTS = [b for b in BLOCKS if b.kind == "excerpt"]


@pytest.mark.parametrize("block", EXCERPTS, ids=[b.where for b in EXCERPTS])
def test_a_stack_file_excerpt_shows_what_the_stack_file_holds(block):
    whole = yaml.safe_load(block.excerpt_of.read_text(encoding="utf-8"))["config"]
    assert doc_examples.missing_from(yaml.safe_load(block.code), whole) == []


def test_the_excerpt_check_finds_a_value_the_file_does_not_hold():
    whole = {"a:b": {"items": [{"name": "x", "n": 1}, {"name": "y", "n": 2}]}}
    assert doc_examples.missing_from({"a:b": {"items": [{"name": "y", "n": 2}]}}, whole) == []
    assert doc_examples.missing_from({"a:b": {"items": [{"name": "y", "n": 3}]}}, whole) == [
        "a:b.items[y].n: 3 (the file has 2)"
    ]
    assert doc_examples.missing_from({"a:b": {"other": 1}}, whole) == ["a:b.other"]


def test_every_block_is_an_example_a_shell_session_an_excerpt_or_text():
    assert [b.where for b in BLOCKS if b.kind == "unknown"] == []
    assert len(PYTHON) >= 10  # the README's and every component page's with an example
    for block in BLOCKS:
        if block.kind == "illustrative":
            assert block.marker.removeprefix("illustrative:").strip(), f"{block.where}: say why it is not run"


@pytest.fixture
def instance_table():
    """An example may add instance types (``add_instance_types``): the table is the process's, so it
    is put back after the example."""
    saved = dict(instance_types._TABLE)
    yield
    instance_types._TABLE.clear()
    instance_types._TABLE.update(saved)


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_the_python_example_plans_as_written(tmp_path, instance_table, block):
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(PROJECT, encoding="utf-8")
    (project / "Pulumi.dev.yaml").write_text(CONFIG, encoding="utf-8")
    (project / "__main__.py").write_text(doc_examples.program(block), encoding="utf-8")
    plan = plan_tool.plan(
        "dev", out_dir=tmp_path / "out", project_dir=project, stack_outputs={"*": planned("prod").outputs}
    )
    own = plan.registrations
    if block.on_reference_page:  # what the shared start registers is not the example's
        own = [r for r in own if r.urn not in _preamble_urns()]
    assert own, f"{block.where}: the example registers nothing"


@cache
def _preamble_urns() -> frozenset[str]:
    """What the reference pages' shared start registers on its own."""
    folder = Path(tempfile.mkdtemp(prefix="preamble-"))
    project = folder / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(PROJECT, encoding="utf-8")
    (project / "Pulumi.dev.yaml").write_text(CONFIG, encoding="utf-8")
    (project / "__main__.py").write_text(doc_examples.preamble(), encoding="utf-8")
    plan = plan_tool.plan("dev", out_dir=folder / "out", project_dir=project)
    shutil.rmtree(folder)
    return frozenset(r.urn for r in plan.registrations)


def _make_targets() -> set[str]:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([\w-]+):", makefile, re.MULTILINE))


@pytest.mark.parametrize("block", SHELL, ids=[b.where for b in SHELL])
def test_a_shell_session_names_only_targets_and_modules_that_exist(block):
    targets = _make_targets()
    for kind, name in doc_examples.commands(block):
        if kind == "make":
            assert name in targets, f"{block.where}: make {name}: no such target"
        else:
            assert importlib.util.find_spec(name) is not None, (
                f"{block.where}: python -m {name}: no such module"
            )


def test_the_blocks_are_read_as_written(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n<!-- illustrative: a fragment -->\n```python\nx = ...\n```\n\n"
        "1. a step\n\n   ```bash\n   make plan && python -m tools.plan --stack dev  # and\n   ```\n",
        encoding="utf-8",
    )
    excerpt, shell = doc_examples.blocks(page)
    assert (excerpt.kind, excerpt.code, excerpt.line) == ("illustrative", "x = ...\n", 3)
    assert (shell.kind, shell.code) == ("shell", "make plan && python -m tools.plan --stack dev  # and\n")
    assert doc_examples.commands(shell) == [("make", "plan"), ("module", "tools.plan")]


def test_the_type_check_gets_every_python_example_as_a_program_of_its_own(tmp_path):
    from tools import typecheck

    written = typecheck.write_examples(tmp_path / "examples")
    assert len(written) == len(PYTHON) == len({path.name for path in written})
    for path, block in zip(written, PYTHON, strict=True):
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"# {block.where}\n")
        assert (doc_examples.preamble() in text) == block.on_reference_page
