"""Fit rules: whether a workload can ever run where it is placed. Pure; one home for both paths.

A workload meets its placement in two ways, and both read these rules:

- the library path: a ``Placement`` carries a ``NodeFit`` (from ``NodeGroupSpec.placement``,
  ``GpuPoolSpec.placement`` or ``PlatformOutputs.placement``) and a namespace name may be a
  ``Namespace`` carrying a ``NamespaceFit`` (from ``PlatformOutputs.namespace`` or
  ``TeamNamespace.workload_namespace``); the workload components turn the reasons into argument errors
  before any resource is registered;
- the stack-file path: the config rules build the same objects from the settings and turn the same
  reasons into config errors.

Each rule returns a reason (or ``None``: it fits, or what it needs is not known); the caller names the
argument or key. What no rule here can know is skipped: a namespace or node group the platform did not
describe, a quota it did not export.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal

from .compute.capacity import NodeShape, Requests, largest_node, smallest_node
from .compute.gpu_capacity import NodeCapacity
from .compute.instance_types import InstanceType, lookup
from .dra import GpuSelector
from .scheduling import NodeFit
from .validation import quantity_value

WITH_PLATFORM_CONTAINERS = "(with the platform's sidecar and init containers)"


@dataclass(frozen=True)
class NamespaceFit:
    """What a tenant namespace admits: its quota on requests and the ports its network policies open.

    ``None``: not known (the rules that need it are skipped).
    """

    name: str
    ingress_ports: tuple[int, ...] | None = None  # the pod ports ingress traffic may reach
    cpu: str | None = None  # the quota's ``requests.cpu`` (a quantity)
    memory: str | None = None  # the quota's ``requests.memory`` (a quantity)
    gpus: int | None = None  # the quota's ``requests.nvidia.com/gpu``
    served_metrics: tuple[str, ...] | None = None  # the custom metrics the cluster's adapter serves to HPAs


class Namespace(str):
    """A namespace name that also knows what the namespace admits (``fit``).

    It is the name everywhere a ``str`` is (``WorkloadArgs.namespace`` takes it as is); a workload
    given one is checked against the namespace's quota, ports and metrics. It also keeps the shares
    of the model servers built there so far (``shares``), so that the next one is checked against
    what the namespace has left: hand every workload of a namespace the same object
    (``PlatformOutputs.namespace`` and ``TeamNamespace.workload_namespace`` do).
    """

    fit: NamespaceFit
    shares: list[Share]

    def __new__(cls, fit: NamespaceFit) -> Namespace:
        value = super().__new__(cls, fit.name)
        value.fit = fit
        value.shares = []
        return value

    def shared_quota_reasons(self, share: Share) -> dict[str, str]:
        """``shared_quota_reasons`` of the servers built here so far and ``share`` together."""
        return shared_quota_reasons([*self.shares, share], self.fit)


def namespace_fit(namespace: str) -> NamespaceFit | None:
    """The fit a namespace name carries (None: a plain name, nothing known)."""
    return namespace.fit if isinstance(namespace, Namespace) else None


# -- one pod against one node ---------------------------------------------------------------------


def gpu_count_reason(gpus: int, node: NodeFit) -> str | None:
    """A pod asking for more GPUs than one node has stays Pending forever."""
    if gpus <= node.gpus_per_node or not gpus:
        return None
    if node.kind == "pool":
        return f"must be <= {node.gpus_per_node} (GPUs of the largest type pool '{node.name}' allows)"
    return f"must be <= {node.gpus_per_node} (GPUs per node of '{node.name}')"


def node_shape(node: NodeFit | NodeCapacity) -> NodeShape | None:
    """The node a pod is judged against: a pool starts the type that fits the pod (its largest); a node
    group may start any of its types (its smallest). None: no type the table knows."""
    return largest_node(node) if node.chooses_type_per_pod else smallest_node(node)


def pod_node_reason(pod: Requests, group: str, node: NodeShape, daemons: Requests | None) -> str | None:
    """A pod requesting more than a node offers (after its DaemonSets, when known) is never scheduled."""
    room = node.allocatable
    if daemons is not None:
        room = Requests(room.cpu_m - daemons.cpu_m, room.memory_mib - daemons.memory_mib)
    if not pod.exceeds(room):
        return None
    offers = f"after its DaemonSets ({room.describe()})" if daemons is not None else f"({room.describe()})"
    return (
        f"one pod requests {pod.describe()} {WITH_PLATFORM_CONTAINERS}, more than a {node.instance} of "
        f"'{group}' offers {offers}: it would never be scheduled"
    )


def node_fit_reason(pod: Requests, node: NodeFit) -> str | None:
    """``pod_node_reason`` against a placement's node (its DaemonSets' requests when exported)."""
    shape = node_shape(node)
    if shape is None:
        return None
    daemons = Requests(*node.daemon_set_requests) if node.daemon_set_requests is not None else None
    return pod_node_reason(pod, node.name, shape, daemons)


# -- one pod against the namespace's quota --------------------------------------------------------


def _quota_cpu_m(namespace: NamespaceFit) -> int | None:
    return None if namespace.cpu is None else int(quantity_value(namespace.cpu) * 1000)


def _quota_memory_mib(namespace: NamespaceFit) -> int | None:
    return None if namespace.memory is None else int(quantity_value(namespace.memory) / Decimal(2**20))


def _quota_text(namespace: NamespaceFit) -> str:
    parts = [f"requests.cpu {namespace.cpu}"] if namespace.cpu is not None else []
    parts += [f"requests.memory {namespace.memory}"] if namespace.memory is not None else []
    return ", ".join(parts)


def pod_quota_reason(pod: Requests, namespace: NamespaceFit) -> str | None:
    """A pod requesting more CPU or memory than the whole quota is refused by quota admission."""
    cpu, memory = _quota_cpu_m(namespace), _quota_memory_mib(namespace)
    if not ((cpu is not None and pod.cpu_m > cpu) or (memory is not None and pod.memory_mib > memory)):
        return None
    return (
        f"one pod requests {pod.describe()} {WITH_PLATFORM_CONTAINERS}, more than namespace "
        f"'{namespace.name}' admits in all (quota {_quota_text(namespace)}): quota admission refuses "
        "every pod"
    )


def pod_gpu_quota_reason(gpus: int, namespace: NamespaceFit) -> str | None:
    if namespace.gpus is None or gpus <= namespace.gpus:
        return None
    return f"a pod asks for {gpus} GPUs, more than namespace '{namespace.name}' GPU quota ({namespace.gpus})"


# -- how many pods can run at once ----------------------------------------------------------------


@dataclass(frozen=True)
class Ceiling:
    """At most ``pods`` pods of a workload can run at once, because of ``why``."""

    pods: int
    why: str


def node_ceilings(gpus: int, node: NodeFit | None) -> list[Ceiling]:
    """How many pods of ``gpus`` GPUs the placement's nodes hold together at their maximum."""
    if node is None or not gpus or gpus > node.gpus_per_node:
        return []  # no GPUs: CPU pods are not capped here; too many GPUs: ``gpu_count_reason``
    if node.kind == "pool" and node.max_gpus is not None:
        pods = node.max_gpus // gpus
        return [Ceiling(pods, f"pool '{node.name}' fits {pods} ({node.max_gpus} GPUs at most)")]
    if node.kind == "node group" and node.max_nodes is not None:
        per_node = node.gpus_per_node // gpus
        pods = node.max_nodes * per_node
        return [
            Ceiling(
                pods,
                f"node group '{node.name}' fits {pods} ({node.max_nodes} node{'' if node.max_nodes == 1 else 's'} "
                f"at most x {per_node} per node)",
            )
        ]
    return []


