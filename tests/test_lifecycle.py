"""The version calendar and the plan's lifecycle: pure dates, then the real program planned on fixed days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from aiplatform.compute import autoscaler, karpenter
from aiplatform.kubernetes_versions import (
    BY_VERSION,
    CALENDAR,
    DEFAULT_VERSION,
    SUPPORTED_VERSIONS,
    calendar_markdown,
    lifecycle,
    node_group_skew_problem,
    upgrade_problem,
)
from aiplatform.plan import cloud
from aiplatform.plan.cost import estimate, load_pricing
from aiplatform.plan.lifecycle_report import lifecycle_report
from aiplatform.plan.model import Plan
from aiplatform.validation import DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS
from tests.program import plan_config
from tests.stacks import stack_config

DAY = date(2026, 12, 6)


def test_every_row_keeps_aws_rule_of_14_months_standard_and_12_more_extended():
    for row in CALENDAR:
        assert row.standard_months == 14, row.version
        assert (row.end_of_extended.year - row.end_of_standard.year) * 12 + (
            row.end_of_extended.month - row.end_of_standard.month
        ) == 12, row.version
        assert row.sources and row.addons["kube-proxy"].startswith(f"v{row.version}.")


def test_everything_derives_from_the_calendar():
    assert (
        SUPPORTED_KUBERNETES_VERSIONS
        == SUPPORTED_VERSIONS
        == cloud.EKS_VERSIONS
        == ("1.33", "1.34", "1.35", "1.36")
    )
    assert DEFAULT_KUBERNETES_VERSION == DEFAULT_VERSION == "1.36"
    assert karpenter.MIN_VERSION_FOR_KUBERNETES == {
        "1.33": (1, 5),
        "1.34": (1, 6),
        "1.35": (1, 9),
        "1.36": (1, 13),
    }
    for row in CALENDAR:
        assert autoscaler.chart_version_problem(row.autoscaler_chart, row.version) is None
    assert "| 1.34 | 2025-10-02 | 2026-12-02 | 2027-12-02 |" in calendar_markdown()


@pytest.mark.parametrize(
    ("version", "today", "status"),
    [
        ("1.36", DAY, "standard"),
        ("1.34", DAY, "extended"),
        ("1.34", date(2026, 12, 1), "standard-ending"),
        ("1.34", date(2026, 12, 2), "extended"),  # billing starts on the day standard support ends
        ("1.34", date(2026, 12, 2) - timedelta(days=90), "standard-ending"),
        ("1.34", date(2026, 12, 2) - timedelta(days=91), "standard"),
        ("1.34", date(2027, 12, 1), "extended"),
        ("1.34", date(2027, 12, 2), "unsupported"),
        ("1.36", date(2026, 6, 1), "upcoming"),
        ("1.36", date(2026, 6, 2), "standard"),
        ("1.29", DAY, "unsupported"),
    ],
)
def test_lifecycle_status_on_a_day(version, today, status):
    state = lifecycle(version, today)
    assert state.status == status
    if version in BY_VERSION:
        assert state.end_of_standard == BY_VERSION[version].end_of_standard


def _what_if(version: str, stack: str = "dev"):
    """The committed stack moved to ``version`` with the pins the calendar couples to it."""
    config = stack_config(stack)
    row = BY_VERSION[version]
    cluster = config["aiplatform:cluster"]
    cluster["kubernetesVersion"] = version
    cluster["addons"] = {
        **cluster["addons"],
        **{k: row.addons[k] for k in cluster["addons"] if k in row.addons},
    }
    config["aiplatform:charts"]["clusterAutoscaler"] = row.autoscaler_chart
    return plan_config(config, stack)


def _report(run, today: date, tmp_path):
    return lifecycle_report(Plan(stack="what-if", out_dir=tmp_path, run=run, today=today))


def test_a_stack_at_1_34_on_2026_12_06_warns_with_the_end_date_and_the_fee_and_pays_it(tmp_path):
    run = _what_if("1.34")
    registered = [r.inputs["version"] for r in run.registrations if r.type == "aws:eks/cluster:Cluster"]
    assert registered == ["1.34"]
    report = _report(run, DAY, tmp_path)
    assert not report.blocking
    (warning,) = [line for line in report.lines if line.startswith("warning:")]
    assert "left standard support on 2026-12-02" in warning
    assert "$365.00/month per cluster ($0.60 instead of $0.10 per cluster hour x 730 h)" in warning
    items = {i.item: i for i in estimate(run.registrations, load_pricing(), DAY).items}
    assert items["EKS extended support"].idle == 365.0
    assert items["EKS control plane"].idle == 73.0
    # The same stack before standard support ends pays no fee.
    assert "EKS extended support" not in {
        i.item for i in estimate(run.registrations, load_pricing(), date(2026, 8, 1)).items
    }


def test_the_committed_stacks_at_1_36_do_not_warn_today(tmp_path):
    for stack in ("dev", "prod"):
        run = plan_config(stack_config(stack), stack)
        report = _report(run, DAY, tmp_path)
        assert not report.blocking
        assert not [line for line in report.lines if line.startswith(("warning:", "BLOCKED:"))], report.lines
        assert "standard support until 2027-08-02" in report.lines[1]
        assert "EKS extended support" not in {
            i.item for i in estimate(run.registrations, load_pricing(), DAY).items
        }


def test_the_warning_starts_90_days_before_standard_support_ends(tmp_path):
    run = _what_if("1.35")
    end = BY_VERSION["1.35"].end_of_standard
    assert not [
        line for line in _report(run, end - timedelta(days=91), tmp_path).lines if line.startswith("warning:")
    ]
    (warning,) = [
        line for line in _report(run, end - timedelta(days=90), tmp_path).lines if line.startswith("warning:")
    ]
    assert f"leaves standard support on {end} (in 90 days)" in warning and "$365.00/month" in warning


def test_past_extended_support_blocks(tmp_path):
    report = _report(_what_if("1.34"), date(2027, 12, 2), tmp_path)
    assert report.blocking
    assert any(
        line.startswith("BLOCKED:") and "past extended support since 2027-12-02" in line
        for line in report.lines
    )


def test_a_minor_not_yet_on_eks_blocks(tmp_path):
    report = _report(plan_config(stack_config("dev"), "dev"), date(2026, 5, 1), tmp_path)
    assert report.blocking
    assert any("Kubernetes 1.36 is not on EKS before 2026-06-02" in line for line in report.lines)


def test_the_readme_calendar_is_the_generated_one():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert calendar_markdown() in readme


@pytest.mark.parametrize(
    "current, target, refused",
    [
        ("1.35", "1.36", None),
        ("1.36", "1.36", None),
        ("1.9", "1.10", None),  # minors compare as numbers, not strings
        ("1.34", "1.36", "one minor at a time, 1.34 -> 1.36 skips a minor; set 1.35, run up"),
        ("1.33", "1.36", "one minor at a time, 1.33 -> 1.36 skips a minor; set 1.34, run up"),
        ("1.36", "1.35", "cannot downgrade a cluster (1.36 -> 1.35)"),
        ("1.36", "2.0", "one minor at a time"),
    ],
)
def test_eks_upgrades_a_cluster_one_minor_at_a_time_and_never_down(current, target, refused):
    problem = upgrade_problem(current, target)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith("cluster.kubernetesVersion: ")
        assert refused in problem


def test_the_simulated_eks_api_refuses_a_skipped_minor_in_an_update_only():
    eks = "aws:eks/cluster:Cluster"
    assert cloud.SimulatedCloud.update_problems(eks, {"version": "1.35"}, {"version": "1.36"}) == []
    [(path, reason)] = cloud.SimulatedCloud.update_problems(eks, {"version": "1.34"}, {"version": "1.36"})
    assert path == "version" and "cluster.kubernetesVersion" in reason and "set 1.35" in reason
    # A create at 1.36 is no skip; node groups have no such rule (EKS checks their skew, not modelled).
    assert not [p for p in cloud.SimulatedCloud.problems(eks, {"version": "1.36"}) if p[0] == "version"]
    node_group = "aws:eks/nodeGroup:NodeGroup"
    assert cloud.SimulatedCloud.update_problems(node_group, {"version": "1.34"}, {"version": "1.36"}) == []


def test_eks_upgrades_a_cluster_only_while_its_node_groups_run_its_minor():
    assert node_group_skew_problem("1.35", {"system": "1.35", "gpu": "1.35"}) is None
    assert node_group_skew_problem("1.35", {}) is None
    problem = node_group_skew_problem("1.36", {"system": "1.36", "gpu": "1.35"})
    assert problem == (
        "cluster.kubernetesVersion: EKS upgrades a cluster only when its managed node groups run its minor "
        "1.36, and gpu at 1.35; run up at 1.36 until they do, then move on"
    )
    eks = "aws:eks/cluster:Cluster"
    behind = {"gpu": "1.35"}
    [(_, reason)] = cloud.SimulatedCloud.update_problems(
        eks, {"version": "1.36"}, {"version": "1.37"}, behind
    )
    assert reason.startswith("cluster.kubernetesVersion: EKS upgrades a cluster only when")
    # Not a version change: the groups' versions do not matter.
    assert cloud.SimulatedCloud.update_problems(eks, {"version": "1.36"}, {"version": "1.36"}, behind) == []
