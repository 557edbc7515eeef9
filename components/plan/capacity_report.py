"""Capacity per node group (or GPU pool, at zero nodes and at the most its limits allow): the CPU, memory and pods requested by what lands there, against what the
group's nodes offer at its minimum and its maximum size.

What lands on a group: the program's own pods as the plan's manifests declare them (Deployments at
their HPA's minReplicas / maxReplicas, Jobs at their parallelism, CronJobs one run at a time), and the
pods of every Helm release and EKS add-on as ``components.compute.capacity`` lists them (the requests the
components give the releases; the upstream defaults for the add-ons). Allocatable per node follows
the EKS AL2023 formulas in ``components.compute.capacity``. Requests are summed, not bin-packed: a sum that
fits is necessary, not sufficient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..compute.capacity import (
    GroupLoad,
    PodSet,
    Requests,
    group_loads,
    pod_spec_requests,
)
from ..compute.node_groups import NODE_GROUP_LABEL
from ..compute.pools import POOL_LABEL
from .mock_engine import Registration
from .model import Plan, Report

_WORKLOAD_KINDS = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:batch/v1:Job",
    "kubernetes:batch/v1:CronJob",
}


def _pod_template(registration: Registration) -> Mapping[str, Any]:
    spec = registration.inputs.get("spec") or {}
    if registration.type.endswith(":CronJob"):
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (spec.get("template") or {}).get("spec") or {}


def manifest_pods(registrations: Sequence[Registration]) -> list[PodSet]:
    """The program's own pods, read from what it registers."""
    hpas: dict[tuple[str | None, str], tuple[int, int]] = {}
    for r in registrations:
        if r.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler":
            spec = r.inputs.get("spec") or {}
            namespace = (r.inputs.get("metadata") or {}).get("namespace")
            hpas[(namespace, spec["scaleTargetRef"]["name"])] = (
                spec.get("minReplicas", 1),
                spec["maxReplicas"],
            )
    found: list[PodSet] = []
    for r in registrations:
        if r.type not in _WORKLOAD_KINDS:
            continue
        metadata, spec = r.inputs.get("metadata") or {}, r.inputs.get("spec") or {}
        name = metadata.get("name") or r.name
        if r.type.endswith(":Deployment"):
            low, high = hpas.get((metadata.get("namespace"), name)) or (spec.get("replicas", 1),) * 2
        elif r.type.endswith(":Job"):
            low, high = 0, spec.get("parallelism", 1)
        else:
            low, high = 0, 1 if spec.get("concurrencyPolicy") == "Forbid" else spec.get("parallelism", 1)
        template = _pod_template(r)
        found.append(
            PodSet(
                name=name,
                source="workload",
                requests=pod_spec_requests(template),
                min_replicas=low,
                max_replicas=high,
                node_group=(template.get("nodeSelector") or {}).get(NODE_GROUP_LABEL)
                or (template.get("nodeSelector") or {}).get(POOL_LABEL),
            )
        )
    return found


def _settings(config: Mapping[str, Any]) -> Any:
    from ..config import parse_settings, secret_config_keys

    # As the program reads them: keys are strings, and objects travel as JSON (so their keys do too).
    raw = {
        str(k).split(":", 1)[1]: v if isinstance(v, str) else json.loads(json.dumps(v))
        for k, v in config.items()
        if str(k).startswith("aiplatform:")
    }
    secret = secret_config_keys(raw)
    return parse_settings({k: v for k, v in raw.items() if k not in secret})


def plan_loads(config: Mapping[str, Any], registrations: Sequence[Registration]) -> list[GroupLoad]:
    from ..config.capacity import capacity_nodes, platform_pods

    settings = _settings(config)
    nodes = capacity_nodes(settings)
    # The workloads' pods as the plan registered them, the others as the model lists them.
    pods = [p for p in platform_pods(settings, nodes) if p.source != "workload"] + manifest_pods(
        registrations
    )
    return group_loads(nodes.all, pods)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _side(load: GroupLoad, at_max: bool) -> dict[str, Any]:
    (requested, pods), (offered, slots) = load.requested(at_max), load.offered(at_max)
    return {
        "nodes": load.spec.max_nodes if at_max else load.spec.min_nodes,
        "requested": {"cpu_m": requested.cpu_m, "memory_mib": requested.memory_mib, "pods": pods},
        "allocatable": {"cpu_m": offered.cpu_m, "memory_mib": offered.memory_mib, "pods": slots},
        "fits": not requested.exceeds(offered) and pods <= slots,
    }


