"""dev on ingress-nginx (examples/stacks/Pulumi.dev-nginx.yaml) under the real engine: it deploys with its
Ingresses claimed through the chart's ``nginx`` IngressClass, a second up changes nothing, and the
teardown leaves nothing behind, the ``ingress-nginx`` namespace included."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import run_scenario, stack_under_test
from tests.stacks import stack_path
from tools.e2e.scenarios import deploy, no_perpetual_diff, teardown

SCENARIOS = (deploy, no_perpetual_diff, teardown)


@pytest.fixture(scope="module")
def stack(binaries, crds, report):
    yield from stack_under_test(binaries, report, "dev-nginx", stack_path("dev-nginx"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_scenario(stack, report, scenario):
    run_scenario(stack, report, scenario)
