"""Node capacity: what a node of a group offers pods, and what the platform's pods ask of each group.

Pure. ``allocatable`` follows what the EKS AL2023 AMIs configure the kubelet with (``nodeadm``):

- CPU: the vCPUs minus kube-reserved CPU, 6% of the first core, 1% of the second, 0.5% of the third
  and fourth and 0.25% of every further core (``getCPUMillicoresToReserve``);
- memory: the node's memory minus kube-reserved memory, 11 MiB per pod of the ENI max-pods formula
  plus 255 MiB (``GetMemoryMebibytesToReserve``; nodeadm sizes it from the ENI formula even where the
  managed node group caps maxPods lower), minus the hard eviction threshold ``memory.available``
  100Mi. No system-reserved is set. The node's memory is the instance's less what the hypervisor
  and kernel keep, which nodeadm does not model: this takes Karpenter's default estimate, 7.5%;
- pods: the managed node group's maxPods (``InstanceType.max_pods``).

Typed inputs, no settings: ``Nodes`` (the system group and the GPU groups or pools, as the
provisioner gives them) and ``PodSet`` lists from each source: each workload kind (its settings
type), the provisioner's own controllers, ``release_pods`` (the platform's Helm releases) and
``eks_addon_pods`` (the EKS add-ons' pods with their upstream defaults: the program does not
configure those). ``group_loads`` sums them per node group or pool at its minimum and maximum size;
``config.capacity.capacity_problems`` turns what cannot fit into config errors (with ``components.fit``).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .. import validation
from ..catalog import registry
from ..catalog.eks import EKS_ADD_ONS
from ..catalog.registry import AddOn, AddonChoices
from ..pod_requests import effective_requests, manifest_requests
from ..podspec import Resources
from ..scheduling import Toleration, untolerated
from .gpu_capacity import GpuCapacity, NodeCapacity
from .instance_types import InstanceType, lookup
from .node_groups import NodeGroupSpec

# -- what a node offers ------------------------------------------------------------------------------

VM_MEMORY_OVERHEAD = Decimal("0.075")  # Karpenter's default vmMemoryOverheadPercent
EVICTION_HARD_MEMORY_MIB = 100  # nodeadm: evictionHard memory.available 100Mi
# nodeadm's CPU reservation: basis points of each band of millicores (0-1, 1-2, 2-4, 4+ cores).
_CPU_SHARES = (600, 100, 50, 25)


def kube_reserved_cpu_m(vcpus: int) -> int:
    total = vcpus * 1000
    bounds = (0, 1000, 2000, 4000, total)
    return sum(
        (min(total, end) - start) * share // 10000
        for (start, end), share in zip(itertools.pairwise(bounds), _CPU_SHARES, strict=True)
        if total > start
    )


def kube_reserved_memory_mib(instance: InstanceType) -> int:
    return 11 * instance.eni_max_pods + 255


@dataclass(frozen=True, order=True)
class Requests:
    """CPU (millicores) and memory (MiB) a pod or a set of pods requests, or a node offers."""

    cpu_m: int = 0
    memory_mib: int = 0

    def __add__(self, other: Requests) -> Requests:
        return Requests(self.cpu_m + other.cpu_m, self.memory_mib + other.memory_mib)

    def times(self, n: int) -> Requests:
        return Requests(self.cpu_m * n, self.memory_mib * n)

    def max(self, other: Requests) -> Requests:
        return Requests(max(self.cpu_m, other.cpu_m), max(self.memory_mib, other.memory_mib))

    def exceeds(self, other: Requests) -> bool:
        return self.cpu_m > other.cpu_m or self.memory_mib > other.memory_mib

    @classmethod
    def of(cls, requests: Mapping[str, Any] | None) -> Requests:
        """From a container's ``requests`` mapping (Kubernetes quantities); rounded up."""
        requests = requests or {}
        cpu = validation.quantity_value(requests.get("cpu", 0)) * 1000
        memory = validation.quantity_value(requests.get("memory", 0)) / 2**20
        return cls(math.ceil(cpu), math.ceil(memory))

    @classmethod
    def of_resources(cls, resources: Resources | Mapping[str, Any]) -> Requests:
        if isinstance(resources, Resources):
            return cls.of(resources.requests)
        return cls.of(resources.get("requests"))

    def describe(self) -> str:
        return f"{self.cpu_m / 1000:g} CPU / {self.memory_mib / 1024:.2f} GiB"


