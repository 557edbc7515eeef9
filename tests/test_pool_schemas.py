"""The pool objects validate strictly against schemas written from their documentation, and those
schemas refuse what the APIs refuse."""

from __future__ import annotations

import copy

import pytest

from aiplatform.compute.auto_mode import SystemPoolSpec, system_node_pool_spec
from aiplatform.compute.pools import (
    NodeClassSettings,
    auto_node_class_spec,
    ec2_node_class_spec,
    node_pool_spec,
)
from tests.compute.test_karpenter import RESERVED
from tests.compute.test_pools import training_pool
from tests.crd_schemas import problems

SETTINGS = NodeClassSettings(role_name="ai-nodes", disk_size_gib=200, tags={"team": "ml"})


def node_pool(spec: dict, name: str = "training") -> dict:
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name}, "spec": spec}


def ec2_node_class(spec: dict) -> dict:
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "gpu"},
        "spec": spec,
    }


def auto_node_class(spec: dict) -> dict:
    return {
        "apiVersion": "eks.amazonaws.com/v1",
        "kind": "NodeClass",
        "metadata": {"name": "gpu"},
        "spec": spec,
    }


@pytest.mark.parametrize("provisioner", ["karpenter", "auto-mode"])
@pytest.mark.parametrize("pool", [training_pool(), RESERVED], ids=["spot-pool", "capacity-block-pool"])
def test_node_pools_validate(pool, provisioner):
    assert problems(node_pool(node_pool_spec(pool, provisioner))) == []


def test_the_auto_mode_system_pool_validates():
    spec = system_node_pool_spec(SystemPoolSpec(instance_types=("m6i.xlarge",), max_nodes=3))
    assert problems(node_pool(spec, "system")) == []


def test_node_classes_validate():
    discovery = {"karpenter.sh/discovery": "ai"}
    assert (
        problems(
            ec2_node_class(
                ec2_node_class_spec(SETTINGS, "al2023@v20260714", discovery, RESERVED.reservations)
            )
        )
        == []
    )
    assert (
        problems(
            auto_node_class(auto_node_class_spec(SETTINGS, ["subnet-0a"], ["sg-0b"], RESERVED.reservations))
        )
        == []
    )


def test_the_schemas_refuse_unknown_fields_bad_enums_and_half_budgets():
    spec = node_pool_spec(training_pool(), "karpenter")
    bad = copy.deepcopy(spec)
    bad["template"]["spec"]["nodeClass"] = "gpu"
    bad["disruption"]["consolidationPolicy"] = "Always"
    bad["disruption"]["budgets"].append({"nodes": "0", "schedule": "0 9 * * *"})
    found = problems(node_pool(bad))
    assert any("'nodeClass' was unexpected" in p for p in found)
    assert any(p.startswith("spec.disruption.consolidationPolicy: 'Always' is not one of") for p in found)
    assert any(
        p.startswith("spec.disruption.budgets.2: 'duration' is a dependency of 'schedule'") for p in found
    )


def test_the_ec2_node_class_schema_refuses_imds_v1_values_and_restricted_tags():
    spec = ec2_node_class_spec(SETTINGS, "al2023@v20260714", {"karpenter.sh/discovery": "ai"})
    spec["metadataOptions"]["httpTokens"] = "none"
    spec["tags"]["karpenter.sh/nodepool"] = "x"
    del spec["role"]
    found = problems(ec2_node_class(spec))
    assert any(p.startswith("spec.metadataOptions.httpTokens: 'none' is not one of") for p in found)
    assert any("karpenter.sh/nodepool" in p for p in found)
    assert any("is not valid under any of the given schemas" in p for p in found)  # neither role nor profile
