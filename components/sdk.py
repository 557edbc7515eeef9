"""The Pulumi SDK internals the library leans on at run time, in one place.

The public SDK offers neither of these, and the library needs both:

* ``wait``: a value as plain data while the program runs. ``PlatformOutputs.from_stack`` builds node
  selectors, routes and IAM policies from a StackReference's outputs, which must be known then, not
  later as Outputs. It is the SDK's own synchronous wait (``pulumi.runtime.sync_await._sync_await``),
  the one its invokes use.
* ``config_values`` and ``is_secret_config``: every config key the runtime was given, and which are
  secret. ``pulumi.Config`` reads one named key at a time, but the loader must see every key of its
  namespace, to name the ones a stack file sets that the settings do not know. They read
  ``pulumi.runtime.config``: its ``CONFIG`` context variable, ``get_config_env`` (``PULUMI_CONFIG``,
  where the engine passes config) and ``is_config_secret``.

Checked against pulumi 3.150.0 (the oldest ``pyproject.toml`` allows) and 3.272.0 (the pin of
``requirements.txt``): these names and their behaviour are the same in both. A new SDK that moves
them breaks only this module.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from pulumi.runtime import config as _runtime_config
from pulumi.runtime.sync_await import _sync_await

T = TypeVar("T")


def wait(awaitable: Awaitable[T]) -> T:
    """The result of ``awaitable``, waited for on the program's own event loop."""
    return _sync_await(awaitable)


def config_values() -> dict[str, Any]:
    """Every ``namespace:key`` the runtime was given, as it holds them (objects as JSON text)."""
    return {**_runtime_config.get_config_env(), **_runtime_config.CONFIG.get()}


def is_secret_config(key: str) -> bool:
    """Whether the full config key ``namespace:key`` holds a secret value."""
    return _runtime_config.is_config_secret(key)
