"""prod on Karpenter (examples/stacks/Pulumi.prod-karpenter.yaml) under the real engine, with the real
Karpenter provisioning its GPU pools: the stacks' scenarios, then consolidation and a pool at its GPU
limit, then the teardown."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario, stack_under_test
from tools.e2e.operators.scenarios import scenarios_for
from tools.e2e.stacks import PROJECT_ROOT, stack_config

STACK_FILE = PROJECT_ROOT / "examples" / "stacks" / "Pulumi.prod-karpenter.yaml"


@pytest.fixture(scope="module")
def stack(binaries, report):
    yield from stack_under_test(binaries, report, "prod-karpenter", config_file=STACK_FILE)


@pytest.mark.parametrize("scenario", scenarios_for(stack_config(STACK_FILE)), ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
