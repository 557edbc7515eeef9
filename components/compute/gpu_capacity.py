"""What the platform reads of the nodes pods land on, whichever provisioner supplies them.

Every node source satisfies ``NodeCapacity``: a managed node group (``NodeGroupSpec``, the system
group too) and a GPU pool (``GpuPoolSpec``). GPU node groups and GPU pools also satisfy
``GpuCapacity``: the capacity model, the GPU add-ons, the stack outputs and the workloads' placement
read a group and a pool through it alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..scheduling import Placement, Taint


class NodeCapacity(Protocol):
    """Nodes of one kind: their types, their taints and how many of them there may be."""

    @property
    def name(self) -> str: ...

    @property
    def instance_types(self) -> tuple[str, ...]: ...

    @property
    def is_gpu(self) -> bool: ...

    @property
    def claims_gpus(self) -> bool:
        """GPU nodes whose GPUs pods claim through DRA (components/dra.py), not the device plugin's."""
        ...

    @property
    def node_taints(self) -> tuple[Taint, ...]:
        """Every taint the nodes carry (the GPU taint first on GPU nodes)."""
        ...

    @property
    def min_nodes(self) -> int: ...

    @property
    def max_nodes(self) -> int: ...

    @property
    def chooses_type_per_pod(self) -> bool:
        """True when a new node is of a type that fits the pending pod (a pool); False when it may be
        any of the types (a node group's Auto Scaling group)."""
        ...


class GpuCapacity(NodeCapacity, Protocol):
    """GPU nodes a workload can be placed on: a GPU node group or a GPU pool."""

    @property
    def labels(self) -> Mapping[str, str]:
        """The labels the configuration adds (the platform's own come on top)."""
        ...

    @property
    def max_gpus_per_node(self) -> int: ...

    @property
    def accelerator_label(self) -> str | None:
        """The label value naming the GPU model (None: the types differ in GPU model)."""
        ...

    @property
    def placement(self) -> Placement:
        """How a pod lands on these nodes, and only these."""
        ...
