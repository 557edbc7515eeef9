"""The critical path on small dependency graphs with known answers."""

from __future__ import annotations

import json

import pytest

from aiplatform.plan.critical_path import (
    DEFAULT_MINUTES,
    component_waits,
    critical_path,
    critical_path_report,
    minutes,
    waits_for,
)
from aiplatform.plan.mock_engine import Registration


def reg(name, typ, deps=(), parent="", custom=True, provider="", **inputs) -> Registration:
    return Registration(
        urn=f"urn:{name}",
        type=typ,
        name=name,
        parent=parent,
        custom=custom,
        provider=provider,
        dependencies=[f"urn:{d}" for d in deps],
        inputs=inputs,
        protect=False,
        retain_on_delete=False,
        ignore_changes=[],
        delete_before_replace=False,
    )


NG = "aws:eks/nodeGroup:NodeGroup"


def graph():
    return [
        reg("vpc", "aws:ec2/vpc:Vpc"),  # 0.2
        reg("cluster", "aws:eks/cluster:Cluster", ["vpc"]),  # 10
        reg("key", "aws:kms/key:Key"),  # 0.1, off the path
        reg("nodes", "aiplatform:nodegroups:NodeGroups", custom=False),
        reg("addon", "aws:eks/addon:Addon", ["cluster"]),  # 1
        reg("x-system", NG, ["cluster"], parent="urn:nodes"),  # 4
        reg("x-gpu", NG, ["cluster", "addon"], parent="urn:nodes"),  # 4, after the add-on
        reg("k8s", "pulumi:providers:kubernetes", ["cluster"]),  # 0, waits for the cluster
        # a chart that waits for the whole NodeGroups component (both groups) and uses the provider
        reg("chart", "kubernetes:helm.sh/v3:Release", ["x-system", "x-gpu"], provider="urn:k8s::id"),
        # a child of the component orders nothing: it does not wait for its siblings
        reg("other", "aiplatform:test:Other", custom=False),
        reg("slow", "aws:efs/mountTarget:MountTarget", ["cluster"], parent="urn:other"),
        reg("lonely", "aws:autoscaling/tag:Tag", [], parent="urn:other"),
    ]


def test_minutes_table():
    regs = {r.name: r for r in graph()}
    assert minutes(regs["cluster"]) == 10
    assert minutes(regs["nodes"]) == 0  # component
    assert minutes(regs["k8s"]) == 0  # provider
    assert minutes(reg("odd", "aws:foo/bar:Baz")) == DEFAULT_MINUTES


def test_longest_chain():
    path = critical_path(graph())
    # vpc 0.2 + cluster 10 + addon 1 + gpu group 4 + chart 2
    assert path.total_minutes == pytest.approx(17.2)
    assert [s.name for s in path.chain] == ["vpc", "cluster", "addon", "x-gpu", "chart"]
    assert path.finish["urn:lonely"] == pytest.approx(0.05)  # parents and siblings order nothing


def test_provider_is_waited_for():
    assert "urn:k8s" in waits_for(graph())["urn:chart"]


def test_component_wait_narrowed_to_the_system_group():
    (wait,) = component_waits(graph())
    assert wait.component.startswith("nodes") and wait.waiters == ["chart"] and wait.keep == "x-system"
    assert wait.before == pytest.approx(17.2)
    # chart after the system group: 0.2 + 10 + 4 + 2 = 16.2; the GPU group finishes at 15.2
    assert wait.after == pytest.approx(16.2)


def test_cycle_is_an_error():
    with pytest.raises(ValueError, match="cycle"):
        critical_path([reg("a", "aws:kms/key:Key", ["b"]), reg("b", "aws:kms/key:Key", ["a"])])


def test_report_file():
    class FakePlan:
        registrations = graph()

    report = critical_path_report(FakePlan())
    data = json.loads(report.files["critical_path.json"])
    assert data["estimate"] is True and data["total_minutes"] == pytest.approx(17.2)
    assert data["component_waits"][0]["after_minutes"] == pytest.approx(16.2)
    assert "chart" in report.render()