def sum_requests(items: Iterable[Requests]) -> Requests:
    total = Requests()
    for item in items:
        total = total + item
    return total


@dataclass(frozen=True)
class NodeShape:
    """What one node of an instance type offers pods."""

    instance: str
    allocatable: Requests
    pods: int
    gpus: int = 0


def allocatable(instance: InstanceType) -> NodeShape:
    memory = Decimal(instance.memory_mib) * (1 - VM_MEMORY_OVERHEAD)
    memory_mib = int(memory) - kube_reserved_memory_mib(instance) - EVICTION_HARD_MEMORY_MIB
    cpu_m = instance.vcpus * 1000 - kube_reserved_cpu_m(instance.vcpus)
    return NodeShape(instance.name, Requests(cpu_m, memory_mib), instance.max_pods, instance.gpus)


def largest_node(spec: NodeCapacity) -> NodeShape | None:
    """The group's most generous node: a pool starts whichever of its types fits the pending pod."""
    shapes = [allocatable(t) for t in map(lookup, spec.instance_types) if t is not None]
    return max(shapes, key=lambda s: (s.allocatable.cpu_m, s.allocatable.memory_mib, s.pods), default=None)


def smallest_node(spec: NodeCapacity) -> NodeShape | None:
    """The group's least generous node (the autoscaler may start any of its types)."""
    shapes = [allocatable(t) for t in map(lookup, spec.instance_types) if t is not None]
    if not shapes:
        return None
    return min(shapes, key=lambda s: (s.allocatable.cpu_m, s.allocatable.memory_mib, s.pods))


# -- what a pod asks for ------------------------------------------------------------------------------


def pod_requests(
    containers: Sequence[Requests], init_containers: Sequence[tuple[Requests, bool]] = ()
) -> Requests:
    """The scheduler's request of a pod (native sidecars included, KEP-753): the larger of the app
    containers plus every sidecar, and each regular init container plus the sidecars started before it.
    ``init_containers`` are (requests, is a sidecar) in order.
    """

    def amounts(r: Requests) -> dict[str, Decimal]:
        return {"cpu": Decimal(r.cpu_m), "memory": Decimal(r.memory_mib)}

    total = effective_requests(map(amounts, containers), ((amounts(r), s) for r, s in init_containers))
    return Requests(int(total.get("cpu", 0)), int(total.get("memory", 0)))


def pod_spec_requests(spec: Mapping[str, Any]) -> Requests:
    """``pod_requests`` of a pod spec as a manifest holds it (camelCase keys)."""
    total = manifest_requests(spec)
    return Requests(math.ceil(total.get("cpu", 0) * 1000), math.ceil(total.get("memory", 0) / 2**20))


# -- the platform's pods ------------------------------------------------------------------------------

TOLERATE_EVERYTHING = (Toleration(key="", operator="Exists"),)
# A config key and what is wrong there (the config check's violations).
ConfigProblem = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True)
class PodSet:
    """Identical pods of one owner: a Deployment's replicas, or a DaemonSet's pod on every node."""

    name: str
    source: str  # "workload", "release <chart>" or "EKS add-on <name>"
    requests: Requests  # of one pod
    min_replicas: int = 1  # what always runs (0 for Jobs)
    max_replicas: int = 1  # at peak
    node_group: str | None = None  # pinned by a node selector; None: the untainted groups
    tolerations: tuple[Toleration, ...] = ()
    daemon: bool = False  # one pod on every node it tolerates
    gpu_only: bool = False  # a DaemonSet selecting GPU nodes
    path: tuple[str | int, ...] = ()  # the config key of its requests, for workloads
    gpus: int = 0  # GPUs one pod asks for (the device plugin's, or its own DRA claims')
    namespace: str | None = None  # where a workload runs (None: not read)
    # A DRA claim the pods share with others: (its namespace/name, its GPUs), counted once however many
    # pods use it (None: none)
    shared_claim: tuple[str, int] | None = None

    def tolerates(self, spec: NodeCapacity) -> bool:
        return not untolerated(spec.node_taints, self.tolerations)

    def daemon_on(self, spec: NodeCapacity) -> bool:
        return self.daemon and self.tolerates(spec) and (spec.is_gpu or not self.gpu_only)


