"""The instance type table: the values it holds and the pod density EKS derives from them."""

from __future__ import annotations

import pytest

from aiplatform.compute import instance_types
from aiplatform.compute.instance_types import (
    A10G,
    GPU_INSTANCE_FAMILIES,
    INSTANCE_TYPES,
    L40S,
    lookup,
    require,
)
from aiplatform.compute.node_groups import is_arm_instance


@pytest.mark.parametrize(
    ("name", "eni_max_pods", "max_pods"),
    [
        ("t3.large", 35, 35),  # 3 x (12 - 1) + 2
        ("m6i.large", 29, 29),
        ("m6i.xlarge", 58, 58),
        ("g5.xlarge", 58, 58),
        ("g5.12xlarge", 737, 250),  # 48 vCPUs: the managed node group cap is 250
        ("g6e.12xlarge", 292, 250),
        ("p4d.24xlarge", 737, 250),
        ("g5.4xlarge", 234, 110),  # 16 vCPUs: capped at 110
        ("p5.48xlarge", 100, 100),
    ],
)
def test_max_pods_follow_the_eni_formula_under_the_managed_node_group_cap(name, eni_max_pods, max_pods):
    entry = require(name)
    assert (entry.eni_max_pods, entry.max_pods) == (eni_max_pods, max_pods)


def test_gpu_entries_name_model_count_and_memory():
    g5 = require("g5.12xlarge")
    assert (g5.gpu, g5.gpus, g5.gpu_memory_gib, g5.vcpus, g5.memory_mib) == (A10G, 4, 96, 48, 196608)
    g6e = require("g6e.12xlarge")
    assert (g6e.gpu, g6e.gpus, g6e.gpu_memory_gib, g6e.memory_mib) == (L40S, 4, 192, 393216)
    assert (A10G.accelerator, L40S.accelerator) == ("nvidia-a10g", "nvidia-l40s")
    assert require("t3.large").gpu is None and require("t3.large").gpus == 0


def test_every_entry_agrees_with_the_family_and_architecture_rules():
    for name, entry in INSTANCE_TYPES.items():
        assert entry.name == name
        assert (entry.family in GPU_INSTANCE_FAMILIES) == (entry.gpu is not None), name
        assert (entry.gpus > 0) == (entry.gpu is not None), name
        assert is_arm_instance(name) == (entry.arch == "arm64"), name


def test_accelerator_labels_name_one_model_each():
    models = {entry.gpu for entry in INSTANCE_TYPES.values() if entry.gpu}
    assert len({m.accelerator for m in models}) == len(models)


def test_unknown_types_are_named_with_where_to_add_them():
    assert lookup("x9.huge") is None
    with pytest.raises(
        KeyError,
        match=r"'x9.huge' is not in the instance type table \(components/compute/instance_types.py\)",
    ):
        require("x9.huge")


def test_the_table_is_read_only():
    with pytest.raises(TypeError):
        instance_types.INSTANCE_TYPES["t3.large"] = require("m6i.large")  # type: ignore[index]
