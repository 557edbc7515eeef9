import pulumi_kubernetes as k8s
import pytest

from aiplatform.addons.observability import (
    AlertReceiver,
    CustomMetricRule,
    MetricsStack,
    MetricsStackArgs,
    adapter_rules,
    served_metric_names,
)
from aiplatform.compute.node_groups import NodeGroupSpec
from aiplatform.scheduling import Taint, toleration_from_dict, untolerated
from tests.conftest import resolve

SPOT_TAINT = Taint(key="aiplatform.io/spot", value="true", effect="NoSchedule")
RESERVED_TAINT = Taint(key="aiplatform.io/reserved", value="team-a", effect="NoExecute")
NODE_GROUPS = [
    NodeGroupSpec(name="system"),
    NodeGroupSpec(
        name="gpu-a10g", role="gpu", instance_types=("g5.xlarge",), accelerator="nvidia-a10g", gpus_per_node=1
    ),
    NodeGroupSpec(
        name="gpu-spot",
        role="gpu",
        instance_types=("g6e.12xlarge",),
        capacity_type="SPOT",
        accelerator="nvidia-l40s",
        gpus_per_node=4,
        taints=(SPOT_TAINT, RESERVED_TAINT),
    ),
]

METRICS = [
    CustomMetricRule(name="requests_per_second", series="http_requests_total", kind="rate", window="2m"),
    CustomMetricRule(name="queue_depth", series="vllm:num_requests_waiting", kind="gauge"),
]


def test_adapter_rules_name_each_metric_exactly():
    rules = adapter_rules(METRICS)
    assert rules == [
        {
            "seriesQuery": 'http_requests_total{namespace!="",pod!=""}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"matches": "^http_requests_total$", "as": "requests_per_second"},
            "metricsQuery": "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
        },
        {
            "seriesQuery": 'vllm:num_requests_waiting{namespace!="",pod!=""}',
            "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
            "name": {"matches": "^vllm:num_requests_waiting$", "as": "queue_depth"},
            "metricsQuery": "avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
        },
    ]
    assert served_metric_names(rules) == {"requests_per_second", "queue_depth"}
    assert served_metric_names(adapter_rules([])) == set()


def test_adapter_rules_reject_bad_and_duplicate_metrics():
    with pytest.raises(ValueError) as err:
        adapter_rules(
            [
                CustomMetricRule(name="rps", series="http requests"),
                CustomMetricRule(name="rps", series="x", kind="sum", window="2 minutes"),
            ]
        )
    message = str(err.value)
    for part in ("[0].series", "[1].name", "[1].kind", "[1].window"):
        assert part in message, part


def stack(build, **overrides):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        values = dict(
            provider=provider,
            prometheus_chart_version="75.6.1",
            adapter_chart_version="5.1.0",
            custom_metrics=METRICS,
        )
        values.update(overrides)
        return provider, MetricsStack("metrics", MetricsStackArgs(**values))

    return build(program)


def test_metrics_stack_releases(build, monitor):
    provider, metrics = stack(build)
    prometheus = monitor.named("metrics-prometheus")
    adapter = monitor.named("metrics-adapter")

    assert monitor.named("metrics-ns").inputs["metadata"]["name"] == "monitoring"
    for release, chart, version in (
        (prometheus, "kube-prometheus-stack", "75.6.1"),
        (adapter, "prometheus-adapter", "5.1.0"),
    ):
        assert release.inputs["chart"] == chart
        assert release.inputs["version"] == version
        assert release.inputs["namespace"] == "monitoring"
        assert release.inputs["repositoryOpts"] == {
            "repo": "https://prometheus-community.github.io/helm-charts"
        }
    assert prometheus.urn in adapter.dependencies

    values = adapter.inputs["values"]
    assert values["rules"] == {"default": False, "custom": adapter_rules(METRICS)}
    assert (values["replicas"], values["resources"]) == (
        2,
        {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    )
    assert values["prometheus"] == {
        "url": "http://kube-prometheus-stack-prometheus.monitoring.svc",
        "port": 9090,
        "path": "",
    }
    assert values["nodeSelector"] == {"aiplatform.io/node-role": "system"}
    assert metrics.served_metrics == {"requests_per_second", "queue_depth"}
    assert metrics.prometheus_url == "http://kube-prometheus-stack-prometheus.monitoring.svc"

    prom_values = prometheus.inputs["values"]
    assert prom_values["fullnameOverride"] == "kube-prometheus-stack"
    assert prom_values["grafana"]["enabled"] is False
    assert prom_values["alertmanager"]["enabled"] is False
    spec = prom_values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["nodeSelector"] == {"aiplatform.io/node-role": "system"}
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"] == {
        "storageClassName": "gp3",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "50Gi"}},
    }
    # Nothing scrapes what EKS never exposes (their *Down alerts would fire forever).
    for target in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        assert prom_values[target] == {"enabled": False}, target
    # The node exporter tolerates every taint, with or without node groups given.
    assert prom_values["prometheus-node-exporter"]["tolerations"] == [{"key": "", "operator": "Exists"}]

    provider_urn = resolve(provider.urn)
    children = [r for r in monitor.registrations if r.type.startswith("kubernetes:") and r.custom]
    assert len(children) == 3
    assert all(r.provider_urn == provider_urn for r in children)
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


