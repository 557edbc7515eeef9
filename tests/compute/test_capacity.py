"""Node capacity: EKS AL2023 allocatable, pod requests, what lands on each group, and the plan's report."""

from __future__ import annotations

import pytest

from aiplatform.compute.capacity import (
    Requests,
    allocatable,
    group_loads,
    kube_reserved_cpu_m,
    pod_requests,
    pod_spec_requests,
)
from aiplatform.compute.instance_types import require
from aiplatform.compute.node_groups import SYSTEM_SELECTOR
from aiplatform.config import parse_settings
from aiplatform.config.capacity import platform_pods
from aiplatform.plan.capacity_report import capacity_data
from aiplatform.plan.registered import manifest_pods, registered_cluster
from tests.program import plan_config, planned
from tests.stacks import EXAMPLE_STACKS, STACKS, nginx_config, sections


# -- what a node offers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vcpus", "reserved"),
    [(1, 60), (2, 70), (4, 80), (8, 90), (48, 190), (96, 310)],  # 6% + 1% + 2 x 0.5% + 0.25% of the rest
)
def test_kube_reserved_cpu_follows_nodeadm(vcpus, reserved):
    assert kube_reserved_cpu_m(vcpus) == reserved


@pytest.mark.parametrize(
    ("instance", "cpu_m", "memory_mib", "pods"),
    [
        # 8192 MiB x 0.925 = 7577; - (11 x 35 + 255) - 100 = 6837
        ("t3.large", 1930, 6837, 35),
        # 16384 x 0.925 = 15155; - (11 x 58 + 255) - 100 = 14162
        ("m6i.xlarge", 3920, 14162, 58),
        # 196608 x 0.925 = 181862; - (11 x 737 + 255) - 100 = 173400; maxPods capped at 250
        ("g5.12xlarge", 47810, 173400, 250),
    ],
)
def test_allocatable_per_node(instance, cpu_m, memory_mib, pods):
    node = allocatable(require(instance))
    assert (node.allocatable, node.pods) == (Requests(cpu_m, memory_mib), pods)


# -- what a pod asks for ------------------------------------------------------------------------------
def test_pod_requests_count_native_sidecars_and_the_largest_init_container():
    sidecar, fetch = (Requests(50, 64), True), (Requests(250, 512), False)
    assert pod_requests([Requests(2000, 12288)], [sidecar, fetch]) == Requests(2050, 12352)
    # An init container larger than the app containers sets the pod's request, with earlier sidecars.
    assert pod_requests([Requests(100, 100)], [sidecar, (Requests(1000, 2000), False)]) == Requests(
        1050, 2064
    )
    # A sidecar started after an init container does not add to it.
    assert pod_requests([Requests(100, 100)], [(Requests(1000, 2000), False), sidecar]) == Requests(
        1000, 2000
    )


def test_pod_spec_requests_read_a_manifest():
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "2", "memory": "12Gi"}}}, {"name": "no-requests"}],
        "initContainers": [
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
            {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}},
        ],
    }
    assert pod_spec_requests(spec) == Requests(2050, 12352)
    assert Requests.of({"cpu": "0.5", "memory": "1G"}) == Requests(500, 954)  # 10^9 bytes, rounded up


# -- what lands where ---------------------------------------------------------------------------------
def loads_of(stack):
    settings = parse_settings(sections(stack))
    return {
        load.spec.name: load for load in group_loads(settings.nodeGroups.specs(), platform_pods(settings))
    }


def test_dev_system_group_at_min_and_max():
    system = loads_of("dev")["system"]
    assert [d.name for d in system.daemons] == [
        "aws-node",
        "kube-proxy",
        "ebs-csi-node",
        "eks-pod-identity-agent",
        "efs-csi-node",
        "node-exporter",
    ]
    assert system.per_node == Requests(155, 72)  # 25 + 100 + 10 + 0 + 0 + 20 m; 40 + 32 MiB
    assert system.requested(at_max=False) == (Requests(2690, 6856), 33)
    assert system.offered(at_max=False) == (Requests(3860, 13674), 70)
    # At its peak the nightly batch job (1 CPU / 4 GiB) runs too, on a third node.
    assert system.requested(at_max=True) == (Requests(3845, 11024), 40)
    assert system.offered(at_max=True) == (Requests(5790, 20511), 105)


