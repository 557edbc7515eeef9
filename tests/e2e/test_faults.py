"""Faults under the real engine (tools/e2e/faults.py): the dev stack, first deployed by an ``up`` whose
engine is killed half-way, then the other faults in order on that one deployment; the teardown last."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario
from tools.e2e.faults import FAULT_SCENARIOS
from tools.e2e.harness import E2eRun
from tools.e2e.scenarios import StackUnderTest, teardown
from tools.e2e.stacks import PROJECT_ROOT


@pytest.fixture(scope="module")
def stack(binaries, report):
    with (
        report.timing("faults_seconds"),
        E2eRun(binaries, stack="faults", config_file=PROJECT_ROOT / "Pulumi.dev.yaml") as run,
    ):
        report.add_run(run)
        under_test = StackUnderTest(run)
        yield under_test
        if under_test.deployed:
            report.add(teardown(under_test))


@pytest.mark.parametrize("scenario", (*FAULT_SCENARIOS, teardown), ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