def test_metrics_stack_options_and_overrides(build, monitor):
    stack(
        build,
        namespace="observability",
        grafana_enabled=True,
        alert_receiver=AlertReceiver(kind="pagerduty", secret="pagerduty", key="routing-key"),
        retention="30d",
        storage_size="200Gi",
        scrape_control_plane=True,
        prometheus_values={"prometheus": {"prometheusSpec": {"scrapeInterval": "15s"}}},
    )
    values = monitor.named("metrics-prometheus").inputs["values"]
    assert values["grafana"]["enabled"] is True
    assert "kubeEtcd" not in values and "kubeProxy" not in values
    assert values["alertmanager"]["enabled"] is True
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == ["pagerduty"]
    assert values["alertmanager"]["config"]["receivers"] == [
        {"name": "null"},
        {
            "name": "pagerduty",
            "pagerduty_configs": [
                {"routing_key_file": "/etc/alertmanager/secrets/pagerduty/routing-key", "send_resolved": True}
            ],
        },
    ]
    spec = values["prometheus"]["prometheusSpec"]
    assert (spec["retention"], spec["scrapeInterval"]) == ("30d", "15s")
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"] == {
        "requests": {"storage": "200Gi"}
    }
    adapter = monitor.named("metrics-adapter").inputs
    assert adapter["namespace"] == "observability"
    assert (
        adapter["values"]["prometheus"]["url"] == "http://kube-prometheus-stack-prometheus.observability.svc"
    )


def test_metrics_stack_lists_every_bad_field():
    with pytest.raises(ValueError) as err:
        MetricsStack(
            "bad",
            MetricsStackArgs(
                provider=None,
                prometheus_chart_version="latest",
                adapter_chart_version="5.x",
                custom_metrics=[CustomMetricRule(name="rps", series="bad series")],
                namespace="Monitoring",
                retention="two weeks",
                adapter_values={"rules": {"default": True}},
            ),
        )
    message = str(err.value)
    for part in (
        "prometheus_chart_version",
        "adapter_chart_version",
        "custom_metrics[0].series",
        "namespace",
        "retention",
        "adapter_values.rules",
    ):
        assert part in message, part


def test_the_node_exporter_tolerates_every_taint_of_every_node_group(build, monitor):
    stack(build, node_groups=NODE_GROUPS)
    exporter = monitor.named("metrics-prometheus").inputs["values"]["prometheus-node-exporter"]
    # Helm replaces lists: this is the whole list. Every taint, those of a group added later too
    # (NoExecute included, which the chart's own NoSchedule-only default misses).
    assert exporter["tolerations"] == [{"key": "", "operator": "Exists"}]
    later = Taint(key="example.com/dedicated", value="x", effect="NoExecute")
    assert untolerated([later], [toleration_from_dict(t) for t in exporter["tolerations"]]) == ()


def test_an_override_that_keeps_the_node_exporter_off_a_group_is_refused():
    with pytest.raises(ValueError) as err:
        MetricsStack(
            "narrow",
            MetricsStackArgs(
                provider=None,
                prometheus_chart_version="75.6.1",
                adapter_chart_version="5.1.0",
                node_groups=NODE_GROUPS,
                prometheus_values={
                    "prometheus-node-exporter": {
                        "tolerations": [
                            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                        ]
                    }
                },
            ),
        )
    assert str(err.value).endswith(
        "prometheus_values.prometheus-node-exporter.tolerations: node groups without node metrics: "
        "gpu-spot (aiplatform.io/spot=true:NoSchedule, aiplatform.io/reserved=team-a:NoExecute)"
    )


def test_alertmanager_delivers_to_slack_through_the_mounted_secret(build, monitor):
    stack(
        build,
        alert_receiver=AlertReceiver(kind="slack", secret="alerts", key="webhook-url", channel="#ml-alerts"),
    )
    alertmanager = monitor.named("metrics-prometheus").inputs["values"]["alertmanager"]
    assert alertmanager["enabled"] is True
    # The URL is read from the Secret's file: no Helm value, manifest or state holds it.
    assert alertmanager["alertmanagerSpec"]["secrets"] == ["alerts"]
    assert alertmanager["config"] == {
        "route": {
            "receiver": "slack",
            "group_by": ["namespace", "alertname"],
            "routes": [
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
            ],
        },
        "receivers": [
            {"name": "null"},
            {
                "name": "slack",
                "slack_configs": [
                    {
                        "api_url_file": "/etc/alertmanager/secrets/alerts/webhook-url",
                        "send_resolved": True,
                        "title": '{{ template "slack.default.title" . }}',
                        "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
                        "channel": "#ml-alerts",
                    }
                ],
            },
        ],
    }


def test_without_a_receiver_there_is_no_alertmanager(build, monitor):
    stack(build)
    alertmanager = monitor.named("metrics-prometheus").inputs["values"]["alertmanager"]
    assert alertmanager["enabled"] is False
    assert "config" not in alertmanager and "secrets" not in alertmanager["alertmanagerSpec"]


def test_a_bad_receiver_is_refused_with_every_problem():
    with pytest.raises(ValueError) as err:
        MetricsStack(
            "bad",
            MetricsStackArgs(
                provider=None,
                prometheus_chart_version="75.6.1",
                adapter_chart_version="5.1.0",
                alert_receiver=AlertReceiver(kind="pagerduty", secret="Bad_Name", key="a key", channel="#x"),
            ),
        )
    message = str(err.value)
    for part in (
        "alert_receiver.secret: 'Bad_Name' is not a Secret name",
        "alert_receiver.key: 'a key' is not a Secret key",
        "alert_receiver.channel: only a Slack receiver posts to a channel",
    ):
        assert part in message, part
