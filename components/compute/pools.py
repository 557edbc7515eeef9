"""GPU node pools, for Karpenter and for EKS Auto Mode alike: one description, pure builders.

A ``GpuPoolSpec`` names the instance types a pool may start (from the instance type table), the
capacity types it may buy, the capacity reservations it may use, its labels, taints, limits (the most
GPUs and vCPUs its nodes may hold together: the pool's spend cap) and how its nodes may be disrupted.
Everything the rest of the platform needs from a pool is derived from that one value:

- ``pool_labels`` / ``.node_taints``     -> what the pool's nodes carry;
- ``placement_for_pool``                 -> how a workload lands on the pool (and only there);
- ``node_pool_spec``                     -> the ``NodePool`` (``karpenter.sh/v1``), the same for both
  provisioners but for the node class it references;
- ``ec2_node_class_spec``                -> Karpenter's ``EC2NodeClass`` (``karpenter.k8s.aws/v1``);
- ``auto_node_class_spec``               -> EKS Auto Mode's ``NodeClass`` (``eks.amazonaws.com/v1``).

``pool_problems`` checks a spec before anything is created (``components/errors.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import validation
from ..dra import DEVICE_PLUGIN, DRA, GPU_DEVICE_CLASS, GpuAllocation
from ..errors import Problem, path, under
from ..scheduling import GPU_RESOURCE, GPU_TAINT, NodeFit, Placement, Taint
from .instance_types import InstanceType, lookup
from .node_groups import (
    ACCELERATOR_LABEL,
    GPU_PRESENT_LABEL,
    RESERVED_LABEL_PREFIXES,
    ROLE_LABEL,
)

PoolProvisioner = Literal["karpenter", "auto-mode"]  # the node class API a pool references
CapacityType = Literal["spot", "on-demand", "reserved"]
ConsolidationPolicy = Literal["WhenEmpty", "WhenEmptyOrUnderutilized"]

NODE_POOL_API = "karpenter.sh/v1"
EC2_NODE_CLASS_API = "karpenter.k8s.aws/v1"
AUTO_NODE_CLASS_API = "eks.amazonaws.com/v1"

POOL_LABEL = "aiplatform.io/gpu-pool"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
ARCH_KEY = "kubernetes.io/arch"
OS_KEY = "kubernetes.io/os"
# Label domains Karpenter and EKS keep for themselves on NodePools.
POOL_RESERVED_LABEL_PREFIXES = (*RESERVED_LABEL_PREFIXES, "karpenter.sh/", "karpenter.k8s.aws/")
CAPACITY_TYPES: tuple[CapacityType, ...] = ("spot", "on-demand", "reserved")
KUBERNETES_ARCH = {"x86_64": "amd64", "arm64": "arm64"}

# AL2023 is the AMI family of the EKS-optimised NVIDIA AMIs (AL2 is gone for Kubernetes 1.33+): the
# alias picks the NVIDIA variant for GPU instance types. Pinned to a release of awslabs/amazon-eks-ami.
AMI_ALIAS_PATTERN = re.compile(r"^al2023@v[0-9]{8}$")
ROOT_DEVICE = "/dev/xvda"
# Karpenter's NodePool duration and budget formats (from the karpenter.sh/v1 CRD).
_DURATION = re.compile(r"^(([0-9]+(s|m|h))+|Never)$")
_BUDGET_NODES = re.compile(r"^((100|[0-9]{1,2})%|[0-9]+)$")
_BUDGET_DURATION = re.compile(r"^(([0-9]+(h|m))|([0-9]+h[0-9]+m))$")
_RESERVATION_ID = re.compile(r"^cr-[0-9a-z]+$")


@dataclass(frozen=True)
class CapacityReservations:
    """On-Demand Capacity Reservations (ODCRs) a pool may launch into, by id or by tags.

    ``capacity_block``: the reservations are EC2 Capacity Blocks for ML, which end at a set time
    (EC2 reclaims the instances then): such a pool runs on reserved capacity only.

    ``instances``: how many instances of each type the reservations hold. EC2 bills a reservation
    whether instances run in it or not, so the plan's idle cost counts them; the NodePool carries the
    count in its ``aiplatform.io/reserved-instances`` annotation (Karpenter ignores it).
    """

    ids: tuple[str, ...] = ()  # the reservations' ids (cr-...)
    tags: Mapping[str, str] = field(default_factory=dict)  # select the reservations carrying these tags
    capacity_block: bool = False
    # the reserved instances by type (e.g. {"p4d.24xlarge": 2}); empty: not said (the cost omits them)
    instances: Mapping[str, int] = field(default_factory=dict)

    def selector_terms(self) -> list[dict[str, Any]]:
        """``capacityReservationSelectorTerms`` (ORed): one term per id, one for the tags."""
        terms: list[dict[str, Any]] = [{"id": i} for i in self.ids]
        if self.tags:
            terms.append({"tags": dict(self.tags)})
        return terms


@dataclass(frozen=True)
class BlockedWindow:
    """A recurring window (cron in UTC, as Karpenter reads budgets) with no voluntary disruption."""

    schedule: str  # when the window starts: a cron expression in UTC
    duration: str  # how long it lasts, e.g. 8h


@dataclass(frozen=True)
class Disruption:
    """How Karpenter may remove a pool's nodes: when they are empty or underused, how many at once,
    and never inside the blocked windows. Spot interruptions and capacity-block ends ignore budgets."""

    # which nodes Karpenter may remove: empty ones only, or underused ones too
    consolidation_policy: ConsolidationPolicy = "WhenEmpty"
    # how long a node stays empty or underused before removal (a duration, e.g. 10m)
    consolidate_after: str = "10m"
    max_nodes: str = "10%"  # the most nodes disrupted at once: a count or a percentage of the pool (e.g. 10%)
    blocked: tuple[BlockedWindow, ...] = ()  # recurring windows with no voluntary disruption


@dataclass(frozen=True)
class GpuPoolSpec:
    """One GPU node pool. ``instance_types`` are the table's types the pool may start (families the
    config names are expanded to the table's types of those families)."""

    name: str  # the pool's name (its NodePool's, and the label pods select it by)
    instance_types: tuple[str, ...]
    max_gpus: int  # the most GPUs the pool's nodes may hold together (the NodePool's limit)
    max_cpu: int  # the most vCPUs the pool's nodes may hold together (the NodePool's limit)
    capacity_types: tuple[CapacityType, ...] = ("on-demand",)  # the purchase options the pool may use
    # capacity reservations the pool launches into (None: none)
    reservations: CapacityReservations | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # extra Kubernetes labels on the pool's nodes
    taints: tuple[Taint, ...] = ()  # extra taints on the pool's nodes (the GPU taint is always there)
    disruption: Disruption = Disruption()  # when and how fast Karpenter may remove the pool's nodes
    # how pods get the pool's GPUs: the device plugin's nvidia.com/gpu, or DRA claims (components/dra.py)
    gpu_allocation: GpuAllocation = DEVICE_PLUGIN

    # -- as ``GpuCapacity`` (gpu_capacity.py) reads a pool --------------------------------------------
    @property
    def is_gpu(self) -> bool:
        return True

    @property
    def claims_gpus(self) -> bool:
        """GPU nodes whose GPUs the NVIDIA DRA driver publishes (no ``nvidia.com/gpu`` resource)."""
        return self.gpu_allocation == DRA

    @property
    def node_taints(self) -> tuple[Taint, ...]:
        """``GPU_TAINT`` first; extra taints follow, duplicates dropped."""
        return tuple(dict.fromkeys((GPU_TAINT, *self.taints)))

    @property
    def min_nodes(self) -> int:
        return 0  # a pool starts nodes for pending pods only

    @property
    def chooses_type_per_pod(self) -> bool:
        return True

    @property
    def accelerator_label(self) -> str | None:
        return self.accelerator

    @property
    def placement(self) -> Placement:
        return placement_for_pool(self)

    @property
    def instances(self) -> tuple[InstanceType, ...]:
        return tuple(t for t in map(lookup, self.instance_types) if t is not None)

    @property
    def smallest(self) -> InstanceType | None:
        """The allowed type with the fewest GPUs (then vCPUs): what one node takes at least."""
        return min(self.instances, key=lambda t: (t.gpus, t.vcpus, t.memory_mib), default=None)

    @property
    def max_nodes(self) -> int:
        """The most nodes the limits allow: nodes of the smallest allowed type."""
        smallest = self.smallest
        if smallest is None or not smallest.gpus:
            return 0
        return min(self.max_gpus // smallest.gpus, self.max_cpu // smallest.vcpus)

    @property
    def max_gpus_per_node(self) -> int:
        return max((t.gpus for t in self.instances), default=0)

    @property
    def accelerator(self) -> str | None:
        """The GPU model's label value when every allowed type has the same GPU, else None."""
        models = {t.gpu for t in self.instances}
        if len(models) != 1:
            return None
        (model,) = models
        return model.accelerator if model else None

    @property
    def arch(self) -> str | None:
        arches = {t.arch for t in self.instances}
        return KUBERNETES_ARCH[arches.pop()] if len(arches) == 1 else None

    @property
    def needs_own_node_class(self) -> bool:
        """Capacity reservations are selected by the node class, so such a pool has its own."""
        return self.reservations is not None


# -- pure derivations ----------------------------------------------------------------------------
def pool_labels(spec: GpuPoolSpec) -> dict[str, str]:
    """The labels of the pool's nodes: the extra labels, then the platform's own."""
    labels = dict(spec.labels)
    labels[ROLE_LABEL] = "gpu"
    labels[POOL_LABEL] = spec.name
    labels[GPU_PRESENT_LABEL] = "true"
    if spec.accelerator:
        labels[ACCELERATOR_LABEL] = spec.accelerator
    return labels


def placement_for_pool(spec: GpuPoolSpec) -> Placement:
    """The one source of truth for landing a pod on this pool (and only this pool)."""
    return Placement(
        node_selector={POOL_LABEL: spec.name},
        tolerations=tuple(t.toleration() for t in spec.node_taints),
        gpu_resource=None if spec.gpu_allocation == DRA else GPU_RESOURCE,
        fit=NodeFit(
            name=spec.name,
            kind="pool",
            gpus_per_node=spec.max_gpus_per_node,
            instance_types=tuple(spec.instance_types),
            chooses_type_per_pod=True,
            max_gpus=spec.max_gpus,
        ),
        device_class=GPU_DEVICE_CLASS if spec.gpu_allocation == DRA else None,
    )


SHARED_NODE_CLASS = "gpu"


def node_class_name(spec: GpuPoolSpec) -> str:
    """The shared GPU node class, or the pool's own (named after it) when it selects reservations."""
    return spec.name if spec.needs_own_node_class else SHARED_NODE_CLASS


def _taint(taint: Taint) -> dict[str, str]:
    out = {"key": taint.key, "effect": taint.effect}
    if taint.value:
        out["value"] = taint.value
    return out


def requirements(spec: GpuPoolSpec) -> list[dict[str, Any]]:
    """What a node of the pool must be: Linux, one architecture, the allowed types and capacity types."""
    found: list[dict[str, Any]] = [{"key": OS_KEY, "operator": "In", "values": ["linux"]}]
    if spec.arch:
        found.append({"key": ARCH_KEY, "operator": "In", "values": [spec.arch]})
    found.append({"key": INSTANCE_TYPE_KEY, "operator": "In", "values": list(spec.instance_types)})
    found.append({"key": CAPACITY_TYPE_KEY, "operator": "In", "values": list(spec.capacity_types)})
    return found


def disruption_budgets(disruption: Disruption) -> list[dict[str, str]]:
    """At most ``max_nodes`` at once, and none inside a blocked window."""
    budgets = [{"nodes": disruption.max_nodes}]
    budgets += [{"nodes": "0", "schedule": w.schedule, "duration": w.duration} for w in disruption.blocked]
    return budgets


def limits(spec: GpuPoolSpec) -> dict[str, str]:
    """The pool's spend cap: Karpenter starts no node that would take the pool past either."""
    return {"cpu": str(spec.max_cpu), GPU_RESOURCE: str(spec.max_gpus)}


def node_class_ref(provisioner: PoolProvisioner, name: str) -> dict[str, str]:
    if provisioner == "karpenter":
        return {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name}
    return {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": name}


RESERVED_INSTANCES_ANNOTATION = "aiplatform.io/reserved-instances"


def node_pool_annotations(spec: GpuPoolSpec) -> dict[str, str]:
    """What the pool's NodePool says of itself beyond Karpenter's API: the instances its capacity
    reservations hold (``type=count``, comma-separated), which are billed whether used or not."""
    instances = spec.reservations.instances if spec.reservations else {}
    if not instances:
        return {}
    return {RESERVED_INSTANCES_ANNOTATION: ",".join(f"{t}={n}" for t, n in sorted(instances.items()))}


def node_pool_metadata(spec: GpuPoolSpec) -> dict[str, Any]:
    """The pool's NodePool ``metadata``: its name, and its annotations when it has any."""
    annotations = node_pool_annotations(spec)
    return {"name": spec.name, **({"annotations": annotations} if annotations else {})}


def reserved_instances(annotations: Mapping[str, str] | None) -> dict[str, int]:
    """``node_pool_annotations``'s count read back: instance type -> reserved instances."""
    text = (annotations or {}).get(RESERVED_INSTANCES_ANNOTATION, "")
    found: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        instance_type, _, count = item.partition("=")
        found[instance_type.strip()] = int(count)
    return found


def node_pool_spec(spec: GpuPoolSpec, provisioner: PoolProvisioner) -> dict[str, Any]:
    """The ``NodePool`` spec of a GPU pool (``karpenter.sh/v1``; EKS Auto Mode reads the same API)."""
    d = spec.disruption
    return {
        "template": {
            "metadata": {"labels": pool_labels(spec)},
            "spec": {
                "nodeClassRef": node_class_ref(provisioner, node_class_name(spec)),
                "requirements": requirements(spec),
                "taints": [_taint(t) for t in spec.node_taints],
            },
        },
        "limits": limits(spec),
        "disruption": {
            "consolidationPolicy": d.consolidation_policy,
            "consolidateAfter": d.consolidate_after,
            "budgets": disruption_budgets(d),
        },
    }


@dataclass(frozen=True)
class NodeClassSettings:
    """What every GPU node class shares: where nodes go, who they are, how big their disk is."""

    role_name: Any  # pulumi.Input[str]: the node IAM role's name
    disk_size_gib: int = 200
    tags: Mapping[str, str] = field(default_factory=dict)


def ec2_node_class_spec(
    settings: NodeClassSettings,
    ami_alias: str,
    discovery: Mapping[str, str],
    reservations: CapacityReservations | None = None,
) -> dict[str, Any]:
    """Karpenter's ``EC2NodeClass``: the pinned AL2023 (NVIDIA) AMI alias, subnets and security
    groups found by the discovery tags, IMDSv2 only with a hop limit of 1 (no pod reaches the
    instance's credentials), an encrypted gp3 root volume sized for model images."""
    spec: dict[str, Any] = {
        "role": settings.role_name,
        "amiSelectorTerms": [{"alias": ami_alias}],
        "subnetSelectorTerms": [{"tags": dict(discovery)}],
        "securityGroupSelectorTerms": [{"tags": dict(discovery)}],
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "rootVolume": True,
                "ebs": {
                    "volumeSize": f"{settings.disk_size_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": dict(settings.tags),
    }
    if reservations is not None:
        spec["capacityReservationSelectorTerms"] = reservations.selector_terms()
    return spec


def auto_node_class_spec(
    settings: NodeClassSettings,
    subnet_ids: Sequence[Any],
    security_group_ids: Sequence[Any],
    reservations: CapacityReservations | None = None,
) -> dict[str, Any]:
    """EKS Auto Mode's ``NodeClass``: private subnets and the cluster security group by id, ephemeral
    storage (always encrypted by Auto Mode) sized for model images. Auto Mode keeps IMDS and the AMI;
    no tags, which Auto Mode copies to EC2 only with tagging permissions its managed policies lack."""
    spec: dict[str, Any] = {
        "role": settings.role_name,
        "subnetSelectorTerms": [{"id": s} for s in subnet_ids],
        "securityGroupSelectorTerms": [{"id": g} for g in security_group_ids],
        "ephemeralStorage": {"size": f"{settings.disk_size_gib}Gi"},
    }
    if reservations is not None:
        spec["capacityReservationSelectorTerms"] = reservations.selector_terms()
    return spec


# -- validation ----------------------------------------------------------------------------------
def pool_problems(spec: GpuPoolSpec) -> list[Problem]:
    """Every problem with one pool, each at the pool's field."""
    problems: list[Problem] = []
    if validation.dns1123_label(spec.name):
        problems.append(("name", "must be a DNS-1123 label"))
    if not spec.instance_types:
        problems.append(("instance_types", "at least one instance type is required"))
    for name in spec.instance_types:
        entry = lookup(name)
        if entry is None or entry.gpu is None:
            problems.append(("instance_types", f"'{name}' is not a GPU type of the instance type table"))
    if spec.instances and spec.arch is None:
        problems.append(("instance_types", "mix x86_64 and arm64 types in separate pools"))
    if not spec.capacity_types or len(set(spec.capacity_types)) != len(spec.capacity_types):
        problems.append(("capacity_types", f"one or more of {', '.join(CAPACITY_TYPES)}, each once"))
    unknown = [c for c in spec.capacity_types if c not in CAPACITY_TYPES]
    if unknown:
        problems.append(("capacity_types", f"unknown {', '.join(unknown)}"))
    problems += _reservation_problems(spec)
    smallest = spec.smallest
    if smallest is not None:
        if spec.max_gpus < smallest.gpus:
            problems.append(
                ("max_gpus", f"{spec.max_gpus} cannot hold one {smallest.name} ({smallest.gpus})")
            )
        if spec.max_cpu < smallest.vcpus:
            problems.append(("max_cpu", f"{spec.max_cpu} cannot hold one {smallest.name} ({smallest.vcpus})"))
    bad_labels = sorted(
        k
        for k in spec.labels
        if k.startswith((*POOL_RESERVED_LABEL_PREFIXES, "aiplatform.io/", "nvidia.com/"))
    )
    if bad_labels:
        problems.append(("labels", f"{', '.join(bad_labels)} are set by the platform, Karpenter or EKS"))
    d = spec.disruption
    if not _DURATION.fullmatch(d.consolidate_after):
        problems.append(("disruption.consolidate_after", "a duration such as 10m, 1h or Never"))
    if not _BUDGET_NODES.fullmatch(d.max_nodes):
        problems.append(("disruption.max_nodes", "a node count or a percentage such as 1 or 10%"))
    for w in d.blocked:
        if validation.cron_schedule(w.schedule):
            problems.append(("disruption.blocked", f"{w.schedule!r} is not a 5-field cron schedule"))
        if not _BUDGET_DURATION.fullmatch(w.duration):
            problems.append(("disruption.blocked", f"{w.duration!r} is not a duration such as 8h or 1h30m"))
    return problems


def _reservation_problems(spec: GpuPoolSpec) -> list[Problem]:
    n, r = spec.name, spec.reservations
    reserved = "reserved" in spec.capacity_types
    if r is None:
        return [("capacity_types", "'reserved' needs capacity reservations to select")] if reserved else []
    problems: list[Problem] = []
    if n == SHARED_NODE_CLASS:
        problems.append(
            ("name", f"'{n}' names the shared GPU node class: give a pool with reservations another name")
        )
    if not reserved:
        problems.append(
            ("reservations", "the pool never launches into them without capacity type 'reserved'")
        )
    if not r.ids and not r.tags:
        problems.append(("reservations", "select reservations by ids or tags"))
    problems += [
        ("reservations.ids", f"{i!r} is not a reservation id (cr-...)")
        for i in r.ids
        if not _RESERVATION_ID.fullmatch(i)
    ]
    problems += [
        (
            f"reservations.instances.{instance_type}",
            f"'{instance_type}' is not a type the pool may start ({', '.join(spec.instance_types)})",
        )
        for instance_type in r.instances
        if instance_type not in spec.instance_types
    ]
    problems += [
        (f"reservations.instances.{instance_type}", f"{count!r} must be a whole number of instances >= 1")
        for instance_type, count in r.instances.items()
        if not isinstance(count, int) or isinstance(count, bool) or count < 1
    ]
    if r.capacity_block and tuple(spec.capacity_types) != ("reserved",):
        problems.append(("capacity_types", "a Capacity Block pool runs on reserved capacity only"))
    return problems


def pools_problems(pools: Sequence[GpuPoolSpec]) -> list[Problem]:
    """Every problem of every pool (at ``pools[i].<field>``), and of the pools together."""
    problems: list[Problem] = []
    names = [p.name for p in pools]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        problems.append(("pools", f"duplicate names: {', '.join(duplicates)}"))
    for i, pool in enumerate(pools):
        problems += under(path("pools", i), pool_problems(pool))
    return problems
