"""The capacity model's inputs from the settings: the nodes, and every pod the platform runs there.

``s`` is ``PlatformSettings``, or the valid sections of one (a rule's ``Sections``) holding at least
cluster, nodeGroups, compute, workloads, observability, ingress and storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import fit
from ..compute.capacity import (
    ConfigProblem,
    GroupLoad,
    Nodes,
    PodSet,
    Requests,
    eks_addon_pods,
    group_loads,
    release_pods,
)
from ..compute.node_groups import NodeGroupSpec
from ..compute.provisioner import provisioner_named
from .addons import addon_choices

EFS_CSI_ADDON = "aws-efs-csi-driver"


def capacity_nodes(s: Any) -> Nodes:
    """Where the platform's pods run, as the stack's provisioner provides the nodes."""
    return provisioner_named(s.compute.provisioner).nodes(
        s.nodeGroups.system.spec(), [g.spec() for g in s.nodeGroups.gpu], s.compute.specs()
    )


def _eks_addons(s: Any) -> set[str]:
    """The EKS add-ons the program installs: only on a cluster it manages."""
    if s.cluster.mode != "managed":
        return set()
    installed = set(s.cluster.addons)
    if s.storage.sharedFileSystem.enabled:
        installed.add(EFS_CSI_ADDON)
    return installed


def platform_pods(s: Any, nodes: Nodes | None = None) -> list[PodSet]:
    """Every pod the platform runs: the EKS add-ons', the provisioner's controllers, the Helm
    releases' and the workloads'."""
    provisioner = provisioner_named(s.compute.provisioner)
    controllers = provisioner.pods() if s.cluster.mode == "managed" else []
    return [
        *eks_addon_pods(_eks_addons(s)),
        *controllers,
        *release_pods(addon_choices(s), nodes or capacity_nodes(s)),
        *(w.pod_set(("workloads", kind, i)) for kind, i, w in s.workloads.all()),
    ]


SystemCheck = Callable[[NodeGroupSpec, GroupLoad], list[ConfigProblem]]


def capacity_problems(nodes: Nodes, pods: Iterable[PodSet], system_check: SystemCheck) -> list[ConfigProblem]:
    """Config errors: a pod no node of its group can hold after the group's DaemonSets (the fit rule
    ``fit.pod_node_reason``), and what ``system_check`` (the provisioner's ``system_problems``) says of
    the system nodes under their load. GPU groups below what always runs only scale up, which the plan
    reports.
    """
    loads = group_loads(nodes.all, pods)
    found: list[ConfigProblem] = []
    for load in loads:
        node = fit.node_shape(load.spec)
        if node is None:
            continue
        found += [
            (p.path, reason)
            for p in load.pods
            if p.path and (reason := fit.pod_node_reason(p.requests, load.spec.name, node, load.per_node))
        ]
    system = next(load for load in loads if load.spec.name == nodes.system.name)
    return found + system_check(nodes.system, system)


def daemon_set_requests(s: Any) -> dict[str, Requests]:
    """What the platform's DaemonSets request on every node, per node group or pool (the stack outputs
    carry it, so a team's workloads are judged against the room the stack path judges)."""
    nodes = capacity_nodes(s)
    return {load.spec.name: load.per_node for load in group_loads(nodes.all, platform_pods(s, nodes))}


def platform_capacity_problems(s: Any) -> list[ConfigProblem]:
    """Pods that fit no node of their group; system nodes too small for what runs there."""
    nodes = capacity_nodes(s)
    return capacity_problems(
        nodes, platform_pods(s, nodes), provisioner_named(s.compute.provisioner).system_problems
    )
