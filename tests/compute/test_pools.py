"""GPU pools: the NodePool, EC2NodeClass and NodeClass specs one description gives, exactly."""

from __future__ import annotations

import pytest

from aiplatform.compute.pools import (
    BlockedWindow,
    CapacityReservations,
    Disruption,
    GpuPoolSpec,
    NodeClassSettings,
    auto_node_class_spec,
    ec2_node_class_spec,
    node_class_name,
    node_pool_spec,
    placement_for_pool,
    pool_problems,
    pools_problems,
)
from aiplatform.scheduling import Taint, Toleration

SPOT_TAINT = Taint("aiplatform.io/spot", "true", "NoSchedule")


def training_pool(**changes) -> GpuPoolSpec:
    values = dict(
        name="training",
        instance_types=("g6e.12xlarge", "g5.12xlarge"),
        max_gpus=16,
        max_cpu=192,
        capacity_types=("spot", "on-demand"),
        taints=(SPOT_TAINT,),
        labels={"team": "research"},
        disruption=Disruption(
            consolidation_policy="WhenEmpty",
            consolidate_after="30m",
            max_nodes="1",
            blocked=(BlockedWindow("0 8 * * 1-5", "10h"),),
        ),
    )
    values.update(changes)
    return GpuPoolSpec(**values)


def test_a_spot_pool_falls_back_to_on_demand_within_its_limits_and_budgets():
    assert node_pool_spec(training_pool(), "karpenter") == {
        "template": {
            "metadata": {
                "labels": {
                    "team": "research",
                    "aiplatform.io/node-role": "gpu",
                    "aiplatform.io/gpu-pool": "training",
                    "nvidia.com/gpu.present": "true",
                }
            },
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "gpu"},
                "requirements": [
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": ["g6e.12xlarge", "g5.12xlarge"],
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                ],
                "taints": [
                    {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "true"},
                    {"key": "aiplatform.io/spot", "effect": "NoSchedule", "value": "true"},
                ],
            },
        },
        "limits": {"cpu": "192", "nvidia.com/gpu": "16"},
        "disruption": {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": "30m",
            "budgets": [
                {"nodes": "1"},
                {"nodes": "0", "schedule": "0 8 * * 1-5", "duration": "10h"},
            ],
        },
    }


def test_auto_mode_reads_the_same_pool_with_its_own_node_class():
    karpenter, auto = (
        node_pool_spec(training_pool(), "karpenter"),
        node_pool_spec(training_pool(), "auto-mode"),
    )
    assert auto["template"]["spec"].pop("nodeClassRef") == {
        "group": "eks.amazonaws.com",
        "kind": "NodeClass",
        "name": "gpu",
    }
    karpenter["template"]["spec"].pop("nodeClassRef")
    assert auto == karpenter


def test_one_gpu_model_names_the_accelerator_on_the_nodes():
    pool = training_pool(instance_types=("g6e.12xlarge", "g6e.24xlarge"))
    labels = node_pool_spec(pool, "karpenter")["template"]["metadata"]["labels"]
    assert labels["aiplatform.io/accelerator"] == "nvidia-l40s"
    assert (
        "aiplatform.io/accelerator"
        not in node_pool_spec(training_pool(), "karpenter")["template"]["metadata"]["labels"]
    )


def test_workloads_land_on_the_pool_by_its_label_and_tolerate_its_taints():
    placement = placement_for_pool(training_pool())
    assert placement.node_selector == {"aiplatform.io/gpu-pool": "training"}
    assert placement.tolerations == (
        Toleration("nvidia.com/gpu", "Equal", "true", "NoSchedule"),
        Toleration("aiplatform.io/spot", "Equal", "true", "NoSchedule"),
    )
    assert placement.gpu_resource == "nvidia.com/gpu"


RESERVED = CapacityReservations(ids=("cr-0123456789abcdef0",), tags={"purpose": "llm"})


