"""The fit rules on the component path: a workload placed by a NodeGroupSpec / GpuPoolSpec of the same
program, in a namespace that says what it admits, is refused before anything is registered when it
could never run; one that fits builds."""

from __future__ import annotations

import pytest

from aiplatform.compute.capacity import Requests
from aiplatform.compute.node_groups import NodeGroupSpec
from aiplatform.compute.pools import GpuPoolSpec
from aiplatform.errors import ArgumentsError
from aiplatform.fit import Namespace, NamespaceFit, Share
from aiplatform.podspec import Resources
from aiplatform.routing import IngressRoute
from aiplatform.tenancy import TeamNamespaceArgs, TeamQuota
from aiplatform.workloads import (
    Autoscaling,
    BatchInferenceJob,
    BatchInferenceJobArgs,
    InferenceService,
    InferenceServiceArgs,
    TrainingJob,
    TrainingJobArgs,
)
from aiplatform.workloads.inference import shared_quota_problems
from tests.workloads.helpers import provider

GPU_INFERENCE = NodeGroupSpec(
    name="gpu-inference", role="gpu", instance_types=("g5.2xlarge",), min_size=0, max_size=10
)
SERVING = NamespaceFit(name="ml-serving", ingress_ports=(8000, 8080), cpu="128", memory="512Gi", gpus=12)
SMALL = Namespace(NamespaceFit(name="batch", cpu="2", memory="8Gi", gpus=0))


def server(**overrides) -> InferenceServiceArgs:
    values = dict(
        provider=provider(),
        namespace=Namespace(SERVING),  # a fresh one: it keeps the servers built there
        image="registry.example.com/search/summarizer:2.1.0",
        port=8000,
        resources=Resources(cpu="2", memory="12Gi"),
        placement=GPU_INFERENCE.placement,
        gpus=1,
        autoscaling=Autoscaling(min_replicas=2, max_replicas=6),
        route=IngressRoute(class_name="alb", host="summarizer.example.com"),
    )
    return InferenceServiceArgs(**{**values, **overrides})


def job(**overrides) -> BatchInferenceJobArgs:
    values = dict(
        provider=provider(),
        namespace=SMALL,
        image="registry.example.com/search/nightly:1.0.0",
        schedule="0 3 * * *",
        resources=Resources(cpu="1", memory="4Gi"),
    )
    return BatchInferenceJobArgs(**{**values, **overrides})


SERVER_CASES = [
    (dict(gpus=4), "gpus", "must be <= 1 (GPUs per node of 'gpu-inference')"),
    (
        dict(resources=Resources(cpu="30", memory="200Gi")),
        "resources",
        "one pod requests 30 CPU / 200.00 GiB (with the platform's sidecar and init containers), more than a "
        "g5.2xlarge of 'gpu-inference' offers (7.91 CPU / 28.63 GiB): it would never be scheduled",
    ),
    (
        dict(autoscaling=Autoscaling(min_replicas=2, max_replicas=50)),
        "autoscaling.max_replicas",
        "at most 10 of 50 replicas can run: node group 'gpu-inference' fits 10 (10 nodes at most x 1 per node), "
        "namespace 'ml-serving' GPU quota fits 12 (12 GPUs, 1 per pod), namespace 'ml-serving' memory quota "
        "fits 42 (512Gi, 12.00 GiB per pod); lower max_replicas, raise those limits, or set "
        "accepts_lower_ceiling=True",
    ),
    (
        dict(port=9000),
        "port",
        "9000 is not a port namespace 'ml-serving' admits ingress traffic to (its network policies open 8000, "
        "8080): the route would get no traffic; serve on one of them",
    ),
]


@pytest.mark.parametrize(("change", "at", "reason"), SERVER_CASES, ids=[c[1] for c in SERVER_CASES])
def test_a_server_that_could_never_run_where_it_is_placed_is_refused_before_any_resource(
    monitor, change, at, reason
):
    with pytest.raises(ArgumentsError) as caught:
        InferenceService("summarizer", server(**change))
    assert caught.value.problems == [(at, reason)]
    assert str(caught.value) == f"InferenceService 'summarizer':\n  - {at}: {reason}"
    assert [r.type for r in monitor.registrations if r.type.startswith("kubernetes:")] == []


