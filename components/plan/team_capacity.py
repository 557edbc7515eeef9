"""Capacity for a program that registers no nodes (a team's program on the platform): its pods against
the platform's node groups and namespace quotas, as the platform's stack outputs describe them.

The outputs (``PlatformOutputs``, read through ``--stack-outputs``) give each group's instance types,
GPUs per node, most nodes (a pool: its GPU limit) and what the platform's DaemonSets request on each
node, and each namespace's quota. They do not list the platform's other pods on a group: those are
planned, and reported, in the platform's own stack; here the team's share is what is judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..compute.capacity import NodeShape, PodSet, Requests, allocatable, sum_requests
from ..compute.instance_types import lookup
from ..validation import quantity_value
from .model import Plan
from .registered import describe_requests, manifest_pods


def referenced_outputs(plan: Plan) -> list[tuple[str, Mapping[str, Any]]]:
    """(stack, outputs) of the stacks the plan was given outputs of (``--stack-outputs``) that describe
    a platform's node groups."""
    return [(stack, out) for stack, out in plan.stack_outputs.items() if out.get("nodeGroups")]


def node_shape(instance_types: Sequence[str]) -> NodeShape | None:
    """The group's least generous node (the autoscaler may start any of its types)."""
    shapes = [allocatable(t) for t in map(lookup, instance_types) if t is not None]
    return min(shapes, key=lambda s: (s.allocatable.cpu_m, s.allocatable.memory_mib, s.pods), default=None)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _peak(pods: Sequence[PodSet]) -> tuple[Requests, int, int]:
    """What ``pods`` request together at their peak: requests, pod count, GPUs."""
    return (
        sum_requests(p.requests.times(p.max_replicas) for p in pods),
        sum(p.max_replicas for p in pods),
        sum(p.gpus * p.max_replicas for p in pods),
    )


def _group_lines(name: str, group: Mapping[str, Any], pods: Sequence[PodSet]) -> list[str]:
    node = node_shape(group.get("instanceTypes") or [])
    daemons = group.get("daemonSetRequests") or {}
    per_node = Requests(int(daemons.get("cpuM", 0)), int(daemons.get("memoryMib", 0)))
    gpus_per_node = int(group.get("gpusPerNode") or 0)
    if node is None:
        return [f"{name} (instance types {', '.join(group.get('instanceTypes') or [])}: not in the table)"]
    kind = group.get("kind") or "node group"
    max_nodes = group.get("maxNodes")
    max_gpus = group.get("maxGpus")
    if max_nodes is None and max_gpus is not None and gpus_per_node:
        max_nodes = int(max_gpus) // max(1, min(t.gpus for t in map(lookup, group["instanceTypes"]) if t))
    lines = [
        f"{name} ({kind}; {node.instance}: {node.allocatable.describe()}, {node.pods} pods"
        f"{f', {gpus_per_node} GPU' if gpus_per_node else ''} per node; the platform's DaemonSets take "
        f"{per_node.describe() if daemons else 'an unexported share'} of each"
        f"{f'; at most {max_nodes} nodes' if max_nodes is not None else ''})"
    ]
    lines += [
        f"  {p.name} x {p.min_replicas}-{p.max_replicas}: {describe_requests(p.requests, p.gpus)} "
        f"({p.namespace or 'no namespace'})"
        for p in pods
    ]
    room = node.allocatable + Requests(-per_node.cpu_m, -per_node.memory_mib)
    for p in pods:
        if p.requests.exceeds(room) or p.gpus > gpus_per_node:
            lines.append(f"  warning: one {p.name} pod does not fit a {node.instance} after the DaemonSets")
    if max_nodes is not None:
        need, count, gpus = _peak(pods)
        offered = room.times(int(max_nodes))
        lines.append(
            f"  the team at its peak: {describe_requests(need, gpus)}, {count} pods of {max_nodes} nodes' "
            f"{describe_requests(offered, gpus_per_node * int(max_nodes))} after DaemonSets "
            f"({_pct(need.cpu_m, offered.cpu_m)} CPU, {_pct(need.memory_mib, offered.memory_mib)} memory"
            f"{f', {_pct(gpus, gpus_per_node * int(max_nodes))} GPU' if gpus_per_node else ''}); "
            "the platform's own pods there are not counted"
        )
        if need.exceeds(offered) or (gpus_per_node and gpus > gpus_per_node * int(max_nodes)):
            lines.append(f"  warning: the team's peak alone does not fit {max_nodes} nodes of {name}")
    return lines


def _quota_lines(namespace: str, quota: Mapping[str, Any], pods: Sequence[PodSet]) -> list[str]:
    need, _, gpus = _peak(pods)
    cpu_m = int(quantity_value(quota.get("cpu", 0)) * 1000)
    memory_mib = int(quantity_value(quota.get("memory", 0)) / 2**20)
    quota_gpus = int(quota.get("gpus") or 0)
    lines = [
        f"namespace {namespace}: the team at its peak requests {describe_requests(need, gpus)} of its quota "
        f"{quota.get('cpu')} CPU / {quota.get('memory')} / {quota_gpus} GPU ({_pct(need.cpu_m, cpu_m)} CPU, "
        f"{_pct(need.memory_mib, memory_mib)} memory, {_pct(gpus, quota_gpus)} GPU)"
    ]
    if need.exceeds(Requests(cpu_m, memory_mib)) or gpus > quota_gpus:
        lines.append(f"warning: namespace {namespace}: the team's peak exceeds the quota")
    return lines


def team_capacity_lines(plan: Plan) -> list[str]:
    """The team's workloads against the referenced platform's groups and quotas."""
    platforms = referenced_outputs(plan)
    if not platforms:
        return [
            "not reported: the program registers no node group or node pool, and no platform outputs "
            "(--stack-outputs) describe the nodes its pods land on"
        ]
    stack, outputs = platforms[0]
    pods = manifest_pods(plan.registrations)
    groups: Mapping[str, Mapping[str, Any]] = outputs["nodeGroups"]
    lines = [f"the team's pods on the groups of stack {stack} (its outputs nodeGroups and namespaces)"]
    placed: set[str] = set()
    for name, group in groups.items():
        selector = group.get("nodeSelector") or {}
        here = [p for p in pods if p.node_group is not None and p.node_group in selector.values()]
        placed |= {p.name for p in here}
        if here:
            lines += _group_lines(name, group, here)
    unplaced = [p.name for p in pods if p.name not in placed]
    if unplaced:
        lines.append(f"no node group selected (the untainted nodes take them): {', '.join(unplaced)}")
    for namespace, entry in (outputs.get("namespaces") or {}).items():
        quota = (entry or {}).get("quota")
        here = [p for p in pods if p.namespace == namespace]
        if quota and here:
            lines += _quota_lines(namespace, quota, here)
    return lines
