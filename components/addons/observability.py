"""Metrics for autoscaling: kube-prometheus-stack and prometheus-adapter, with the adapter rules
derived from the same metric list that the HPAs use.

The classic failure is an HPA asking for a custom metric that no adapter rule serves (a name
mismatch): the HPA reports ``FailedGetPodsMetric`` forever. ``adapter_rules`` names each served
metric exactly as given, and ``served_metric_names`` lets the config layer reject an HPA metric
that no rule serves before anything is deployed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.helm import helm_release
from ..catalog.registry import KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER
from ..compute.gpu_capacity import NodeCapacity
from ..compute.node_groups import untolerated_groups
from ..errors import Problem, path, require, type_problems, under
from ..scheduling import Toleration
from ..validation import (
    config_key,
    is_dns1123_label,
    is_quantity,
    metric_name,
    prometheus_duration,
    slack_channel,
)
from .alerts import KUBE_STATE_METRICS_LABELS
from .gpu import deep_merge

# fullnameOverride pins the chart's resource names, so the Prometheus service is
# "<PROMETHEUS_FULLNAME>-prometheus" whatever the release is called.
PROMETHEUS_FULLNAME = "kube-prometheus-stack"
PROMETHEUS_PORT = 9090
MONITORING_NAMESPACE = "monitoring"
# Where the Prometheus operator mounts the Secrets listed in alertmanagerSpec.secrets.
ALERTMANAGER_SECRETS_DIR = "/etc/alertmanager/secrets"
NODE_EXPORTER = "prometheus-node-exporter"  # the subchart's values key: a DaemonSet on every node
# Every taint, also those of a node group or pool added later: node metrics from every node (the values
# and the capacity model both take it from here).
NODE_EXPORTER_TOLERATIONS = (Toleration(key="", operator="Exists"),)
SYSTEM_NODE_SELECTOR = {"aiplatform.io/node-role": "system"}
# kube-prometheus-stack's scrape jobs for targets a managed EKS control plane never exposes: no
# controller-manager, scheduler or etcd endpoint, and EKS's kube-proxy serves metrics on 127.0.0.1
# only. Left on, each is down forever and fires its *Down alert; off, their rules go with them.
EKS_UNEXPOSED_TARGETS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")

# Requests to schedule by and a memory ceiling for every container of the two releases (no CPU limits:
# throttling a scraper or a controller only makes it late). Prometheus's memory grows with the series
# it holds: raise PROMETHEUS_RESOURCES through MetricsStackArgs.prometheus_resources for large clusters.
PROMETHEUS_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "500m", "memory": "2Gi"},
    "limits": {"memory": "4Gi"},
}
COMPONENT_RESOURCES: Mapping[str, Mapping[str, Any]] = {
    "alertmanager": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "operator": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "config-reloader": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
    "webhook-patch": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
    "kube-state-metrics": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    "node-exporter": {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
    "grafana": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    "grafana-sidecar": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    "adapter": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
}

MetricKind = Literal["rate", "gauge"]

_CHART_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")  # exact, no ranges


@dataclass(frozen=True)
class CustomMetricRule:
    """One custom metric served to HPAs.

    ``name`` is what the HPA asks for (``pods`` metric name); ``series`` is the Prometheus series
    it is computed from. ``rate``: per-second rate of a counter over ``window``; ``gauge``: average.
    """

    name: str
    series: str
    kind: MetricKind = "rate"  # a counter's per-second rate or a gauge's average
    window: str = "2m"


def metrics_problems(metrics: Sequence[CustomMetricRule]) -> list[Problem]:
    """Every problem of a list of custom metrics, at ``[index].field``."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, m in enumerate(metrics):
        if metric_name(m.name):
            problems.append((path(i, "name"), f"{m.name!r} is not a valid metric name"))
        if m.name in seen:
            problems.append((path(i, "name"), f"{m.name!r} is served twice"))
        seen.add(m.name)
        if metric_name(m.series):
            problems.append((path(i, "series"), f"{m.series!r} is not a valid Prometheus series name"))
        if m.kind not in ("rate", "gauge"):
            problems.append((path(i, "kind"), f"{m.kind!r} must be 'rate' or 'gauge'"))
        if prometheus_duration(m.window):
            problems.append((path(i, "window"), f"{m.window!r} is not a Prometheus duration (e.g. 2m)"))
    return problems


