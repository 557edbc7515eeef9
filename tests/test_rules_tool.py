"""make test-rules' own parts: the rule files it hands promtool (promtool itself runs in make test-rules)."""

from __future__ import annotations

import json

import yaml

from tools.rules import UNIT_TESTS, adapter_queries, alert_rules


def test_the_alert_rule_file_is_the_prometheus_rules_spec(tmp_path):
    groups = [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]
    manifests = tmp_path / "manifests.yaml"
    manifests.write_text(
        yaml.safe_dump_all(
            [
                {"kind": "ConfigMap", "metadata": {"name": "x"}},
                {
                    "kind": "PrometheusRule",
                    "metadata": {"name": "aiplatform-alerts"},
                    "spec": {"groups": groups},
                },
            ]
        )
    )
    assert alert_rules(manifests) == {"groups": groups}


def test_the_adapter_queries_become_recording_rules_with_their_templates_filled(tmp_path):
    rule = {
        "seriesQuery": 'http_requests_total{namespace!="",pod!=""}',
        "name": {"matches": "^http_requests_total$", "as": "requests_per_second"},
        "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
    }
    resources = tmp_path / "resources.json"
    release = {"type": "kubernetes:helm.sh/v3:Release", "inputs": {"chart": "prometheus-adapter"}}
    release["inputs"]["values"] = {"rules": {"custom": [rule]}}
    resources.write_text(json.dumps([release]))
    assert adapter_queries(resources) == {
        "groups": [
            {
                "name": "prometheus-adapter",
                "rules": [
                    {
                        "record": "aiplatform:adapter_series:requests_per_second",
                        "expr": 'http_requests_total{namespace!="",pod!=""}',
                    },
                    {
                        "record": "aiplatform:adapter:requests_per_second",
                        "expr": 'sum(rate(http_requests_total{namespace="ml-serving",'
                        'pod=~"llama-inference-0|llama-inference-1"}[2m])) by (pod)',
                    },
                ],
            }
        ]
    }


def test_the_unit_tests_read_the_rule_file_the_tool_writes():
    (dev,) = UNIT_TESTS.glob("*.yaml")
    assert yaml.safe_load(dev.read_text())["rule_files"] == ["../../build/dev/promtool/alerts.yaml"]
