"""The pure validators of AWS and Kubernetes limits."""

from __future__ import annotations

import pytest

from aiplatform import validation


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("team", True),
        ("example.com/team", True),
        ("a.b-c_d", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("team_", False),
        ("-team", False),
        ("Example.com/team", False),
        ("/team", False),
        ("example.com/", False),
        ("a/b/c", False),
    ],
)
def test_label_keys(key, ok):
    assert (validation.label_key(key) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"), [("", True), ("ml", True), ("v" * 63, True), ("v" * 64, False), ("a b", False)]
)
def test_label_values(value, ok):
    assert (validation.label_value(value) is None) is ok


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("team", None),
        ("cost center", None),
        ("équipe", None),
        ("a:b/c=d+e-f@g_h.i", None),
        ("", "tag keys are 1 to 128 characters"),
        ("k" * 128, None),
        ("k" * 129, "tag keys are 1 to 128 characters"),
        ("AWS:name", "the aws: prefix is reserved for AWS"),
        ("team#1", "tag keys hold letters, digits, spaces and _ . : / = + - @ only"),
        ("line\nbreak", "tag keys hold letters, digits, spaces and _ . : / = + - @ only"),
    ],
)
def test_aws_tag_keys(key, problem):
    assert validation.aws_tag_key(key) == problem


def test_aws_tag_values():
    assert validation.aws_tag_value("") is None
    assert validation.aws_tag_value("v" * 256) is None
    assert validation.aws_tag_value("v" * 257) == "tag values are at most 256 characters"
    assert (
        validation.aws_tag_value("a*b") == "tag values hold letters, digits, spaces and _ . : / = + - @ only"
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("MODEL_DIR", True),
        ("model.dir", True),  # Kubernetes accepts more than C identifiers
        ("-x", True),
        ("_x9", True),
        ("9LIVES", False),
        ("A B", False),
        ("", False),
    ],
)
def test_env_names_are_what_kubernetes_accepts(name, ok):
    assert (validation.env_name(name) is None) is ok


def test_one_copy_of_each_aws_and_kubernetes_constant():
    assert validation.kubernetes_version(validation.DEFAULT_KUBERNETES_VERSION) is None
    assert (
        validation.kubernetes_version("1.20") == "'1.20' is not supported (supported: 1.33, 1.34, 1.35, 1.36)"
    )
    assert validation.log_retention_days(90) is None
    assert validation.log_retention_days(10).startswith("10 is not a CloudWatch retention (one of 1, 3, 5,")


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (validation.config_key, "config.json", "a/b"),
        (validation.metric_name, "vllm:requests_running", "2xx"),
        (validation.slack_channel, "#ml-alerts", "ml-alerts"),
        (validation.duration, "1.5h", "1d"),
        (validation.prometheus_duration, "15d", "1.5h"),
        (validation.ipv4_cidr, "10.0.0.0/16", "fd00::/56"),
    ],
)
def test_rules_shared_by_the_config_and_the_components(check, good, bad):
    assert check(good) is None
    assert check(bad)


@pytest.mark.parametrize(
    ("value", "written_back"),
    [
        ("15m", "15m0s"),
        ("1h", "1h0m0s"),
        ("1h30m", "1h30m0s"),
        ("90s", "1m30s"),
        ("30s", "30s"),
        ("0s", "0s"),
        ("1.5s", "1.5s"),
        ("500ms", "500ms"),
        ("1m30.25s", "1m30.25s"),
        ("1h0m0s", "1h0m0s"),
    ],
)
def test_durations_in_the_form_a_go_controller_writes_them_back(value, written_back):
    assert validation.go_duration(value) == written_back


def test_go_duration_refuses_what_is_not_a_duration():
    with pytest.raises(ValueError, match="not a duration"):
        validation.go_duration("hourly")
