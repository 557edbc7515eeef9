"""GPU support: the NVIDIA device plugin, or the NVIDIA DRA driver, and the DCGM exporter, on the GPU nodes.

A stack gives pods GPUs one way (``components/dra.py``): the device plugin advertises ``nvidia.com/gpu``;
the DRA driver's kubelet plugin publishes the GPUs in ResourceSlices and its chart installs the
DeviceClasses (``gpu.nvidia.com``) that claims name. Never both on one node: the driver's chart refuses
to enable GPU allocation until told the device plugin is gone (``gpuResourcesEnabledOverride``).

The classic failure is a device plugin DaemonSet that does not tolerate a GPU group's taints: the
plugin never runs there, nodes never advertise ``nvidia.com/gpu`` and GPU pods stay Pending forever.
Here the tolerations are *derived* from the node group specs (``gpu_tolerations``), and whatever
values finally reach Helm, including hand-written overrides, are checked by ``unschedulable_groups``
before anything is created.

Placement of GPU workloads (``placement_for``) lives in ``components.nodegroups`` next to the labels
and taints it is derived from; it is re-exported here for convenience.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.helm import helm_release
from ..catalog.registry import DCGM_EXPORTER, NVIDIA_DEVICE_PLUGIN, NVIDIA_DRA_DRIVER, AddOn
from ..compute.node_groups import (
    GPU_PRESENT_LABEL,
    NodeGroupSpec,
    gpu_type_problems,
    group_tolerations,
    placement_for,
    untolerated_groups,
)
from ..compute.pools import GpuPoolSpec
from ..dra import SHARING_FEATURE_GATES, SHARING_STRATEGIES, SharingStrategy
from ..errors import Problem, path, require, type_problems
from ..scheduling import Toleration
from .gpu_metrics import exporter_values, missing_alert_fields

__all__ = [
    "DCGM_EXPORTER_RESOURCES",
    "DEVICE_PLUGIN_RESOURCES",
    "DRA_DRIVER_RESOURCES",
    "GpuSupport",
    "GpuSupportArgs",
    "dcgm_exporter_values",
    "deep_merge",
    "device_plugin_values",
    "dra_driver_values",
    "gpu_node_affinity",
    "gpu_tolerations",
    "placement_for",
    "unschedulable_groups",
]

# What each GPU node's DaemonSet pods get (the capacity check counts them on every GPU node).
DEVICE_PLUGIN_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
DCGM_EXPORTER_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
# The DRA driver's kubelet plugin (its gpus container): the device plugin's CPU, more memory for the
# informers on ResourceClaims and ResourceSlices it keeps.
DRA_DRIVER_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
# Namespaces of the GPU node agents: the DRA driver's when it runs, else the device plugin's.
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
DRA_DRIVER_NAMESPACE = "nvidia-dra-driver"


# -- pure values -----------------------------------------------------------------------------------
def gpu_tolerations(specs: Sequence[NodeGroupSpec]) -> tuple[Toleration, ...]:
    """One toleration per distinct taint of the GPU groups (the GPU taint plus every extra taint)."""
    return group_tolerations([spec for spec in specs if spec.is_gpu])


def gpu_node_affinity() -> dict[str, Any]:
    """Only nodes labelled ``nvidia.com/gpu.present=true`` (replaces the chart's NFD-based default)."""
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": GPU_PRESENT_LABEL, "operator": "In", "values": ["true"]}]}
                ]
            }
        }
    }


def _gpu_daemon_values(specs: Sequence[NodeGroupSpec]) -> dict[str, Any]:
    """Where a per-GPU-node DaemonSet runs: shared by the device plugin and the DCGM exporter."""
    return {
        "tolerations": [t.to_dict() for t in gpu_tolerations(specs)],
        "nodeSelector": {GPU_PRESENT_LABEL: "true"},
        "affinity": gpu_node_affinity(),
    }


def device_plugin_values(specs: Sequence[NodeGroupSpec]) -> dict[str, Any]:
    """Helm values of the nvidia-device-plugin chart, derived from the GPU node group specs."""
    return {
        **_gpu_daemon_values(specs),
        # Without the plugin a GPU node advertises no GPUs: it must never be preempted or evicted.
        "priorityClassName": "system-node-critical",
        "resources": copy.deepcopy(DEVICE_PLUGIN_RESOURCES),
    }