def test_daemonsets_land_where_they_tolerate_the_taints():
    loads = loads_of("prod")
    daemons = {name: [d.name for d in load.daemons] for name, load in loads.items()}
    eks = ["aws-node", "kube-proxy", "ebs-csi-node", "eks-pod-identity-agent", "efs-csi-node"]
    assert daemons["system"] == [*eks, "node-exporter"]
    assert daemons["gpu-inference"] == [*eks, "node-exporter", "nvidia-device-plugin", "dcgm-exporter"]
    # The node exporter tolerates every group's taints, the spot group's own too.
    assert daemons["gpu-training-spot"] == [*eks, "node-exporter", "nvidia-device-plugin", "dcgm-exporter"]
    llama = next(p for p in loads["gpu-inference"].pods if p.name == "llama-inference")
    # 4 CPU / 24 GiB, the log shipper sidecar 50m / 64 MiB; the model fetch (250m / 512 MiB) runs before.
    assert (llama.requests, llama.min_replicas, llama.max_replicas) == (Requests(4050, 24640), 2, 10)


@pytest.mark.parametrize("stack", STACKS)
def test_the_config_model_of_the_programs_pods_is_what_the_program_registers(stack):
    settings = parse_settings(sections(stack))
    modelled = {p.name: p for p in platform_pods(settings) if p.source == "workload"}
    registered = {p.name: p for p in manifest_pods(planned(stack).registrations)}
    assert set(modelled) == set(registered)
    for name, pods in registered.items():
        model = modelled[name]
        assert (pods.requests, pods.min_replicas, pods.max_replicas, pods.node_group) == (
            model.requests,
            model.min_replicas,
            model.max_replicas,
            model.node_group,
        ), name


# The values path of each release's pod resources, and the pods the capacity model counts for it.
RELEASE_RESOURCES = {
    "cluster-autoscaler": [(("resources",), "cluster-autoscaler")],
    "external-secrets": [
        (("resources",), "external-secrets controller"),
        (("webhook", "resources"), "external-secrets webhook"),
        (("certController", "resources"), "external-secrets cert-controller"),
    ],
    "aws-load-balancer-controller": [(("resources",), "aws-load-balancer-controller")],
    "ingress-nginx": [(("controller", "resources"), "ingress-nginx controller")],
    "kube-prometheus-stack": [
        (("prometheusOperator", "resources"), "prometheus-operator"),
        (("kube-state-metrics", "resources"), "kube-state-metrics"),
        (("prometheus-node-exporter", "resources"), "node-exporter"),
    ],
    "prometheus-adapter": [(("resources",), "prometheus-adapter")],
    "nvidia-device-plugin": [(("resources",), "nvidia-device-plugin")],
    "dcgm-exporter": [(("resources",), "dcgm-exporter")],
}

# The values path of the replica count of the releases that run more than the chart's one.
RELEASE_REPLICAS = {
    "aws-load-balancer-controller": ("replicaCount",),
    "ingress-nginx": ("controller", "replicaCount"),
    "prometheus-adapter": ("replicas",),
}


def _at(values, path):
    for key in path:
        values = values[key]
    return values


def _release_stack(stack):
    """dev, prod, or dev behind ingress-nginx: its settings and what the program registers."""
    if stack != "nginx":
        return parse_settings(sections(stack)), planned(stack).registrations
    config = nginx_config()
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("aiplatform:")}
    return parse_settings(raw), plan_config(config, "nginx").registrations


@pytest.mark.parametrize("stack", [*STACKS, "nginx"])
def test_the_capacity_model_counts_the_requests_each_release_is_given(stack):
    settings, registrations = _release_stack(stack)
    model = {p.name: p for p in platform_pods(settings)}
    releases = [r for r in registrations if r.type == "kubernetes:helm.sh/v3:Release"]
    # The model counts the pods of exactly the releases the program installs.
    assert {r.inputs["chart"] for r in releases} == {
        p.source.removeprefix("release ") for p in model.values() if p.source.startswith("release ")
    }
    for release in releases:
        values = release.inputs["values"]
        for path, pods in RELEASE_RESOURCES[release.inputs["chart"]]:
            assert Requests.of(_at(values, path)["requests"]) == model[pods].requests, (release.name, path)
        if release.inputs["chart"] == "kube-prometheus-stack":
            spec = values["prometheus"]["prometheusSpec"]
            reloader = values["prometheusOperator"]["prometheusConfigReloader"]["resources"]["requests"]
            # The Prometheus pod: prometheus and its config reloader.
            assert (
                Requests.of(spec["resources"]["requests"]) + Requests.of(reloader)
                == model["prometheus"].requests
            )
            # The node exporter lands where its values' tolerations let it: every group.
            exporter = values["prometheus-node-exporter"]["tolerations"]
            assert [t.to_dict() for t in model["node-exporter"].tolerations] == exporter
            # The Alertmanager pod, where it runs (prod): alertmanager and its config reloader.
            alertmanager = values["alertmanager"]
            assert alertmanager["enabled"] == ("alertmanager" in model) == (stack == "prod")
            if alertmanager["enabled"]:
                am = alertmanager["alertmanagerSpec"]
                assert (am["nodeSelector"], model["alertmanager"].node_group) == (SYSTEM_SELECTOR, "system")
                assert (
                    Requests.of(am["resources"]["requests"]) + Requests.of(reloader)
                    == model["alertmanager"].requests
                )
        if release.inputs["chart"] in RELEASE_REPLICAS:
            path = RELEASE_REPLICAS[release.inputs["chart"]]
            pods = RELEASE_RESOURCES[release.inputs["chart"]][0][1]
            assert _at(values, path) == model[pods].min_replicas == model[pods].max_replicas


