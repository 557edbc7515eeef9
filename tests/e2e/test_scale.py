"""How the engine's cost grows: 10, 50 and 100 inference services against a floor of bare ConfigMaps,
each size in its own process and cluster. The figures go to the report; a size that fails is a failure.
Long (minutes per size), so outside ``make e2e`` and CI: ``make e2e-scale``."""

from __future__ import annotations

import pytest

from tools.e2e.scale import SIZES, run_size, table

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def figures(report):
    results: list[dict] = []
    yield results
    report.set("scale", results)
    print(table(results))


@pytest.mark.parametrize("size", SIZES)
def test_size(figures, size, binaries):
    result = run_size(size, timeout=1800)
    figures.append(result)
    assert "error" not in result, result
