"""An upgrade N-1 -> N under the real engine: the dev stack deployed at the minor before its own
(with that minor's pins from the version calendar) on a control plane of that minor, then moved to its
committed minor and pins with ``up``; the simulated EKS API restarts the control plane at the new minor
on the same etcd data and rolls the node groups' nodes (tools/e2e/upgrade.py)."""

from __future__ import annotations

import sys

import pytest

from tests.e2e.conftest import run_scenario
from tools.e2e.harness import OUT, E2eRun
from tools.e2e.scenarios import StackUnderTest, deploy, teardown
from tools.e2e.stacks import PROJECT_ROOT, kubernetes_minor, stack_config
from tools.e2e.toolchain import ensure_control_plane
from tools.e2e.upgrade import kubernetes_upgrade, previous_minor, write_stack_at

COMMITTED = PROJECT_ROOT / "Pulumi.dev.yaml"
TARGET = kubernetes_minor(stack_config(COMMITTED))
START = previous_minor(TARGET)


@pytest.fixture(scope="module")
def stack(binaries, report):
    with report.timing(f"toolchain_{START}_seconds"):
        older = ensure_control_plane(START, log=lambda line: print(line, file=sys.stderr, flush=True))
    config_file = write_stack_at(COMMITTED, START, OUT / "stacks" / f"Pulumi.upgrade-{START}.yaml")
    with E2eRun({**binaries, **older}, stack="upgrade", config_file=config_file) as run:
        report.add_run(run)
        under_test = StackUnderTest(run)
        yield under_test
        if under_test.deployed:
            report.add(teardown(under_test))


def upgrade(s: StackUnderTest):
    return kubernetes_upgrade(s, COMMITTED, TARGET)


@pytest.mark.parametrize("scenario", (deploy, upgrade, teardown), ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
