"""Workloads on GPUs claimed through DRA: a claim template per pod, a shared claim, and the bad arguments."""

from __future__ import annotations

import pytest

from aiplatform.compute.node_groups import NodeGroupSpec
from aiplatform.dra import GpuSelector, SharedGpuClaim
from aiplatform.errors import ArgumentsError
from aiplatform.plan.cloud import auto_name
from aiplatform.podspec import Resources
from aiplatform.workloads import InferenceService, InferenceServiceArgs, TrainingJob, TrainingJobArgs
from aiplatform.workloads.shared_gpu import SharedGpu, SharedGpuArgs
from tests.workloads.helpers import GPU_PLACEMENT, container, provider

DRA_GROUP = NodeGroupSpec(
    name="gpu-inference", role="gpu", instance_types=("g5.xlarge",), min_size=1, gpu_allocation="dra"
)


def server(**overrides) -> InferenceServiceArgs:
    base = dict(
        provider=provider(),
        namespace="ai",
        image="registry.example.com/ai/llama:1.4.2",
        resources=Resources(cpu="2", memory="8Gi"),
        gpus=1,
        placement=DRA_GROUP.placement,
        autoscaling=None,
        replicas=2,
    )
    base.update(overrides)
    return InferenceServiceArgs(**base)


def test_each_pod_claims_its_own_gpus_from_a_template(build, monitor):
    build(lambda: InferenceService("llama", server(gpu_selector=GpuSelector(product_name="NVIDIA A10G"))))
    template = monitor.named("llama-gpu").inputs
    claim = template["spec"]["spec"]["devices"]["requests"][0]
    assert claim == {
        "name": "gpu",
        "exactly": {
            "deviceClassName": "gpu.nvidia.com",
            "allocationMode": "ExactCount",
            "count": 1,
            "selectors": [
                {"cel": {"expression": "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA A10G'"}}
            ],
        },
    }
    pod = monitor.named("llama-deployment").inputs["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": auto_name("llama-gpu")}]
    main = container(pod, "server")
    assert main["resources"]["claims"] == [{"name": "gpu"}]
    assert "nvidia.com/gpu" not in repr([c["resources"] for c in pod["containers"]])
    # The GPU taint is still tolerated: the claim's node is a GPU node.
    assert {t["key"] for t in pod["tolerations"]} == {"nvidia.com/gpu"}


def test_a_training_sweep_gives_each_pod_a_claim(build, monitor):
    placement = NodeGroupSpec(
        name="gpu-training", role="gpu", instance_types=("g5.2xlarge",), min_size=1, gpu_allocation="dra"
    ).placement
    build(
        lambda: TrainingJob(
            "sweep",
            TrainingJobArgs(
                provider=provider(),
                namespace="ai",
                image="registry.example.com/ai/train:2.5.1",
                resources=Resources(cpu="4", memory="16Gi"),
                gpus=1,
                placement=placement,
                completions=4,
                parallelism=2,
            ),
        )
    )
    pod = monitor.named("sweep-job").inputs["spec"]["template"]["spec"]
    assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": auto_name("sweep-gpu")}]
    assert (
        monitor.named("sweep-gpu").inputs["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1
    )


def test_two_servers_share_one_claim(build, monitor):
    def program():
        light = SharedGpu(
            "light", SharedGpuArgs(provider=provider(), namespace="ai", placement=DRA_GROUP.placement)
        )
        for name in ("embedder", "reranker"):
            InferenceService(
                name, server(gpus=0, replicas=1, shared_gpu=light.reference, depends_on=[light.claim])
            )
        return light

    build(program)
    claim = monitor.named("light-claim").inputs
    assert claim["spec"]["devices"]["config"][0]["opaque"]["parameters"]["sharing"] == {
        "strategy": "TimeSlicing",
        "timeSlicingConfig": {"interval": "Default"},
    }
    for name in ("embedder", "reranker"):
        pod = monitor.named(f"{name}-deployment").inputs["spec"]["template"]["spec"]
        assert pod["resourceClaims"] == [{"name": "gpu", "resourceClaimName": auto_name("light-claim")}]
        assert container(pod, "server")["resources"]["claims"] == [{"name": "gpu"}]
        assert monitor.named(f"{name}-deployment").urn in {
            r.urn for r in monitor.registrations if monitor.named("light-claim").urn in r.dependencies
        }
    assert not [r for r in monitor.registrations if r.type.endswith(":ResourceClaimTemplate")]


def test_impossible_gpu_arguments_are_refused_before_anything_is_registered(build, monitor):
    cases = [
        (
            server(placement=GPU_PLACEMENT, gpu_selector=GpuSelector(product_name="NVIDIA A10G")),
            "gpu_selector: needs a placement whose GPUs pods claim through DRA",
        ),
        (
            server(gpu_selector=GpuSelector(min_memory_gib=40)),
            "gpu_selector: no instance type of node group 'gpu-inference' has a GPU with at least 40 GiB",
        ),
        (server(gpus=2), "gpus: must be <= 1 (GPUs per node of 'gpu-inference')"),
        (
            server(gpus=0, shared_gpu=SharedGpuClaim(claim_name="light", namespace="other")),
            "shared_gpu: the claim is in namespace 'other', the workload in 'ai': a pod can use only claims "
            "of its own namespace",
        ),
        (
            server(shared_gpu=SharedGpuClaim(claim_name="light", namespace="ai")),
            "gpus: must be 0 with shared_gpu",
        ),
    ]
    for bad, expected in cases:
        with pytest.raises(ArgumentsError) as raised:
            InferenceService("bad", bad)
        assert expected in str(raised.value), (expected, str(raised.value))
    with pytest.raises(ArgumentsError, match="cannot be shared between pods"):
        SharedGpu("x", SharedGpuArgs(provider=provider(), namespace="ai", placement=GPU_PLACEMENT))
    assert monitor.registrations == [] or all(
        r.type == "pulumi:providers:kubernetes" for r in monitor.registrations
    )
