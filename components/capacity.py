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

``platform_pods`` lists every pod the platform runs, from the settings: the AI workloads (their
containers plus the sidecar and init containers the platform adds), each Helm release's pods with the
requests the components give them, and the EKS add-ons' pods with their upstream defaults (the
program does not configure those). ``group_loads`` sums them per node group at its minimum and
maximum size; ``capacity_problems`` turns what cannot fit into config errors.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import autoscaler, gpu, ingress, karpenter, observability, secrets, validation
from .instance_types import InstanceType, lookup
from .nodegroups import NodeGroupSpec, node_taints
from .nodepools import GpuPoolSpec
from .podspec import LOG_SHIPPER_RESOURCES, MODEL_FETCH_RESOURCES, Resources
from .scheduling import Toleration, untolerated

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


def allocatable(instance: InstanceType) -> NodeShape:
    memory = Decimal(instance.memory_mib) * (1 - VM_MEMORY_OVERHEAD)
    memory_mib = int(memory) - kube_reserved_memory_mib(instance) - EVICTION_HARD_MEMORY_MIB
    cpu_m = instance.vcpus * 1000 - kube_reserved_cpu_m(instance.vcpus)
    return NodeShape(instance.name, Requests(cpu_m, memory_mib), instance.max_pods)


def largest_node(spec: NodeGroupSpec) -> NodeShape | None:
    """The group's most generous node: a pool starts whichever of its types fits the pending pod."""
    shapes = [allocatable(t) for t in map(lookup, spec.instance_types) if t is not None]
    return max(shapes, key=lambda s: (s.allocatable.cpu_m, s.allocatable.memory_mib, s.pods), default=None)


def smallest_node(spec: NodeGroupSpec) -> NodeShape | None:
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
    peak, sidecars = Requests(), Requests()
    for requests, sidecar in init_containers:
        if sidecar:
            sidecars = sidecars + requests
        else:
            peak = peak.max(requests + sidecars)
    return peak.max(sum_requests(containers) + sidecars)


def pod_spec_requests(spec: Mapping[str, Any]) -> Requests:
    """``pod_requests`` of a pod spec as a manifest holds it (camelCase keys)."""
    containers = [
        Requests.of((c.get("resources") or {}).get("requests")) for c in spec.get("containers") or []
    ]
    init = [
        (Requests.of((c.get("resources") or {}).get("requests")), c.get("restartPolicy") == "Always")
        for c in spec.get("initContainers") or []
    ]
    return pod_requests(containers, init)


# -- the platform's pods ------------------------------------------------------------------------------

TOLERATE_EVERYTHING = (Toleration(key="", operator="Exists"),)


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

    def tolerates(self, spec: NodeGroupSpec) -> bool:
        return not untolerated(node_taints(spec), self.tolerations)

    def daemon_on(self, spec: NodeGroupSpec) -> bool:
        return self.daemon and self.tolerates(spec) and (spec.is_gpu or not self.gpu_only)


def _deployment_group(pods: PodSet, specs: Sequence[NodeGroupSpec]) -> str | None:
    if pods.node_group is not None:
        return pods.node_group
    return next((s.name for s in specs if pods.tolerates(s)), None)


def _res(resources: Mapping[str, Any]) -> Requests:
    return Requests.of_resources(resources)


def _default(args_type: type, name: str) -> Any:
    """The default of a component argument the platform leaves alone (replica counts)."""
    return next(f.default for f in dataclasses.fields(args_type) if f.name == name)