def cpu_node_ceilings(pod: Requests, gpus: int, node: NodeFit | None) -> list[Ceiling]:
    """How many CPU pods (no GPUs) a node group's nodes hold together at its maximum size: the pods
    per node by CPU, memory and pod slots (after its DaemonSets, when known), times its nodes. A pool
    is not capped here (it starts a type that fits); a pod too large for one node: ``node_fit_reason``."""
    if node is None or gpus or node.kind != "node group" or node.max_nodes is None:
        return []
    shape = node_shape(node)
    if shape is None:
        return []
    daemons = Requests(*node.daemon_set_requests) if node.daemon_set_requests is not None else Requests(0, 0)
    room = shape.allocatable + Requests(-daemons.cpu_m, -daemons.memory_mib)
    by = {"pod slots": shape.pods}
    if pod.cpu_m:
        by["CPU"] = max(room.cpu_m, 0) // pod.cpu_m
    if pod.memory_mib:
        by["memory"] = max(room.memory_mib, 0) // pod.memory_mib
    per_node = min(by.values())
    if not per_node:
        return []
    binding = " and ".join(name for name, count in by.items() if count == per_node)
    pods = node.max_nodes * per_node
    nodes = f"{node.max_nodes} node{'' if node.max_nodes == 1 else 's'}"
    return [
        Ceiling(
            pods,
            f"node group '{node.name}' fits {pods} ({nodes} at most x {per_node} per {shape.instance} by "
            f"{binding})",
        )
    ]