def dra_driver_values(
    specs: Sequence[NodeGroupSpec], sharing: Sequence[SharingStrategy] = ()
) -> dict[str, Any]:
    """Helm values of the dra-driver-nvidia-gpu chart: GPU allocation only, its kubelet plugin where the
    device plugin would run, and the feature gate of each ``sharing`` strategy a shared claim uses."""
    values: dict[str, Any] = {
        # The device plugin is not installed in this mode: the chart's guard against both on one node.
        "gpuResourcesEnabledOverride": True,
        "resources": {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}},
        "kubeletPlugin": {
            **_gpu_daemon_values(specs),
            # Without it the node's GPUs are never prepared for a pod: never preempted or evicted.
            "priorityClassName": "system-node-critical",
            "containers": {"gpus": {"resources": copy.deepcopy(DRA_DRIVER_RESOURCES)}},
        },
    }
    gates = {SHARING_FEATURE_GATES[s]: True for s in SHARING_STRATEGIES if s in sharing}
    if gates:
        values["featureGates"] = gates
    return values


def dcgm_exporter_values(specs: Sequence[NodeGroupSpec], service_monitor: bool = False) -> dict[str, Any]:
    """Helm values of the dcgm-exporter chart: the same placement as the device plugin, and the
    collectors the GPU alerts read (``gpu_metrics``)."""
    return {
        **_gpu_daemon_values(specs),
        **exporter_values(),
        "resources": copy.deepcopy(DCGM_EXPORTER_RESOURCES),
        # A ServiceMonitor needs the prometheus-operator CRDs; off unless the stack has them. The node
        # a GPU sits in, as the GPU alerts name it (the exporter's own host label changed its name).
        "serviceMonitor": {
            "enabled": service_monitor,
            "relabelings": [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                    "targetLabel": "node",
                    "action": "replace",
                }
            ],
        },
    }


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def unschedulable_groups(
    specs: Sequence[NodeGroupSpec], tolerations: Sequence[Toleration | Mapping[str, str]]
) -> dict[str, tuple[str, ...]]:
    """GPU groups on which a pod with ``tolerations`` cannot run, with the taints it misses."""
    return untolerated_groups([spec for spec in specs if spec.is_gpu], tolerations)


