"""Monitoring of the whole program, for both committed stacks: what runs where, what it costs, what alerts."""

from __future__ import annotations

import pytest

from aiplatform.scheduling import Taint, Toleration, is_tolerated
from tests.program import planned
from tests.stacks import STACKS

RELEASE = "kubernetes:helm.sh/v3:Release"
EKS_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    "NO_EXECUTE": "NoExecute",
}


def releases(stack):
    return {r.inputs["chart"]: r for r in planned(stack).registrations if r.type == RELEASE}


def node_group_taints(stack):
    """The taints each registered EKS node group puts on its nodes, keyed by the group's resource name."""
    return {
        r.name: [Taint(t["key"], t["value"], EKS_EFFECTS[t["effect"]]) for t in r.inputs.get("taints", [])]
        for r in planned(stack).registrations
        if r.type == "aws:eks/nodeGroup:NodeGroup"
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_node_exporter_runs_on_every_node_group(stack):
    exporter = releases(stack)["kube-prometheus-stack"].inputs["values"]["prometheus-node-exporter"]
    tolerations = [Toleration(**t) for t in exporter["tolerations"]]
    groups = node_group_taints(stack)
    assert len(groups) >= 3
    for group, taints in groups.items():
        assert [t for t in taints if not is_tolerated(t, tolerations)] == [], group


def test_prod_node_exporter_tolerates_the_spot_taint_and_the_gpu_taint_exactly():
    exporter = releases("prod")["kube-prometheus-stack"].inputs["values"]["prometheus-node-exporter"]
    assert exporter["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "aiplatform.io/spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_no_scrape_job_targets_what_the_eks_control_plane_never_exposes(stack):
    values = releases(stack)["kube-prometheus-stack"].inputs["values"]
    assert {k: values[k] for k in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")} == {
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
    }