def test_a_server_that_fits_builds_and_lands_on_its_group(build, monitor):
    build(lambda: InferenceService("summarizer", server()))
    (deployment,) = [r for r in monitor.registrations if r.type == "kubernetes:apps/v1:Deployment"]
    assert deployment.inputs["metadata"]["namespace"] == "ml-serving"
    assert deployment.inputs["spec"]["template"]["spec"]["nodeSelector"] == {
        "aiplatform.io/node-group": "gpu-inference"
    }


def test_a_lower_ceiling_can_be_accepted_on_purpose():
    scaling = Autoscaling(min_replicas=2, max_replicas=50, accepts_lower_ceiling=True)
    assert server(autoscaling=scaling).problems() == []
    # ...but not replicas that must always run.
    scaling = Autoscaling(min_replicas=11, max_replicas=50, accepts_lower_ceiling=True)
    assert server(autoscaling=scaling).problems() == [
        (
            "autoscaling.min_replicas",
            "11 replicas never fit: node group 'gpu-inference' fits 10 (10 nodes at most x 1 per node)",
        )
    ]


def test_a_plain_namespace_name_and_a_placement_without_fit_skip_the_rules():
    placement = GPU_INFERENCE.placement
    bare = type(placement)(placement.node_selector, placement.tolerations, placement.gpu_resource)
    assert server(namespace="ml-serving", placement=bare, gpus=4, port=9000).problems() == []


def test_a_job_pod_larger_than_its_namespace_quota_is_refused():
    reason = (
        "one pod requests 4 CPU / 16.00 GiB (with the platform's sidecar and init containers), more than "
        "namespace 'batch' admits in all (quota requests.cpu 2, requests.memory 8Gi): quota admission refuses "
        "every pod"
    )
    with pytest.raises(ArgumentsError) as caught:
        BatchInferenceJob("nightly", job(resources=Resources(cpu="4", memory="16Gi")))
    assert caught.value.problems == [("resources", reason)]
    assert job().problems() == []


def test_parallel_training_pods_beyond_the_quota_are_refused():
    args = dict(
        provider=provider(),
        namespace=SMALL,
        image="registry.example.com/search/sweep:1.0.0",
        resources=Resources(cpu="1", memory="2Gi", memory_limit="4Gi"),
        completions=8,
        parallelism=4,
    )
    assert TrainingJobArgs(**args).problems() == [
        (
            "parallelism",
            "at most 2 of 4 parallel pods are admitted at once: namespace 'batch' CPU quota fits 2 (2 CPU, 1 per "
            "pod); lower parallelism or raise the quota",
        )
    ]
    with pytest.raises(ArgumentsError):
        TrainingJob("sweep", TrainingJobArgs(**args))
    assert TrainingJobArgs(**{**args, "parallelism": 2}).problems() == []


def test_a_pool_is_judged_by_its_largest_type_and_its_gpu_limit():
    pool = GpuPoolSpec(name="gpu", instance_types=("g6e.xlarge", "g6e.12xlarge"), max_gpus=8, max_cpu=96)
    assert server(placement=pool.placement, gpus=8).problems() == [
        ("gpus", "must be <= 4 (GPUs of the largest type pool 'gpu' allows)")
    ]
    assert server(
        placement=pool.placement, gpus=4, resources=Resources(cpu="2", memory="12Gi")
    ).problems() == [
        (
            "autoscaling.max_replicas",
            "at most 2 of 6 replicas can run: pool 'gpu' fits 2 (8 GPUs at most), namespace 'ml-serving' GPU "
            "quota fits 3 (12 GPUs, 4 per pod); lower max_replicas, raise those limits, or set "
            "accepts_lower_ceiling=True",
        )
    ]


def test_a_team_namespace_of_the_same_program_says_what_it_admits():
    team = TeamNamespaceArgs(
        name="batch", provider=provider(), vpc_cidr="10.0.0.0/16", quota=TeamQuota(cpu="2", memory="8Gi")
    )
    namespace = Namespace(team.fit())
    assert namespace == "batch"
    assert [
        at for at, _ in job(namespace=namespace, resources=Resources(cpu="4", memory="4Gi")).problems()
    ] == ["resources"]
    assert server(namespace=namespace, gpus=0, placement=None, autoscaling=None, replicas=1).problems() == [
        (
            "resources",
            "one pod requests 2 CPU / 12.00 GiB (with the platform's sidecar and init containers), more than "
            "namespace 'batch' admits in all (quota requests.cpu 2, requests.memory 8Gi): quota admission "
            "refuses every pod",
        ),
    ]


