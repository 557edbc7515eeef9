"""Config rules of alerting: every mistake names its key path."""

from __future__ import annotations

import pytest

from aiplatform.config import ConfigError, parse_settings
from tests.stacks import sections
from tests.test_config import _drop, _set

RECEIVER = "observability.alerting.receiver"

INVALID = [
    (
        "prod",
        _drop(RECEIVER),
        "aiplatform:observability.alerting.receiver: required when alerting is enabled: {type: slack | pagerduty, "
        "secret, key} naming the secret (namespace: monitoring) that holds the webhook URL or routing key",
    ),
    (
        "prod",
        _set("observability.alerting.enabled", False),
        "aiplatform:observability.alerting.enabled: prod must deliver its alerts: enable alerting with a receiver "
        "(Slack or PagerDuty)",
    ),
    (
        "prod",
        _set(f"{RECEIVER}.secret", "pagerduty-key"),
        "aiplatform:observability.alerting.receiver.secret: no secret 'pagerduty-key' in namespace 'monitoring': "
        "declare it under secrets with namespace: monitoring",
    ),
    (
        "prod",
        _set(f"{RECEIVER}.key", "url"),
        "aiplatform:observability.alerting.receiver.key: secret 'alertmanager-receiver' has no key 'url'",
    ),
    (
        "prod",
        _set(f"{RECEIVER}.type", "pagerduty"),
        "aiplatform:observability.alerting.receiver.channel: only a Slack receiver posts to a channel",
    ),
    (
        "prod",
        _set(f"{RECEIVER}.type", "email"),
        "aiplatform:observability.alerting.receiver.type: Input should be 'slack' or 'pagerduty'",
    ),
    (
        "prod",
        _set(f"{RECEIVER}.channel", "ml alerts"),
        "aiplatform:observability.alerting.receiver.channel: String should match pattern "
        "'^[#@][A-Za-z0-9._-]{1,80}$'",
    ),
    (
        "prod",
        _set("observability.enabled", False),
        "aiplatform:observability.alerting.enabled: needs enabled: true (Alertmanager is part of the metrics stack)",
    ),
    (
        "prod",
        _set("observability", {"enabled": False}),
        "aiplatform:secrets[1].namespace: 'monitoring' exists only with observability.enabled: true",
    ),
    (
        "prod",
        _set("observability.alerting.gpuMemoryPercent", 120),
        "aiplatform:observability.alerting.gpuMemoryPercent: Input should be less than or equal to 100",
    ),
    (
        "dev",
        _set("observability.alerting", {"enabled": True}),
        "aiplatform:observability.alerting.receiver: required when alerting is enabled: {type: slack | pagerduty, "
        "secret, key} naming the secret (namespace: monitoring) that holds the webhook URL or routing key",
    ),
    (
        "dev",
        _set("secrets[0].namespace", "ml-inference"),
        "aiplatform:secrets[0].namespace: 'ml-inference' is not declared in namespaces",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), INVALID, ids=[e for _, _, e in INVALID])
def test_an_alerting_mistake_names_its_key_path(stack, mutate, expected):
    config = sections(stack)
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert expected in caught.value.problems, caught.value.problems


def test_a_pagerduty_receiver_needs_no_channel():
    config = sections("prod")
    config["observability"]["alerting"]["receiver"] = {
        "type": "pagerduty",
        "secret": "alertmanager-receiver",
        "key": "webhook-url",
    }
    settings = parse_settings(config)
    assert settings.observability.alerting.receiver.type == "pagerduty"


def test_alerting_is_off_unless_asked_for_outside_prod():
    settings = parse_settings(sections("dev"))
    assert settings.observability.alerting.enabled is False
    assert settings.observability.alerting.gpuMemoryPercent == 95
