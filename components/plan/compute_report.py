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
from ..compute.auto_mode import AUTO_MODE_DRA_SINCE, RUN_BY_EKS, RUN_BY_EKS_DRA
from ..compute.node_groups import NodeGroupSpec
from ..compute.pools import reserved_instances
from ..dra import GPU_DEVICE_CLASS
from ..kubernetes_versions import minor_key
from .mock_engine import Registration
from .model import Plan, Report, manifest_of
from .registered import CLAIM, CLAIM_TEMPLATE, NODE_POOL, RELEASE, node_sources

CLUSTER = "aws:eks/cluster:Cluster"
NODE_CLASSES = ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "kubernetes:eks.amazonaws.com/v1:NodeClass")
DEVICE_CLASS = "kubernetes:resource.k8s.io/v1:DeviceClass"


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
    claims = [r for r in ordered if r.type in (CLAIM_TEMPLATE, CLAIM)]
    lines += _dra_lines(registrations, claims)
    if _auto_mode(registrations):
        lines.append("run by EKS Auto Mode itself, so not installed by the program:")
        lines += [f"  {component}" for component in (RUN_BY_EKS_DRA if claims else RUN_BY_EKS)]
    return Report(title="Compute", lines=lines)


def device_classes(registrations: Sequence[Registration]) -> dict[str, str]:
    """The DRA DeviceClasses the program makes exist, by name, with what installs each: a registered
    chart whose descriptor lists them, a DeviceClass of the program's own, or EKS Auto Mode's nodes
    (from 1.36 they run the NVIDIA DRA driver)."""
    found: dict[str, str] = {}
    for r in registrations:
        if r.type == RELEASE:
            chart = str(r.inputs.get("chart")).rsplit("/", 1)[-1]
            addon = registry.BY_CHART.get(chart)
            for device_class in addon.device_classes if addon else ():
                found.setdefault(device_class.name, f"chart {chart} {r.inputs.get('version')}")
        elif r.type == DEVICE_CLASS:
            found.setdefault(_name(r.inputs), "the program")
    auto_mode_dra = any(
        bool((r.inputs.get("computeConfig") or {}).get("enabled"))
        and minor_key(str(r.inputs.get("version") or "0.0")) >= minor_key(AUTO_MODE_DRA_SINCE)
        for r in registrations
        if r.type == CLUSTER
    )
    if auto_mode_dra:
        found.setdefault(GPU_DEVICE_CLASS, "EKS Auto Mode's nodes")
    return found


def _claim_line(registration: Registration) -> str:
    manifest = manifest_of(registration)
    kind, metadata = manifest["kind"], manifest["metadata"]
    spec = manifest.get("spec") or {}
    if kind == "ResourceClaimTemplate":
        spec = spec.get("spec") or {}
    devices = spec.get("devices") or {}
    requests = []
    for request in devices.get("requests") or []:
        exactly = request.get("exactly") or {}
        selectors = [(s.get("cel") or {}).get("expression") for s in exactly.get("selectors") or []]
        where = f" where {' && '.join(selectors)}" if selectors else ""
        requests.append(f"{exactly.get('count', 1)} x {exactly.get('deviceClassName')}{where}")
    sharing = [
        str((((c.get("opaque") or {}).get("parameters") or {}).get("sharing") or {}).get("strategy"))
        for c in devices.get("config") or []
    ]
    shared = f"; shared by its pods ({', '.join(sharing)})" if kind == "ResourceClaim" else ""
    return f"{kind} {metadata.get('namespace')}/{metadata.get('name')}: {'; '.join(requests)}{shared}"


def _dra_lines(registrations: Sequence[Registration], claims: Sequence[Registration]) -> list[str]:
    """GPUs by DRA: the DeviceClasses and who installs them, and every claim and claim template."""
    classes = device_classes(registrations)
    if not classes and not claims:
        return []
    lines = [
        "GPUs by DRA (resource.k8s.io/v1): DeviceClasses "
        + (", ".join(f"{name} ({source})" for name, source in classes.items()) or "none installed")
    ]
    lines += [_claim_line(r) for r in claims]
    return lines
