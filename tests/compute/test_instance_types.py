"""The instance type table: the values it holds and the pod density EKS derives from them."""

from __future__ import annotations

import pytest

from aiplatform.compute import instance_types
from aiplatform.compute.instance_types import (
    A10G,
    INSTANCE_TYPES,
    L40S,
    GpuModel,
    InstanceType,
    add_instance_types,
    gpu_family,
    gpu_instance_families,
    lookup,
    require,
)
from aiplatform.compute.node_groups import NodeGroupSpec, is_arm_instance, specs_problems
from aiplatform.errors import ArgumentsError


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
        assert (entry.family in gpu_instance_families()) == (entry.gpu is not None), name
        assert (entry.gpus > 0) == (entry.gpu is not None), name
        assert is_arm_instance(name) == (entry.arch == "arm64"), name


def test_accelerator_labels_name_one_model_each():
    models = {entry.gpu for entry in INSTANCE_TYPES.values() if entry.gpu}
    assert len({m.accelerator for m in models}) == len(models)


def test_unknown_types_are_named_with_where_to_add_them():
    assert lookup("x9.huge") is None
    with pytest.raises(KeyError) as caught:
        require("x9.huge")
    assert caught.value.args[0] == (
        "'x9.huge' is not in the instance type table: add its vCPUs, memory, ENI limits and GPUs (in a "
        "program: aiplatform.compute.instance_types.add_instance_types(InstanceType(...)) before building; in "
        "the library's repository: components/compute/instance_types.py)"
    )


# A GPU type the table does not know, as a program that installs the library would describe it.
G7 = InstanceType("g7.2xlarge", 8, 32 * 1024, 4, 15, gpu=GpuModel("NVIDIA L20", 48, "nvidia-l20"), gpus=1)


@pytest.fixture
def g7():
    """``G7`` added for one test (the table is the process's)."""
    yield G7
    instance_types._TABLE.pop(G7.name, None)


def test_a_program_adds_a_type_the_table_lacks_and_the_components_then_know_it(g7):
    gpu = NodeGroupSpec(name="gpu-l20", role="gpu", instance_types=(g7.name,), min_size=0, max_size=3)
    assert [p for p in specs_problems([gpu]) if "instance type table" in p[1]]

    add_instance_types(g7)
    add_instance_types(g7)  # the same values again: nothing changes

    assert specs_problems([gpu]) == []
    assert gpu.resolved_gpus_per_node == 1 and gpu.resolved_accelerator == "nvidia-l20"
    assert gpu_family("g7") is True and "g7" in gpu_instance_families()
    fit = gpu.placement.fit
    assert fit is not None and (fit.gpus_per_node, fit.max_nodes) == (1, 3)


def test_a_type_added_with_other_values_or_impossible_ones_is_refused(g7):
    with pytest.raises(ArgumentsError) as caught:
        add_instance_types(
            InstanceType("m6i.large", 4, 8192, 3, 10),
            InstanceType("nodot", 0, 1024, 1, 1),
            InstanceType("g7.xlarge", 4, 16384, 4, 15, gpus=1),
            {"name": "g7.4xlarge"},  # type: ignore[arg-type]
        )
    assert caught.value.problems == [
        (
            "types[0]",
            f"'m6i.large' is in the table already, with other values ({lookup('m6i.large')})",
        ),
        ("types[1]", "'nodot' is not an instance type name (family.size, e.g. g6.xlarge)"),
        ("types[1]", "vcpus must be >= 1"),
        ("types[2]", "give gpu (its GpuModel) and gpus (> 0) together, or neither"),
        ("types[3]", "got a dict, expected InstanceType: pass InstanceType(...)"),
    ]
    assert lookup("nodot") is None and lookup("g7.xlarge") is None  # nothing added when one is bad


def test_the_table_is_read_only():
    with pytest.raises(TypeError):
        instance_types.INSTANCE_TYPES["t3.large"] = require("m6i.large")  # type: ignore[index]
