"""What a team's program costs on the platform: its pods' share of the platform's nodes.

A team's program registers no nodes: its pods land on the platform's node groups and pools, which
the platform's outputs describe (``--stack-outputs``) and the platform's own plan prices whole. Here
each pod is priced at its share of one node of the group, by the resource it takes most of (its GPUs
of the node's GPUs, else its CPU or memory of what the node offers after the platform's DaemonSets,
else one pod slot): idle at the workload's minimum replicas (a Deployment's that always run), peak at
its maximum (a Job's parallel pods). A pod that selects no group is priced on the first untainted
group (the system nodes). A node group's node is its least generous type, the one its
autoscaler may start; a pool's is the cheapest allowed type that holds the pod, the one Karpenter
starts for it. A spot group (its ``aiplatform.io/capacity-type`` label) gets the spot discount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..compute.capacity import NodeShape, PodSet, Requests, allocatable
from ..compute.instance_types import lookup
from ..compute.node_groups import CAPACITY_LABEL
from .model import Plan
from .registered import manifest_pods
from .team_capacity import node_shape, referenced_outputs


@dataclass(frozen=True)
class TeamShare:
    """The team's pods on one of the platform's groups, in nodes of one type (fractions of nodes)."""

    group: str
    instance: str
    nodes_idle: float
    nodes_peak: float
    hourly: float  # USD per node hour, the spot discount applied
    gpus_idle: int
    gpus_peak: int
    note: str


def pod_share(pod: PodSet, node: NodeShape, daemons: Requests) -> float:
    """The part of one node a pod takes, by the resource it takes most of."""
    room = node.allocatable + Requests(-daemons.cpu_m, -daemons.memory_mib)
    shares = [1 / node.pods if node.pods else 1.0]
    if pod.gpus and node.gpus:
        shares.append(pod.gpus / node.gpus)
    if room.cpu_m > 0:
        shares.append(pod.requests.cpu_m / room.cpu_m)
    if room.memory_mib > 0:
        shares.append(pod.requests.memory_mib / room.memory_mib)
    return min(max(shares), 1.0)


def _fits(pod: PodSet, node: NodeShape, daemons: Requests) -> bool:
    room = node.allocatable + Requests(-daemons.cpu_m, -daemons.memory_mib)
    return not pod.requests.exceeds(room) and pod.gpus <= node.gpus


def _pool_node(
    pod: PodSet, types: Sequence[str], daemons: Requests, prices: Mapping[str, float]
) -> NodeShape | None:
    """The cheapest allowed type that holds ``pod`` (Karpenter starts the cheapest that fits)."""
    shapes = [allocatable(t) for t in map(lookup, types) if t is not None]
    fitting = [s for s in shapes if _fits(pod, s, daemons) and s.instance in prices]
    return min(fitting, key=lambda s: prices[s.instance], default=None)


def team_shares(plan: Plan, pricing: Mapping[str, Any]) -> tuple[list[TeamShare], list[str]]:
    """The team's share of each platform group its pods select, and warnings (an unpriced type)."""
    platforms = referenced_outputs(plan)
    if not platforms:
        return [], []
    _, outputs = platforms[0]
    prices: Mapping[str, float] = pricing["ec2_on_demand_hour"]
    spot = 1 - float(pricing["spot_discount"])
    pods = manifest_pods(plan.registrations)
    shares: dict[tuple[str, str], list[tuple[PodSet, float]]] = {}
    hourly: dict[tuple[str, str], float] = {}
    warnings: list[str] = []
    groups: Mapping[str, Mapping[str, Any]] = outputs.get("nodeGroups") or {}
    # A pod that selects no group lands on the untainted nodes: the first untainted group's.
    untainted = next((name for name, group in groups.items() if not group.get("taints")), None)
    for name, group in groups.items():
        selector = set((group.get("nodeSelector") or {}).values())
        types = group.get("instanceTypes") or []
        daemon = group.get("daemonSetRequests") or {}
        daemons = Requests(int(daemon.get("cpuM", 0)), int(daemon.get("memoryMib", 0)))
        factor = spot if (group.get("labels") or {}).get(CAPACITY_LABEL) == "spot" else 1.0
        here = [p for p in pods if (p.node_group in selector if p.node_group else name == untainted)]
        for pod in here:
            if group.get("kind") == "pool":
                node = _pool_node(pod, types, daemons, prices)
            else:
                node = node_shape(types)
            if node is None or node.instance not in prices:
                warnings.append(f"no priced node of {name} holds {pod.name}: not counted")
                continue
            key = (name, node.instance)
            shares.setdefault(key, []).append((pod, pod_share(pod, node, daemons)))
            hourly[key] = prices[node.instance] * factor
    found = []
    for (name, instance), placed in shares.items():
        listed = ", ".join(
            f"{p.name} x {p.min_replicas}-{p.max_replicas} at {share:.2f} node each" for p, share in placed
        )
        found.append(
            TeamShare(
                group=name,
                instance=instance,
                nodes_idle=round(sum(share * p.min_replicas for p, share in placed), 4),
                nodes_peak=round(sum(share * p.max_replicas for p, share in placed), 4),
                hourly=hourly[(name, instance)],
                gpus_idle=sum(p.gpus * p.min_replicas for p, _ in placed),
                gpus_peak=sum(p.gpus * p.max_replicas for p, _ in placed),
                note=f"the team's pods' share of the platform's nodes: {listed}",
            )
        )
    return found, warnings


def shared_albs(plan: Plan) -> tuple[set[str], set[str]]:
    """The ALB groups, and the IngressClasses that group their routes (EKS Auto Mode), of the platform
    the plan was given outputs of: a team's Ingress there shares the platform's load balancer, which
    the platform's own plan prices."""
    groups, classes = set(), set()
    for _, outputs in referenced_outputs(plan):
        routes = outputs.get("ingressRoutes") or {}
        if routes.get("groupInClass") and outputs.get("ingressClass"):
            classes.add(str(outputs["ingressClass"]))
        elif routes.get("groupName"):
            groups.add(str(routes["groupName"]))
    return groups, classes