def agent_values(addon: AddOn, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """The part of a chart's values that places its node agent (its descriptor's ``node_agent_values``)."""
    for key in filter(None, (addon.node_agent_values or "").split(".")):
        values = values.get(key) or {}
    return values


def schedulability_problem(
    addon: AddOn, specs: Sequence[NodeGroupSpec], values: Mapping[str, Any]
) -> str | None:
    """Why the final values would keep ``addon``'s node agent off some GPU group, or None."""
    missing = unschedulable_groups(specs, agent_values(addon, values).get("tolerations") or [])
    if not missing:
        return None
    details = "; ".join(f"{group} ({', '.join(taints)})" for group, taints in missing.items())
    return f"{addon.chart}: tolerations do not cover the taints of GPU node groups: {details}"


# -- the component -------------------------------------------------------------------------------
@dataclass
class GpuSupportArgs:
    provider: k8s.Provider  # the cluster's Kubernetes provider
    # GPU node groups or GPU pools (their taints are what the daemons tolerate).
    gpu_specs: Sequence[NodeGroupSpec | GpuPoolSpec]
    # the nvidia-device-plugin chart's exact version
    device_plugin_chart_version: str = NVIDIA_DEVICE_PLUGIN.version
    # where the device plugin chart comes from (its repository or a mirror)
    device_plugin_chart_repository: str = NVIDIA_DEVICE_PLUGIN.repository
    namespace: str = "nvidia-device-plugin"  # the namespace of the device plugin and the DCGM exporter
    create_namespace: bool = True  # create that namespace (False: it exists already)
    # Deep-merged over the derived values; the result is checked against every GPU group's taints.
    device_plugin_values_override: Mapping[str, Any] = field(default_factory=dict)
    dcgm_exporter: bool = False  # install the DCGM exporter (GPU metrics) on the GPU nodes
    dcgm_exporter_chart_version: str | None = None  # required when dcgm_exporter is on
    # where the dcgm-exporter chart comes from (its repository or a mirror)
    dcgm_exporter_chart_repository: str = DCGM_EXPORTER.repository
    # a ServiceMonitor so Prometheus scrapes the DCGM exporter (needs its CRD)
    dcgm_service_monitor: bool = False
    # deep-merged over the DCGM exporter's derived values; these win
    dcgm_exporter_values_override: Mapping[str, Any] = field(default_factory=dict)
    # False where the nodes bring their own device plugin (EKS Auto Mode), or GPUs come by DRA.
    device_plugin: bool = True
    # GPUs by DRA (components/dra.py): install the NVIDIA DRA driver instead of the device plugin.
    dra_driver: bool = False
    # the dra-driver-nvidia-gpu chart's exact version
    dra_driver_chart_version: str = NVIDIA_DRA_DRIVER.version
    # where the DRA driver chart comes from (its OCI registry or a mirror)
    dra_driver_chart_repository: str = NVIDIA_DRA_DRIVER.repository
    # the sharing strategies shared claims use: the driver's feature gate of each is turned on
    dra_sharing: Sequence[SharingStrategy] = ()
    # deep-merged over the DRA driver's derived values; the result is checked against every GPU group's taints
    dra_driver_values_override: Mapping[str, Any] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = ()  # what both releases wait for (schedulable nodes)
    # What only the DCGM exporter waits for: the ServiceMonitor CRD's release, when it creates one.
    dcgm_depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not any(s.is_gpu for s in self.gpu_specs):
            problems.append(("gpu_specs", "at least one gpu node group is required"))
        if not self.device_plugin_chart_version:
            problems.append(("device_plugin_chart_version", "pin a chart version"))
        if self.dcgm_exporter and not self.dcgm_exporter_chart_version:
            problems.append(("dcgm_exporter_chart_version", "pin a chart version when dcgm_exporter is on"))
        if self.dra_driver and self.device_plugin:
            problems.append(
                (
                    "device_plugin",
                    "the device plugin and the DRA driver cannot both manage a node's GPUs: "
                    "turn device_plugin off with dra_driver",
                )
            )
        if self.dra_driver and not self.dra_driver_chart_version:
            problems.append(("dra_driver_chart_version", "pin a chart version when dra_driver is on"))
        problems += [
            (
                "dra_sharing",
                f"{s!r} is not a sharing strategy of the driver ({', '.join(SHARING_STRATEGIES)})",
            )
            for s in self.dra_sharing
            if s not in SHARING_STRATEGIES
        ]
        # The plugin advertises what the node has (the instance type table's GPU count); a group that
        # claims otherwise would give the autoscaler a wrong template to scale from zero with.
        problems += [
            (path("gpu_specs", i, p.field), f"{spec.name}: {p.message}")
            for i, spec in enumerate(self.gpu_specs)
            # A group shares one GPU model and count; a pool may start any type it allows.
            if isinstance(spec, NodeGroupSpec) and spec.is_gpu
            for p in gpu_type_problems(spec.instance_types, spec.accelerator, spec.gpus_per_node)
        ]
        plugin, dcgm = chart_values(self)
        checked = [
            ("device_plugin_values_override.tolerations", NVIDIA_DEVICE_PLUGIN, plugin),
            ("dcgm_exporter_values_override.tolerations", DCGM_EXPORTER, dcgm),
        ]
        if self.dra_driver:
            checked.append(
                ("dra_driver_values_override.kubeletPlugin.tolerations", NVIDIA_DRA_DRIVER, dra_values(self))
            )
        for override, addon, values in checked:
            if values is not None and (problem := schedulability_problem(addon, self.gpu_specs, values)):
                problems.append((override, problem))
        if dcgm is not None and (missing := missing_alert_fields(dcgm)):
            problems.append(
                (
                    "dcgm_exporter_values_override.customMetrics",
                    f"the GPU alerts read {', '.join(missing)}: keep them in the collectors list",
                )
            )
        return problems


def chart_values(args: GpuSupportArgs) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The device plugin's and (when on) the DCGM exporter's values: derived, then the overrides."""
    plugin = deep_merge(device_plugin_values(args.gpu_specs), args.device_plugin_values_override)
    dcgm = None
    if args.dcgm_exporter:
        dcgm = deep_merge(
            dcgm_exporter_values(args.gpu_specs, args.dcgm_service_monitor),
            args.dcgm_exporter_values_override,
        )
    return plugin, dcgm


def dra_values(args: GpuSupportArgs) -> dict[str, Any]:
    """The DRA driver's values: derived, then the override."""
    return deep_merge(dra_driver_values(args.gpu_specs, args.dra_sharing), args.dra_driver_values_override)


class GpuSupport(pulumi.ComponentResource):
    """Makes GPU nodes advertise ``nvidia.com/gpu``, or publish their GPUs for DRA claims (and optionally
    export GPU metrics)."""

    namespace: k8s.core.v1.Namespace | None  # the namespace it created (None: it existed)
    device_plugin: k8s.helm.v3.Release | None  # the device plugin's release (None: off)
    dra_driver: k8s.helm.v3.Release | None  # the DRA driver's release (None: off)
    dcgm_exporter: k8s.helm.v3.Release | None  # the DCGM exporter's release (None: off)
    device_plugin_values: dict[str, Any]  # the device plugin's Helm values
    dcgm_values: dict[str, Any] | None  # the DCGM exporter's Helm values
    resources: list[pulumi.Resource]  # everything the component created

    def __init__(self, name: str, args: GpuSupportArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"GpuSupport {name!r}", type_problems(args, GpuSupportArgs) or args.problems())
        plugin_values, dcgm_values = chart_values(args)
        super().__init__("aiplatform:gpu:GpuSupport", name, None, opts)
        self.device_plugin_values, self.dcgm_values = plugin_values, dcgm_values

        self.namespace = None
        depends_on = list(args.depends_on)
        if args.create_namespace:
            self.namespace = k8s.core.v1.Namespace(
                f"{name}-ns",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.namespace,
                    # hostPath mounts of the kubelet's device-plugin socket need the privileged level.
                    labels={"pod-security.kubernetes.io/enforce": "privileged"},
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
            depends_on.append(self.namespace)

        self.device_plugin = None
        if args.device_plugin:
            self.device_plugin = self._release(
                f"{name}-device-plugin",
                args,
                args.device_plugin_chart_repository,
                NVIDIA_DEVICE_PLUGIN.chart,
                args.device_plugin_chart_version,
                plugin_values,
                depends_on,
            )
        self.dra_driver = None
        if args.dra_driver:
            self.dra_driver = self._release(
                f"{name}-dra-driver",
                args,
                args.dra_driver_chart_repository,
                NVIDIA_DRA_DRIVER.chart,
                args.dra_driver_chart_version,
                dra_values(args),
                depends_on,
            )
        self.dcgm_exporter = None
        if dcgm_values is not None and args.dcgm_exporter_chart_version:
            agents = [r for r in (self.device_plugin, self.dra_driver) if r is not None]
            self.dcgm_exporter = self._release(
                f"{name}-dcgm-exporter",
                args,
                args.dcgm_exporter_chart_repository,
                DCGM_EXPORTER.chart,
                args.dcgm_exporter_chart_version,
                dcgm_values,
                [*depends_on, *agents, *args.dcgm_depends_on],
            )
        self.resources = [
            r
            for r in (self.namespace, self.device_plugin, self.dra_driver, self.dcgm_exporter)
            if r is not None
        ]
        self.register_outputs(
            {"device_plugin_status": self.device_plugin.status if self.device_plugin else None}
        )

    def _release(
        self,
        resource_name: str,
        args: GpuSupportArgs,
        repo: str,
        chart: str,
        version: str,
        values: dict[str, Any],
        depends_on: list[pulumi.Resource],
    ) -> k8s.helm.v3.Release:
        return helm_release(
            resource_name,
            chart=chart,
            version=version,
            repository=repo,
            namespace=args.namespace,
            values=values,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=depends_on),
        )