def quota_ceilings(pod: Requests, gpus: int, namespace: NamespaceFit | None) -> list[Ceiling]:
    """How many such pods the namespace's quota admits together (a pod over it alone: the pod rules)."""
    if namespace is None:
        return []
    found: list[Ceiling] = []
    name = namespace.name
    cpu, memory = _quota_cpu_m(namespace), _quota_memory_mib(namespace)
    if gpus and namespace.gpus is not None:
        pods = namespace.gpus // gpus
        found.append(
            Ceiling(pods, f"namespace '{name}' GPU quota fits {pods} ({namespace.gpus} GPUs, {gpus} per pod)")
        )
    if cpu is not None and pod.cpu_m and pod.cpu_m <= cpu:
        pods = cpu // pod.cpu_m
        found.append(
            Ceiling(
                pods,
                f"namespace '{name}' CPU quota fits {pods} ({namespace.cpu} CPU, {pod.cpu_m / 1000:g} per pod)",
            )
        )
    if memory is not None and pod.memory_mib and pod.memory_mib <= memory:
        pods = memory // pod.memory_mib
        found.append(
            Ceiling(
                pods,
                f"namespace '{name}' memory quota fits {pods} ({namespace.memory}, "
                f"{pod.memory_mib / 1024:.2f} GiB per pod)",
            )
        )
    return found


def _binding(pods: int, ceilings: Sequence[Ceiling]) -> tuple[int, str] | None:
    """The lowest ceiling below ``pods`` and every ceiling below it, as text (None: they all fit)."""
    below = [c for c in ceilings if c.pods < pods]
    if not below:
        return None
    return min(c.pods for c in below), ", ".join(c.why for c in below)


def never_fit_reason(replicas: int, ceilings: Sequence[Ceiling]) -> str | None:
    """Replicas that must always run, beyond what can run at all."""
    binding = _binding(replicas, ceilings)
    return None if binding is None else f"{replicas} replicas never fit: {binding[1]}"


def peak_reason(max_replicas: int, ceilings: Sequence[Ceiling], fix: str) -> str | None:
    """An autoscaler ceiling above what can run: the replicas over it stay Pending or unadmitted."""
    binding = _binding(max_replicas, ceilings)
    if binding is None:
        return None
    ceiling, limits = binding
    return f"at most {ceiling} of {max_replicas} replicas can run: {limits}; {fix}"


def parallel_reason(parallelism: int, ceilings: Sequence[Ceiling], fix: str) -> str | None:
    """A Job's parallel pods beyond what the quota admits at once."""
    binding = _binding(parallelism, ceilings)
    if binding is None:
        return None
    ceiling, limits = binding
    return f"at most {ceiling} of {parallelism} parallel pods are admitted at once: {limits}; {fix}"


# -- what model servers share: a node group's GPUs, a namespace's quota --------------------------------


@dataclass(frozen=True)
class Share:
    """One model server's part of something it shares with others: its pods that always run (its
    minimum replicas) and, while it rolls out, one more (``maxUnavailable: 0`` starts the new pod
    before the old one goes)."""

    name: str  # the server, as messages name it
    always: int  # pods that always run
    pod: Requests  # one pod's requests
    gpus: int = 0  # one pod's own GPUs
    # A GPU claim its pods share with other servers' pods (DRA): its key and its GPUs, counted once for
    # all its pods, whatever their number; a rollout's new pod uses the same GPUs.
    claim: tuple[object, int] | None = None


def _gpu_parts(shares: Sequence[Share]) -> list[tuple[str, int]]:
    """``(server, GPUs it always holds)`` of the servers with GPUs, a shared claim's GPUs counted at its
    first server."""
    counted: set[object] = set()
    parts: list[tuple[str, int]] = []
    for s in shares:
        used = s.always * s.gpus
        if s.claim is not None and s.claim[0] not in counted:
            counted.add(s.claim[0])
            used += s.claim[1]
        if s.gpus or s.claim is not None:
            parts.append((s.name, used))
    return parts


def shared_gpus_reason(shares: Sequence[Share], capacity: int, what: str) -> str | None:
    """The servers' always-running GPUs and a rollout's pod, beyond ``capacity`` (``what`` says whose:
    a node group's, a pool's, a namespace's quota): each may fit alone while their sum does not."""
    parts = _gpu_parts(shares)
    if not parts:
        return None
    running = sum(used for _, used in parts)
    rollout = max(s.gpus for s in shares)
    if running + rollout <= capacity:
        return None
    listed = ", ".join(f"{name} {used}" for name, used in parts)
    return (
        f"the model servers here always run {running} GPUs ({listed}) and a rollout starts {rollout} more: "
        f"{running + rollout} is more than {what}"
    )