@dataclass(frozen=True)
class Nodes:
    """Where the platform's pods run: the system nodes and the GPU capacity (node groups or pools)."""

    system: NodeGroupSpec
    gpu: tuple[GpuCapacity, ...] = ()

    @property
    def all(self) -> tuple[NodeCapacity, ...]:
        return (self.system, *self.gpu)


def _deployment_group(pods: PodSet, specs: Sequence[NodeCapacity]) -> str | None:
    if pods.node_group is not None:
        return pods.node_group
    return next((s.name for s in specs if pods.tolerates(s)), None)


def _res(resources: Mapping[str, Any]) -> Requests:
    return Requests.of_resources(resources)


def _default(args_type: type, name: str) -> Any:
    """The default of a component argument the platform leaves alone (replica counts)."""
    return next(f.default for f in dataclasses.fields(args_type) if f.name == name)


def _component_value(addon: AddOn, name: str) -> Any:
    """What a descriptor names in its component: a constant (``NAME``), an entry of one
    (``NAME.key``) or an argument's default (``Args.field``)."""
    head, _, rest = name.partition(".")
    value = getattr(importlib.import_module(f"..{addon.component}", __package__), head)
    if not rest:
        return value
    return _default(value, rest) if dataclasses.is_dataclass(value) else value[rest]


def addon_pods(addon: AddOn, nodes: Nodes | None = None, choices: AddonChoices | None = None) -> list[PodSet]:
    """The pods of ``addon``'s release (those its ``when`` keeps, given ``choices``), with the requests
    its component gives them; a DaemonSet's tolerations follow ``nodes``."""
    found = []
    for pod in addon.pods:
        if choices is not None and not pod.when(choices):
            continue
        replicas = pod.replicas if isinstance(pod.replicas, int) else _component_value(addon, pod.replicas)
        tolerations = _component_value(addon, pod.tolerations) if pod.tolerations else ()
        if callable(tolerations):
            tolerations = tolerations(nodes.all) if nodes else ()
        found.append(
            PodSet(
                pod.name,
                f"release {addon.chart}",
                sum_requests(_res(_component_value(addon, name)) for name in pod.requests),
                replicas,
                replicas,
                node_group="system" if pod.system else None,
                tolerations=tolerations,
                daemon=pod.daemon,
                gpu_only=pod.gpu_only,
            )
        )
    return found


def release_pods(choices: AddonChoices, nodes: Nodes) -> list[PodSet]:
    """The pods of the platform's own Helm releases, from their descriptors (the compute controllers
    aside: the provisioner lists those); the GPU node agents last."""
    choices = dataclasses.replace(choices, gpus=bool(nodes.gpu))
    pods = [
        pod
        for addon in registry.ADD_ONS
        if not addon.provisioner and addon.enabled(choices)
        for pod in addon_pods(addon, nodes, choices)
    ]
    return sorted(pods, key=lambda p: p.gpu_only)


def eks_addon_pods(installed: Collection[str]) -> list[PodSet]:
    """The pods of the EKS add-ons in ``installed`` (by add-on name), with their upstream defaults."""
    return [
        PodSet(
            pod.name,
            f"EKS add-on {addon.name}",
            Requests(pod.cpu_m, pod.memory_mib),
            pod.replicas or 1,
            pod.replicas or 1,
            daemon=pod.replicas is None,
            tolerations=TOLERATE_EVERYTHING if pod.replicas is None else (),
        )
        for addon in EKS_ADD_ONS
        if addon.name in installed
        for pod in addon.pods
    ]


# -- per node group ---------------------------------------------------------------------------------


