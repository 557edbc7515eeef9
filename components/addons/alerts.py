"""The alerts an AI team needs, as one PrometheusRule the program owns.

Every rule reads metrics its exporter really emits (kube-state-metrics 2.x, the DCGM exporter) and
names the objects the program creates, so an alert says which service, job or node group it is about.
A rule made per object carries that object as static labels: no two rules of the PrometheusRule share
their name and labels (``promtool check rules --lint-fatal``), and Alertmanager can route by them.

- a pod Pending for more than 10 minutes, with the reason in the summary (unschedulable, image pull,
  config error, an init container such as the model download still running, ...);
- an autoscaled inference service at its maximum replicas for 15 minutes;
- a training Job that failed; a batch CronJob whose latest run failed, or that missed its schedule;
- a GPU that reported an XID error in the last 5 minutes (every one, a repeated code too), or whose
  memory is near full (DCGM);
- a node group at its maximum size for 15 minutes (pods that need it more will wait).

``alert_rule_groups`` is pure (testable without the engine); ``PlatformAlerts`` registers the rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from ..compute.node_groups import NODE_GROUP_LABEL, NodeGroupSpec
from ..errors import Problem, require, type_problems
from .gpu_metrics import XID_COUNT, XID_WINDOW_MINUTES

PROMETHEUS_RULE_API_VERSION = "monitoring.coreos.com/v1"
RULE_NAME = "aiplatform-alerts"

PENDING_FOR = "10m"
AT_MAXIMUM_FOR = "15m"
GPU_MEMORY_FOR = "10m"
DEFAULT_GPU_MEMORY_RATIO = 0.95

# kube-state-metrics exposes node labels only when allowed: the node-group rule counts nodes by the
# label every node group puts on its nodes (set on the kube-state-metrics of the metrics stack).
KUBE_STATE_METRICS_LABELS = (f"nodes=[{NODE_GROUP_LABEL}]",)

# Why a pod waits, from kube-state-metrics: unschedulable, an (init) container waiting (image pull,
# config error, ...), or an init container still running (the model download). Run by the summary's
# template, so the alert's identity does not change while the reason does (ErrImagePull <->
# ImagePullBackOff would reset a ``for`` clause forever).
_PENDING_REASON_QUERY = (
    'max by (reason) (label_replace(kube_pod_status_unschedulable{namespace="%[1]s",pod="%[2]s"}, '
    '"reason", "Unschedulable", "", "") '
    'or kube_pod_init_container_status_waiting_reason{namespace="%[1]s",pod="%[2]s"} '
    'or label_replace(kube_pod_init_container_status_running{namespace="%[1]s",pod="%[2]s"} == 1, '
    '"reason", "init container $1 still running", "container", "(.+)") '
    'or kube_pod_container_status_waiting_reason{namespace="%[1]s",pod="%[2]s"})'
)
PENDING_REASON_TEMPLATE = (
    "{{ with printf `" + _PENDING_REASON_QUERY + "` $labels.namespace $labels.pod | query }}"
    "{{ range $i, $r := . }}{{ if $i }}, {{ end }}{{ $r.Labels.reason }}{{ end }}"
    "{{ else }}no reason reported{{ end }}"
)


class WorkloadTarget(Protocol):
    """A workload the platform alerts about: each kind's settings say which (``alert_target``)."""

    def rules(self) -> list[dict]:
        """Its alert rules, in a stable order."""
        ...


@dataclass(frozen=True)
class AutoscaledService:
    """An inference service with an HPA (named like the service)."""

    namespace: str  # the service's namespace
    name: str  # the service's (and its HPA's) name
    max_replicas: int  # the HPA's maximum

    def rules(self) -> list[dict]:
        return [inference_at_maximum_rule(self)]


@dataclass(frozen=True)
class TrainingRun:
    """A training Job (named like the workload)."""

    namespace: str  # the Job's namespace
    name: str  # the Job's name

    def rules(self) -> list[dict]:
        return [training_failed_rule(self)]


@dataclass(frozen=True)
class ScheduledJob:
    """A batch CronJob; a run not started ``starting_deadline_seconds`` after its time is missed."""

    namespace: str  # the CronJob's namespace
    name: str  # the CronJob's name
    starting_deadline_seconds: int

    def rules(self) -> list[dict]:
        return [batch_failed_rule(self), batch_missed_rule(self)]


@dataclass(frozen=True)
class AlertTargets:
    # the workloads the rules watch (services at their maximum, failed Jobs, failed or missed runs), in
    # the order of their rules
    workloads: Sequence[WorkloadTarget] = ()
    node_groups: Sequence[NodeGroupSpec] = ()  # the node groups (alert: at their maximum size)
    gpu: bool = False  # DCGM runs on the GPU nodes: GPU health rules
    # GPU memory used, as a fraction of the total, that raises the alert (0-1)
    gpu_memory_ratio: float = DEFAULT_GPU_MEMORY_RATIO
    gpu_claims: bool = False  # pods claim GPUs through DRA: a Pending pod may wait for its claim's devices


