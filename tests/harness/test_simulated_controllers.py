"""The simulated cluster autoscaler's decisions and the external-secrets sync, as pure functions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tools.e2e.cloud.controllers import GroupTemplate, plan_scale_up, pod_requests, unfit_reason
from tools.e2e.cloud.nodes import NodeFleet, group_shape, template_from_tags
from tools.e2e.kubeapi import ApiError, KubeApi

TAG = "k8s.io/cluster-autoscaler/node-template/"
GPU_TAGS = {
    f"{TAG}label/aiplatform.io/node-role": "gpu",
    f"{TAG}label/aiplatform.io/gpu-group": "gpu-inference",
    f"{TAG}taint/nvidia.com/gpu": "true:NoSchedule",
    f"{TAG}resources/nvidia.com/gpu": "1",
}


def gpu_pod(name: str = "llama-0", gpus: str = "1", cpu: str = "2") -> dict:
    return {
        "metadata": {"name": name, "namespace": "ml-serving"},
        "spec": {
            "nodeSelector": {"aiplatform.io/gpu-group": "gpu-inference"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
            ],
            "initContainers": [
                {"name": "fetch", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {
                    "name": "logs",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                },
            ],
            "containers": [
                {
                    "name": "server",
                    "resources": {"requests": {"cpu": cpu, "memory": "12Gi", "nvidia.com/gpu": gpus}},
                }
            ],
        },
    }


def template(
    name: str, tags: dict[str, str], size: int = 0, max_size: int = 3, instance: str = "g5.xlarge"
) -> GroupTemplate:
    return GroupTemplate(name, template_from_tags(instance, tags, "us-east-1a"), size, max_size, {})


def test_pod_requests_add_sidecars_and_take_the_largest_init_step():
    requests = pod_requests(gpu_pod())
    assert requests["cpu"] == Decimal("2.1")  # the server and its log sidecar; the fetch step is smaller
    assert requests["memory"] == 12 * 2**30 + 64 * 2**20
    assert requests["nvidia.com/gpu"] == 1


def test_pod_requests_add_a_sidecar_started_before_an_init_container_to_that_step():
    pod = gpu_pod(cpu="500m")
    pod["spec"]["initContainers"].reverse()  # the log sidecar first, then the fetch step
    requests = pod_requests(pod)
    assert requests["cpu"] == Decimal("1.1")  # the fetch step plus the sidecar outgrows the server
    assert requests["memory"] == 12 * 2**30 + 64 * 2**20
    assert requests["nvidia.com/gpu"] == 1


def test_a_gpu_pod_scales_up_the_group_whose_tags_fit_it():
    groups = [template("system", {}, size=2, instance="t3.large"), template("gpu-inference", GPU_TAGS)]
    additions, served, waiting = plan_scale_up([gpu_pod()], groups)
    assert additions == {"gpu-inference": 1}
    assert served == {"ml-serving/llama-0": "gpu-inference"}
    assert waiting == {}


def test_pods_share_a_new_node_while_it_has_room():
    tags = {**GPU_TAGS, f"{TAG}resources/nvidia.com/gpu": "4"}
    groups = [template("gpu-training", tags, instance="g5.12xlarge")]
    pods = [gpu_pod(f"p{i}", gpus="1", cpu="4") for i in range(5)]
    additions, served, _ = plan_scale_up(pods, groups)
    assert additions == {"gpu-training": 2}  # 4 GPUs per g5.12xlarge
    assert len(served) == 5


def test_a_missing_taint_tag_still_fits_but_a_missing_label_tag_leaves_the_pod_pending():
    no_label = {k: v for k, v in GPU_TAGS.items() if "gpu-group" not in k}
    additions, served, waiting = plan_scale_up([gpu_pod()], [template("gpu-inference", no_label)])
    assert additions == {} and served == {}
    assert waiting == {
        "ml-serving/llama-0": "gpu-inference: node selector aiplatform.io/gpu-group=gpu-inference"
    }


def test_without_the_gpu_resource_tag_the_template_still_knows_the_instance_gpus():
    tags = {k: v for k, v in GPU_TAGS.items() if "resources" not in k}
    assert unfit_reason(gpu_pod(), template_from_tags("g5.xlarge", tags, "us-east-1a")) is None


def test_the_gpu_resource_tag_decides_how_many_gpu_pods_a_new_node_takes():
    pods = [gpu_pod(f"p{i}", cpu="4") for i in range(5)]
    additions, served, waiting = plan_scale_up(
        pods, [template("gpu-training", GPU_TAGS, instance="g5.12xlarge")]
    )
    assert additions == {"gpu-training": 3}  # the tag says 1 GPU a node, and the group stops at 3
    assert len(served) == 3 and len(waiting) == 2


def test_a_group_at_its_maximum_takes_no_more_pods():
    additions, _, waiting = plan_scale_up(
        [gpu_pod()], [template("gpu-inference", GPU_TAGS, size=3, max_size=3)]
    )
    assert additions == {}
    assert waiting == {"ml-serving/llama-0": "gpu-inference: at its maximum size (3)"}


def test_an_untolerated_taint_keeps_a_pod_off_the_group():
    pod = gpu_pod()
    pod["spec"]["tolerations"] = []
    reason = unfit_reason(pod, template_from_tags("g5.xlarge", GPU_TAGS, "us-east-1a"))
    assert reason == "taint nvidia.com/gpu=true:NoSchedule"


def test_a_node_group_shape_carries_its_labels_taints_and_capacity():
    shape = group_shape(
        {
            "nodeGroupName": "gpu-inference",
            "instanceTypes": ["g5.xlarge"],
            "capacityType": "SPOT",
            "labels": {"aiplatform.io/gpu-group": "gpu-inference"},
            "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
        },
        "us-east-1b",
    )
    assert shape.labels["eks.amazonaws.com/nodegroup"] == "gpu-inference"
    assert shape.labels["eks.amazonaws.com/capacityType"] == "SPOT"
    assert shape.taints == ({"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},)
    assert shape.capacity["nvidia.com/gpu"] == "1"
    assert shape.capacity["cpu"] == "4"
    assert shape.allocatable["cpu"] == "3920m"  # 4 cores less 80m kubelet reservation


class _EvictionApi:
    """The Eviction API of a node's pods: a PodDisruptionBudget refuses the first ``refusals`` evictions
    (HTTP 429); an accepted eviction removes the pod. DaemonSet pods are never asked about."""

    path = staticmethod(KubeApi.path)

    def __init__(self, pods: list[dict], refusals: int):
        self.pods, self.refusals, self.posted = pods, refusals, []

    def list(self, kind: str, namespace=None, selector: str = "", fields: str = "") -> list[dict]:
        assert kind == "Pod" and fields.startswith("spec.nodeName=")
        return list(self.pods)

    def request(self, method: str, path: str, body=None):
        assert method == "POST" and path.endswith("/eviction") and body["kind"] == "Eviction"
        self.posted.append(body["metadata"]["name"])
        if self.refusals:
            self.refusals -= 1
            raise ApiError(
                429, '{"message": "Cannot evict pod as it would violate the pod\'s disruption budget."}', path
            )
        self.pods = [p for p in self.pods if p["metadata"]["name"] != body["metadata"]["name"]]


def _pod(name: str, owner: str = "ReplicaSet") -> dict:
    return {"metadata": {"name": name, "namespace": "ml-serving", "ownerReferences": [{"kind": owner}]}}


def test_a_drain_evicts_through_the_eviction_api_and_waits_while_a_budget_refuses(monkeypatch):
    monkeypatch.setattr("tools.e2e.cloud.nodes.time.sleep", lambda _s: None)
    api = _EvictionApi([_pod("llama-1"), _pod("dcgm-exporter-x", owner="DaemonSet")], refusals=2)
    evicted, refused = NodeFleet(api).drain("gpu-node-0", timeout=60)
    assert (evicted, refused) == (["ml-serving/llama-1"], 2)
    assert api.posted == ["llama-1"] * 3  # refused twice, then accepted; the DaemonSet pod left alone


def test_a_drain_a_budget_never_allows_fails_the_update_naming_the_pods(monkeypatch):
    monkeypatch.setattr("tools.e2e.cloud.nodes.time.sleep", lambda _s: None)
    api = _EvictionApi([_pod("llama-1")], refusals=10**9)
    with pytest.raises(TimeoutError, match=r"gpu-node-0: pods still running .* \(ml-serving/llama-1\)"):
        NodeFleet(api).drain("gpu-node-0", timeout=0)
