"""Scheduling vocabulary shared by node groups, the GPU device plugin and workloads.

A node group declares taints and labels; a workload that must land on it needs the matching
tolerations and node selector. Both sides are derived from the same values here, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pulumi_kubernetes as k8s

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Taint:
    """A node taint, as EKS managed node groups and Kubernetes spell it."""

    key: str  # the taint's key, e.g. ``nvidia.com/gpu``
    value: str  # the taint's value
    effect: TaintEffect = "NoSchedule"  # what the taint does to pods that do not tolerate it

    def eks_effect(self) -> str:
        """EKS node groups spell effects in upper snake case (NO_SCHEDULE)."""
        return {
            "NoSchedule": "NO_SCHEDULE",
            "PreferNoSchedule": "PREFER_NO_SCHEDULE",
            "NoExecute": "NO_EXECUTE",
        }[self.effect]

    def toleration(self) -> Toleration:
        return Toleration(key=self.key, operator="Equal", value=self.value, effect=self.effect)


GPU_TAINT = Taint(key=GPU_RESOURCE, value="true", effect="NoSchedule")


@dataclass(frozen=True)
class Toleration:
    key: str  # the taint key it matches ("" with Exists: every taint)
    operator: Literal["Equal", "Exists"] = "Equal"  # Equal: the value must match; Exists: any value
    value: str | None = None  # the taint value it matches (with Equal)
    effect: TaintEffect | None = None  # the effect it matches (None: every effect)

    def to_args(self) -> k8s.core.v1.TolerationArgs:
        return k8s.core.v1.TolerationArgs(
            key=self.key, operator=self.operator, value=self.value, effect=self.effect
        )

    def to_dict(self) -> dict[str, str]:
        """The manifest/Helm-values form."""
        out = {"key": self.key, "operator": self.operator}
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        return out

    def tolerates(self, taint: Taint) -> bool:
        if self.key != taint.key or (self.effect is not None and self.effect != taint.effect):
            return False
        return self.operator == "Exists" or self.value == taint.value


@dataclass(frozen=True)
class NodeFit:
    """What one pod can get where a placement lands it: the fit rules (``components.fit``) read it.

    Unknown values stay ``None`` (a platform that does not export them): their rules are skipped.
    """

    name: str  # the node group's or the pool's name
    # an Auto Scaling group of any of its types, or a Karpenter / Auto Mode pool of the type a pod needs
    kind: Literal["node group", "pool"] = "node group"
    gpus_per_node: int = 0  # GPUs on each node (a pool: its largest type's); a pod asks for at most this many
    instance_types: tuple[str, ...] = ()  # the EC2 instance types its nodes may be
    # True: a new node is of a type that fits the pending pod (a pool); False: any of the types
    chooses_type_per_pod: bool = False
    max_nodes: int | None = None  # the most nodes of a node group (None: not known)
    max_gpus: int | None = None  # the most GPUs a pool's nodes hold together (None: not known)
    # what the group's DaemonSets request on every node, in millicores and MiB (None: not known)
    daemon_set_requests: tuple[int, int] | None = None


@dataclass(frozen=True)
class Placement:
    """How a pod lands on a node group: node selector, tolerations and, for GPUs, the resource to request.

    ``fit`` (set by ``NodeGroupSpec.placement``, ``GpuPoolSpec.placement`` and ``PlatformOutputs.placement``)
    is what a node there offers: a workload placed there is refused when it could never run.
    """

    node_selector: Mapping[str, str] = field(default_factory=dict)  # the labels a pod's node must carry
    tolerations: tuple[Toleration, ...] = ()  # the taints of those nodes a pod tolerates
    gpu_resource: str | None = None  # the device plugin's extended resource a container asks GPUs of
    fit: NodeFit | None = field(default=None, compare=False)
    # DRA: the DeviceClass a pod claims its GPUs from (instead of ``gpu_resource``; components/dra.py)
    device_class: str | None = None

    @property
    def gives_gpus(self) -> bool:
        """Whether pods placed here can get GPUs (by the device plugin's resource or by a claim)."""
        return bool(self.gpu_resource or self.device_class)

    def toleration_args(self) -> list[k8s.core.v1.TolerationArgs]:
        return [t.to_args() for t in self.tolerations]


def toleration_from_dict(item: Mapping[str, str]) -> Toleration:
    """The inverse of ``Toleration.to_dict``: read a toleration written in manifest/Helm-values form."""
    return Toleration(
        key=item.get("key", ""),
        operator=item.get("operator", "Equal"),  # type: ignore[arg-type]
        value=item.get("value"),
        effect=item.get("effect") or None,  # type: ignore[arg-type]
    )


def is_tolerated(taint: Taint, tolerations: Iterable[Toleration]) -> bool:
    """Whether any toleration matches ``taint``.

    Adds Kubernetes' wildcard rule to ``Toleration.tolerates``: an empty key with operator ``Exists``
    matches every taint (of its effect, if it names one).
    """
    for toleration in tolerations:
        if toleration.tolerates(taint):
            return True
        if (
            toleration.key == ""
            and toleration.operator == "Exists"
            and toleration.effect in (None, taint.effect)
        ):
            return True
    return False


def untolerated(taints: Iterable[Taint], tolerations: Iterable[Toleration]) -> tuple[Taint, ...]:
    """The taints that none of ``tolerations`` matches (empty when a pod can land on such a node)."""
    tolerations = tuple(tolerations)
    return tuple(t for t in taints if not is_tolerated(t, tolerations))
