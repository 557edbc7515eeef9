"""The AWS inputs of every stack, checked by moto (``make test-aws``; ``make test`` leaves them out,
marker ``aws``). One moto server on 127.0.0.1 serves the whole run, each stack from a clean account; it
is stopped at the end, also when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.moto_replay import StackReplay, moto_server

HERE = Path(__file__).parent
OUT = HERE.parents[1] / "build" / "moto"
REPLAYS: list[StackReplay] = []  # what the run replayed, for the summary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.aws)


@pytest.fixture(scope="session")
def moto() -> Iterator[str]:
    OUT.mkdir(parents=True, exist_ok=True)
    with moto_server(log=OUT / "moto-server.log") as endpoint:
        yield endpoint


def pytest_terminal_summary(terminalreporter) -> None:
    """Each stack's verdict, with the types moto does not implement (not checked)."""
    if REPLAYS:
        terminalreporter.section("AWS inputs checked by moto")
        for replay in REPLAYS:
            terminalreporter.write_line(replay.summary())
