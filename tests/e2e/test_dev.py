"""The dev stack under the real engine, its scenarios in order (deploy first, teardown last)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario, stack_under_test
from tools.e2e.scenarios import STACK_SCENARIOS


@pytest.fixture(scope="module")
def stack(binaries, crds, report):
    yield from stack_under_test(binaries, report, "dev")


@pytest.mark.parametrize("scenario", STACK_SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
