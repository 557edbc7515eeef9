"""Where the stack's nodes come from: node groups, Karpenter or EKS Auto Mode, and their GPU pools.

Read from the program's ``compute`` output (an operator output, not part of the outputs contract) and
the node pools and node classes it registers. With EKS Auto Mode it lists what EKS runs itself, which
the program therefore does not install.
"""

from __future__ import annotations

from typing import Any

from .model import Plan, Report

CLUSTER = "aws:eks/cluster:Cluster"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASSES = ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "kubernetes:eks.amazonaws.com/v1:NodeClass")


def _name(inputs: dict[str, Any]) -> str:
    return str((inputs.get("metadata") or {}).get("name"))


def compute_report(plan: Plan) -> Report:
    compute = plan.run.outputs.get("compute")
    if not isinstance(compute, dict):
        return Report(title="Compute", lines=["not reported: the stack manages no cluster"])
    lines = [f"provisioner: {compute.get('provisioner')}"]
    for registration in plan.registrations:
        config = registration.inputs.get("computeConfig") if registration.type == CLUSTER else None
        if config:
            built_in = ", ".join(config.get("nodePools") or []) or "none"
            lines.append(
                f"EKS Auto Mode compute config: enabled {config.get('enabled')}; built-in pools: {built_in}"
            )
    # By name: the engine registers in no fixed order.
    registrations = sorted(plan.registrations, key=lambda r: (r.type, _name(r.inputs)))
    for registration in registrations:
        if registration.type in NODE_CLASSES:
            kind = registration.type.rsplit(":", 1)[-1]
            lines.append(f"{kind} {_name(registration.inputs)}")
    for registration in registrations:
        if registration.type != NODE_POOL:
            continue
        spec = registration.inputs.get("spec") or {}
        template = (spec.get("template") or {}).get("spec") or {}
        requirements = {r.get("key"): r.get("values") for r in template.get("requirements") or []}
        limits = ", ".join(f"{k} {v}" for k, v in (spec.get("limits") or {}).items())
        lines.append(
            f"NodePool {_name(registration.inputs)} -> {(template.get('nodeClassRef') or {}).get('name')}: "
            f"{', '.join(requirements.get('node.kubernetes.io/instance-type') or [])}; "
            f"{'/'.join(requirements.get('karpenter.sh/capacity-type') or [])}; limits {limits}"
        )
    run_by_eks = compute.get("runByEks") or []
    if run_by_eks:
        lines.append("run by EKS Auto Mode itself, so not installed by the program:")
        lines += [f"  {component}" for component in run_by_eks]
    return Report(title="Compute", lines=lines)