def adapter_rule(metric: CustomMetricRule) -> dict[str, Any]:
    """The prometheus-adapter rule that serves ``metric.name`` per pod."""
    if metric.kind == "rate":
        query = f"sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[{metric.window}])) by (<<.GroupBy>>)"
    else:
        query = "avg(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"
    return {
        "seriesQuery": f'{metric.series}{{namespace!="",pod!=""}}',
        "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
        "name": {"matches": f"^{metric.series}$", "as": metric.name},
        "metricsQuery": query,
    }


def adapter_rules(metrics: Iterable[CustomMetricRule]) -> list[dict[str, Any]]:
    """One adapter rule per metric; ``name.as`` is exactly the name the HPAs use."""
    metrics = list(metrics)
    require("adapter_rules", under("custom_metrics", metrics_problems(metrics)))
    return [adapter_rule(m) for m in metrics]


def served_metric_names(rules: Iterable[Mapping[str, Any]]) -> set[str]:
    """The custom metric names the adapter will serve for these rules."""
    return {rule["name"]["as"] for rule in rules}


def prometheus_url(namespace: str) -> str:
    return f"http://{PROMETHEUS_FULLNAME}-prometheus.{namespace}.svc"


ReceiverKind = Literal["slack", "pagerduty"]


@dataclass(frozen=True)
class AlertReceiver:
    """Where Alertmanager delivers every alert: a Slack incoming webhook or a PagerDuty Events API v2
    integration.

    ``secret``/``key`` name the Kubernetes Secret in the metrics namespace (synced from Secrets Manager)
    and its key holding the webhook URL (Slack) or the routing key (PagerDuty). Alertmanager reads the
    value from the mounted file: it is in no Helm value, manifest or state.
    """

    kind: ReceiverKind  # where the alerts go: Slack or PagerDuty
    secret: str
    key: str
    channel: str | None = None  # slack: post here instead of the webhook's own channel

    @property
    def file(self) -> str:
        return f"{ALERTMANAGER_SECRETS_DIR}/{self.secret}/{self.key}"


def receiver_problems(receiver: AlertReceiver) -> list[Problem]:
    problems: list[Problem] = []
    if receiver.kind not in ("slack", "pagerduty"):
        problems.append(("kind", f"{receiver.kind!r} must be 'slack' or 'pagerduty'"))
    if not is_dns1123_label(receiver.secret):
        problems.append(("secret", f"{receiver.secret!r} is not a Secret name (DNS-1123 label)"))
    if config_key(receiver.key):
        problems.append(("key", f"{receiver.key!r} is not a Secret key ([-._a-zA-Z0-9]+)"))
    if receiver.channel is not None and receiver.kind != "slack":
        problems.append(("channel", "only a Slack receiver posts to a channel"))
    elif receiver.channel is not None and slack_channel(receiver.channel):
        problems.append(("channel", f"{receiver.channel!r} must look like #channel or @user"))
    return problems


def alertmanager_config(receiver: AlertReceiver) -> dict[str, Any]:
    """Route every alert to ``receiver`` (the chart's Watchdog and InfoInhibitor to nowhere).

    Helm merges this map into the chart's ``alertmanager.config``: its inhibit rules, timings and
    templates stay; the lists given here (routes, receivers, group_by) replace the chart's.
    """
    if receiver.kind == "slack":
        slack: dict[str, Any] = {
            "api_url_file": receiver.file,
            "send_resolved": True,
            "title": '{{ template "slack.default.title" . }}',
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
        }
        if receiver.channel:
            slack["channel"] = receiver.channel
        delivery: dict[str, Any] = {"slack_configs": [slack]}
    else:
        delivery = {"pagerduty_configs": [{"routing_key_file": receiver.file, "send_resolved": True}]}
    return {
        "route": {
            "receiver": receiver.kind,
            "group_by": ["namespace", "alertname"],
            "routes": [
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
            ],
        },
        "receivers": [{"name": "null"}, {"name": receiver.kind, **delivery}],
    }


