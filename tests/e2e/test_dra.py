"""The dev-dra example stack under the real engine: GPUs claimed through DRA and allocated by the real
kube-scheduler (deploy, the claims scenario, teardown with no claim left)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario, stack_under_test
from tools.e2e.dra_scenarios import gpu_claims, no_claims_left
from tools.e2e.harness import PROJECT_ROOT
from tools.e2e.scenarios import ScenarioResult, StackUnderTest, deploy, teardown

STACK_FILE = PROJECT_ROOT / "examples" / "stacks" / "Pulumi.dev-dra.yaml"


def teardown_without_claims(s: StackUnderTest) -> ScenarioResult:
    result = teardown(s)
    result.checks.append(no_claims_left(s))
    result.passed = result.passed and result.checks[-1].passed
    return result


teardown_without_claims.__name__ = "teardown"


@pytest.fixture(scope="module")
def stack(binaries, report):
    yield from stack_under_test(binaries, report, "dev-dra", STACK_FILE)


@pytest.mark.parametrize(
    "scenario", (deploy, gpu_claims, teardown_without_claims), ids=("deploy", "gpu_claims", "teardown")
)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
