"""Test set-up: every test runs against a fresh mock engine, never the cloud."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pulumi
import pytest
from hypothesis import settings
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from aiplatform.plan.mock_engine import PlatformMocks, RecordingMonitor

# CI explores the same examples on every run, so a red build is reproducible; locally each run
# explores new ones. HYPOTHESIS_PROFILE=ci reproduces CI's run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))

T = TypeVar("T")


@pytest.fixture(autouse=True)
def monitor() -> RecordingMonitor:
    """A fresh recording monitor per test, so no test sees another's resources."""
    recording = RecordingMonitor(PlatformMocks())
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        recording.mocks, project="aiplatform", stack="test", preview=False, monitor=recording
    )
    return recording


@pytest.fixture
def build(monitor: RecordingMonitor) -> Callable[[Callable[[], T]], T]:
    """Run ``factory`` as a Pulumi program and wait until every registration has reached the engine.

    Afterwards ``monitor.registrations`` holds everything the factory registered, so tests assert on
    plain values with no un-returned ``apply`` that could silently skip a check.
    """

    def run(factory: Callable[[], T]) -> T:
        result: dict[str, Any] = {}

        def program() -> None:
            result["value"] = factory()

        _sync_await(run_pulumi_func(program))
        return result["value"]

    return run


@pytest.fixture
def build_fails(build: Callable[[Callable[[], Any]], Any]) -> Callable[[Callable[[], Any]], str]:
    """Run ``factory`` as a program that must fail while the engine resolves it (an ``apply`` raising);
    the failure's text, which holds every error the program raised.

    The failed program's remaining registrations are drained, so the next test starts clean (the SDK
    keeps a failed RPC's exception and re-raises it in whichever program runs next).
    """

    def run(factory: Callable[[], Any]) -> str:
        with pytest.raises(Exception) as failure:
            build(factory)
        manager = pulumi_settings._get_rpc_manager()
        for _ in range(100):
            manager.unhandled_exception = None
            try:
                _sync_await(wait_for_rpcs())
                break
            except Exception:  # noqa: BLE001 - a failed registration of the failed program
                continue
        manager.clear()
        return str(failure.value)

    return run


def resolve(output: Any) -> Any:
    """The value of an Output (or plain value) after the engine has answered."""
    return _sync_await(pulumi.Output.from_input(output).future())


def is_secret(output: Any) -> bool:
    return _sync_await(pulumi.Output.from_input(output).is_secret())