@dataclass
class MetricsStackArgs:
    provider: k8s.Provider  # the cluster's Kubernetes provider
    prometheus_chart_version: str  # the kube-prometheus-stack chart's exact version
    adapter_chart_version: str  # the prometheus-adapter chart's exact version
    # the custom metrics served to HPAs (one adapter rule each)
    custom_metrics: Sequence[CustomMetricRule] = ()
    namespace: str = MONITORING_NAMESPACE  # the namespace of Prometheus and the adapter
    # where kube-prometheus-stack comes from (its repository or a mirror)
    prometheus_chart_repository: str = KUBE_PROMETHEUS_STACK.repository
    # where prometheus-adapter comes from (its repository or a mirror)
    adapter_chart_repository: str = PROMETHEUS_ADAPTER.repository
    retention: str = "15d"  # how long Prometheus keeps samples (a duration, e.g. 15d)
    storage_size: str = "50Gi"  # Prometheus' volume size (a quantity, e.g. 50Gi)
    storage_class: str = "gp3"  # the StorageClass of Prometheus' volume
    grafana_enabled: bool = False  # install Grafana with the stack
    # Alertmanager runs when there is somewhere to deliver to (an Alertmanager without a receiver
    # only drops what Prometheus sends it).
    alert_receiver: AlertReceiver | None = None
    # Prometheus' requests and limits, as the chart's ``resources`` values
    prometheus_resources: Mapping[str, Any] = field(default_factory=lambda: dict(PROMETHEUS_RESOURCES))
    adapter_replicas: int = 2  # the adapter's replicas (2: HPAs keep their metrics through a restart)
    # where Prometheus, the operator and the adapter run (the system nodes)
    node_selector: Mapping[str, str] = field(default_factory=lambda: dict(SYSTEM_NODE_SELECTOR))
    # Every node group and GPU pool of the cluster: an override of the node exporter's tolerations
    # must still let it run on each of them.
    node_groups: Sequence[NodeCapacity] = ()
    # A self-managed control plane whose controller-manager, scheduler, etcd and kube-proxy serve
    # metrics; EKS's do not (EKS_UNEXPOSED_TARGETS).
    scrape_control_plane: bool = False
    # Deep-merged over the generated values; these win (escape hatch for chart settings).
    prometheus_values: Mapping[str, Any] = field(default_factory=dict)
    # deep-merged over the adapter's generated values; these win
    adapter_values: Mapping[str, Any] = field(default_factory=dict)
    # What the releases wait for (schedulable nodes: Helm waits for the pods to be ready).
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems = under("custom_metrics", metrics_problems(self.custom_metrics))
        for field_name in ("prometheus_chart_version", "adapter_chart_version"):
            value = getattr(self, field_name).strip()
            if not _CHART_VERSION.fullmatch(value):
                problems.append((field_name, f"{value!r} must be a pinned chart version (e.g. 5.2.0)"))
        if not is_dns1123_label(self.namespace):
            problems.append(("namespace", f"{self.namespace!r} is not a DNS-1123 label"))
        if prometheus_duration(self.retention):
            problems.append(("retention", f"{self.retention!r} is not a Prometheus duration (e.g. 15d)"))
        if not is_quantity(self.storage_size):
            problems.append(("storage_size", f"{self.storage_size!r} is not a Kubernetes quantity"))
        if "rules" in self.adapter_values:
            problems.append(
                ("adapter_values.rules", "set custom_metrics instead, so served metrics stay checkable")
            )
        if self.adapter_replicas < 1:
            problems.append(("adapter_replicas", "must be >= 1"))
        if self.alert_receiver is not None:
            problems += under("alert_receiver", receiver_problems(self.alert_receiver))
        exporter = prometheus_values(self).get(NODE_EXPORTER, {})
        missing = untolerated_groups(self.node_groups, exporter.get("tolerations") or [])
        if self.node_groups and missing:
            details = "; ".join(f"{group} ({', '.join(taints)})" for group, taints in missing.items())
            problems.append(
                (
                    f"prometheus_values.{NODE_EXPORTER}.tolerations",
                    f"node groups without node metrics: {details}",
                )
            )
        return problems


