"""Monitoring of the whole program, for both committed stacks: what runs where, what it costs, what alerts."""

from __future__ import annotations

import pytest
import yaml

from aiplatform.helm import CHART_RESOURCES, effective_resources
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


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_runs_its_containers_with_exactly_the_resources_the_program_states(stack):
    installed = releases(stack)
    assert set(installed) == {
        "external-secrets",
        "aws-load-balancer-controller",
        "nvidia-device-plugin",
        "dcgm-exporter",
        "cluster-autoscaler",
        "kube-prometheus-stack",
        "prometheus-adapter",
    }
    for chart, release in installed.items():
        values = release.inputs["values"]
        files = [yaml.safe_load(f["text"]) for f in release.inputs.get("valueYamlFiles", [])]
        effective = effective_resources(chart, values, files)
        assert set(effective) == {".".join(p) for p in CHART_RESOURCES[chart]}
        for path, resources in effective.items():
            stated = values
            for key in path.split("."):
                stated = stated[key]
            assert resources == stated, (chart, path)
            # Requests to schedule by and a memory ceiling, on every container.
            assert set(resources["requests"]) == {"cpu", "memory"}, (chart, path)
            assert "memory" in resources["limits"], (chart, path)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_metrics_follow_the_gpu_groups_dev_included(stack):
    dcgm = releases(stack)["dcgm-exporter"]
    assert dcgm.inputs["version"] == "4.8.3"
    # Scraped by the Prometheus of the stack, on the nodes the device plugin runs on.
    assert dcgm.inputs["values"]["serviceMonitor"]["enabled"] is True
    plugin = releases(stack)["nvidia-device-plugin"]
    assert dcgm.inputs["values"]["tolerations"] == plugin.inputs["values"]["tolerations"]
    assert releases(stack)["kube-prometheus-stack"].urn in dcgm.dependencies