def _workload_pods(settings: Any) -> list[PodSet]:
    found: list[PodSet] = []
    for kind, i, w in settings.workloads.all():
        main = Requests.of({"cpu": w.resources.requests.cpu, "memory": w.resources.requests.memory})
        init: list[tuple[Requests, bool]] = []
        if kind == "inference":
            # In the order the pod declares them: the log shipper sidecar, then the model fetch.
            if w.logShipper:
                init.append((Requests.of_resources(LOG_SHIPPER_RESOURCES), True))
            if w.modelFetch:
                init.append((Requests.of_resources(MODEL_FETCH_RESOURCES), False))
            low = w.autoscaling.minReplicas if w.autoscaling else w.replicas
            high = w.autoscaling.maxReplicas if w.autoscaling else w.replicas
        elif kind == "training":
            low, high = 0, w.parallelism
        else:  # a CronJob that forbids concurrent runs
            low, high = 0, 1
        found.append(
            PodSet(
                name=w.name,
                source="workload",
                requests=pod_requests([main], init),
                min_replicas=low,
                max_replicas=high,
                node_group=w.gpu.target if w.gpu else None,
                path=("workloads", kind, i, "resources", "requests"),
            )
        )
    return found


def _release_pods(settings: Any, specs: Sequence[NodeGroupSpec]) -> list[PodSet]:
    gpu_specs = [s for s in specs if s.is_gpu]
    found: list[PodSet] = []
    provisioner = settings.compute.provisioner
    auto_mode = provisioner == "auto-mode"
    if settings.cluster.mode == "managed" and provisioner == "node-groups":
        found.append(
            PodSet(
                "cluster-autoscaler",
                "release cluster-autoscaler",
                _res(autoscaler.RESOURCES),
                autoscaler.REPLICAS,
                autoscaler.REPLICAS,
                node_group="system",
            )
        )
    if provisioner == "karpenter":
        found.append(
            PodSet(
                "karpenter",
                "release karpenter",
                _res(karpenter.RESOURCES),
                karpenter.REPLICAS,
                karpenter.REPLICAS,
                node_group="system",
            )
        )
    for part in ("controller", "webhook", "cert-controller"):
        found.append(
            PodSet(f"external-secrets {part}", "release external-secrets", _res(secrets.DEFAULT_RESOURCES))
        )
    replicas = _default(ingress.IngressControllerArgs, "replica_count")
    # The ALB controller runs with either controller: it provisions ingress-nginx's NLB too. Auto
    # Mode runs its own, outside the cluster's nodes.
    if not auto_mode:
        found.append(
            PodSet(
                "aws-load-balancer-controller",
                "release aws-load-balancer-controller",
                _res(ingress.ALB_RESOURCES),
                replicas,
                replicas,
            )
        )
    if settings.ingress.controller == "nginx":
        found.append(
            PodSet(
                "ingress-nginx controller",
                "release ingress-nginx",
                _res(ingress.NGINX_RESOURCES),
                replicas,
                replicas,
            )
        )
    if settings.observability.enabled:
        res = observability.COMPONENT_RESOURCES
        stack, reloader = "release kube-prometheus-stack", _res(res["config-reloader"])
        found += [
            PodSet("prometheus-operator", stack, _res(res["operator"]), node_group="system"),
            PodSet(
                "prometheus", stack, _res(observability.PROMETHEUS_RESOURCES) + reloader, node_group="system"
            ),
            PodSet(
                "kube-state-metrics",
                stack,
                _res(res["kube-state-metrics"]),
                node_group="system",
            ),
            PodSet(
                "node-exporter",
                stack,
                _res(res["node-exporter"]),
                daemon=True,
                tolerations=observability.NODE_EXPORTER_TOLERATIONS,
            ),
        ]
        if settings.observability.alerting.delivery is not None:
            # Alertmanager runs when there is a receiver: its one replica (the chart's) and the same
            # config reloader sidecar as Prometheus.
            found.append(
                PodSet("alertmanager", stack, _res(res["alertmanager"]) + reloader, node_group="system")
            )
        if settings.observability.grafana:
            # Grafana and its two sidecars (dashboards, datasources), both on in kube-prometheus-stack.
            sidecar = _res(res["grafana-sidecar"])
            grafana = _res(res["grafana"]) + sidecar.times(2)
            found.append(PodSet("grafana", stack, grafana))
        adapter = _default(observability.MetricsStackArgs, "adapter_replicas")
        found.append(
            PodSet(
                "prometheus-adapter",
                "release prometheus-adapter",
                _res(res["adapter"]),
                adapter,
                adapter,
                node_group="system",
            )
        )
    if gpu_specs:
        tolerations = gpu.gpu_tolerations(gpu_specs)
        if not auto_mode:  # Auto Mode's nodes bring their own device plugin
            found.append(
                PodSet(
                    "nvidia-device-plugin",
                    "release nvidia-device-plugin",
                    _res(gpu.DEVICE_PLUGIN_RESOURCES),
                    daemon=True,
                    gpu_only=True,
                    tolerations=tolerations,
                )
            )
        # DCGM follows the GPU groups: installed wherever there are any.
        found.append(
            PodSet(
                "dcgm-exporter",
                "release dcgm-exporter",
                _res(gpu.DCGM_EXPORTER_RESOURCES),
                daemon=True,
                gpu_only=True,
                tolerations=tolerations,
            )
        )
    return found


