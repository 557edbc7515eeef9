"""The simulated DRA side: the driver's ResourceSlices for kwok GPU nodes, and the simulated autoscaler's
decisions for pods with claims (as cluster-autoscaler 1.36.1 decides them on AWS)."""

from __future__ import annotations

from tools.e2e.cloud import dra
from tools.e2e.cloud.controllers import GroupTemplate, plan_scale_up
from tools.e2e.cloud.nodes import template_from_tags

TAG = "k8s.io/cluster-autoscaler/node-template/"
# A DRA group's tags: its labels and taint, no nvidia.com/gpu resource (no device plugin there).
DRA_TAGS = {
    f"{TAG}label/aiplatform.io/node-group": "gpu-inference",
    f"{TAG}taint/nvidia.com/gpu": "true:NoSchedule",
}
A10G = [dra.Device("gpu-0", "NVIDIA A10G", 23028)]
SELECTORS = (
    "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA A10G'",
    "device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('22Gi')) >= 0",
)


def claim_pod(name: str = "llama-0") -> dict:
    return {
        "metadata": {"name": name, "namespace": "ml-serving"},
        "spec": {
            "nodeSelector": {"aiplatform.io/node-group": "gpu-inference"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
            ],
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "llama-gpu"}],
            "containers": [{"name": "server", "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}],
        },
    }


def group(size: int, devices: list[dra.Device] | None, max_size: int = 4) -> GroupTemplate:
    shape = template_from_tags("g5.xlarge", DRA_TAGS, "us-east-1a")
    return GroupTemplate("gpu-inference", dra.device_shape(shape, devices), size, max_size, {}, devices)


def test_the_driver_publishes_the_node_s_gpus_from_the_instance_table():
    node = {
        "metadata": {
            "name": "gpu-training-1",
            "uid": "u-1",
            "labels": {"node.kubernetes.io/instance-type": "g5.12xlarge"},
        }
    }
    manifest = dra.slice_manifest(node)
    spec = manifest["spec"]
    assert (spec["driver"], spec["nodeName"], spec["pool"]["name"]) == (
        "gpu.nvidia.com",
        "gpu-training-1",
        "gpu-training-1",
    )
    assert [d["name"] for d in spec["devices"]] == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]
    device = spec["devices"][0]
    assert device["attributes"]["productName"] == {"string": "NVIDIA A10G"}
    assert device["attributes"]["type"] == {"string": "gpu"}
    assert device["capacity"] == {"memory": {"value": "23028Mi"}}
    assert manifest["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert dra.node_devices([manifest])["gpu-training-1"][0] == dra.Device("gpu-0", "NVIDIA A10G", 23028)
    assert (
        dra.slice_manifest(
            {
                "metadata": {
                    "name": "cpu",
                    "uid": "u",
                    "labels": {"node.kubernetes.io/instance-type": "t3.large"},
                }
            }
        )
        is None
    )


def test_a_group_at_zero_gets_no_node_for_a_claim():
    # Its AWS template, from its tags, holds no ResourceSlice: the autoscaler never starts its first node.
    request = [dra.DeviceRequest("gpu.nvidia.com", 1, SELECTORS)]
    additions, served, waiting = plan_scale_up(
        [claim_pod()], [group(0, None)], {"ml-serving/llama-0": request}
    )
    assert (additions, served) == ({}, {})
    assert "no DRA devices in its node template" in waiting["ml-serving/llama-0"]


def test_a_running_node_s_devices_make_the_template_of_new_nodes():
    request = [dra.DeviceRequest("gpu.nvidia.com", 1, SELECTORS)]
    pods = [claim_pod("llama-0"), claim_pod("llama-1")]
    claims = {f"ml-serving/{p['metadata']['name']}": request for p in pods}
    additions, served, waiting = plan_scale_up(pods, [group(1, A10G)], claims)
    # One A10G per node: two pods, two new nodes (CPU and memory alone would pack them on one).
    assert additions == {"gpu-inference": 2}
    assert waiting == {}
    # A selector no device matches, and a pod whose shared claim is allocated already, get none.
    h100 = [
        dra.DeviceRequest(
            "gpu.nvidia.com",
            1,
            ("device.attributes['gpu.nvidia.com'].productName == 'NVIDIA H100 80GB HBM3'",),
        )
    ]
    additions, _, waiting = plan_scale_up([claim_pod()], [group(1, A10G)], {"ml-serving/llama-0": h100})
    assert additions == {} and "do not satisfy" in waiting["ml-serving/llama-0"]
    additions, _, waiting = plan_scale_up([claim_pod()], [group(1, A10G)], {"ml-serving/llama-0": []})
    assert additions == {} and "allocated on a node already" in waiting["ml-serving/llama-0"]


def test_only_the_selectors_the_platform_writes_are_evaluated():
    device = A10G[0]
    assert dra.matches(dra.DeviceRequest("gpu.nvidia.com", 1, SELECTORS), device) is True
    memory = "device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('24Gi')) >= 0"
    assert dra.matches(dra.DeviceRequest("gpu.nvidia.com", 1, (memory,)), device) is False
    assert (
        dra.matches(
            dra.DeviceRequest(
                "gpu.nvidia.com", 1, ("device.attributes['gpu.nvidia.com'].brand == 'Nvidia'",)
            ),
            device,
        )
        is None
    )


def test_pods_of_one_shared_claim_get_one_node_planned():
    def shared_pod(name: str) -> dict:
        pod = claim_pod(name)
        pod["spec"]["resourceClaims"] = [{"name": "gpu", "resourceClaimName": "light-servers"}]
        return pod

    planned, waiting = dra.one_pod_per_shared_claim(
        [shared_pod("embedder"), shared_pod("reranker"), claim_pod()]
    )
    assert [p["metadata"]["name"] for p in planned] == ["embedder", "llama-0"]
    assert waiting == {
        "ml-serving/reranker": "shares ml-serving/light-servers with a pod a node is planned for"
    }