def test_cpu_server_replicas_beyond_what_its_cpu_node_group_holds_are_refused():
    """A CPU server's pods fit a node of its group by CPU, memory and pod slots, times its most nodes."""
    cpu = NodeGroupSpec(name="cpu-serving", instance_types=("m6i.xlarge",), min_size=1, max_size=3)
    scaling = Autoscaling(min_replicas=2, max_replicas=12)
    args = server(
        placement=cpu.placement, gpus=0, resources=Resources(cpu="2", memory="4Gi"), autoscaling=scaling
    )
    assert args.problems() == [
        (
            "autoscaling.max_replicas",
            "at most 3 of 12 replicas can run: node group 'cpu-serving' fits 3 (3 nodes at most x 1 per "
            "m6i.xlarge by CPU); lower max_replicas, raise those limits, or set accepts_lower_ceiling=True",
        )
    ]
    small = Resources(cpu="500m", memory="6Gi")
    assert server(placement=cpu.placement, gpus=0, resources=small, autoscaling=scaling).problems() == [
        (
            "autoscaling.max_replicas",
            "at most 6 of 12 replicas can run: node group 'cpu-serving' fits 6 (3 nodes at most x 2 per "
            "m6i.xlarge by memory); lower max_replicas, raise those limits, or set accepts_lower_ceiling=True",
        )
    ]
    fixed = server(placement=cpu.placement, gpus=0, resources=small, autoscaling=None, replicas=7)
    assert fixed.problems() == [
        (
            "replicas",
            "7 replicas never fit: node group 'cpu-serving' fits 6 (3 nodes at most x 2 per m6i.xlarge by memory)",
        )
    ]


def cpu_server(namespace: Namespace, replicas: int) -> InferenceServiceArgs:
    scaling = Autoscaling(min_replicas=replicas, max_replicas=replicas)
    return server(
        namespace=namespace,
        gpus=0,
        placement=None,
        resources=Resources(cpu="2", memory="4Gi"),
        autoscaling=scaling,
    )


def test_model_servers_that_each_fit_their_namespace_quota_may_not_fit_it_together(build, monitor):
    """Their always-running pods and a rollout's pod add up: the server that tips the quota is refused."""
    namespace = Namespace(NamespaceFit(name="ml-serving", cpu="10", memory="64Gi", gpus=4))
    build(lambda: InferenceService("first", cpu_server(namespace, 2)))  # 4 CPU, and 2 while rolling out
    assert cpu_server(namespace, 3).problems() == []  # alone, 3 x 2 CPU and a rollout fit 10 CPU
    with pytest.raises(ArgumentsError) as caught:
        InferenceService("second", cpu_server(namespace, 3))
    assert caught.value.problems == [
        (
            "autoscaling.min_replicas",
            "the model servers here always request 10 CPU (first 4, second 6) and a rollout starts a pod of 2 "
            "more: 12 is more than the namespace's CPU quota (10); lower autoscaling.min_replicas or raise the "
            "namespace's quota",
        )
    ]
    assert "second" not in {r.name for r in monitor.registrations}
    build(lambda: InferenceService("third", cpu_server(namespace, 1)))  # 4 + 2 CPU and a rollout still fit


def test_gpu_servers_share_the_namespace_gpu_quota_on_the_library_path():
    namespace = Namespace(NamespaceFit(name="ml-serving", cpu="128", memory="512Gi", gpus=4))
    namespace.shares.append(Share("llama", 2, Requests(2000, 12 * 1024), gpus=1))
    args = server(namespace=namespace, autoscaling=Autoscaling(min_replicas=2, max_replicas=2))
    assert shared_quota_problems("summarizer", args) == [
        (
            "autoscaling.min_replicas",
            "the model servers here always run 4 GPUs (llama 2, summarizer 2) and a rollout starts 1 more: 5 is "
            "more than the namespace's GPU quota (4); lower autoscaling.min_replicas or raise the namespace's "
            "quota",
        )
    ]
    assert (
        shared_quota_problems("summarizer", server(namespace="ml-serving")) == []
    )  # a plain name: not known