# EKS add-ons the program installs but does not configure: their pods with the requests of the
# upstream defaults (vpc-cni, aws-ebs-csi-driver, aws-efs-csi-driver, eks-pod-identity-agent and
# metrics-server charts; the EKS coredns and kube-proxy manifests; the EKS community metrics-server
# add-on runs 2 replicas). DaemonSets of these tolerate every taint; controllers run on untainted
# nodes. Values: (name, add-on, requests, replicas or None for a DaemonSet).
EKS_ADDON_PODS: tuple[tuple[str, str, Requests, int | None], ...] = (
    ("aws-node", "vpc-cni", Requests(25, 0), None),
    ("kube-proxy", "kube-proxy", Requests(100, 0), None),
    ("coredns", "coredns", Requests(100, 70), 2),
    ("ebs-csi-controller", "aws-ebs-csi-driver", Requests(10, 40), 2),
    ("ebs-csi-node", "aws-ebs-csi-driver", Requests(10, 40), None),
    ("eks-pod-identity-agent", "eks-pod-identity-agent", Requests(0, 0), None),
    ("metrics-server", "metrics-server", Requests(100, 200), 2),
    ("efs-csi-controller", "aws-efs-csi-driver", Requests(0, 0), 2),
    ("efs-csi-node", "aws-efs-csi-driver", Requests(0, 0), None),
)


def _eks_addon_pods(settings: Any) -> list[PodSet]:
    if settings.cluster.mode != "managed":
        return []
    installed = set(settings.cluster.addons)
    if settings.storage.sharedFileSystem.enabled:
        installed.add("aws-efs-csi-driver")
    return [
        PodSet(
            name,
            f"EKS add-on {addon}",
            requests,
            replicas or 1,
            replicas or 1,
            daemon=replicas is None,
            tolerations=TOLERATE_EVERYTHING if replicas is None else (),
        )
        for name, addon, requests, replicas in EKS_ADDON_PODS
        if addon in installed
    ]


def pool_group(pool: GpuPoolSpec) -> NodeGroupSpec:
    """A GPU pool as the capacity model sees a group: zero nodes idle, at most what its limits allow
    of its smallest type, its taints."""
    return NodeGroupSpec(
        name=pool.name,
        role="gpu",
        instance_types=pool.instance_types,
        min_size=0,
        desired_size=0,
        max_size=pool.max_nodes,
        labels=dict(pool.labels),
        taints=pool.taints,
    )


def node_specs(settings: Any) -> list[NodeGroupSpec]:
    """Where the platform's pods run: the node groups, or the system nodes and the GPU pools."""
    if not settings.compute.uses_pools:
        return settings.nodeGroups.specs()
    return [settings.nodeGroups.system.spec(), *(pool_group(p) for p in settings.compute.specs())]


def platform_pods(settings: Any) -> list[PodSet]:
    """Every pod the platform runs (``settings``: ``PlatformSettings``)."""
    specs = node_specs(settings)
    return [*_eks_addon_pods(settings), *_release_pods(settings, specs), *_workload_pods(settings)]


# -- per node group ---------------------------------------------------------------------------------


