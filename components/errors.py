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

import collections.abc
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


@dataclasses.dataclass(frozen=True)
class _Expected:
    """What a field holds, as far as the type checks go: an args object, or a sequence of them."""

    kind: type
    many: bool = False  # a sequence (list or tuple) of ``kind``


def _expected(hint: object) -> _Expected | None:
    """``Resources``, ``Placement | None`` -> one object; ``Sequence[NodeGroupSpec]``,
    ``tuple[Taint, ...]`` -> a sequence of them; anything else is not checked here."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    classes = [option for option in options if option is not type(None)]
    if len(classes) != 1:
        return None
    (hint,) = classes
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _Expected(hint)
    origin, items = typing.get_origin(hint), typing.get_args(hint)
    sequence = origin in (list, tuple, collections.abc.Sequence)
    item = items[0] if items and (origin is not tuple or items[1:] in ((), (Ellipsis,))) else None
    if sequence and isinstance(item, type) and dataclasses.is_dataclass(item):
        return _Expected(item, many=True)
    return None


@functools.cache
def _typed_fields(args_type: type) -> dict[str, _Expected]:
    """The fields of the dataclass ``args_type`` that hold typed args objects (one, or a sequence)."""
    # ``pulumi.Input[T]`` holds the forward reference ``'Output[T]'``: resolve it where Pulumi wrote it.
    pulumi_names = {name: vars(pulumi.output)[name] for name in ("Output", "T")}
    hints = typing.get_type_hints(args_type, localns=pulumi_names)
    typed: dict[str, _Expected] = {}
    for item in dataclasses.fields(args_type):
        if (expected := _expected(hints[item.name])) is not None:
            typed[item.name] = expected
    return typed


def _wrong_type(value: object, expected: type) -> str:
    wanted = expected.__name__
    return f"got a {type(value).__name__}, expected {wanted}: pass {wanted}(...)"


def type_problems(args: object, expected: type | None = None) -> list[Problem]:
    """What ``args`` holds of the wrong type, at any depth: ``args`` itself when it is not an
    ``expected`` (a dict where ``NodeGroupsArgs`` is expected), and each field declared as an args
    object, or a sequence of them, that holds something else (a dict where ``Resources`` is
    expected, a dict in ``specs``). The checks of those objects could not read them, so a component
    reports these before anything else."""
    if expected is not None and not isinstance(args, expected):
        return [("args", _wrong_type(args, expected))]
    return _field_type_problems(args)


def _field_type_problems(args: object) -> list[Problem]:
    if not dataclasses.is_dataclass(args) or isinstance(args, type):
        return []
    problems: list[Problem] = []
    for name, field in _typed_fields(type(args)).items():
        value = getattr(args, name)
        if value is None:
            continue
        if not field.many:
            problems += _value_type_problems(value, field.kind, name)
        elif isinstance(value, str | bytes | collections.abc.Mapping) or not isinstance(
            value, collections.abc.Sequence
        ):
            problems.append((name, f"got a {type(value).__name__}, expected a list of {field.kind.__name__}"))
        else:
            for index, item in enumerate(value):
                problems += _value_type_problems(item, field.kind, path(name, index))
    return problems


def _value_type_problems(value: object, kind: type, at: str) -> list[Problem]:
    if not isinstance(value, kind):
        return [(at, _wrong_type(value, kind))]
    return under(at, _field_type_problems(value))


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
