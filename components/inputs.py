"""Arguments that may come from another resource: a plain ``str`` or a ``pulumi.Output[str]``.

Components chain: ``ModelSource(bucket=models.bucket)`` takes the bucket's name from a ``ModelBucket``
of the same program, an ``Output`` whose value is not known when the component is constructed. The
rule for every such argument (typed ``pulumi.Input[str]``):

- a plain ``str`` is checked at once, with every other argument, before anything is registered
  (``plain_problems``), exactly as a plain-only argument is;
- an ``Output`` is checked when it resolves (``checked``): the resources built from it take the
  checked ``Output``, so a bad value fails the deployment with the component and the argument named
  (``ArgumentsError``), and no resource is created with it. During a preview an unknown value is not
  checked. Other children of the component that do not read the value may already exist by then:
  only plain values are checked before anything is created.

Names, keys and policy documents built from such a value are built with ``pulumi.Output.all(...)``
(``derived``): from plain values they stay plain, so plain arguments register exactly what they did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pulumi

from .errors import ArgumentsError, Problem

T = TypeVar("T")

# The reason a value is wrong (None: it is fine); it reads the same for a plain value and a resolved
# one. It takes any object: a caller may pass something that is neither a str nor an Output.
Check = Callable[[Any], str | None]


def is_known(value: Any) -> bool:
    """A value the program holds now (not an ``Output``, not an awaitable): it can be checked at once."""
    return not isinstance(value, pulumi.Output) and not hasattr(value, "__await__")


def plain_problems(field_name: str, value: Any, check: Check) -> list[Problem]:
    """``check`` on a plain value, now; nothing for an ``Output`` (``checked`` takes it at apply time)."""
    if not is_known(value):
        return []
    reason = check(value)
    return [(field_name, reason)] if reason else []


def checked(subject: str, field_name: str, value: pulumi.Input[str], check: Check) -> pulumi.Input[str]:
    """``value`` as resources should take it: a plain value unchanged (``plain_problems`` checked it
    already), an ``Output`` that fails with ``ArgumentsError(subject, [(field_name, reason)])`` when it
    resolves to a value ``check`` rejects."""
    if is_known(value):
        return value

    def verify(resolved: str) -> str:
        if reason := check(resolved):
            raise ArgumentsError(subject, [(field_name, reason)])
        return resolved

    return pulumi.Output.from_input(value).apply(verify)


def derived(build: Callable[..., T], *values: Any) -> T | pulumi.Output[T]:
    """``build(*values)`` now when every value is plain (the same object a plain-only argument gave),
    otherwise an ``Output`` of it once every value resolves."""
    if all(is_known(value) for value in values):
        return build(*values)
    return pulumi.Output.all(*values).apply(lambda resolved: build(*resolved))


def field_problems(args: object, checks: Mapping[str, Check], at: str = "") -> list[Problem]:
    """``plain_problems`` of each field of the dataclass ``args`` named in ``checks`` (a field left at
    None is not given: nothing to check); ``at`` prefixes the paths (``specs[1]``)."""
    problems: list[Problem] = []
    for name, check in checks.items():
        value = getattr(args, name)
        if value is not None:
            problems += plain_problems(f"{at}.{name}" if at else name, value, check)
    return problems


D = TypeVar("D")


def checked_fields(subject: str, args: D, checks: Mapping[str, Check], at: str = "") -> D:
    """``args`` as resources should take it: each field named in ``checks`` that holds an ``Output``
    replaced by its ``checked`` form (the same object when every such field is plain)."""
    changes = {
        name: checked(subject, f"{at}.{name}" if at else name, getattr(args, name), check)
        for name, check in checks.items()
        if getattr(args, name) is not None and not is_known(getattr(args, name))
    }
    return dataclasses.replace(args, **changes) if changes else args  # type: ignore[type-var]
