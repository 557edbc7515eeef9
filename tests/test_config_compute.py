"""compute: the provisioner and its GPU pools; every mistake names its key path."""

from __future__ import annotations

import pytest

from aiplatform.config import ConfigError, parse_settings
from tests.stacks import POOL_STACKS, sections
from tests.test_config import _drop, _set

KARPENTER, AUTO = "prod-karpenter", "dev-auto-mode"
POOL0 = "compute.pools[0]"


@pytest.mark.parametrize("stack", POOL_STACKS)
def test_the_example_stacks_validate(stack):
    settings = parse_settings(sections(stack))
    assert (
        settings.compute.provisioner
        == {"prod-karpenter": "karpenter", "dev-auto-mode": "auto-mode", "dev-dra": "node-groups"}[stack]
    )


def test_families_expand_to_the_table_s_types_of_those_families():
    pool = parse_settings(sections(KARPENTER)).compute.pools[1]
    assert pool.allowed_types == (
        "g6e.xlarge",
        "g6e.2xlarge",
        "g6e.4xlarge",
        "g6e.12xlarge",
        "g6e.24xlarge",
        "g6e.48xlarge",
    )
    spec = pool.spec()
    assert (spec.max_gpus, spec.max_cpu, spec.capacity_types) == (16, 192, ("spot", "on-demand"))


def _append_gpu_group(config):
    config["nodeGroups"]["gpu"] = [
        {
            "name": "gpu-old",
            "instanceTypes": ["g5.xlarge"],
            "scaling": {"minSize": 0, "desiredSize": 0, "maxSize": 1},
        }
    ]


def _pool(**changes):
    def mutate(config):
        pool = {"name": "extra", "instanceTypes": ["g5.xlarge"], "limits": {"gpus": 2, "cpu": 8}}
        pool.update(changes)
        config["compute"]["pools"].append(pool)

    return mutate


