"""The scenarios' judgement of an engine operation, on the Automation API's own result types."""

from __future__ import annotations

from datetime import datetime

from pulumi import automation as auto

from tools.e2e.scenarios import engine_summary


def _update(result: str, changes: dict[str, int] | None) -> auto.UpResult:
    summary = auto.UpdateSummary(
        kind="update",
        start_time=datetime(2026, 12, 4),
        message="",
        environment={},
        config={},
        result=result,
        resource_changes=changes,
    )
    return auto.UpResult("", "", summary, {})


def test_a_preview_passes_when_it_plans_only_that_operation():
    assert engine_summary("p", auto.PreviewResult("", "", {auto.OpType.CREATE: 187}), "create").passed
    assert engine_summary("p", auto.PreviewResult("", "", {"create": 187}), "create").passed
    assert not engine_summary("p", auto.PreviewResult("", "", {"create": 3, "update": 1}), "create").passed
    assert not engine_summary("p", auto.PreviewResult("", "", {}), "create").passed


def test_an_update_passes_when_it_succeeded_with_exactly_the_expected_changes():
    check = engine_summary("up", _update("succeeded", {"create": 187}), "create", 187)
    assert check.passed
    assert check.summary == "succeeded, changes {'create': 187}"
    assert check.details == {"changes": {"create": 187}, "expected": {"create": 187}}
    assert not engine_summary("up", _update("succeeded", {"create": 186}), "create", 187).passed
    assert not engine_summary("up", _update("failed", {"create": 187}), "create", 187).passed
    assert not engine_summary("up", _update("succeeded", None), "create", 0).passed


def test_a_destroy_passes_when_it_only_deleted():
    assert engine_summary("destroy", _update("succeeded", {"delete": 187}), "delete").passed
    assert not engine_summary("destroy", _update("succeeded", {"delete": 180, "same": 7}), "delete").passed
    assert not engine_summary("destroy", _update("in-progress", {"delete": 187}), "delete").passed
