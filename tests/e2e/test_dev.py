"""The dev stack under the real engine: deploy, then tear down."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import judge, stack_under_test
from tools.e2e import scenarios


@pytest.fixture(scope="module")
def dev(binaries, report):
    yield from stack_under_test(binaries, report, "dev")


def test_deploy(dev, report):
    judge(report, scenarios.deploy(dev))


def test_teardown(dev, report):
    judge(report, scenarios.teardown(dev))
