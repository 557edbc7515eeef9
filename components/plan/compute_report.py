"""Where the program's nodes come from: EKS clusters, node groups, Karpenter or EKS Auto Mode pools.

Read from what any program registered (``registered``): the platform's stack or one built from
components. The provisioner is what the registrations show: EKS Auto Mode on a cluster whose compute
config is enabled (and then what EKS runs itself, which the program therefore does not install),
Karpenter where its chart is released, node groups with the cluster autoscaler where that chart is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..catalog import registry
from ..compute.auto_mode import RUN_BY_EKS
from ..compute.node_groups import NodeGroupSpec
from ..compute.pools import reserved_instances
from .mock_engine import Registration
from .model import Plan, Report
from .registered import NODE_POOL, RELEASE, node_sources

CLUSTER = "aws:eks/cluster:Cluster"
NODE_CLASSES = ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "kubernetes:eks.amazonaws.com/v1:NodeClass")


def _name(inputs: dict[str, Any]) -> str:
    return str((inputs.get("metadata") or {}).get("name"))


def _auto_mode(registrations: Sequence[Registration]) -> bool:
    return any(
        bool((r.inputs.get("computeConfig") or {}).get("enabled")) for r in registrations if r.type == CLUSTER
    )


def provisioner(registrations: Sequence[Registration]) -> str:
    """How the registered cluster gets its nodes, as the registrations show it."""
    charts = {str(r.inputs.get("chart")).rsplit("/", 1)[-1] for r in registrations if r.type == RELEASE}
    if _auto_mode(registrations):
        return "auto-mode"
    if registry.KARPENTER.chart in charts:
        return "karpenter"
    if registry.CLUSTER_AUTOSCALER.chart in charts:
        return "node-groups"
    if any(r.type == "aws:eks/nodeGroup:NodeGroup" for r in registrations):
        return "node groups, no autoscaler registered (they keep their desired size)"
    return "none registered"


def _taints(spec: NodeGroupSpec) -> str:
    taints = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in spec.node_taints)
    return f"; taints {taints}" if taints else ""


def compute_report(plan: Plan) -> Report:
    registrations = plan.registrations
    sources = node_sources(registrations)
    clusters = [r for r in registrations if r.type == CLUSTER]
    if not clusters and not sources:
        return Report(
            title="Compute",
            lines=["not reported: the program registers no EKS cluster, node group or node pool"],
        )
    lines = [f"provisioner: {provisioner(registrations)}"]
    for registration in clusters:
        config = registration.inputs.get("computeConfig")
        if config:
            built_in = ", ".join(config.get("nodePools") or []) or "none"
            lines.append(
                f"EKS Auto Mode compute config: enabled {config.get('enabled')}; built-in pools: {built_in}"
            )
    for source in sources:
        spec = source.spec
        if source.kind == "node group" and isinstance(spec, NodeGroupSpec):
            lines.append(
                f"NodeGroup {spec.name} ({spec.role}): {', '.join(spec.instance_types)}; "
                f"{'/'.join(source.capacity_types)}; {spec.min_size}-{spec.max_size} nodes "
                f"(desired {spec.desired_size}){_taints(spec)}"
            )
    # By name: the engine registers in no fixed order.
    ordered = sorted(registrations, key=lambda r: (r.type, _name(r.inputs)))
    for registration in ordered:
        if registration.type in NODE_CLASSES:
            kind = registration.type.rsplit(":", 1)[-1]
            lines.append(f"{kind} {_name(registration.inputs)}")
    for registration in ordered:
        if registration.type != NODE_POOL:
            continue
        spec = registration.inputs.get("spec") or {}
        template = (spec.get("template") or {}).get("spec") or {}
        requirements = {r.get("key"): r.get("values") for r in template.get("requirements") or []}
        limits = ", ".join(f"{k} {v}" for k, v in (spec.get("limits") or {}).items())
        reserved = reserved_instances((registration.inputs.get("metadata") or {}).get("annotations"))
        lines.append(
            f"NodePool {_name(registration.inputs)} -> {(template.get('nodeClassRef') or {}).get('name')}: "
            f"{', '.join(requirements.get('node.kubernetes.io/instance-type') or [])}; "
            f"{'/'.join(requirements.get('karpenter.sh/capacity-type') or [])}; limits {limits}"
            + "".join(f"; reserved {t} x {n}" for t, n in sorted(reserved.items()))
        )
    if _auto_mode(registrations):
        lines.append("run by EKS Auto Mode itself, so not installed by the program:")
        lines += [f"  {component}" for component in RUN_BY_EKS]
    return Report(title="Compute", lines=lines)
