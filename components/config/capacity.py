"""The capacity model's inputs from the settings: the nodes, and every pod the platform runs there.

``s`` is ``PlatformSettings``, or the valid sections of one (a rule's ``Sections``) holding at least
cluster, nodeGroups, compute, workloads, observability, ingress and storage.
"""

from __future__ import annotations

from typing import Any

from ..compute.capacity import (
    ConfigProblem,
    Nodes,
    PodSet,
    capacity_problems,
    eks_addon_pods,
    release_pods,
)
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


def platform_capacity_problems(s: Any) -> list[ConfigProblem]:
    """Pods that fit no node of their group; system nodes too small for what runs there."""
    nodes = capacity_nodes(s)
    return capacity_problems(
        nodes, platform_pods(s, nodes), provisioner_named(s.compute.provisioner).system_problems
    )