def kube_state_metrics_label(key: str) -> str:
    """The Prometheus label kube-state-metrics gives a Kubernetes label key (``label_`` + sanitized)."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _selector(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _rule(
    alert: str,
    expr: str,
    summary: str,
    description: str,
    for_: str | None,
    severity: str,
    labels: dict[str, str] | None = None,
) -> dict:
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity, **(labels or {})}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


# -- the rules -------------------------------------------------------------------------------------
# What keeps a GPU pod from a node, by how it gets its GPUs.
UNSCHEDULABLE_GPU = "GPUs, quota, node group at its maximum"
UNSCHEDULABLE_CLAIM = (
    "no device of its group satisfies its GPU claim (kubectl get resourceclaims -n <namespace>), "
    "the namespace's device quota, node group at its maximum"
)


def pending_pod_rule(gpu_claims: bool = False) -> dict:
    return _rule(
        "PodPendingTooLong",
        'max by (namespace, pod) (kube_pod_status_phase{phase="Pending"}) == 1',
        "Pod {{ $labels.namespace }}/{{ $labels.pod }} has been Pending for more than 10 minutes: "
        + PENDING_REASON_TEMPLATE,
        f"Unschedulable: no node group can take it ({UNSCHEDULABLE_CLAIM if gpu_claims else UNSCHEDULABLE_GPU}); "
        "ImagePullBackOff or CreateContainerConfigError: fix the image or the config it mounts. "
        "kubectl describe pod shows the events.",
        PENDING_FOR,
        "warning",
    )


def inference_at_maximum_rule(service: AutoscaledService) -> dict:
    labels = {"namespace": service.namespace, "horizontalpodautoscaler": service.name}
    sel = _selector(**labels)
    return _rule(
        "InferenceAtMaxReplicas",
        f"max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{sel}) "
        f">= max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{sel})",
        f"Inference service {service.namespace}/{service.name} has run at its maximum of "
        f"{service.max_replicas} replicas for 15 minutes",
        "The HPA cannot add replicas: latency grows with the load. Raise autoscaling.maxReplicas "
        "(with the GPU node group's maxSize and the namespace's GPU quota) or shed load.",
        AT_MAXIMUM_FOR,
        "warning",
        labels,
    )


def training_failed_rule(run: TrainingRun) -> dict:
    labels = {"namespace": run.namespace, "job_name": run.name}
    sel = _selector(**labels, condition="true")
    return _rule(
        "TrainingJobFailed",
        f"max by (namespace, job_name) (kube_job_failed{sel}) == 1",
        f"Training job {run.namespace}/{run.name} failed",
        "Its pods exhausted backoffLimit or it ran past activeDeadlineSeconds. "
        "kubectl describe job shows the reason; the pods' logs show why.",
        "1m",
        "warning",
        labels,
    )


def batch_failed_rule(job: ScheduledJob) -> dict:
    labels = {"namespace": job.namespace, "cronjob": job.name}
    sel = _selector(**labels)
    by = "max by (namespace, cronjob)"
    # The latest run was scheduled after the last success and nothing runs now: it failed. A
    # CronJob that never succeeded compares with 0.
    expr = (
        f"({by} (kube_cronjob_status_last_schedule_time{sel}) > on (namespace, cronjob) "
        f"({by} (kube_cronjob_status_last_successful_time{sel}) "
        f"or on (namespace, cronjob) ({by} (kube_cronjob_created{sel}) * 0))) "
        f"and on (namespace, cronjob) ({by} (kube_cronjob_status_active{sel}) == 0)"
    )
    return _rule(
        "BatchJobFailed",
        expr,
        f"The latest run of batch job {job.namespace}/{job.name} failed",
        "The CronJob's last scheduled run did not complete. kubectl get jobs -n "
        f"{job.namespace} lists its runs; the failed pods' logs show why.",
        "1m",
        "warning",
        labels,
    )


def batch_missed_rule(job: ScheduledJob) -> dict:
    labels = {"namespace": job.namespace, "cronjob": job.name}
    sel = _selector(**labels)
    return _rule(
        "BatchJobMissedSchedule",
        f"time() - max by (namespace, cronjob) (kube_cronjob_next_schedule_time{sel}) "
        f"> {job.starting_deadline_seconds}",
        f"Batch job {job.namespace}/{job.name} missed its schedule",
        f"A run did not start within {job.starting_deadline_seconds}s of its time (the previous run "
        "still active, the controller down, or the CronJob created after its time).",
        "1m",
        "warning",
        labels,
    )


def node_group_at_maximum_rule(group: NodeGroupSpec) -> dict:
    label = kube_state_metrics_label(NODE_GROUP_LABEL)
    return _rule(
        "NodeGroupAtMaximum",
        f'count by ({label}) (kube_node_labels{{{label}="{group.name}"}}) >= {group.max_size}',
        f"Node group {group.name} has run at its maximum of {group.max_size} nodes for 15 minutes",
        "The cluster autoscaler cannot add nodes to it: pods that need this group wait Pending. "
        f"If the load is real, raise the maxSize of node group {group.name}.",
        AT_MAXIMUM_FOR,
        "warning",
        {"node_group": group.name},
    )


def gpu_xid_rule() -> dict:
    # The exporter counts each XID event per GPU and code over its window: the alert holds while a
    # code counted, one alert per code, and clears a window after its last occurrence.
    return _rule(
        "GpuXidError",
        f'max by (node, gpu, modelName, xid) ({XID_COUNT}{{xid!="0"}}) > 0',
        "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on node {{ $labels.node }}: XID error "
        "{{ $labels.xid }}, {{ $value }} occurrence(s) in the last " + f"{XID_WINDOW_MINUTES}m",
        "NVIDIA's XID catalogue tells an application fault (e.g. 13, 31, 43) from a hardware one "
        "(e.g. 48, 63, 64, 74, 79, 94, 95): for the latter, cordon and drain the node. Every "
        "occurrence counts, the same code again too: the alert holds until "
        f"{XID_WINDOW_MINUTES} minutes after the last.",
        None,
        "warning",
    )


def gpu_memory_rule(ratio: float) -> dict:
    return _rule(
        "GpuMemoryNearFull",
        "max by (node, gpu, modelName) (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) "
        f"> {ratio:g}",
        "GPU {{ $labels.gpu }} on node {{ $labels.node }} has used {{ $value | humanizePercentage }} of "
        "its memory for 10 minutes",
        "The next allocation may fail with an out-of-memory error: lower the batch size or the "
        "model server's memory fraction, or move the model to a GPU with more memory.",
        GPU_MEMORY_FOR,
        "warning",
    )


def alert_rule_groups(targets: AlertTargets) -> list[dict]:
    """The rule groups of the PrometheusRule, in a stable order."""
    scheduling = [pending_pod_rule(targets.gpu_claims)]
    # A group whose size is fixed is always at its maximum: nothing to tell.
    scheduling += [node_group_at_maximum_rule(g) for g in targets.node_groups if g.min_size < g.max_size]
    workloads = [rule for target in targets.workloads for rule in target.rules()]
    groups = [{"name": "aiplatform.scheduling", "rules": scheduling}]
    if workloads:
        groups.append({"name": "aiplatform.workloads", "rules": workloads})
    if targets.gpu:
        groups.append(
            {"name": "aiplatform.gpu", "rules": [gpu_xid_rule(), gpu_memory_rule(targets.gpu_memory_ratio)]}
        )
    return groups


# -- the component ---------------------------------------------------------------------------------
@dataclass
class PlatformAlertsArgs:
    provider: k8s.Provider  # the cluster's Kubernetes provider
    # where the PrometheusRule goes (the monitoring namespace, which Prometheus reads)
    namespace: pulumi.Input[str]
    targets: AlertTargets = field(default_factory=AlertTargets)  # what the alerts watch
    # The release that installs the PrometheusRule CRD (kube-prometheus-stack).
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        if not 0 < self.targets.gpu_memory_ratio <= 1:
            return [("targets.gpu_memory_ratio", f"{self.targets.gpu_memory_ratio} must be in (0, 1]")]
        return []


class PlatformAlerts(pulumi.ComponentResource):
    """One PrometheusRule with the platform's alerts; Prometheus selects every rule of the cluster."""

    rule: k8s.apiextensions.CustomResource  # the PrometheusRule
    groups: list[dict]  # its rule groups, as data

    def __init__(self, name: str, args: PlatformAlertsArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"PlatformAlerts {name!r}", type_problems(args, PlatformAlertsArgs) or args.problems())
        super().__init__("aiplatform:alerts:PlatformAlerts", name, None, opts)
        self.groups = alert_rule_groups(args.targets)
        self.rule = k8s.apiextensions.CustomResource(
            f"{name}-rule",
            api_version=PROMETHEUS_RULE_API_VERSION,
            kind="PrometheusRule",
            metadata={
                "name": RULE_NAME,
                "namespace": args.namespace,
                "labels": {"app.kubernetes.io/part-of": "aiplatform"},
            },
            spec={"groups": self.groups},
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.depends_on)
            ),
        )
        self.register_outputs({})