@dataclass
class GroupLoad:
    """What lands on one node group, against what it offers at its minimum and maximum size."""

    spec: NodeGroupSpec
    node: NodeShape | None
    daemons: list[PodSet] = field(default_factory=list)  # one pod per node
    pods: list[PodSet] = field(default_factory=list)  # replicas scheduled onto the group

    @property
    def per_node(self) -> Requests:
        """What the DaemonSets take on every node."""
        return sum_requests(d.requests for d in self.daemons)

    def requested(self, at_max: bool) -> tuple[Requests, int]:
        nodes = self.spec.max_size if at_max else self.spec.min_size
        total = self.per_node.times(nodes)
        count = len(self.daemons) * nodes
        for p in self.pods:
            replicas = p.max_replicas if at_max else p.min_replicas
            total = total + p.requests.times(replicas)
            count += replicas
        return total, count

    def offered(self, at_max: bool) -> tuple[Requests, int]:
        nodes = self.spec.max_size if at_max else self.spec.min_size
        if self.node is None:
            return Requests(), 0
        return self.node.allocatable.times(nodes), self.node.pods * nodes


def group_loads(specs: Sequence[NodeGroupSpec], pods: Iterable[PodSet]) -> list[GroupLoad]:
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


def capacity_problems(settings: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Config errors: a pod no node of its group can hold, and a system group whose minimum cannot
    hold what always runs there (the autoscaler itself runs there: if it cannot start, nothing
    scales). GPU groups below what always runs only scale up, which the plan reports.
    """
    specs = node_specs(settings)
    loads = group_loads(specs, platform_pods(settings))
    pools = {p.name for p in settings.compute.pools} if settings.compute.uses_pools else set()
    found: list[tuple[tuple[str | int, ...], str]] = []
    for load in loads:
        # A node group's autoscaler may start any of its types; a pool starts one that fits.
        node = largest_node(load.spec) if load.spec.name in pools else load.node
        if node is None:
            continue
        room = Requests(
            node.allocatable.cpu_m - load.per_node.cpu_m,
            node.allocatable.memory_mib - load.per_node.memory_mib,
        )
        for p in load.pods:
            if p.path and p.requests.exceeds(room):
                found.append(
                    (
                        p.path,
                        f"one pod requests {p.requests.describe()} (with the platform's sidecar and init "
                        f"containers), more than a {node.instance} of '{load.spec.name}' offers after its "
                        f"DaemonSets ({room.describe()}): it would never be scheduled",
                    )
                )
    if settings.compute.provisioner == "auto-mode":
        return found  # Auto Mode grows the system pool to what runs there
    system = next(load for load in loads if load.spec.name == "system")
    if settings.compute.provisioner == "karpenter":
        return found + _fixed_system_problems(system)
    needed, count = system.requested(at_max=False)
    offered, slots = system.offered(at_max=False)
    if system.node is not None and (needed.exceeds(offered) or count > slots):
        found.append(
            (
                ("nodeGroups", "system", "scaling", "minSize"),
                f"{system.spec.min_size} x {system.node.instance} offer {_cpu(offered.cpu_m)}, "
                f"{_gib(offered.memory_mib)} and {slots} pods; what always runs there requests "
                f"{_cpu(needed.cpu_m)}, {_gib(needed.memory_mib)} and {count} pods: raise minSize or "
                "choose a larger instance type",
            )
        )
    return found


def _fixed_system_problems(system: GroupLoad) -> list[tuple[tuple[str | int, ...], str]]:
    """With Karpenter, no cluster autoscaler sizes the system group: it keeps its desired size, which
    must hold everything there at its peak and Karpenter's replicas on separate nodes."""
    at = ("nodeGroups", "system", "scaling", "desiredSize")
    nodes, node = system.spec.desired_size, system.node
    if nodes < karpenter.REPLICAS:
        return [
            (
                at,
                f"Karpenter's {karpenter.REPLICAS} controller replicas run on separate nodes: at least {karpenter.REPLICAS}",
            )
        ]
    if node is None:
        return []
    # Its DaemonSets on each of its nodes, every other pod at its peak.
    needed = system.per_node.times(nodes) + sum_requests(
        p.requests.times(p.max_replicas) for p in system.pods
    )
    count = len(system.daemons) * nodes + sum(p.max_replicas for p in system.pods)
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
