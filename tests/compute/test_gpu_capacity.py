"""GPU node groups and GPU pools read alike: one interface, and one answer to "is this a GPU instance"."""

from __future__ import annotations

from aiplatform.compute.instance_types import INSTANCE_TYPES, gpu_family, gpu_instance_families
from aiplatform.compute.node_groups import placement_for
from aiplatform.compute.pools import placement_for_pool
from aiplatform.scheduling import GPU_TAINT
from tests.compute.test_node_groups import GPU, H100, SYSTEM, TRAINING_TAINT
from tests.compute.test_pools import SPOT_TAINT, training_pool


def test_a_gpu_group_and_a_pool_carry_the_gpu_taint_first():
    assert H100.node_taints == (GPU_TAINT, TRAINING_TAINT)
    assert training_pool().node_taints == (GPU_TAINT, SPOT_TAINT)
    assert training_pool(taints=(GPU_TAINT, SPOT_TAINT)).node_taints == (GPU_TAINT, SPOT_TAINT)
    assert SYSTEM.node_taints == ()


def test_a_gpu_group_and_a_pool_answer_the_same_questions():
    pool = training_pool()
    assert (GPU.min_nodes, GPU.max_nodes) == (GPU.min_size, GPU.max_size)
    assert (pool.min_nodes, pool.max_nodes) == (0, 4)  # its limits: 16 GPUs, 192 vCPUs of 4-GPU 48-vCPU nodes
    assert GPU.placement == placement_for(GPU) and pool.placement == placement_for_pool(pool)
    assert (GPU.max_gpus_per_node, GPU.accelerator_label) == (1, "nvidia-a10g")
    assert (pool.max_gpus_per_node, pool.accelerator_label) == (4, None)  # L40S and A10G
    assert GPU.chooses_type_per_pod is False and pool.chooses_type_per_pod is True
    assert GPU.is_gpu and pool.is_gpu and not SYSTEM.is_gpu


def test_gpu_families_are_the_instance_type_tables():
    assert {t.family for t in INSTANCE_TYPES.values() if t.gpu is not None} == gpu_instance_families()
    assert gpu_family("g5") is True
    assert gpu_family("m7i") is False
    assert gpu_family("p5e") is None  # a family the table knows no size of
