"""The cluster the program registered, as the capacity model reads it: node sources and pods.

Read from the registrations alone, whatever program made them (the platform's stack, a program built
from components): so the compute, capacity and cost reports say the same of any program.

- node sources: every ``aws:eks/nodeGroup:NodeGroup`` (its scaling config, instance types, labels and
  taints) as a ``NodeGroupSpec``, and every Karpenter / EKS Auto Mode ``NodePool``: a GPU pool
  (``aiplatform.io/gpu-pool`` label) as a ``GpuPoolSpec``, a system pool as a ``NodeGroupSpec`` from
  its ``aiplatform.io/idle-nodes`` floor to the most nodes its limits allow;
- pods: the EKS add-ons' (``aws:eks/addon:Addon``, with their upstream defaults), the Helm releases'
  (each registered chart's descriptor in ``components.catalog.registry``, with its component's
  requests), the program's own DaemonSets, Deployments (at their HPA's min/max replicas), Jobs and
  CronJobs, as their manifests declare them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import registry
from ..catalog.registry import KUBE_PROMETHEUS_STACK, AddonChoices
from ..compute.auto_mode import IDLE_NODES_ANNOTATION
from ..compute.capacity import (
    GroupLoad,
    Nodes,
    PodSet,
    Requests,
    addon_pods,
    eks_addon_pods,
    group_loads,
    pod_spec_requests,
)
from ..compute.gpu_capacity import NodeCapacity
from ..compute.instance_types import InstanceType, lookup
from ..compute.node_groups import GPU_PRESENT_LABEL, NODE_GROUP_LABEL, ROLE_LABEL, NodeGroupSpec
from ..compute.pools import CAPACITY_TYPE_KEY, INSTANCE_TYPE_KEY, POOL_LABEL, GpuPoolSpec
from ..pod_requests import manifest_requests
from ..scheduling import GPU_RESOURCE, Taint, Toleration, toleration_from_dict
from ..validation import quantity_value
from .mock_engine import Registration
from .model import manifest_of

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
EKS_ADDON = "aws:eks/addon:Addon"
RELEASE = "kubernetes:helm.sh/v3:Release"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
WORKLOAD_KINDS = ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob")
CLAIM_TEMPLATE = "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate"
CLAIM = "kubernetes:resource.k8s.io/v1:ResourceClaim"
_UNLIMITED = 10**9  # a NodePool limit left out
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}


@dataclass(frozen=True)
class NodeSource:
    """A registered node group or pool: the resource that makes it, and the model's view of it."""

    resource: str  # the registration's name (the cost report's line items name it)
    kind: str  # "node group" or "pool"
    spec: NodeCapacity
    capacity_types: tuple[str, ...] = ()


def _metadata(r: Registration) -> Mapping[str, Any]:
    return r.inputs.get("metadata") or {}


def _taints(items: Sequence[Mapping[str, Any]] | None) -> tuple[Taint, ...]:
    return tuple(
        Taint(
            key=str(t.get("key")),
            value=str(t.get("value") or ""),
            effect=_EFFECTS.get(str(t.get("effect")), str(t.get("effect") or "NoSchedule")),  # type: ignore[arg-type]
        )
        for t in items or []
    )


def _node_group(r: Registration) -> NodeSource:
    inputs = r.inputs
    labels = {str(k): str(v) for k, v in (inputs.get("labels") or {}).items()}
    scaling = inputs.get("scalingConfig") or {}
    gpu = labels.get(ROLE_LABEL) == "gpu" or labels.get(GPU_PRESENT_LABEL) == "true"
    role = "gpu" if gpu or "NVIDIA" in str(inputs.get("amiType") or "") else "system"
    spec = NodeGroupSpec(
        name=labels.get(NODE_GROUP_LABEL) or str(inputs.get("nodegroupName") or r.name),
        role=role,
        instance_types=tuple(str(t) for t in inputs.get("instanceTypes") or ()),
        capacity_type="SPOT" if inputs.get("capacityType") == "SPOT" else "ON_DEMAND",
        min_size=int(scaling.get("minSize") or 0),
        desired_size=int(scaling.get("desiredSize") or 0),
        max_size=int(scaling.get("maxSize") or 0),
        labels=labels,
        taints=_taints(inputs.get("taints")),
    )
    return NodeSource(r.name, "node group", spec, (str(inputs.get("capacityType") or "ON_DEMAND"),))


