"""Running the whole program under mocks, once per stack and test module."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiplatform.plan.runner import ProgramRun, run_program
from tests.stacks import PROGRAM, stack_config


@cache
def planned(stack: str) -> ProgramRun:
    """The committed stack, planned once per test session (the result is read-only data)."""
    return run_program(stack_config(stack), stack, program=PROGRAM)


def plan_config(config: dict[str, Any], stack: str = "what-if", **kwargs: Any) -> ProgramRun:
    return run_program(config, stack, program=PROGRAM, **kwargs)