# -- the plan's report --------------------------------------------------------------------------------
def test_the_dev_plan_reports_every_group_and_warns_of_a_gpu_group_that_never_reaches_zero():
    run = planned("dev")
    groups, warnings = capacity_data(list(registered_cluster(run.registrations).loads))
    by_name = {g["group"]: g for g in groups}
    assert set(by_name) == {"system", "gpu-inference", "gpu-training"}
    system = by_name["system"]
    assert system["instance"] == "t3.large"
    assert system["at_min"] == {
        "nodes": 2,
        "requested": {"cpu_m": 2690, "memory_mib": 6856, "pods": 33},
        "allocatable": {"cpu_m": 3860, "memory_mib": 13674, "pods": 70},
        "fits": True,
    }
    assert system["at_max"]["fits"] is True
    assert warnings == [
        "gpu-inference: minSize is 0, but llama-inference (2) always run there: the group never scales to zero "
        "(the idle cost counts the 2 nodes they need)"
    ]
    assert by_name["gpu-inference"]["always_running_nodes"] == 2


# -- typed inputs ------------------------------------------------------------------------------------
def test_the_provisioner_decides_the_alb_controller_and_device_plugin_pods():
    from aiplatform.compute.capacity import AddonChoices, Nodes, release_pods
    from tests.compute.test_node_groups import GPU, SYSTEM

    nodes = Nodes(SYSTEM, (GPU,))
    everything = {p.name for p in release_pods(AddonChoices(), nodes)}
    assert {"aws-load-balancer-controller", "nvidia-device-plugin", "dcgm-exporter"} <= everything
    run_by_eks = {
        p.name for p in release_pods(AddonChoices(alb_controller=False, device_plugin=False), nodes)
    }
    assert everything - run_by_eks == {"aws-load-balancer-controller", "nvidia-device-plugin"}
    assert "dcgm-exporter" not in {p.name for p in release_pods(AddonChoices(), Nodes(SYSTEM))}


@pytest.mark.parametrize("stack", STACKS)
def test_each_workload_kind_gives_its_own_pod_set(stack):
    settings = parse_settings(sections(stack))
    for kind, i, w in settings.workloads.all():
        pods = w.pod_set(("workloads", kind, i))
        assert pods.path == ("workloads", kind, i, "resources", "requests")
        assert (pods.min_replicas, pods.max_replicas) == w.replica_range()
        if kind != "inference":
            assert pods.min_replicas == 0  # Jobs run nothing between runs


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_the_registered_cluster_is_the_config_model_of_the_same_stack(stack):
    """The plan reads nodes and pods from the registrations; the config rules from the settings: both
    see the same groups, sizes, DaemonSets and pods."""
    from aiplatform.config.capacity import capacity_nodes

    settings = parse_settings(sections(stack))
    nodes = capacity_nodes(settings)
    modelled = {load.spec.name: load for load in group_loads(nodes.all, platform_pods(settings, nodes))}
    registered = {load.spec.name: load for load in registered_cluster(planned(stack).registrations).loads}
    assert set(registered) == set(modelled)
    for name, load in registered.items():
        model = modelled[name]
        assert (load.spec.min_nodes, load.spec.max_nodes, load.node) == (
            model.spec.min_nodes,
            model.spec.max_nodes,
            model.node,
        )
        assert [(d.name, d.requests) for d in load.daemons] == [(d.name, d.requests) for d in model.daemons]
        assert sorted((p.name, p.requests, p.min_replicas, p.max_replicas) for p in load.pods) == sorted(
            (p.name, p.requests, p.min_replicas, p.max_replicas) for p in model.pods
        )
