"""GPUs by DRA: the allocation mode's default and support, the selectors, the claims, the config rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from aiplatform.compute.instance_types import INSTANCE_TYPES
from aiplatform.compute.karpenter import controller_values, dra_version_problem
from aiplatform.compute.node_groups import NodeGroupSpec, node_labels, node_template_tags
from aiplatform.compute.provisioner import provisioner_named
from aiplatform.config import ConfigError, parse_settings
from aiplatform.dra import GpuSelector, claim_spec, quota_key, sharing_parameters
from aiplatform.fit import gpu_selector_reason, selected_gpu_count_reason
from aiplatform.scheduling import NodeFit
from tests.stacks import sections

DRA_STACK = "dev-dra"


def problems(config: dict[str, Any]) -> list[str]:
    try:
        parse_settings(config)
    except ConfigError as error:
        return error.problems
    return []


def dev_without_mode() -> dict[str, Any]:
    """dev as a new stack file would write it: no compute.gpuAllocation."""
    config = copy.deepcopy(sections("dev"))
    del config["compute"]
    return config


# -- the mode: AWS's recommendation per provisioner and minor ---------------------------------------


@pytest.mark.parametrize(
    ("provisioner", "minor", "expected"),
    [
        ("node-groups", "1.33", "device-plugin"),
        ("node-groups", "1.34", "dra"),
        ("node-groups", "1.36", "dra"),
        ("auto-mode", "1.35", "device-plugin"),
        ("auto-mode", "1.36", "dra"),
        # Karpenter's DRA support is alpha behind a setting: never the default.
        ("karpenter", "1.36", "device-plugin"),
    ],
)
def test_the_default_follows_aws_for_the_provisioner_and_minor(provisioner, minor, expected):
    assert provisioner_named(provisioner).gpu_allocation(None, minor) == expected
    assert provisioner_named(provisioner).gpu_allocation("device-plugin", minor) == "device-plugin"


def test_the_committed_stacks_keep_the_device_plugin_and_the_example_claims():
    assert parse_settings(sections("dev")).gpu_allocation == "device-plugin"
    assert parse_settings(sections("prod")).gpu_allocation == "device-plugin"
    assert parse_settings(sections("prod-karpenter")).gpu_allocation == "device-plugin"
    assert parse_settings(sections("dev-auto-mode")).gpu_allocation == "device-plugin"
    assert parse_settings(sections(DRA_STACK)).gpu_allocation == "dra"


def test_a_new_dev_stack_gets_dra_and_is_told_its_groups_cannot_scale_from_zero():
    # dev's GPU groups scale from zero: with the default (dra on 1.36) the autoscaler could never start
    # their first node for a claim.
    assert problems(dev_without_mode()) == [
        f"aiplatform:nodeGroups.gpu[{i}].scaling.minSize: 0 with gpuAllocation dra: the cluster autoscaler "
        "never starts a group's first node for a GPU claim (its AWS node templates hold no DRA devices): set "
        "minSize to 1 or more, or gpuAllocation: device-plugin to scale from zero"
        for i in (0, 1)
    ]


def test_dra_is_refused_below_1_34():
    config = copy.deepcopy(sections(DRA_STACK))
    config["cluster"]["kubernetesVersion"] = "1.33"
    config["cluster"]["addons"]["kube-proxy"] = "v1.33.10-eksbuild.13"
    config["cluster"]["addons"]["coredns"] = "v1.12.4-eksbuild.18"
    config["charts"]["clusterAutoscaler"] = "9.51.0"
    found = problems(config)
    assert found[0] == (
        "aiplatform:compute.gpuAllocation: dra needs Kubernetes 1.34 or later with node-groups (where AWS "
        "supports the NVIDIA DRA driver); this cluster runs 1.33: use device-plugin, or upgrade "
        "cluster.kubernetesVersion first"
    )


def test_dra_on_auto_mode_needs_1_36_and_on_karpenter_its_1_15():
    auto = copy.deepcopy(sections("dev-auto-mode"))
    auto["compute"]["gpuAllocation"] = "dra"
    assert problems(auto) == []  # 1.36: Auto Mode's nodes run the driver
    auto["cluster"]["kubernetesVersion"] = "1.35"
    assert any(
        p.startswith("aiplatform:compute.gpuAllocation: dra needs Kubernetes 1.36") for p in problems(auto)
    )
    karpenter = copy.deepcopy(sections("prod-karpenter"))
    karpenter["compute"]["gpuAllocation"] = "dra"
    assert "aiplatform:compute.gpuAllocation: " + str(dra_version_problem("1.14.1")) in problems(karpenter)
    assert dra_version_problem("1.15.2") is None
    assert controller_values("c", "q", dra=True)["settings"]["enableDRA"] is True
    assert "enableDRA" not in controller_values("c", "q")["settings"]


def test_selectors_and_shared_claims_need_dra():
    config = copy.deepcopy(sections("dev"))
    config["workloads"]["inference"][0]["gpu"]["selector"] = {"productName": "NVIDIA A10G"}
    config["workloads"]["training"][0]["gpu"]["shared"] = "sweep"
    needs = (
        "needs compute.gpuAllocation dra: the device plugin's nvidia.com/gpu neither selects GPUs by "
        "their attributes nor shares them between pods"
    )
    assert problems(config) == [
        f"aiplatform:workloads.inference[0].gpu.selector: {needs}",
        f"aiplatform:workloads.training[0].gpu.shared: {needs}",
    ]


# -- impossible requests, with their key paths -----------------------------------------------------


def test_a_selector_no_instance_type_of_the_group_satisfies():
    config = copy.deepcopy(sections(DRA_STACK))
    config["workloads"]["inference"][0]["gpu"]["selector"] = {"minMemoryGiB": 24}
    assert problems(config) == [
        "aiplatform:workloads.inference[0].gpu.selector: no instance type of node group 'gpu-inference' has "
        "a GPU with at least 24 GiB: its GPUs publish 'NVIDIA A10G' (22.5 GiB) (instance_types.py); the "
        "claim would never be allocated"
    ]
    config["workloads"]["inference"][0]["gpu"]["selector"] = {"productName": "NVIDIA H100 80GB HBM3"}
    assert problems(config)[0].startswith(
        "aiplatform:workloads.inference[0].gpu.selector: no instance type of node group 'gpu-inference' has "
        "a GPU with productName 'NVIDIA H100 80GB HBM3'"
    )


def test_more_devices_than_a_node_has():
    config = copy.deepcopy(sections(DRA_STACK))
    config["workloads"]["training"][0]["gpu"]["count"] = 2
    assert "aiplatform:workloads.training[0].gpu.count: must be <= 1 (GPUs per node of 'gpu-training')" in (
        problems(config)
    )


def test_a_shared_claim_across_namespaces_and_a_claim_described_twice():
    config = copy.deepcopy(sections(DRA_STACK))
    inference = config["workloads"]["inference"]
    assert [w["name"] for w in inference] == [
        "llama-inference",
        "text-embedder",
        "reranker",
        "llm-orchestrator",
    ]
    inference[2]["namespace"] = "ml-training"
    assert (
        "aiplatform:workloads.inference[2].gpu.shared: claim 'light-servers' is shared in namespace "
        "'ml-serving' (workloads.inference[1]): a pod can use only claims of its own namespace; name "
        "another claim for 'ml-training'"
    ) in problems(config)
    config = copy.deepcopy(sections(DRA_STACK))
    config["workloads"]["inference"][2]["gpu"]["sharing"] = "MPS"
    assert problems(config) == [
        "aiplatform:workloads.inference[2].gpu.shared: claim 'light-servers' is described differently by "
        "workloads.inference[1]: workloads sharing a claim name the same nodeGroup or pool, count, selector "
        "and sharing"
    ]


def test_sharing_without_a_shared_claim_and_an_empty_selector():
    config = copy.deepcopy(sections(DRA_STACK))
    config["workloads"]["inference"][0]["gpu"]["sharing"] = "MPS"
    config["workloads"]["training"][0]["gpu"]["selector"] = {}
    assert problems(config) == [
        "aiplatform:workloads.inference[0].gpu.sharing: only with shared (a claim the pods of several "
        "workloads share)",
        "aiplatform:workloads.training[0].gpu.selector: select by product_name, min_memory_gib or both (or "
        "pass no selector)",
    ]


def test_a_shared_claim_counts_its_gpus_once_against_the_group():
    # llama 2 replicas + a rollout's 1 + the shared claim's 1 = 4 GPUs on gpu-inference (maxSize 4); the
    # two light servers add nothing of their own.
    config = copy.deepcopy(sections(DRA_STACK))
    assert problems(config) == []
    config["nodeGroups"]["gpu"][0]["scaling"]["maxSize"] = 3
    assert problems(config) == [
        "aiplatform:nodeGroups.gpu[0].scaling.maxSize: the model servers here always run 3 GPUs "
        "(llama-inference 2, text-embedder 1, reranker 0) and a rollout starts 1 more: 4 is more than 3 "
        "(3 nodes x 1 GPUs): raise maxSize"
    ]


# -- the driver's vocabulary, as the selectors and claims use it -------------------------------------


def test_selectors_become_the_cel_the_driver_s_attributes_answer():
    selector = GpuSelector(product_name="NVIDIA L4", min_memory_gib=20)
    assert selector.cel() == [
        "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA L4'",
        "device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('20Gi')) >= 0",
    ]
    l4 = INSTANCE_TYPES["g6.xlarge"].gpu
    assert selector.matches(l4.product_name, l4.published_memory_mib)
    assert not GpuSelector(min_memory_gib=23).matches(l4.product_name, l4.published_memory_mib)
    assert GpuSelector(product_name="x'; true || '").problems() == [
        ("product_name", "\"x'; true || '\" is not a GPU product name")
    ]


def test_the_fit_rules_judge_selectors_against_the_instance_table():
    pool = NodeFit(name="mixed", kind="pool", instance_types=("g5.xlarge", "g5.12xlarge", "g6.xlarge"))
    assert gpu_selector_reason(GpuSelector(product_name="NVIDIA A10G"), pool) is None
    assert selected_gpu_count_reason(4, GpuSelector(product_name="NVIDIA A10G"), pool) is None
    assert selected_gpu_count_reason(4, GpuSelector(product_name="NVIDIA L4"), pool) == (
        "must be <= 1: the instance types of pool 'mixed' whose GPUs have productName 'NVIDIA L4' hold at "
        "most 1 per node"
    )


def test_a_shared_claim_carries_the_driver_s_sharing_config():
    assert sharing_parameters("MPS") == {
        "apiVersion": "resource.nvidia.com/v1beta1",
        "kind": "GpuConfig",
        "sharing": {"strategy": "MPS", "mpsConfig": {}},
    }
    spec = claim_spec(2, selector=GpuSelector(product_name="NVIDIA A10G"), sharing="TimeSlicing")
    request = spec.devices.requests[0]
    assert (request.name, request.exactly.device_class_name, request.exactly.count) == (
        "gpu",
        "gpu.nvidia.com",
        2,
    )
    assert spec.devices.config[0].opaque.driver == "gpu.nvidia.com"
    assert quota_key("gpu.nvidia.com") == "gpu.nvidia.com.deviceclass.resource.k8s.io/devices"


def test_a_dra_group_tells_the_autoscaler_nothing_it_would_wait_for():
    spec = NodeGroupSpec(
        name="gpu", role="gpu", instance_types=("g5.xlarge",), min_size=1, gpu_allocation="dra"
    )
    plugin = NodeGroupSpec(name="gpu", role="gpu", instance_types=("g5.xlarge",), min_size=1)
    assert "k8s.amazonaws.com/accelerator" in node_labels(plugin)
    assert "k8s.amazonaws.com/accelerator" not in node_labels(spec)
    assert "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu" in node_template_tags(plugin)
    assert not any("resources/" in tag for tag in node_template_tags(spec))
    assert (spec.placement.device_class, spec.placement.gpu_resource) == ("gpu.nvidia.com", None)
    assert (plugin.placement.device_class, plugin.placement.gpu_resource) == (None, "nvidia.com/gpu")