def _line(label: str, side: Mapping[str, Any]) -> str:
    req, off = side["requested"], side["allocatable"]
    return (
        f"{label} {side['nodes']}: requests {Requests(req['cpu_m'], req['memory_mib']).describe()}, "
        f"{req['pods']} pods of {Requests(off['cpu_m'], off['memory_mib']).describe()}, {off['pods']} pods "
        f"({_pct(req['cpu_m'], off['cpu_m'])} CPU, {_pct(req['memory_mib'], off['memory_mib'])} memory)"
    )


def capacity_data(loads: Sequence[GroupLoad]) -> tuple[list[dict[str, Any]], list[str]]:
    groups: list[dict[str, Any]] = []
    warnings: list[str] = []
    for load in loads:
        minimum, maximum = _side(load, False), _side(load, True)
        always = [p for p in load.pods if p.min_replicas]
        groups.append(
            {
                "group": load.spec.name,
                "instance": load.node.instance if load.node else None,
                "per_node": {
                    "cpu_m": load.node.allocatable.cpu_m if load.node else 0,
                    "memory_mib": load.node.allocatable.memory_mib if load.node else 0,
                    "pods": load.node.pods if load.node else 0,
                },
                "daemonsets_per_node": {"cpu_m": load.per_node.cpu_m, "memory_mib": load.per_node.memory_mib},
                "at_min": minimum,
                "at_max": maximum,
                "pods": [
                    {
                        "name": p.name,
                        "source": p.source,
                        "cpu_m": p.requests.cpu_m,
                        "memory_mib": p.requests.memory_mib,
                        "replicas": "per node" if p.daemon else [p.min_replicas, p.max_replicas],
                    }
                    for p in [*load.daemons, *load.pods]
                ],
            }
        )
        if not minimum["fits"] and load.spec.min_nodes == 0 and always:
            names = ", ".join(f"{p.name} ({p.min_replicas})" for p in always)
            warnings.append(
                f"{load.spec.name}: minSize is 0, but {names} always run there: the group never scales to "
                "zero (the idle cost assumes it does)"
            )
        elif not minimum["fits"]:
            warnings.append(
                f"{load.spec.name}: what always runs there does not fit its {load.spec.min_nodes} nodes"
            )
        if not maximum["fits"]:
            warnings.append(
                f"{load.spec.name}: everything at its peak does not fit {load.spec.max_nodes} nodes"
            )
    return groups, warnings


def capacity_report(plan: Plan) -> Report:
    if not any(key.startswith("aiplatform:") for key in plan.run.config):
        # A team's project on the platform: its pods land on the platform's groups, planned there.
        return Report(
            title="Capacity",
            lines=["not reported: the stack configures no platform (no aiplatform: keys), so no node groups"],
        )
    loads = plan_loads(plan.run.config, plan.registrations)
    groups, warnings = capacity_data(loads)
    lines = [
        "requests against allocatable (EKS AL2023 kube-reserved and eviction; components/compute/capacity.py)"
    ]
    for load, group in zip(loads, groups, strict=True):
        node = load.node
        shape = (
            f"{node.instance}: {node.allocatable.describe()}, {node.pods} pods per node"
            if node
            else "unknown"
        )
        lines.append(f"{group['group']} ({shape}; DaemonSets take {load.per_node.describe()} of each)")
        lines.append("  " + _line("at minSize", group["at_min"]))
        lines.append("  " + _line("at maxSize", group["at_max"]))
        for p in load.pods:
            lines.append(
                f"    {p.name} x {p.min_replicas}-{p.max_replicas}: {p.requests.describe()} ({p.source})"
            )
    lines += [f"warning: {w}" for w in warnings]
    return Report(
        title="Capacity",
        lines=lines,
        files={"capacity.json": json.dumps({"groups": groups, "warnings": warnings}, indent=2) + "\n"},
    )