def _requirement(template: Mapping[str, Any], key: str) -> tuple[str, ...]:
    for requirement in template.get("requirements") or []:
        if requirement.get("key") == key and requirement.get("operator") == "In":
            return tuple(str(v) for v in requirement.get("values") or [])
    return ()


def nodes_within(limits: Mapping[str, Any], instance: InstanceType) -> int:
    """How many nodes of ``instance`` a NodePool's ``limits`` allow (each caps the sum over nodes;
    a type without a limited resource is never started for it: 0)."""
    per_node = {"cpu": instance.vcpus, "memory": instance.memory_mib / 1024, GPU_RESOURCE: instance.gpus}
    counts = []
    for resource, limit in limits.items():
        amount = per_node.get(resource)
        if amount == 0:
            return 0
        if amount is not None:
            value = float(quantity_value(limit)) / (2**30 if resource == "memory" else 1)
            counts.append(int(value // amount))
    return min(counts) if counts else 0


def _node_pool(r: Registration) -> NodeSource:
    spec = r.inputs.get("spec") or {}
    template = spec.get("template") or {}
    labels = {str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}
    pod_spec = template.get("spec") or {}
    types = _requirement(pod_spec, INSTANCE_TYPE_KEY)
    capacity = _requirement(pod_spec, CAPACITY_TYPE_KEY) or ("on-demand",)
    name = str(_metadata(r).get("name") or r.name)
    limits = spec.get("limits") or {}
    taints = _taints(pod_spec.get("taints"))
    if POOL_LABEL in labels:
        pool = GpuPoolSpec(
            name=labels[POOL_LABEL],
            instance_types=types,
            max_gpus=int(quantity_value(limits.get(GPU_RESOURCE, 0))),
            # No cpu limit: the GPU limit alone caps the pool.
            max_cpu=int(quantity_value(limits["cpu"])) if "cpu" in limits else _UNLIMITED,
            capacity_types=capacity,  # type: ignore[arg-type]
            labels=labels,
            taints=taints,
        )
        return NodeSource(r.name, "pool", pool, capacity)
    floor = int((_metadata(r).get("annotations") or {}).get(IDLE_NODES_ANNOTATION, 0))
    entries = [t for t in map(lookup, types) if t is not None]
    ceiling = min((nodes_within(limits, t) for t in entries), default=0) if limits else floor
    system = NodeGroupSpec(
        name=labels.get(NODE_GROUP_LABEL) or name,
        role="gpu" if labels.get(ROLE_LABEL) == "gpu" else "system",
        instance_types=types,
        min_size=floor,
        desired_size=floor,
        max_size=max(floor, ceiling),
        labels=labels,
        taints=taints,
    )
    return NodeSource(r.name, "pool", system, capacity)


def node_sources(registrations: Sequence[Registration]) -> list[NodeSource]:
    """Every registered node group and node pool, the system nodes first (the model places pods that
    select no group on the first nodes they tolerate), then node groups before pools, by name (the
    engine registers in no fixed order)."""
    found = [_node_group(r) for r in registrations if r.type == NODE_GROUP]
    found += [_node_pool(r) for r in registrations if r.type == NODE_POOL]
    return sorted(found, key=lambda s: (s.spec.is_gpu, s.kind == "pool", s.spec.name))


# -- pods ----------------------------------------------------------------------------------------------


def _release_values(registrations: Sequence[Registration], chart: str) -> Mapping[str, Any] | None:
    for r in registrations:
        if r.type == RELEASE and r.inputs.get("chart") == chart:
            return r.inputs.get("values") or {}
    return None


def registered_choices(registrations: Sequence[Registration], gpus: bool) -> AddonChoices:
    """Which optional pods of the registered releases run, from the releases' values."""
    charts = {str(r.inputs.get("chart")) for r in registrations if r.type == RELEASE}
    stack = _release_values(registrations, KUBE_PROMETHEUS_STACK.chart) or {}
    return AddonChoices(
        ingress_controller="nginx" if registry.INGRESS_NGINX.chart in charts else "alb",
        observability=KUBE_PROMETHEUS_STACK.chart in charts,
        alertmanager=bool((stack.get("alertmanager") or {}).get("enabled")),
        grafana=bool((stack.get("grafana") or {}).get("enabled")),
        alb_controller=registry.AWS_LOAD_BALANCER_CONTROLLER.chart in charts,
        device_plugin=registry.NVIDIA_DEVICE_PLUGIN.chart in charts,
        gpus=gpus,
        dra_driver=registry.NVIDIA_DRA_DRIVER.chart in {_chart_name(c) for c in charts},
    )


def _chart_name(chart: str) -> str:
    """A chart's name, also when it is an OCI reference (``oci://host/path/karpenter``)."""
    return chart.rsplit("/", 1)[-1]


def release_pods(registrations: Sequence[Registration], nodes: Nodes) -> list[PodSet]:
    """The pods of every registered Helm release the catalog describes: the node provisioner's
    controllers first, then the others in the catalog's order, the GPU node agents last."""
    charts = {_chart_name(str(r.inputs.get("chart"))) for r in registrations if r.type == RELEASE}
    choices = registered_choices(registrations, any(s.is_gpu for s in nodes.all))
    addons = [a for a in registry.ADD_ONS if _chart_name(a.chart) in charts]
    controllers = [p for a in addons if a.provisioner for p in addon_pods(a, nodes, choices)]
    others = [p for a in addons if not a.provisioner for p in addon_pods(a, nodes, choices)]
    return controllers + sorted(others, key=lambda p: p.gpu_only)


def _pod_template(r: Registration) -> Mapping[str, Any]:
    spec = r.inputs.get("spec") or {}
    if r.type.endswith(":CronJob"):
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (spec.get("template") or {}).get("spec") or {}


def _with_gpu_requests(container: Mapping[str, Any]) -> Mapping[str, Any]:
    """The container with its GPU request as Kubernetes reads it: an extended resource's request
    defaults to its limit."""
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    if GPU_RESOURCE in requests or GPU_RESOURCE not in limits:
        return container
    return {
        **container,
        "resources": {**resources, "requests": {**requests, GPU_RESOURCE: limits[GPU_RESOURCE]}},
    }


def pod_gpus(spec: Mapping[str, Any], claims: Claims | None = None) -> int:
    """The GPUs a pod spec asks for: ``nvidia.com/gpu`` (a limit alone counts as the request), and the
    devices of the DRA claims made for it from ResourceClaimTemplates (``claims``)."""
    copy = {
        "containers": [_with_gpu_requests(c) for c in spec.get("containers") or []],
        "initContainers": [_with_gpu_requests(c) for c in spec.get("initContainers") or []],
    }
    own = sum(
        (claims.templates.get(ref["resourceClaimTemplateName"], 0) if claims else 0)
        for ref in spec.get("resourceClaims") or []
        if ref.get("resourceClaimTemplateName")
    )
    return math.ceil(manifest_requests(copy).get(GPU_RESOURCE, 0)) + own


def claim_devices(spec: Mapping[str, Any]) -> int:
    """The devices a ResourceClaim spec requests (``exactly``: its count, 1 when left out; ``All``
    counts as one, the fewest it takes)."""
    requests = ((spec.get("devices") or {}).get("requests")) or []
    return sum(int((r.get("exactly") or {}).get("count") or 1) for r in requests)


@dataclass(frozen=True)
class Claims:
    """The DRA claims the program registers, by name, in one namespace: the devices each
    ResourceClaimTemplate's claims and each ResourceClaim request."""

    templates: Mapping[str, int]
    claims: Mapping[str, int]


def registered_claims(registrations: Sequence[Registration]) -> dict[str | None, Claims]:
    """Per namespace, the registered ResourceClaimTemplates and ResourceClaims (auto-names resolved as
    the manifests name them)."""
    found: dict[str | None, tuple[dict[str, int], dict[str, int]]] = {}
    for r in registrations:
        if r.type not in (CLAIM_TEMPLATE, CLAIM):
            continue
        manifest = manifest_of(r)
        metadata = manifest["metadata"]
        templates, claims = found.setdefault(metadata.get("namespace"), ({}, {}))
        if r.type == CLAIM_TEMPLATE:
            templates[metadata["name"]] = claim_devices((manifest.get("spec") or {}).get("spec") or {})
        else:
            claims[metadata["name"]] = claim_devices(manifest.get("spec") or {})
    return {ns: Claims(t, c) for ns, (t, c) in found.items()}


def shared_claim(
    spec: Mapping[str, Any], namespace: str | None, claims: Claims | None
) -> tuple[str, int] | None:
    """The registered ResourceClaim the pod shares with others (by name), with its devices."""
    for ref in spec.get("resourceClaims") or []:
        name = ref.get("resourceClaimName")
        if name and claims is not None and name in claims.claims:
            return f"{namespace}/{name}", claims.claims[name]
    return None


def _selected_group(template: Mapping[str, Any]) -> str | None:
    selector = template.get("nodeSelector") or {}
    return selector.get(NODE_GROUP_LABEL) or selector.get(POOL_LABEL)


def _tolerations(template: Mapping[str, Any]) -> tuple[Toleration, ...]:
    return tuple(toleration_from_dict(t) for t in template.get("tolerations") or [])


def manifest_pods(registrations: Sequence[Registration]) -> list[PodSet]:
    """The program's own pods, as its Deployments, Jobs and CronJobs declare them."""
    hpas: dict[tuple[str | None, str], tuple[int, int]] = {}
    for r in registrations:
        if r.type == HPA:
            spec = r.inputs.get("spec") or {}
            key = (_metadata(r).get("namespace"), spec["scaleTargetRef"]["name"])
            hpas[key] = (spec.get("minReplicas", 1), spec["maxReplicas"])
    found: list[PodSet] = []
    claims = registered_claims(registrations)
    for r in registrations:
        if r.type not in WORKLOAD_KINDS:
            continue
        metadata, spec = _metadata(r), r.inputs.get("spec") or {}
        name = metadata.get("name") or r.name
        if r.type.endswith(":Deployment"):
            low, high = hpas.get((metadata.get("namespace"), name)) or (spec.get("replicas", 1),) * 2
        elif r.type.endswith(":Job"):
            low, high = 0, spec.get("parallelism", 1)
        else:
            low, high = 0, 1 if spec.get("concurrencyPolicy") == "Forbid" else spec.get("parallelism", 1)
        template = _pod_template(r)
        found.append(
            PodSet(
                name=name,
                source="workload",
                requests=pod_spec_requests(template),
                min_replicas=low,
                max_replicas=high,
                node_group=_selected_group(template),
                tolerations=_tolerations(template),
                gpus=pod_gpus(template, claims.get(metadata.get("namespace"))),
                namespace=metadata.get("namespace"),
                shared_claim=shared_claim(
                    template, metadata.get("namespace"), claims.get(metadata.get("namespace"))
                ),
            )
        )
    return found


def daemon_set_pods(registrations: Sequence[Registration]) -> list[PodSet]:
    """The program's own DaemonSets: one pod on every node it tolerates (and selects, by GPU)."""
    found = []
    for r in registrations:
        if r.type != DAEMON_SET:
            continue
        template = _pod_template(r)
        selector = template.get("nodeSelector") or {}
        found.append(
            PodSet(
                name=str(_metadata(r).get("name") or r.name),
                source="DaemonSet",
                requests=pod_spec_requests(template),
                tolerations=_tolerations(template),
                daemon=True,
                gpu_only=selector.get(GPU_PRESENT_LABEL) == "true" or selector.get(ROLE_LABEL) == "gpu",
            )
        )
    return found


def registered_pods(registrations: Sequence[Registration], nodes: Nodes) -> list[PodSet]:
    """Every pod the registrations run: EKS add-ons', releases', the program's DaemonSets and workloads."""
    addons = {str(r.inputs.get("addonName")) for r in registrations if r.type == EKS_ADDON}
    return [
        *eks_addon_pods(addons),
        *release_pods(registrations, nodes),
        *daemon_set_pods(registrations),
        *manifest_pods(registrations),
    ]


@dataclass(frozen=True)
class RegisteredCluster:
    """The registered node sources and what lands on each."""

    sources: tuple[NodeSource, ...]
    loads: tuple[GroupLoad, ...]

    def load_of(self, resource: str) -> GroupLoad | None:
        """The load of the node group or pool registered as ``resource``."""
        for source, load in zip(self.sources, self.loads, strict=True):
            if source.resource == resource:
                return load
        return None


def registered_cluster(registrations: Sequence[Registration]) -> RegisteredCluster:
    sources = node_sources(registrations)
    if not sources:
        return RegisteredCluster((), ())
    system, *others = (s.spec for s in sources)
    nodes = Nodes(system, tuple(others))  # type: ignore[arg-type]
    return RegisteredCluster(
        tuple(sources), tuple(group_loads(nodes.all, registered_pods(registrations, nodes)))
    )


def describe_requests(requests: Requests, gpus: int) -> str:
    return requests.describe() + (f", {gpus} GPU" if gpus else "")
