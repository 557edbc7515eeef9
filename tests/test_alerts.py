"""The platform's alert rules: exact expressions over the metrics the exporters really emit."""

from __future__ import annotations

import re

import pulumi_kubernetes as k8s
import pytest

from aiplatform.addons.alerts import (
    PENDING_REASON_TEMPLATE,
    AlertTargets,
    AutoscaledService,
    PlatformAlerts,
    PlatformAlertsArgs,
    ScheduledJob,
    TrainingRun,
    alert_rule_groups,
    kube_state_metrics_label,
)
from aiplatform.addons.gpu_metrics import ALERT_FIELDS, collected_fields, collectors_csv
from aiplatform.compute.node_groups import NodeGroupSpec

SYSTEM = NodeGroupSpec(name="system", min_size=2, desired_size=2, max_size=3)
FIXED = NodeGroupSpec(name="fixed", min_size=2, desired_size=2, max_size=2)
GPU = NodeGroupSpec(
    name="gpu-inference",
    role="gpu",
    instance_types=("g5.xlarge",),
    min_size=0,
    desired_size=0,
    max_size=3,
    accelerator="nvidia-a10g",
    gpus_per_node=1,
)
TARGETS = AlertTargets(
    workloads=[
        AutoscaledService("ml-serving", "llama-inference", 10),
        TrainingRun("ml-training", "hyperparameter-sweep"),
        ScheduledJob("ml-serving", "nightly-batch-predict", 600),
    ],
    node_groups=[SYSTEM, FIXED, GPU],
    gpu=True,
    gpu_memory_ratio=0.95,
)


def rules_by_alert(groups):
    out = {}
    for group in groups:
        for rule in group["rules"]:
            out.setdefault(rule["alert"], []).append(rule)
    return out


def test_the_groups_and_alerts_the_platform_owns():
    groups = alert_rule_groups(TARGETS)
    assert [g["name"] for g in groups] == ["aiplatform.scheduling", "aiplatform.workloads", "aiplatform.gpu"]
    assert [r["alert"] for g in groups for r in g["rules"]] == [
        "PodPendingTooLong",
        "NodeGroupAtMaximum",  # system
        "NodeGroupAtMaximum",  # gpu-inference; the fixed-size group is always at its maximum: none
        "InferenceAtMaxReplicas",
        "TrainingJobFailed",
        "BatchJobFailed",
        "BatchJobMissedSchedule",
        "GpuXidError",
        "GpuMemoryNearFull",
    ]


def test_a_pod_pending_for_ten_minutes_says_why():
    (rule,) = rules_by_alert(alert_rule_groups(TARGETS))["PodPendingTooLong"]
    assert rule["expr"] == 'max by (namespace, pod) (kube_pod_status_phase{phase="Pending"}) == 1'
    assert rule["for"] == "10m"
    assert rule["annotations"]["summary"] == (
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} has been Pending for more than 10 minutes: "
        + PENDING_REASON_TEMPLATE
    )
    # The reason comes from kube-state-metrics at notification time: unschedulable or a waiting container.
    assert PENDING_REASON_TEMPLATE == (
        "{{ with printf `max by (reason) (label_replace("
        'kube_pod_status_unschedulable{namespace="%[1]s",pod="%[2]s"}, "reason", "Unschedulable", "", "") '
        'or kube_pod_init_container_status_waiting_reason{namespace="%[1]s",pod="%[2]s"} '
        # An init container still running (the model download) is named too.
        'or label_replace(kube_pod_init_container_status_running{namespace="%[1]s",pod="%[2]s"} == 1, '
        '"reason", "init container $1 still running", "container", "(.+)") '
        'or kube_pod_container_status_waiting_reason{namespace="%[1]s",pod="%[2]s"})` '
        "$labels.namespace $labels.pod | query }}"
        "{{ range $i, $r := . }}{{ if $i }}, {{ end }}{{ $r.Labels.reason }}{{ end }}"
        "{{ else }}no reason reported{{ end }}"
    )


def test_an_inference_service_at_its_maximum_for_fifteen_minutes():
    (rule,) = rules_by_alert(alert_rule_groups(TARGETS))["InferenceAtMaxReplicas"]
    sel = '{namespace="ml-serving",horizontalpodautoscaler="llama-inference"}'
    assert rule["expr"] == (
        f"max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{sel}) "
        f">= max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{sel})"
    )
    assert rule["for"] == "15m"
    assert rule["annotations"]["summary"] == (
        "Inference service ml-serving/llama-inference has run at its maximum of 10 replicas for 15 minutes"
    )


def test_a_failed_training_job_and_a_failed_or_missed_batch_run():
    alerts = rules_by_alert(alert_rule_groups(TARGETS))
    (training,) = alerts["TrainingJobFailed"]
    assert training["expr"] == (
        'max by (namespace, job_name) (kube_job_failed{namespace="ml-training",job_name="hyperparameter-sweep",'
        'condition="true"}) == 1'
    )
    sel = '{namespace="ml-serving",cronjob="nightly-batch-predict"}'
    (failed,) = alerts["BatchJobFailed"]
    assert failed["expr"] == (
        f"(max by (namespace, cronjob) (kube_cronjob_status_last_schedule_time{sel}) > on (namespace, cronjob) "
        f"(max by (namespace, cronjob) (kube_cronjob_status_last_successful_time{sel}) "
        f"or on (namespace, cronjob) (max by (namespace, cronjob) (kube_cronjob_created{sel}) * 0))) "
        f"and on (namespace, cronjob) (max by (namespace, cronjob) (kube_cronjob_status_active{sel}) == 0)"
    )
    (missed,) = alerts["BatchJobMissedSchedule"]
    # Missed: the next run is past its time by more than the CronJob's own startingDeadlineSeconds.
    assert (
        missed["expr"] == f"time() - max by (namespace, cronjob) (kube_cronjob_next_schedule_time{sel}) > 600"
    )


