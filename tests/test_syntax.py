"""tools.syntax: a parse that a finalizer running during it cannot break (CPython 3.11's AST constructor)."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

from tools import syntax

SOURCE = (Path(__file__).resolve().parents[1] / "components" / "platform.py").read_text(encoding="utf-8")


class ParsesWhenCollected:
    """What an unretrieved asyncio Future does when collected on 3.11: its traceback is formatted,
    and the formatting parses the failing line."""

    def __del__(self):
        ast.parse("x = (1 + 2) * 3")


def test_a_collection_during_the_parse_does_not_nest_another_parse():
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # a collection at nearly every allocation: inside the parse, if it allows one
    try:
        for _ in range(20):
            garbage = ParsesWhenCollected()
            garbage.cycle = garbage  # only the collector frees it
            del garbage
            assert isinstance(syntax.parse(SOURCE), ast.Module)
    finally:
        gc.set_threshold(*threshold)
        gc.collect()


def test_the_collector_is_left_as_it_was():
    assert gc.isenabled()
    syntax.parse("x = 1")
    assert gc.isenabled()
    gc.disable()
    try:
        syntax.parse("x = 1")
        assert not gc.isenabled()
    finally:
        gc.enable()
