"""The SDK internals the library leans on, behind ``aiplatform.sdk``: what the library relies on them for."""

from __future__ import annotations

import asyncio
import contextvars
import json

import pulumi
from pulumi.runtime.config import set_all_config

from aiplatform import sdk


def test_wait_returns_what_the_awaitable_resolves_to():
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert sdk.wait(answer()) == 42
    assert sdk.wait(pulumi.Output.from_input({"a": 1}).future()) == {"a": 1}


def test_config_values_are_every_key_the_runtime_holds_and_say_which_are_secret(monkeypatch):
    # The engine passes config in PULUMI_CONFIG; what the runtime was given directly takes precedence.
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"aiplatform:region": "eu-west-1", "aws:region": "x"}))

    def read() -> tuple[dict, list[bool]]:
        set_all_config({"aws:region": "us-east-1", "aiplatform:token": "s3cret"}, ["aiplatform:token"])
        keys = ["aiplatform:token", "aiplatform:region", "aws:region"]
        return sdk.config_values(), [sdk.is_secret_config(k) for k in keys]

    # In a copy of the context, so no other test sees this config.
    values, secret = contextvars.copy_context().run(read)
    assert values == {
        "aiplatform:region": "eu-west-1",
        "aws:region": "us-east-1",
        "aiplatform:token": "s3cret",
    }
    assert secret == [True, False, False]
