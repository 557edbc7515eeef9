"""How a component reports bad arguments: every problem at once, each with the argument's property path
as the caller writes it (``specs[1].max_size``) and what to do, before any resource is created.

The convention, for every component and every pure builder:

- an ``XxxArgs`` type answers ``problems() -> list[Problem]`` (pure: it returns, never raises);
- the component calls ``require(subject, args.problems())`` before ``super().__init__``, so nothing is
  registered when a problem is found;
- a pure builder that is handed impossible values raises ``ArgumentsError`` itself.

``ArgumentsError`` is the SDK's ``pulumi.InputPropertiesError`` (property path + reason, the error
Pulumi's own component libraries raise), and a ``ValueError`` so that callers catching the latter keep
working.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Sequence

import pulumi

# (property path, reason). An empty path is a problem of the arguments as a whole.
Problem = tuple[str, str]


def path(*parts: str | int) -> str:
    """``("specs", 1, "max_size")`` -> ``specs[1].max_size``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out and not part.startswith("[") else part
    return out


def under(prefix: str | int, problems: Iterable[Problem]) -> list[Problem]:
    """The same problems, their paths below ``prefix`` (a nested argument's problems, in its parent)."""
    return [(path(prefix, p) if p else path(prefix), reason) for p, reason in problems]


def describe(problem: Problem) -> str:
    at, reason = problem
    return f"{at}: {reason}" if at else reason


@functools.cache
def _typed_fields(args_type: type) -> dict[str, type]:
    """The fields of ``args_type`` declared as a typed args object (``Resources``, ``Placement | None``)."""
    # ``pulumi.Input[T]`` holds the forward reference ``'Output[T]'``: resolve it where Pulumi wrote it.
    pulumi_names = {name: vars(pulumi.output)[name] for name in ("Output", "T")}
    hints = typing.get_type_hints(args_type, localns=pulumi_names)
    typed: dict[str, type] = {}
    for item in dataclasses.fields(args_type):
        hint = hints[item.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        classes = [option for option in options if option is not type(None)]
        if len(classes) == 1 and dataclasses.is_dataclass(classes[0]):
            typed[item.name] = classes[0]
    return typed


def type_problems(args: object) -> list[Problem]:
    """Each field of the dataclass ``args`` that holds something other than its declared args object
    (a dict where ``Resources`` is expected): the checks of those objects could not read it."""
    problems: list[Problem] = []
    for name, expected in _typed_fields(type(args)).items():
        value = getattr(args, name)
        if value is not None and not isinstance(value, expected):
            wanted = expected.__name__
            problems.append((name, f"got a {type(value).__name__}, expected {wanted}: pass {wanted}(...)"))
    return problems


class ArgumentsError(pulumi.InputPropertiesError, ValueError):
    """Bad arguments of ``subject`` (e.g. ``NodeGroups 'platform-nodes'``); ``errors`` holds each
    property path and reason, ``problems`` the same as pairs."""

    def __init__(self, subject: str, problems: Sequence[Problem]):
        self.subject = subject
        self.problems = list(problems)
        details = [pulumi.InputPropertyErrorDetails(property_path=p, reason=r) for p, r in self.problems]
        message = f"{subject}:\n" + "\n".join(f"  - {describe(p)}" for p in self.problems)
        super().__init__(message, details)

    def __str__(self) -> str:
        return self.message


def require(subject: str, problems: Iterable[Problem]) -> None:
    """Raise every problem of ``subject`` at once; nothing when there is none."""
    found = list(problems)
    if found:
        raise ArgumentsError(subject, found)
