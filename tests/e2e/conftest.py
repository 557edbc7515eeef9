"""The end-to-end tests: the real Pulumi engine and Kubernetes provider drive the program against a
Kubernetes control plane on 127.0.0.1, with AWS simulated (tools/e2e). ``make e2e`` runs them; ``make
test`` leaves them out (marker ``e2e``).

Each stack's module deploys once and runs its scenarios in order against the deployment; the stack is
torn down at the end of the module, also when a scenario failed. Every outcome goes to
build/e2e/report.json.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools.e2e.crds import CrdSet, ensure_crds
from tools.e2e.harness import OUT, E2eRun
from tools.e2e.report import Report
from tools.e2e.scenarios import ScenarioResult, StackUnderTest, teardown
from tools.e2e.stacks import committed_stack_minors
from tools.e2e.toolchain import Binary, ensure_all
from tools.e2e.upgrade import previous_minor

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def report() -> Iterator[Report]:
    report = Report(OUT / "report.json")
    yield report
    report.write()


@pytest.fixture(scope="session")
def binaries(report: Report) -> dict[str, Binary]:
    # The stacks' minors and the one before, which the upgrade scenario starts from: a cold cache builds
    # them side by side with the rest.
    minors = committed_stack_minors() | {previous_minor(m) for m in committed_stack_minors()}
    with report.timing("toolchain_seconds"):
        found = ensure_all(log=lambda line: print(line, file=sys.stderr, flush=True), minors=minors)
    report.toolchain(found)
    return found


@pytest.fixture(scope="session")
def crds(report: Report, binaries: dict[str, Binary]) -> CrdSet:
    """The real CRDs, generated before any cluster starts (the runs then read them from the cache)."""
    with report.timing("crds_seconds"):
        found = ensure_crds(log=lambda line: print(line, file=sys.stderr, flush=True))
    report.set("crds", found.provenance())
    return found


def stack_under_test(
    binaries: dict[str, Binary],
    report: Report,
    stack: str,
    config_file: Path | None = None,
    overrides: dict[str, str] | None = None,
) -> Iterator[StackUnderTest]:
    with E2eRun(binaries, stack=stack, config_file=config_file, overrides=overrides) as run:
        report.add_run(run)
        under_test = StackUnderTest(run)
        yield under_test
        if under_test.deployed:  # a test stopped before the teardown test: leave nothing behind
            report.add(teardown(under_test))


def run_scenario(
    stack: StackUnderTest, report: Report, scenario: Callable[[StackUnderTest], ScenarioResult]
) -> None:
    """Run one scenario on the deployed stack, record it, fail the test with its failed checks."""
    deploys = scenario.__name__ in ("deploy", "teardown") or getattr(scenario, "deploys", False)
    if not deploys and not stack.deployed:
        pytest.skip("the stack is not deployed (its deploy failed)")
    result = scenario(stack)
    report.add(result)
    print(result.verdict())
    assert result.passed, result.verdict()
