"""The one error every component raises for bad arguments."""

import pulumi
import pytest

from components.errors import ArgumentsError, path, require, under


def test_path_reads_as_the_caller_writes_it():
    assert path("specs", 1, "max_size") == "specs[1].max_size"
    assert path(0, "name") == "[0].name"
    assert path("model", "", "bucket") == "model.bucket"


def test_under_nests_paths():
    assert under("model", [("bucket", "bad"), ("", "missing")]) == [
        ("model.bucket", "bad"),
        ("model", "missing"),
    ]
    assert under(2, [("name", "bad")]) == [("[2].name", "bad")]
    assert under("custom_metrics", [("[0].series", "bad")]) == [("custom_metrics[0].series", "bad")]


def test_require_raises_every_problem_at_once():
    with pytest.raises(ArgumentsError) as raised:
        require("NodeGroups 'nodes'", [("specs[1].max_size", "must be >= 1"), ("", "needs a system group")])
    error = raised.value
    assert isinstance(error, pulumi.InputPropertiesError) and isinstance(error, ValueError)
    assert str(error) == "NodeGroups 'nodes':\n  - specs[1].max_size: must be >= 1\n  - needs a system group"
    assert error.errors == [
        {"property_path": "specs[1].max_size", "reason": "must be >= 1"},
        {"property_path": "", "reason": "needs a system group"},
    ]


def test_require_is_silent_without_problems():
    assert require("anything", []) is None


def test_a_dict_where_an_args_object_is_expected_is_named_before_any_check_reads_it():
    from aiplatform.errors import type_problems
    from aiplatform.podspec import Resources
    from aiplatform.workloads import Autoscaling, TrainingJobArgs

    args = TrainingJobArgs(
        provider=None,
        namespace="training",
        image="example.com/train:1",
        resources={"cpu": "1"},
        command=["x"],
    )
    assert type_problems(args) == [("resources", "got a dict, expected Resources: pass Resources(...)")]
    assert args.problems() == type_problems(args)
    fine = TrainingJobArgs(
        provider=None,
        namespace="training",
        image="example.com/train:1",
        resources=Resources("1", "1Gi"),
        command=["x"],
    )
    assert type_problems(fine) == []  # None is fine for an optional one (placement, shared_volume)
    assert type_problems(Autoscaling()) == []
