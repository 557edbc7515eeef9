"""Python source parsed into an AST without a garbage collection in the middle.

CPython 3.11 keeps the AST constructor's recursion depth in the ``ast`` module's state. A collection
during ``ast.parse`` can run a finalizer that parses too (an asyncio Future whose exception nobody
retrieved logs its traceback, and 3.11's traceback formatting parses the failing line to place its
carets); the outer parse then fails with ``SystemError: AST constructor recursion depth mismatch``.
The test suite leaves such Futures behind (the plan's negative cases), so every parse here runs with
the collector paused.
"""

from __future__ import annotations

import ast
import gc


def parse(source: str) -> ast.Module:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        if enabled:
            gc.enable()
