"""Capacity per node group (or GPU pool, at zero nodes and at the most its limits allow): the CPU,
memory and pods requested by what lands there, against what the group's nodes offer at its minimum
and its maximum size.

Any program: the node groups, pools and pods are read from what it registered (``registered``): its
own pods as its manifests declare them (Deployments at their HPA's minReplicas / maxReplicas, Jobs at
their parallelism, CronJobs one run at a time, its DaemonSets on every node they tolerate), and the
pods of every registered Helm release and EKS add-on as ``components.compute.capacity`` lists them (the
requests the components give the releases; the upstream defaults for the add-ons). A program that
registers no nodes (a team's, on the platform) is reported against the platform's stack outputs
(``team_capacity``). Allocatable per node follows
the EKS AL2023 formulas in ``components.compute.capacity``. Requests are summed, not bin-packed: a sum that
fits is necessary, not sufficient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..compute.capacity import GroupLoad, Requests
from .model import Plan, Report
from .registered import describe_requests, registered_cluster
from .team_capacity import team_capacity_lines


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
        always = load.always_running
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
                "always_running_nodes": load.nodes_needed(),
                "at_max": maximum,
                "pods": [
                    {
                        "name": p.name,
                        "source": p.source,
                        "cpu_m": p.requests.cpu_m,
                        "memory_mib": p.requests.memory_mib,
                        "gpus": p.gpus,
                        "replicas": "per node" if p.daemon else [p.min_replicas, p.max_replicas],
                        # A DRA claim the pods share (present only then).
                        **({"shared_claim": list(p.shared_claim)} if p.shared_claim else {}),
                    }
                    for p in [*load.daemons, *load.pods]
                ],
            }
        )
        if not minimum["fits"] and load.spec.min_nodes == 0 and always:
            names = ", ".join(f"{p.name} ({p.min_replicas})" for p in always)
            needed = load.nodes_needed()
            warnings.append(
                f"{load.spec.name}: minSize is 0, but {names} always run there: the group never scales to "
                f"zero (the idle cost counts the {needed} node{'s' if needed != 1 else ''} they need)"
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
    cluster = registered_cluster(plan.registrations)
    if not cluster.sources:
        # A team's program on the platform: its pods land on the platform's groups.
        return Report(title="Capacity", lines=team_capacity_lines(plan))
    loads = list(cluster.loads)
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
            shared = (
                f", sharing claim {p.shared_claim[0]} ({p.shared_claim[1]} GPU)" if p.shared_claim else ""
            )
            lines.append(
                f"    {p.name} x {p.min_replicas}-{p.max_replicas}: {describe_requests(p.requests, p.gpus)}"
                f"{shared} ({p.source})"
            )
    lines += [f"warning: {w}" for w in warnings]
    return Report(
        title="Capacity",
        lines=lines,
        files={"capacity.json": json.dumps({"groups": groups, "warnings": warnings}, indent=2) + "\n"},
    )