def test_a_reservation_pool_has_its_own_node_class_selecting_its_reservations():
    pool = training_pool(
        name="reserved", capacity_types=("reserved", "on-demand"), reservations=RESERVED, taints=()
    )
    assert node_class_name(pool) == "reserved"
    spec = ec2_node_class_spec(
        NodeClassSettings(role_name="nodes", disk_size_gib=300),
        "al2023@v20260714",
        {"karpenter.sh/discovery": "ai"},
        RESERVED,
    )
    assert spec["capacityReservationSelectorTerms"] == [
        {"id": "cr-0123456789abcdef0"},
        {"tags": {"purpose": "llm"}},
    ]
    assert node_pool_spec(pool, "karpenter")["template"]["spec"]["requirements"][-1]["values"] == [
        "reserved",
        "on-demand",
    ]


def test_the_ec2_node_class_pins_the_ami_requires_imdsv2_with_one_hop_and_encrypts_the_root_volume():
    spec = ec2_node_class_spec(
        NodeClassSettings(role_name="ai-karpenter-node", disk_size_gib=200, tags={"team": "ml"}),
        "al2023@v20260714",
        {"karpenter.sh/discovery": "ai"},
    )
    assert spec == {
        "role": "ai-karpenter-node",
        "amiSelectorTerms": [{"alias": "al2023@v20260714"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ai"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ai"}}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "rootVolume": True,
                "ebs": {
                    "volumeSize": "200Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": {"team": "ml"},
    }


def test_the_auto_mode_node_class_names_subnets_and_security_group_by_id():
    spec = auto_node_class_spec(
        NodeClassSettings(role_name="ai-auto-node", disk_size_gib=150),
        ["subnet-0a", "subnet-0b"],
        ["sg-0c"],
        RESERVED,
    )
    assert spec == {
        "role": "ai-auto-node",
        "subnetSelectorTerms": [{"id": "subnet-0a"}, {"id": "subnet-0b"}],
        "securityGroupSelectorTerms": [{"id": "sg-0c"}],
        "ephemeralStorage": {"size": "150Gi"},
        "capacityReservationSelectorTerms": [{"id": "cr-0123456789abcdef0"}, {"tags": {"purpose": "llm"}}],
    }


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (dict(max_gpus=2), ("max_gpus", "2 cannot hold one g5.12xlarge (4)")),
        (dict(max_cpu=40), ("max_cpu", "40 cannot hold one g5.12xlarge (48)")),
        (
            dict(instance_types=("m6i.large",)),
            ("instance_types", "'m6i.large' is not a GPU type of the instance type table"),
        ),
        (
            dict(instance_types=("g5.xlarge", "g5g.xlarge")),
            ("instance_types", "mix x86_64 and arm64 types in separate pools"),
        ),
        (
            dict(capacity_types=("spot", "spot")),
            ("capacity_types", "one or more of spot, on-demand, reserved, each once"),
        ),
        (
            dict(reservations=RESERVED),
            ("reservations", "the pool never launches into them without capacity type 'reserved'"),
        ),
        (
            dict(name="gpu", capacity_types=("reserved",), reservations=RESERVED),
            ("name", "'gpu' names the shared GPU node class: give a pool with reservations another name"),
        ),
        (
            dict(capacity_types=("reserved",)),
            ("capacity_types", "'reserved' needs capacity reservations to select"),
        ),
        (
            dict(
                capacity_types=("reserved", "on-demand"),
                reservations=CapacityReservations(ids=("cr-0a1",), capacity_block=True),
            ),
            ("capacity_types", "a Capacity Block pool runs on reserved capacity only"),
        ),
        (
            dict(labels={"karpenter.sh/capacity-type": "spot"}),
            ("labels", "karpenter.sh/capacity-type are set by the platform, Karpenter or EKS"),
        ),
        (
            dict(disruption=Disruption(max_nodes="every")),
            ("disruption.max_nodes", "a node count or a percentage such as 1 or 10%"),
        ),
        (
            dict(disruption=Disruption(blocked=(BlockedWindow("at nine", "8h"),))),
            ("disruption.blocked", "'at nine' is not a 5-field cron schedule"),
        ),
    ],
)
def test_each_bad_pool_field_is_named(changes, problem):
    assert problem in pool_problems(training_pool(**changes))


def test_a_good_pool_has_no_problem_and_duplicates_are_refused():
    assert pool_problems(training_pool()) == []
    assert pools_problems([training_pool(), training_pool()]) == [("pools", "duplicate names: training")]
