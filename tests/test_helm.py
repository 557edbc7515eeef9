"""Helm's merge, modelled: what survives of a chart's defaults is what the program states."""

from __future__ import annotations

import pytest
import yaml

from aiplatform.catalog.helm import (
    coalesce,
    effective_resources,
    helm_release,
    merge_maps,
    unset_chart_defaults,
    unstated_resources,
)
from aiplatform.catalog.registry import ADD_ONS

DCGM_DEFAULTS = {"limits": {"cpu": "200m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
STATED = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def test_a_partial_map_keeps_the_chart_default_that_a_null_removes():
    # The defect: Helm merges maps, so a memory limit alone keeps the chart's 200m CPU limit.
    assert coalesce(DCGM_DEFAULTS, STATED)["limits"] == {"cpu": "200m", "memory": "512Mi"}
    assert coalesce(DCGM_DEFAULTS, merge_maps({"limits": {"cpu": None}}, STATED)) == STATED


def test_values_win_over_the_nulls_of_a_values_file():
    nulls = {"limits": {"cpu": None, "memory": None}}
    assert merge_maps(nulls, STATED) == {
        "limits": {"cpu": None, "memory": "512Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }
    # Lists and scalars replace; maps merge key by key.
    assert merge_maps({"a": [1, 2], "b": {"c": 1}}, {"a": [3], "b": {"d": 2}}) == {
        "a": [3],
        "b": {"c": 1, "d": 2},
    }


def test_every_default_key_of_a_chart_is_unset():
    assert unset_chart_defaults("dcgm-exporter") == {
        "resources": {
            "limits": {"cpu": None, "memory": None},
            "requests": {"cpu": None, "memory": None},
        }
    }
    assert unset_chart_defaults("ingress-nginx") == {
        "controller": {"resources": {"requests": {"cpu": None, "memory": None}}}
    }
    assert unset_chart_defaults("cluster-autoscaler") == {}


def test_effective_resources_are_exactly_the_stated_ones():
    values = {"resources": STATED}
    assert effective_resources("dcgm-exporter", values) == {
        "resources": {
            "limits": {"cpu": "200m", "memory": "512Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        }
    }
    assert effective_resources("dcgm-exporter", values, [unset_chart_defaults("dcgm-exporter")]) == {
        "resources": STATED
    }


def test_unstated_resources_are_named_by_their_value_path():
    values = {"controller": {"resources": STATED}}
    assert unstated_resources("ingress-nginx", values) == [
        "controller.admissionWebhooks.createSecretJob.resources",
        "controller.admissionWebhooks.patchWebhookJob.resources",
    ]


def test_a_release_refuses_unstated_resources_and_unrecorded_charts():
    with pytest.raises(ValueError, match=r"^dcgm-exporter: state the resources of resources$"):
        helm_release(
            "x", chart="dcgm-exporter", version="4.8.3", repository="r", namespace="n", values={}, opts=None
        )
    with pytest.raises(ValueError, match="'mystery': its resources defaults are not recorded"):
        helm_release(
            "x", chart="mystery", version="1.0.0", repository="r", namespace="n", values={}, opts=None
        )


def test_a_release_carries_the_nulls_as_a_values_file(build, monitor):
    build(
        lambda: helm_release(
            "dcgm",
            chart="dcgm-exporter",
            version="4.8.3",
            repository="https://example.com/charts",
            namespace="gpu",
            values={"resources": STATED},
            opts=None,
        )
    )
    inputs = monitor.named("dcgm").inputs
    assert inputs["name"] == inputs["chart"] == "dcgm-exporter"
    assert inputs["values"] == {"resources": STATED}
    (file,) = inputs["valueYamlFiles"]
    assert yaml.safe_load(file["text"]) == unset_chart_defaults("dcgm-exporter")
    assert effective_resources("dcgm-exporter", inputs["values"], [yaml.safe_load(file["text"])]) == {
        "resources": STATED
    }


def test_every_recorded_path_ends_in_resources():
    for addon in ADD_ONS:
        for path in addon.resources:
            assert path[-1] == "resources", (addon.chart, path)