CASES = [
    (
        "dev",
        _set(
            "compute",
            {"pools": [{"name": "p", "instanceTypes": ["g5.xlarge"], "limits": {"gpus": 1, "cpu": 4}}]},
        ),
        "aiplatform:compute.pools: pools need provisioner karpenter or auto-mode (node-groups use nodeGroups.gpu)",
    ),
    (
        KARPENTER,
        _drop("compute.karpenter"),
        "aiplatform:compute.karpenter: provisioner karpenter needs karpenter.amiAlias (al2023@vYYYYMMDD)",
    ),
    (
        KARPENTER,
        _set("compute.karpenter.amiAlias", "al2023@latest"),
        "aiplatform:compute.karpenter.amiAlias: 'al2023@latest' is not a pinned AL2023 release "
        "(al2023@vYYYYMMDD; never latest)",
    ),
    (
        KARPENTER,
        _drop("charts.karpenter"),
        "aiplatform:charts.karpenter: pin the karpenter chart version (compute.provisioner is karpenter)",
    ),
    (
        KARPENTER,
        _set("charts.karpenter", "1.5.0"),
        "aiplatform:charts.karpenter: Karpenter 1.5.0 does not support Kubernetes 1.36: use 1.13 or later "
        "(Karpenter's compatibility matrix)",
    ),
    (
        KARPENTER,
        _append_gpu_group,
        "aiplatform:nodeGroups.gpu: with compute.provisioner karpenter GPU capacity comes from compute.pools: "
        "describe these groups as pools",
    ),
    (
        KARPENTER,
        _drop("cluster.addons.coredns"),
        "aiplatform:cluster.addons: pin a version for every add-on: missing coredns",
    ),
    (
        KARPENTER,
        _set(
            "cluster", {"mode": "existing", "name": "ai-prod", "identityMode": "pod-identity", "existing": {}}
        ),
        "aiplatform:compute.provisioner: karpenter needs a cluster the platform manages (cluster.mode: managed)",
    ),
    (
        AUTO,
        _set("cluster.addons.vpc-cni", "v1.22.3-eksbuild.1"),
        "aiplatform:cluster.addons.vpc-cni: EKS Auto Mode runs it itself: remove the pin",
    ),
    (
        AUTO,
        _drop("cluster.addons.metrics-server"),
        "aiplatform:cluster.addons: pin a version for every add-on: missing metrics-server",
    ),
    (
        AUTO,
        _set("ingress", {"controller": "nginx", "scheme": "internal"}),
        "aiplatform:ingress.controller: EKS Auto Mode serves load balancers itself, not for ingress-nginx's "
        "controller: use alb",
    ),
    (
        AUTO,
        _set(
            POOL0,
            {"name": "gpu-inference", "instanceTypes": ["p4de.24xlarge"], "limits": {"gpus": 8, "cpu": 96}},
        ),
        "aiplatform:compute.pools[0].instanceTypes: 'p4de.24xlarge': 'p4de' is not an instance family EKS Auto "
        "Mode runs",
    ),
    (
        AUTO,
        _set("compute.karpenter", {"amiAlias": "al2023@v20260714"}),
        "aiplatform:compute.karpenter: only with provisioner karpenter",
    ),
    (
        KARPENTER,
        _set("compute.autoMode", {"builtinSystemPool": True}),
        "aiplatform:compute.autoMode: only with provisioner auto-mode",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.limits.gpus", 0),
        "aiplatform:compute.pools[0].limits.gpus: Input should be greater than or equal to 1",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].limits", {"gpus": 4, "cpu": 192}),
        "aiplatform:compute.pools[2].limits.gpus: 4 cannot hold one p4d.24xlarge (8)",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].limits", {"gpus": 16, "cpu": 64}),
        "aiplatform:compute.pools[2].limits.cpu: 64 cannot hold one p4d.24xlarge (96)",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityTypes", ["spot"]),
        "aiplatform:compute.pools[2].capacityReservations: the pool never launches into them without capacity "
        "type 'reserved'",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityReservations.capacityBlock", True),
        "aiplatform:compute.pools[2].capacityTypes: a Capacity Block pool runs on reserved capacity only",
    ),
    (
        KARPENTER,
        _pool(capacityTypes=["reserved", "on-demand"]),
        "aiplatform:compute.pools[3].capacityTypes: 'reserved' needs capacity reservations to select",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityReservations", {"capacityBlock": True}),
        "aiplatform:compute.pools[2].capacityReservations: select reservations by ids or tags",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityReservations.ids", ["odcr-1"]),
        "aiplatform:compute.pools[2].capacityReservations.ids[0]: 'odcr-1' is not a capacity reservation id (cr-...)",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityReservations.instances", {"p5.48xlarge": 1}),
        "aiplatform:compute.pools[2].capacityReservations.instances.p5.48xlarge: 'p5.48xlarge' is not a type "
        "the pool may start (p4d.24xlarge)",
    ),
    (
        KARPENTER,
        _set("compute.pools[2].capacityReservations.instances", {"p4d.24xlarge": 0}),
        "aiplatform:compute.pools[2].capacityReservations.instances.p4d.24xlarge: Input should be greater "
        "than 0",
    ),
    (
        KARPENTER,
        _set("compute.pools[1].instanceFamilies", ["m6i"]),
        "aiplatform:compute.pools[1].instanceFamilies[0]: 'm6i' is not a GPU instance family",
    ),
    (
        KARPENTER,
        _set("compute.pools[1].instanceFamilies", ["p5e"]),
        "aiplatform:compute.pools[1].instanceFamilies[0]: the instance type table (components/compute/instance_types.py) "
        "knows no 'p5e' type: add the sizes the pool may start there",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.instanceTypes", ["m6i.xlarge"]),
        "aiplatform:compute.pools[0].instanceTypes[0]: 'm6i.xlarge' has no GPU: GPU pools start GPU instances",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.instanceTypes", ["g5.xlarge", "g5g.xlarge"]),
        "aiplatform:compute.pools[0].instanceTypes: mix x86_64 and arm64 types in separate pools",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.capacityTypes", ["spot", "spot"]),
        "aiplatform:compute.pools[0].capacityTypes: name each capacity type once",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.name", "system"),
        "aiplatform:compute.pools[0].name: 'system' names the platform's own CPU pool in auto-mode",
    ),
    (
        KARPENTER,
        _set("compute.pools[1].name", "gpu-inference"),
        "aiplatform:compute.pools[1].name: duplicate GPU pool 'gpu-inference'",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.labels", {"karpenter.sh/capacity-type": "spot"}),
        "aiplatform:compute.pools[0].labels.karpenter.sh/capacity-type: is reserved: Kubernetes, EKS, Karpenter "
        "and the platform set these",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.disruption.blockedWindows[0].schedule", "weekdays at nine"),
        "aiplatform:compute.pools[0].disruption.blockedWindows[0].schedule: 'weekdays at nine' is not a cron "
        "schedule: expected 5 fields (minute hour day-of-month month day-of-week)",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.disruption.maxNodes", "a few"),
        "aiplatform:compute.pools[0].disruption.maxNodes: 'a few' is not a node count or a percentage such as "
        "1 or 10%",
    ),
    (
        KARPENTER,
        _set("nodeGroups.system.scaling", {"minSize": 1, "desiredSize": 1, "maxSize": 6}),
        "aiplatform:nodeGroups.system.scaling.desiredSize: Karpenter's 2 controller replicas run on separate "
        "nodes: at least 2",
    ),
    (
        KARPENTER,
        _set("nodeGroups.system.scaling", {"minSize": 2, "desiredSize": 2, "maxSize": 6}),
        "aiplatform:nodeGroups.system.scaling.desiredSize: nothing scales the system group with Karpenter: "
        "2 x m6i.xlarge offer 7.84 CPU, 27.66 GiB, 116 pods; its peak requests 10.02 CPU, 28.43 GiB, 43 pods: "
        "raise desiredSize",
    ),
    # Workloads follow the pools.
    (
        KARPENTER,
        _set("workloads.inference[0].gpu", {"pool": "gpu-missing"}),
        "aiplatform:workloads.inference[0].gpu.pool: no GPU pool named 'gpu-missing'",
    ),
    (
        KARPENTER,
        _set("workloads.inference[0].gpu", {"nodeGroup": "gpu-inference"}),
        "aiplatform:workloads.inference[0].gpu.nodeGroup: with compute.provisioner karpenter GPUs come from pools: "
        "use gpu.pool",
    ),
    (
        "dev",
        _set("workloads.inference[0].gpu", {"pool": "gpu-inference"}),
        "aiplatform:workloads.inference[0].gpu.pool: GPU pools need compute.provisioner karpenter or auto-mode",
    ),
    (
        KARPENTER,
        _set("workloads.inference[0].gpu", {"pool": "gpu-inference", "nodeGroup": "gpu-inference"}),
        "aiplatform:workloads.inference[0].gpu.pool: name either nodeGroup (GPU node groups) or pool (GPU pools)",
    ),
    (
        KARPENTER,
        _set("workloads.inference[0].gpu.count", 2),
        "aiplatform:workloads.inference[0].gpu.count: must be <= 1 (GPUs of the largest type pool "
        "'gpu-inference' allows)",
    ),
    (
        KARPENTER,
        _set(f"{POOL0}.limits", {"gpus": 6, "cpu": 48}),
        "aiplatform:workloads.inference[0].autoscaling.maxReplicas: at most 6 of 10 replicas can run: pool "
        "'gpu-inference' fits 6 (6 GPUs at most); lower maxReplicas, raise those limits, or set "
        "acceptsLowerCeiling: true",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), CASES, ids=[c[2][:80] for c in CASES])
def test_each_compute_mistake_names_its_key_path(stack, mutate, expected):
    config = sections(stack)
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert expected in caught.value.problems, caught.value.problems


def test_a_pool_workload_too_big_for_every_allowed_type_is_refused():
    config = sections(KARPENTER)
    _set(
        "workloads.training[0].resources",
        {"requests": {"cpu": "200", "memory": "16Gi"}, "limits": {"cpu": "200", "memory": "16Gi"}},
    )(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    (problem,) = [
        p for p in caught.value.problems if p.startswith("aiplatform:workloads.training[0].resources")
    ]
    assert "more than a g6e.48xlarge of 'gpu-training-spot' offers" in problem
