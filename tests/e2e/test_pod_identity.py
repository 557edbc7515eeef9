"""The dev stack on EKS Pod Identity (``cluster.identityMode: pod-identity``) under the real engine: the
real external-secrets operator gets its role from the (simulated) Pod Identity agent, through the AWS
SDK's container credentials, and syncs and re-syncs a rotated secret; then the teardown."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario, stack_under_test
from tools.e2e.scenarios import deploy, secret_rotation, teardown
from tools.e2e.stacks import PROJECT_ROOT

OVERRIDES = {"aiplatform:cluster.identityMode": "pod-identity"}


@pytest.fixture(scope="module")
def stack(binaries, report):
    yield from stack_under_test(
        binaries,
        report,
        "dev-pod-identity",
        config_file=PROJECT_ROOT / "Pulumi.dev.yaml",
        overrides=OVERRIDES,
    )


@pytest.mark.parametrize("scenario", (deploy, secret_rotation, teardown), ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
