"""The scale table: program over floor per operation, the checkpoint cost per size, failed sizes named."""

from __future__ import annotations

from tools.e2e.scale import OPERATIONS, table


def _size(services: int, program: float, floor: float, checkpointed: float | None) -> dict:
    return {
        "services": services,
        "resources": services * 20,
        "parallel": 32,
        "program_seconds": dict.fromkeys(OPERATIONS, program),
        "floor_seconds": dict.fromkeys(OPERATIONS, floor),
        "ratio": dict.fromkeys(OPERATIONS, round(program / floor, 2)),
        "floor_up_with_checkpoints_seconds": checkpointed,
        "peak_memory_mib": {"engine": 100.0},
    }


def test_rows_show_program_floor_and_ratio():
    text = table([_size(10, 30.0, 12.0, 24.0)])
    row = next(line for line in text.splitlines() if line.split()[:2] == ["10", "200"])
    assert row.count("30.0/ 12.0= 2.50") == len(OPERATIONS)


def test_checkpoint_cost_is_relative_to_the_same_up_without():
    text = table([_size(50, 100.0, 40.0, 160.0)])
    assert "160.0 s (x4.00 the same up without)" in text


def test_sizes_without_the_checkpoint_figure_are_left_out_of_its_lines():
    text = table([_size(100, 100.0, 40.0, None)])
    assert "the same up without" not in text
    assert "engine parallel 32;" in text


def test_a_failed_size_is_named_not_dropped():
    text = table([_size(10, 30.0, 12.0, 24.0), {"services": 100, "error": ["timed out after 1800 s"]}])
    assert "100  failed: ['timed out after 1800 s']" in text
    assert "peak memory at 100" not in text


def test_step_summary_groups_steps_by_type_and_leaves_out_unfinished_ones():
    from tools.e2e.scale import step_summary

    urn = "urn:pulumi:s::p::aiplatform:workloads:InferenceService$kubernetes:core/v1:Service::{}"
    steps = {urn.format("a"): [8.0, 18.0], urn.format("b"): [9.0, 20.5], urn.format("c"): [30.0, -1.0]}
    assert step_summary(steps) == {
        "kubernetes:core/v1:Service": {
            "count": 2,
            "median_s": 11.5,
            "max_s": 11.5,
            "first_start_s": 8.0,
            "last_end_s": 20.5,
        }
    }


def test_last_steps_name_what_ended_the_up_without_the_stack_and_components():
    from tools.e2e.scale import last_steps

    prefix = "urn:pulumi:s::p::aiplatform:index:AiPlatform$aiplatform:workloads:InferenceService$"
    steps = {
        "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s": [0.4, 36.1],
        prefix[: -len("$")] + "::llama": [2.0, 36.0],
        prefix + "kubernetes:apps/v1:Deployment::llama-deployment": [4.5, 36.0],
        prefix + "kubernetes:core/v1:Service::llama-service": [3.2, 3.3],
        prefix + "kubernetes:networking.k8s.io/v1:Ingress::llama-ingress": [8.5, 9.8],
        prefix + "kubernetes:autoscaling/v2:HorizontalPodAutoscaler::llama-hpa": [36.0, -1.0],
    }
    assert last_steps(steps, 2) == [
        {
            "name": "llama-ingress",
            "type": "kubernetes:networking.k8s.io/v1:Ingress",
            "start_s": 8.5,
            "end_s": 9.8,
        },
        {"name": "llama-deployment", "type": "kubernetes:apps/v1:Deployment", "start_s": 4.5, "end_s": 36.0},
    ]