def test_gpu_health_from_dcgm():
    alerts = rules_by_alert(alert_rule_groups(TARGETS))
    (xid,) = alerts["GpuXidError"]
    # The exporter's count of XID events over its window, per code: every occurrence counts, a
    # repeated code too, and the alert clears a window after the last (tests/promtool shows it).
    assert xid["expr"] == 'max by (node, gpu, modelName, xid) (DCGM_EXP_XID_ERRORS_COUNT{xid!="0"}) > 0'
    assert "{{ $labels.xid }}" in xid["annotations"]["summary"]
    assert "for" not in xid  # an XID is news the moment it happens
    (memory,) = alerts["GpuMemoryNearFull"]
    assert memory["expr"] == (
        "max by (node, gpu, modelName) (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) > 0.95"
    )
    assert memory["for"] == "10m"
    no_gpu = alert_rule_groups(AlertTargets(node_groups=[SYSTEM]))
    assert "GpuXidError" not in rules_by_alert(no_gpu)


def test_a_node_group_at_its_maximum():
    rules = rules_by_alert(alert_rule_groups(TARGETS))["NodeGroupAtMaximum"]
    assert [r["expr"] for r in rules] == [
        'count by (label_aiplatform_io_node_group) (kube_node_labels{label_aiplatform_io_node_group="system"}) >= 3',
        'count by (label_aiplatform_io_node_group) (kube_node_labels{label_aiplatform_io_node_group="gpu-inference"})'
        " >= 3",
    ]
    assert [r["labels"] for r in rules] == [
        {"severity": "warning", "node_group": "system"},
        {"severity": "warning", "node_group": "gpu-inference"},
    ]
    assert kube_state_metrics_label("aiplatform.io/node-group") == "label_aiplatform_io_node_group"


def test_no_two_rules_share_their_name_and_static_labels():
    """What ``promtool check rules --lint-fatal`` refuses: each per-object rule names its object."""
    targets = AlertTargets(
        workloads=[
            AutoscaledService("a", "llm", 4),
            AutoscaledService("b", "llm", 4),
            TrainingRun("a", "sweep"),
            TrainingRun("b", "sweep"),
            ScheduledJob("a", "nightly", 60),
            ScheduledJob("b", "nightly", 60),
        ],
        node_groups=[SYSTEM, GPU],
        gpu=True,
    )
    keys = [
        (rule["alert"], tuple(sorted(rule["labels"].items())))
        for group in alert_rule_groups(targets)
        for rule in group["rules"]
    ]
    assert len(keys) == len(set(keys)) == 13
    rules = rules_by_alert(alert_rule_groups(targets))
    assert rules["InferenceAtMaxReplicas"][1]["labels"] == {
        "severity": "warning",
        "namespace": "b",
        "horizontalpodautoscaler": "llm",
    }
    assert rules["TrainingJobFailed"][0]["labels"] == {
        "severity": "warning",
        "namespace": "a",
        "job_name": "sweep",
    }
    assert rules["BatchJobMissedSchedule"][1]["labels"] == {
        "severity": "warning",
        "namespace": "b",
        "cronjob": "nightly",
    }


def test_every_rule_has_a_severity_a_summary_and_a_description():
    for group in alert_rule_groups(TARGETS):
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_rule_is_one_prometheus_rule_after_its_crd(build, monitor):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        crds = k8s.core.v1.ConfigMap("crds", opts=None)
        return PlatformAlerts(
            "alerts",
            PlatformAlertsArgs(provider=provider, namespace="monitoring", targets=TARGETS, depends_on=[crds]),
        )

    alerts = build(program)
    rule = monitor.named("alerts-rule")
    assert rule.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
    assert rule.inputs["metadata"] == {
        "name": "aiplatform-alerts",
        "namespace": "monitoring",
        "labels": {"app.kubernetes.io/part-of": "aiplatform"},
    }
    assert rule.inputs["spec"] == {"groups": alerts.groups}
    assert monitor.named("crds").urn in rule.dependencies
    assert rule.provider_urn == monitor.named("k8s").urn


def test_a_memory_ratio_outside_zero_to_one_is_refused():
    with pytest.raises(ValueError, match=r"targets.gpu_memory_ratio: 95 must be in \(0, 1\]"):
        PlatformAlerts(
            "alerts",
            PlatformAlertsArgs(
                provider=None, namespace="monitoring", targets=AlertTargets(gpu_memory_ratio=95)
            ),
        )


def test_the_gpu_alerts_read_only_fields_the_dcgm_exporter_collects():
    """A field missing from the exporter's collectors file would leave its alert silent forever."""
    exprs = " ".join(r["expr"] for g in alert_rule_groups(TARGETS) for r in g["rules"])
    read = set(re.findall(r"\bDCGM_[A-Z_]+\b", exprs))
    assert read == {"DCGM_EXP_XID_ERRORS_COUNT", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"}
    assert read <= collected_fields(collectors_csv())
    assert read == set(ALERT_FIELDS)