def prometheus_values(args: MetricsStackArgs) -> dict[str, Any]:
    """Values for kube-prometheus-stack."""
    node_selector = dict(args.node_selector)
    res = {name: dict(r) for name, r in COMPONENT_RESOURCES.items()}
    values: dict[str, Any] = {
        "fullnameOverride": PROMETHEUS_FULLNAME,
        "grafana": {
            "enabled": args.grafana_enabled,
            "resources": res["grafana"],
            "sidecar": {"resources": res["grafana-sidecar"]},
        },
        "alertmanager": {
            "enabled": args.alert_receiver is not None,
            "alertmanagerSpec": {"nodeSelector": node_selector, "resources": res["alertmanager"]},
        },
        "prometheusOperator": {
            "nodeSelector": node_selector,
            "resources": res["operator"],
            "prometheusConfigReloader": {"resources": res["config-reloader"]},
            "admissionWebhooks": {
                "patch": {"nodeSelector": node_selector, "resources": res["webhook-patch"]}
            },
        },
        "kube-state-metrics": {
            "nodeSelector": node_selector,
            "resources": res["kube-state-metrics"],
            # The node labels the platform's alerts count nodes by.
            "metricLabelsAllowlist": list(KUBE_STATE_METRICS_LABELS),
        },
        NODE_EXPORTER: {
            "resources": res["node-exporter"],
            "tolerations": [t.to_dict() for t in NODE_EXPORTER_TOLERATIONS],
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": args.retention,
                "nodeSelector": node_selector,
                "resources": dict(args.prometheus_resources),
                # Select every ServiceMonitor/PodMonitor/rule, not only the chart's own, so the
                # workloads' monitors are scraped.
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "ruleSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": args.storage_class,
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": args.storage_size}},
                        }
                    }
                },
            }
        },
    }
    if args.alert_receiver is not None:
        # The receiver's Secret is mounted into the Alertmanager pods, and the config names the file.
        values["alertmanager"]["alertmanagerSpec"]["secrets"] = [args.alert_receiver.secret]
        values["alertmanager"]["config"] = alertmanager_config(args.alert_receiver)
    if not args.scrape_control_plane:
        values.update({target: {"enabled": False} for target in EKS_UNEXPOSED_TARGETS})
    return deep_merge(values, args.prometheus_values)


def adapter_values(args: MetricsStackArgs) -> dict[str, Any]:
    """Values for prometheus-adapter: only our rules (no defaults), pointed at our Prometheus."""
    values = {
        "replicas": args.adapter_replicas,
        "nodeSelector": dict(args.node_selector),
        "prometheus": {"url": prometheus_url(args.namespace), "port": PROMETHEUS_PORT, "path": ""},
        "rules": {"default": False, "custom": adapter_rules(args.custom_metrics)},
        "resources": dict(COMPONENT_RESOURCES["adapter"]),
    }
    return deep_merge(values, args.adapter_values)


class MetricsStack(pulumi.ComponentResource):
    """Prometheus (kube-prometheus-stack) and prometheus-adapter serving the custom metrics.

    Example::

        from aiplatform.addons.observability import CustomMetricRule, MetricsStack, MetricsStackArgs
        from aiplatform.catalog.registry import KUBE_PROMETHEUS_STACK, PROMETHEUS_ADAPTER

        metrics = MetricsStack("metrics", MetricsStackArgs(
            provider=cluster.provider,
            prometheus_chart_version=KUBE_PROMETHEUS_STACK.version,  # the versions the stacks pin
            adapter_chart_version=PROMETHEUS_ADAPTER.version,
            custom_metrics=[CustomMetricRule("requests_per_second", "http_requests_total")],
        ))
        metrics.served_metrics  # {"requests_per_second"}
    """

    namespace: k8s.core.v1.Namespace  # the monitoring namespace
    prometheus: k8s.helm.v3.Release  # the kube-prometheus-stack release
    adapter: k8s.helm.v3.Release  # the prometheus-adapter release
    namespace_name: pulumi.Output[str]  # the namespace's name
    prometheus_url: str  # Prometheus' in-cluster URL
    served_metrics: frozenset[str]  # the custom metric names the adapter serves to HPAs

    def __init__(self, name: str, args: MetricsStackArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"MetricsStack {name!r}", type_problems(args, MetricsStackArgs) or args.problems())
        super().__init__("aiplatform:observability:MetricsStack", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )

        # The node exporter needs host network/PID: this namespace is privileged, not a tenant.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.namespace,
                labels={"pod-security.kubernetes.io/enforce": "privileged"},
            ),
            opts=k8s_opts,
        )
        self.namespace_name = self.namespace.metadata.apply(lambda m: m.name)

        self.prometheus = helm_release(
            f"{name}-prometheus",
            chart=KUBE_PROMETHEUS_STACK.chart,
            version=args.prometheus_chart_version,
            repository=args.prometheus_chart_repository,
            namespace=self.namespace_name,
            values=prometheus_values(args),
            opts=k8s_opts,
        )
        self.adapter = helm_release(
            f"{name}-adapter",
            chart=PROMETHEUS_ADAPTER.chart,
            version=args.adapter_chart_version,
            repository=args.adapter_chart_repository,
            namespace=self.namespace_name,
            values=adapter_values(args),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=[self.prometheus, *args.depends_on]
            ),
        )

        self.prometheus_url = prometheus_url(args.namespace)
        self.served_metrics = frozenset(served_metric_names(adapter_rules(args.custom_metrics)))
        self.register_outputs({"namespace": self.namespace_name, "prometheus_url": self.prometheus_url})