@dataclass
class GroupLoad:
    """What lands on one node group, against what it offers at its minimum and maximum size."""

    spec: NodeCapacity
    node: NodeShape | None
    daemons: list[PodSet] = field(default_factory=list)  # one pod per node
    pods: list[PodSet] = field(default_factory=list)  # replicas scheduled onto the group

    @property
    def per_node(self) -> Requests:
        """What the DaemonSets take on every node."""
        return sum_requests(d.requests for d in self.daemons)

    def requested(self, at_max: bool) -> tuple[Requests, int]:
        nodes = self.spec.max_nodes if at_max else self.spec.min_nodes
        total = self.per_node.times(nodes)
        count = len(self.daemons) * nodes
        for p in self.pods:
            replicas = p.max_replicas if at_max else p.min_replicas
            total = total + p.requests.times(replicas)
            count += replicas
        return total, count

    def offered(self, at_max: bool) -> tuple[Requests, int]:
        nodes = self.spec.max_nodes if at_max else self.spec.min_nodes
        if self.node is None:
            return Requests(), 0
        return self.node.allocatable.times(nodes), self.node.pods * nodes

    @property
    def always_running(self) -> list[PodSet]:
        """The pods that always run there (a Deployment's minimum replicas), DaemonSets aside."""
        return [p for p in self.pods if p.min_replicas]

    def nodes_needed(self) -> int:
        """The fewest nodes, from its minimum up to its maximum, whose allocatable CPU, memory, pod
        slots and GPUs hold what always runs there with the DaemonSets on each node (its maximum when
        none does; its minimum when nothing always runs). Summed, not bin-packed: a lower bound."""
        if self.node is None or not self.always_running:
            return self.spec.min_nodes
        node = self.node
        pods = self.always_running
        need = sum_requests(p.requests.times(p.min_replicas) for p in pods)
        count = sum(p.min_replicas for p in pods)
        shared = {p.shared_claim for p in pods if p.shared_claim is not None}
        gpus = sum(p.gpus * p.min_replicas for p in pods) + sum(devices for _, devices in shared)
        for nodes in range(self.spec.min_nodes, self.spec.max_nodes + 1):
            room = node.allocatable.times(nodes)
            if (
                not (need + self.per_node.times(nodes)).exceeds(room)
                and count + len(self.daemons) * nodes <= node.pods * nodes
                and gpus <= node.gpus * nodes
            ):
                return nodes
        return self.spec.max_nodes


def group_loads(specs: Sequence[NodeCapacity], pods: Iterable[PodSet]) -> list[GroupLoad]:
    loads = {s.name: GroupLoad(s, smallest_node(s)) for s in specs}
    for p in pods:
        if p.daemon:
            for spec in specs:
                if p.daemon_on(spec):
                    loads[spec.name].daemons.append(p)
        else:
            group = _deployment_group(p, specs)
            if group in loads:
                loads[group].pods.append(p)
    return list(loads.values())


def _gib(mib: int) -> str:
    return f"{mib / 1024:.2f} GiB"


def _cpu(m: int) -> str:
    return f"{m / 1000:g} CPU"


def minimum_problems(system: NodeGroupSpec, load: GroupLoad) -> list[ConfigProblem]:
    """The system group's minimum holds what always runs there (the autoscaler itself runs there: if
    it cannot start, nothing scales)."""
    needed, count = load.requested(at_max=False)
    offered, slots = load.offered(at_max=False)
    if load.node is None or not (needed.exceeds(offered) or count > slots):
        return []
    return [
        (
            ("nodeGroups", "system", "scaling", "minSize"),
            f"{system.min_size} x {load.node.instance} offer {_cpu(offered.cpu_m)}, "
            f"{_gib(offered.memory_mib)} and {slots} pods; what always runs there requests "
            f"{_cpu(needed.cpu_m)}, {_gib(needed.memory_mib)} and {count} pods: raise minSize or "
            "choose a larger instance type",
        )
    ]


def fixed_size_problems(system: NodeGroupSpec, load: GroupLoad, controllers: int) -> list[ConfigProblem]:
    """With no cluster autoscaler, the system group keeps its desired size, which must hold everything
    there at its peak and the ``controllers`` replicas of the provisioner's controller on separate
    nodes."""
    at = ("nodeGroups", "system", "scaling", "desiredSize")
    nodes, node = system.desired_size, load.node
    if nodes < controllers:
        return [
            (
                at,
                f"Karpenter's {controllers} controller replicas run on separate nodes: at least {controllers}",
            )
        ]
    if node is None:
        return []
    # Its DaemonSets on each of its nodes, every other pod at its peak.
    needed = load.per_node.times(nodes) + sum_requests(p.requests.times(p.max_replicas) for p in load.pods)
    count = len(load.daemons) * nodes + sum(p.max_replicas for p in load.pods)
    offered, slots = node.allocatable.times(nodes), node.pods * nodes
    if not (needed.exceeds(offered) or count > slots):
        return []
    return [
        (
            at,
            f"nothing scales the system group with Karpenter: {nodes} x {node.instance} offer "
            f"{_cpu(offered.cpu_m)}, {_gib(offered.memory_mib)}, {slots} pods; its peak requests "
            f"{_cpu(needed.cpu_m)}, {_gib(needed.memory_mib)}, {count} pods: raise desiredSize",
        )
    ]
