"""A program's bad component arguments as problem lines, like a stack file's: one line per problem.

An ``ArgumentsError`` gives ``<Type> '<name>': <path>: <reason>`` per problem. A misspelled keyword of an
args dataclass (``InferenceServiceArgs(replica=3)``) is a ``TypeError`` Python raises at the program's own
call: it gives the program's file and line, the message and the field it most likely meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
import traceback
from pathlib import Path

from ..errors import ArgumentsError, describe

_UNEXPECTED_KEYWORD = re.compile(
    r"^(?P<type>\w+)\.__init__\(\) got an unexpected keyword argument '(?P<name>\w+)'$"
)


def argument_problems(exc: BaseException, program: Path) -> list[str] | None:
    """The problem lines of ``exc`` raised by ``program``, or None when it is not a bad argument."""
    if isinstance(exc, ArgumentsError):
        return [f"{exc.subject}: {describe(problem)}" for problem in exc.problems]
    if isinstance(exc, TypeError) and (match := _UNEXPECTED_KEYWORD.match(str(exc))):
        return [f"{_call_site(exc, program)}{exc}{_suggestion(match['type'], match['name'])}"]
    return None


def _program_frame(exc: BaseException, program: Path) -> traceback.FrameSummary | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == program]
    return frames[-1] if frames else None


def _call_site(exc: BaseException, program: Path) -> str:
    frame = _program_frame(exc, program)
    return f"{Path(frame.filename).name}, line {frame.lineno}: " if frame else ""


def _suggestion(type_name: str, keyword: str) -> str:
    """`` (did you mean 'replicas'?)`` from the fields of the library's args type the message names."""
    fields = [
        item.name
        for name, module in list(sys.modules.items())
        if name.startswith("aiplatform.")
        and dataclasses.is_dataclass(args_type := getattr(module, type_name, None))
        and isinstance(args_type, type)
        for item in dataclasses.fields(args_type)
    ]
    close = difflib.get_close_matches(keyword, fields, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