def _cpu_text(cpu_m: int) -> str:
    return f"{cpu_m / 1000:g}"


def _memory_text(memory_mib: int) -> str:
    return f"{memory_mib / 1024:.2f} GiB"


def shared_quota_reasons(shares: Sequence[Share], namespace: NamespaceFit) -> dict[str, str]:
    """The namespace's quota (``cpu``, ``memory``, ``gpus``) that its model servers' always-running
    pods and a rollout's pod exceed together, with the reason; empty when they fit or nothing is known."""
    found: dict[str, str] = {}
    if not shares:
        return found
    if namespace.gpus is not None and (
        reason := shared_gpus_reason(shares, namespace.gpus, f"the namespace's GPU quota ({namespace.gpus})")
    ):
        found["gpus"] = reason
    limits = (
        ("cpu", "CPU", _quota_cpu_m(namespace), namespace.cpu, lambda r: r.cpu_m, _cpu_text),
        (
            "memory",
            "memory",
            _quota_memory_mib(namespace),
            namespace.memory,
            lambda r: r.memory_mib,
            _memory_text,
        ),
    )
    for key, label, quota, given, amount, text in limits:
        if quota is None:
            continue
        running = sum(s.always * amount(s.pod) for s in shares)
        rollout = max(amount(s.pod) for s in shares)
        if running + rollout > quota:
            listed = ", ".join(f"{s.name} {text(s.always * amount(s.pod))}" for s in shares)
            found[key] = (
                f"the model servers here always request {text(running)} {label} ({listed}) and a rollout "
                f"starts a pod of {text(rollout)} more: {text(running + rollout)} is more than the "
                f"namespace's {label} quota ({given})"
            )
    return found


# -- traffic and metrics --------------------------------------------------------------------------


def route_port_reason(port: int, namespace: NamespaceFit) -> str | None:
    """A routed port the namespace's network policies do not open gets no traffic."""
    ports = namespace.ingress_ports
    if ports is None or port in ports:
        return None
    return (
        f"{port} is not a port namespace '{namespace.name}' admits ingress traffic to (its network "
        f"policies open {', '.join(map(str, ports)) or 'none'}): the route would get no traffic; "
        "serve on one of them"
    )


def metric_reason(metric: str, served: Collection[str]) -> str | None:
    """An HPA target on a metric the adapter does not serve never scales."""
    if metric in served:
        return None
    return (
        f"the metrics adapter serves no metric '{metric}' (it serves: {', '.join(sorted(served)) or 'none'}): "
        "the HPA would never scale"
    )


# -- GPUs claimed through DRA ---------------------------------------------------------------------


def _gpu_types(node: NodeFit) -> list[InstanceType]:
    return [t for t in map(lookup, node.instance_types) if t is not None and t.gpu is not None]


def _may_match(selector: GpuSelector, t: InstanceType) -> bool:
    """Whether the GPU of ``t`` may match ``selector``: it does, or what the driver publishes for its
    model is not known (a type a program added without it)."""
    gpu = t.gpu
    if gpu is None or gpu.product_name is None or gpu.published_memory_mib is None:
        return True
    return selector.matches(gpu.product_name, gpu.published_memory_mib)


def gpu_selector_reason(selector: GpuSelector, node: NodeFit) -> str | None:
    """A selector no GPU of the placement's instance types matches: its claim is never allocated (the
    GPUs as the instance type table says the NVIDIA DRA driver publishes them)."""
    types = _gpu_types(node)
    if not types or any(_may_match(selector, t) for t in types):
        return None
    published = sorted(
        {
            f"'{t.gpu.product_name}' ({(t.gpu.published_memory_mib or 0) / 1024:.1f} GiB)"
            for t in types
            if t.gpu
        }
    )
    return (
        f"no instance type of {node.kind} '{node.name}' has a GPU with {selector.describe()}: its GPUs "
        f"publish {', '.join(published)} (instance_types.py); the claim would never be allocated"
    )


def selected_gpu_count_reason(gpus: int, selector: GpuSelector, node: NodeFit) -> str | None:
    """More GPUs than one node of the types whose GPUs ``selector`` matches holds."""
    matching = [t for t in _gpu_types(node) if _may_match(selector, t)]
    if not matching or gpus <= (most := max(t.gpus for t in matching)):
        return None
    return (
        f"must be <= {most}: the instance types of {node.kind} '{node.name}' whose GPUs have "
        f"{selector.describe()} hold at most {most} per node"
    )
