"""EKS managed node groups: one shared node role, one launch template and one node group per spec.

Everything a node group *means* to the rest of the platform is derived here from one frozen
``NodeGroupSpec`` by pure functions, so the pieces cannot drift apart:

- ``node_labels`` / ``.node_taints``  -> what EKS puts on the nodes;
- ``placement_for``                  -> how a workload lands on the group (selector + tolerations + GPU);
- ``autoscaler_tags``                -> what the cluster autoscaler needs to scale the group from zero.

``NodeGroupsArgs.problems`` checks every spec before anything is created (``components/errors.py``):
each bad field at its path, ``specs[1].max_size``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from ..dra import DEVICE_PLUGIN, DRA, GPU_DEVICE_CLASS, GpuAllocation
from ..errors import Problem, path, require, type_problems, under
from ..iam import service_trust_policy
from ..scheduling import (
    GPU_RESOURCE,
    GPU_TAINT,
    NodeFit,
    Placement,
    Taint,
    Toleration,
    toleration_from_dict,
    untolerated,
)
from ..validation import AUTONAME_SUFFIX_LENGTH
from .gpu_capacity import NodeCapacity
from .instance_types import (
    InstanceType,
    gpu_family,
    gpu_instance_families,
    instance_family,
    lookup,
    unknown_type_message,
)

NodeRole = Literal["system", "gpu"]
CapacityType = Literal["ON_DEMAND", "SPOT"]

# -- label keys (the platform's own vocabulary) ---------------------------------------------------
ROLE_LABEL = "aiplatform.io/node-role"
NODE_GROUP_LABEL = "aiplatform.io/node-group"
ACCELERATOR_LABEL = "aiplatform.io/accelerator"
CAPACITY_LABEL = "aiplatform.io/capacity-type"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
# The label the cluster autoscaler's AWS provider reads to know that a node brings GPUs: without it a
# new GPU node looks GPU-less until the device plugin has started, and the autoscaler scales up again.
AUTOSCALER_GPU_LABEL = "k8s.amazonaws.com/accelerator"

SYSTEM_SELECTOR = {ROLE_LABEL: "system"}

# -- AMI types (AL2 is gone for Kubernetes 1.33+) -------------------------------------------------
SYSTEM_AMI_TYPES = frozenset({"AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "BOTTLEROCKET_x86_64"})
GPU_AMI_TYPES = frozenset(
    {
        "AL2023_x86_64_NVIDIA",
        "AL2023_ARM_64_NVIDIA",
        "BOTTLEROCKET_x86_64_NVIDIA",
        "BOTTLEROCKET_ARM_64_NVIDIA",
    }
)
ARM_AMI_TYPES = frozenset({"AL2023_ARM_64_STANDARD", "AL2023_ARM_64_NVIDIA", "BOTTLEROCKET_ARM_64_NVIDIA"})
DEFAULT_AMI_TYPE: Mapping[str, str] = {"system": "AL2023_x86_64_STANDARD", "gpu": "AL2023_x86_64_NVIDIA"}

# -- instance families ----------------------------------------------------------------------------
# Graviton families are recognised by the "g" after the generation digit (m7g, c7gn, r8gd, t4g, g5g);
# these are the exceptions that the pattern cannot see.
_ARM_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")
_EXTRA_ARM_FAMILIES = frozenset({"a1", "p6e-gb200"})

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# EKS names a node group "<component>-<group>" plus Pulumi's random suffix, within 63 characters.
EKS_NODEGROUP_NAME_MAX = 63
# EKS limits on a managed node group's labels and taints (CreateNodegroup, Taint).
EKS_LABEL_KEY_MAX, EKS_LABEL_VALUE_MAX, EKS_TAINTS_PER_GROUP = 63, 63, 50


def max_group_name_length(component_name: str) -> int:
    """The longest group name a ``NodeGroups`` component named ``component_name`` can give EKS."""
    return EKS_NODEGROUP_NAME_MAX - AUTONAME_SUFFIX_LENGTH - len(f"{component_name}-")


RESERVED_LABEL_PREFIXES = ("kubernetes.io/", "k8s.io/", "eks.amazonaws.com/", "k8s.amazonaws.com/")

AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
NODE_TEMPLATE_PREFIX = f"{AUTOSCALER_TAG_PREFIX}/node-template"

# AWS managed policies on the shared node role. The CNI policy only while the VPC CNI has no role of
# its own (a cluster whose vpc-cni add-on this program does not manage): on the node role, anything
# that reaches the instance metadata service could use it. ``EksCluster`` gives a pinned vpc-cni add-on
# its own IRSA / Pod Identity role before any node boots, and then ``attach_cni_policy=False``.
WORKER_NODE_POLICY = "AmazonEKSWorkerNodePolicy"
ECR_READ_ONLY_POLICY = "AmazonEC2ContainerRegistryReadOnly"
CNI_POLICY = "AmazonEKS_CNI_Policy"


def is_arm_instance(instance_type: str) -> bool:
    family = instance_family(instance_type)
    return family in _EXTRA_ARM_FAMILIES or bool(_ARM_FAMILY.fullmatch(family))


@dataclass(frozen=True)
class NodeGroupSpec:
    """One EKS managed node group.

    ``role="system"`` runs the platform's controllers; ``role="gpu"`` groups always carry the GPU taint
    and may scale to zero. A GPU group's instance types share one GPU model and count, which the
    instance type table (``components.instance_types``) knows: ``accelerator`` (the label value, such
    as ``nvidia-a10g``) and ``gpus_per_node`` (what the autoscaler assumes a new node brings when the
    group is at zero) default to the table's and, when given, must agree with it.
    """

    name: str  # the group's name, unique in the cluster (EKS prefixes it with the component's name)
    # ``system`` (the platform's controllers) or ``gpu`` (tainted, may scale to zero)
    role: NodeRole = "system"
    # EC2 instance types the group may start (GPU groups: one GPU model and count)
    instance_types: tuple[str, ...] = ("m7i.large",)
    capacity_type: CapacityType = "ON_DEMAND"  # On-Demand or Spot instances
    ami_type: str | None = None  # None: DEFAULT_AMI_TYPE[role]
    min_size: int = 1  # the fewest nodes (0 lets a GPU group scale to zero)
    desired_size: int = 1  # nodes at creation, between min_size and max_size (the autoscaler moves it later)
    max_size: int = 3  # the most nodes the autoscaler may start
    disk_size_gib: int = 50  # each node's root volume, GiB
    labels: Mapping[str, str] = field(default_factory=dict)  # extra Kubernetes labels on the group's nodes
    accelerator: str | None = None  # None: the table's label for the group's GPU model
    gpus_per_node: int = 0  # 0: the table's GPU count
    # extra taints on the group's nodes (GPU groups always carry the GPU taint)
    taints: tuple[Taint, ...] = ()
    # how pods get the group's GPUs: the device plugin's nvidia.com/gpu, or DRA claims (components/dra.py)
    gpu_allocation: GpuAllocation = DEVICE_PLUGIN

    @property
    def is_gpu(self) -> bool:
        return self.role == "gpu"

    @property
    def claims_gpus(self) -> bool:
        """GPU nodes whose GPUs the NVIDIA DRA driver publishes (no ``nvidia.com/gpu`` resource)."""
        return self.is_gpu and self.gpu_allocation == DRA

    @property
    def gpu_instance(self) -> InstanceType | None:
        """The table's entry for the first GPU type (all of a valid group's types agree on GPUs)."""
        known = [t for t in map(lookup, self.instance_types) if t is not None and t.gpu is not None]
        return known[0] if known else None

    @property
    def resolved_accelerator(self) -> str:
        entry = self.gpu_instance
        return self.accelerator or (entry.gpu.accelerator if entry and entry.gpu else "")

    @property
    def resolved_gpus_per_node(self) -> int:
        entry = self.gpu_instance
        return self.gpus_per_node or (entry.gpus if entry else 0)

    @property
    def resolved_ami_type(self) -> str:
        return self.ami_type or DEFAULT_AMI_TYPE.get(self.role, "")

    # -- as ``GpuCapacity`` (gpu_capacity.py) reads a group -------------------------------------------
    @property
    def node_taints(self) -> tuple[Taint, ...]:
        """GPU groups always carry ``GPU_TAINT`` first; extra taints follow, duplicates dropped."""
        taints = ((GPU_TAINT,) if self.is_gpu else ()) + tuple(self.taints)
        return tuple(dict.fromkeys(taints))

    @property
    def min_nodes(self) -> int:
        return self.min_size

    @property
    def max_nodes(self) -> int:
        return self.max_size

    @property
    def chooses_type_per_pod(self) -> bool:
        return False  # the Auto Scaling group may start any of the types

    @property
    def max_gpus_per_node(self) -> int:
        return self.resolved_gpus_per_node

    @property
    def accelerator_label(self) -> str | None:
        return self.resolved_accelerator or None

    @property
    def placement(self) -> Placement:
        return placement_for(self)


# -- pure derivations ----------------------------------------------------------------------------
def node_labels(spec: NodeGroupSpec) -> dict[str, str]:
    """The Kubernetes labels of the group's nodes: the extra labels, then the platform's own."""
    labels = dict(spec.labels)
    labels[ROLE_LABEL] = spec.role
    labels[NODE_GROUP_LABEL] = spec.name
    labels[CAPACITY_LABEL] = "spot" if spec.capacity_type == "SPOT" else "on-demand"
    if spec.is_gpu:
        labels[GPU_PRESENT_LABEL] = "true"
        labels[ACCELERATOR_LABEL] = spec.resolved_accelerator
        # Not with DRA: the autoscaler holds a node with this label and no nvidia.com/gpu allocatable
        # unready, waiting for a device plugin that never comes (gpu_processor.go, 1.36.1).
        if not spec.claims_gpus:
            labels[AUTOSCALER_GPU_LABEL] = spec.resolved_accelerator
    return labels


def group_tolerations(specs: Sequence[NodeCapacity]) -> tuple[Toleration, ...]:
    """One toleration per distinct taint of ``specs``: what a pod needs to land on any of these groups.

    DaemonSets that must run on every node take this over all groups; the GPU daemons over the GPU
    groups. Derived, so a taint added to a group is tolerated by what must run there.
    """
    taints = [taint for spec in specs for taint in spec.node_taints]
    return tuple(taint.toleration() for taint in dict.fromkeys(taints))


def untolerated_groups(
    specs: Sequence[NodeCapacity], tolerations: Sequence[Toleration | Mapping[str, str]]
) -> dict[str, tuple[str, ...]]:
    """The groups on which a pod with ``tolerations`` cannot run, with the taints it misses.

    Tolerations may be ``Toleration`` objects or dicts in manifest/Helm-values form.
    """
    parsed = [t if isinstance(t, Toleration) else toleration_from_dict(t) for t in tolerations]
    missing: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        taints = untolerated(spec.node_taints, parsed)
        if taints:
            missing[spec.name] = tuple(f"{t.key}={t.value}:{t.effect}" for t in taints)
    return missing


def placement_for(spec: NodeGroupSpec) -> Placement:
    """The one source of truth for landing a pod on this group (and only this group)."""
    return Placement(
        node_selector={NODE_GROUP_LABEL: spec.name},
        tolerations=tuple(t.toleration() for t in spec.node_taints),
        gpu_resource=GPU_RESOURCE if spec.is_gpu and not spec.claims_gpus else None,
        fit=NodeFit(
            name=spec.name,
            gpus_per_node=spec.resolved_gpus_per_node,
            instance_types=tuple(spec.instance_types),
            max_nodes=spec.max_size,
        ),
        device_class=GPU_DEVICE_CLASS if spec.claims_gpus else None,
    )


def autoscaler_tags(spec: NodeGroupSpec, cluster_name: str) -> dict[str, str]:
    """Cluster-autoscaler auto-discovery tags plus the node-template hints for scale-from-zero."""
    tags = {
        f"{AUTOSCALER_TAG_PREFIX}/enabled": "true",
        f"{AUTOSCALER_TAG_PREFIX}/{cluster_name}": "owned",
    }
    tags.update(node_template_tags(spec))
    return tags


def node_template_tags(spec: NodeGroupSpec) -> dict[str, str]:
    """What a node of an empty group would look like: labels, taints and GPUs."""
    tags = {f"{NODE_TEMPLATE_PREFIX}/label/{k}": v for k, v in node_labels(spec).items()}
    for taint in spec.node_taints:
        tags[f"{NODE_TEMPLATE_PREFIX}/taint/{taint.key}"] = f"{taint.value}:{taint.effect}"
    # A DRA group's GPUs are in ResourceSlices, which no tag describes: the autoscaler's AWS templates
    # carry none (it starts a group's first node for a claim only from a running node's slices).
    if spec.is_gpu and not spec.claims_gpus:
        tags[f"{NODE_TEMPLATE_PREFIX}/resources/{GPU_RESOURCE}"] = str(spec.resolved_gpus_per_node)
    return tags


def eks_taints(spec: NodeGroupSpec) -> list[aws.eks.NodeGroupTaintArgs]:
    return [
        aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.eks_effect()) for t in spec.node_taints
    ]


# -- validation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GpuTypeProblem:
    """A GPU group that disagrees with the instance type table; ``index`` points into the types."""

    field: Literal["instance_types", "accelerator", "gpus_per_node"]
    message: str
    index: int | None = None


def gpu_type_problems(
    instance_types: Sequence[str], accelerator: str | None, gpus_per_node: int | None
) -> list[GpuTypeProblem]:
    """One GPU model and count per group, as the table knows them; ``accelerator`` and
    ``gpus_per_node`` (when given) must say the same. Types of the table's GPU-less families are not
    judged here: the family rule names them.
    """
    problems: list[GpuTypeProblem] = []
    first: InstanceType | None = None
    for i, name in enumerate(instance_types):
        if gpu_family(instance_family(name)) is False:
            continue
        entry = lookup(name)
        if entry is None or entry.gpu is None:
            problems.append(GpuTypeProblem("instance_types", unknown_type_message(name), i))
        elif first is None:
            first = entry
        elif (entry.gpu, entry.gpus) != (first.gpu, first.gpus):
            problems.append(
                GpuTypeProblem(
                    "instance_types",
                    f"'{name}' has {entry.gpus} x {entry.gpu}, '{first.name}' has {first.gpus} x "
                    f"{first.gpu}: one GPU model and count per group (split them into groups)",
                    i,
                )
            )
    if first is None or first.gpu is None:
        return problems
    if accelerator and accelerator != first.gpu.accelerator:
        problems.append(
            GpuTypeProblem(
                "accelerator",
                f"'{accelerator}' does not name the GPU of {first.name}: {first.gpu} is "
                f"'{first.gpu.accelerator}' (or leave it out)",
            )
        )
    if gpus_per_node and gpus_per_node != first.gpus:
        problems.append(
            GpuTypeProblem(
                "gpus_per_node",
                f"{first.name} has {first.gpus} GPU{'s' if first.gpus > 1 else ''}, not {gpus_per_node} "
                "(or leave it out)",
            )
        )
    return problems


def spec_problems(spec: NodeGroupSpec) -> list[Problem]:
    """Every problem with one spec, each at the spec's field."""
    problems: list[Problem] = []
    if not _NAME.fullmatch(spec.name):
        problems.append(("name", "must be lowercase letters, digits and '-', at most 63 characters"))
    if spec.role not in ("system", "gpu"):
        problems.append(("role", f"must be 'system' or 'gpu', got {spec.role!r}"))
        return problems
    if spec.capacity_type not in ("ON_DEMAND", "SPOT"):
        problems.append(("capacity_type", f"must be ON_DEMAND or SPOT, got {spec.capacity_type!r}"))

    ami = spec.resolved_ami_type
    allowed_ami = GPU_AMI_TYPES if spec.is_gpu else SYSTEM_AMI_TYPES
    if ami not in allowed_ami:
        problems.append(
            (
                "ami_type",
                f"{ami} is not allowed for {spec.role} groups (use one of {', '.join(sorted(allowed_ami))})",
            )
        )

    if not spec.instance_types:
        problems.append(("instance_types", "at least one instance type is required"))
    gpu_types = [t for t in spec.instance_types if gpu_family(instance_family(t))]
    if spec.is_gpu:
        not_gpu = [t for t in spec.instance_types if gpu_family(instance_family(t)) is False]
        if not_gpu:
            problems.append(
                (
                    "instance_types",
                    f"{', '.join(not_gpu)} not in a GPU instance family "
                    f"({', '.join(sorted(gpu_instance_families()))})",
                )
            )
    elif gpu_types:
        problems.append(("instance_types", f"GPU instances ({', '.join(gpu_types)}) belong in a gpu group"))
    if ami in allowed_ami and spec.instance_types:
        arm_ami = ami in ARM_AMI_TYPES
        mismatched = [t for t in spec.instance_types if is_arm_instance(t) != arm_ami]
        if mismatched:
            arch = "arm64" if arm_ami else "x86_64"
            problems.append(("instance_types", f"{', '.join(mismatched)} cannot run the {arch} AMI {ami}"))

    lowest = 0 if spec.is_gpu else 1
    if spec.min_size < lowest:
        problems.append(("min_size", f"must be >= {lowest} for {spec.role} groups"))
    if spec.max_size < 1:
        problems.append(("max_size", "must be >= 1"))
    if not spec.min_size <= spec.desired_size <= spec.max_size:
        problems.append(
            (
                "desired_size",
                f"must satisfy min_size ({spec.min_size}) <= desired_size "
                f"({spec.desired_size}) <= max_size ({spec.max_size})",
            )
        )
    if spec.disk_size_gib < 20:
        problems.append(("disk_size_gib", "must be >= 20"))

    if spec.is_gpu:
        problems += [
            (p.field, p.message)
            for p in gpu_type_problems(spec.instance_types, spec.accelerator, spec.gpus_per_node)
        ]
        if spec.accelerator is not None and not _NAME.fullmatch(spec.accelerator):
            problems.append(("accelerator", "must be a label value such as 'nvidia-a10g'"))
        if spec.gpus_per_node < 0:
            problems.append(("gpus_per_node", "must be >= 1 (or 0: the table's count)"))
    elif spec.accelerator or spec.gpus_per_node:
        problems.append(("accelerator", "only gpu groups have accelerators or gpus_per_node"))

    if len(spec.node_taints) > EKS_TAINTS_PER_GROUP:
        problems.append(("taints", f"EKS allows {EKS_TAINTS_PER_GROUP} taints per node group"))

    platform_keys = {
        ROLE_LABEL,
        NODE_GROUP_LABEL,
        CAPACITY_LABEL,
        ACCELERATOR_LABEL,
        GPU_PRESENT_LABEL,
        AUTOSCALER_GPU_LABEL,
    }
    bad_labels = sorted(k for k in spec.labels if k in platform_keys or k.startswith(RESERVED_LABEL_PREFIXES))
    if bad_labels:
        problems.append(
            ("labels", f"{', '.join(bad_labels)} are set by the platform or reserved by Kubernetes/EKS")
        )
    return problems


def specs_problems(specs: Sequence[NodeGroupSpec]) -> list[Problem]:
    """Every problem of every spec (at ``specs[i].<field>``), and of the specs together."""
    problems: list[Problem] = []
    if not specs:
        problems.append(("specs", "at least one node group is required"))
    names = [s.name for s in specs]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        problems.append(("specs", f"duplicate node group names: {', '.join(duplicates)}"))
    for i, spec in enumerate(specs):
        problems += under(path("specs", i), spec_problems(spec))
    return problems


# -- the component -------------------------------------------------------------------------------
@dataclass
class NodeGroupsArgs:
    cluster_name: pulumi.Input[str]  # the EKS cluster the groups join
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]  # the private subnets the groups' nodes go in
    specs: Sequence[NodeGroupSpec]  # one managed node group each (names unique)
    kubernetes_version: pulumi.Input[str] | None = None  # None: the control plane's version
    # AWS tags on every group, its role and launch template
    tags: Mapping[str, str] = field(default_factory=dict)
    # False when the VPC CNI runs with its own role (see the note at CNI_POLICY).
    attach_cni_policy: bool = True
    # 2 lets containerised agents (not only host-network pods) reach IMDSv2, as EKS's own default does.
    imds_hop_limit: int = 2
    partition: str = "aws"  # the AWS partition of the ARNs (``aws``, ``aws-cn``, ``aws-us-gov``)
    # EKS does not copy node group tags to the group's Auto Scaling group; the autoscaler reads the
    # node-template hints from the ASG, so copy those (only those: EKS tags the ASG with the
    # auto-discovery tags itself).
    propagate_node_template_tags: bool = True
    # Resources the node groups must wait for (e.g. the vpc-cni add-on).
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self, component_name: str) -> list[Problem]:
        """``component_name`` prefixes the names EKS gives the groups, within its limit."""
        problems = specs_problems(self.specs)
        longest = max_group_name_length(component_name)
        problems += [
            (
                path("specs", i, "name"),
                f"longer than {longest} characters: EKS names the group '{component_name}-{spec.name}' and a "
                f"random suffix, within {EKS_NODEGROUP_NAME_MAX}",
            )
            for i, spec in enumerate(self.specs)
            if len(spec.name) > longest
        ]
        if self.imds_hop_limit not in (1, 2):
            problems.append(("imds_hop_limit", f"must be 1 or 2, got {self.imds_hop_limit}"))
        return problems


class NodeGroups(pulumi.ComponentResource):
    """The cluster's managed node groups; the autoscaler owns their desired size."""

    node_role: aws.iam.Role  # the nodes' IAM role
    node_role_arn: pulumi.Output[str]  # its ARN
    launch_templates: dict[str, aws.ec2.LaunchTemplate]  # each group's launch template, by group name
    groups: dict[str, aws.eks.NodeGroup]  # the managed node groups, by name
    # the groups' Auto Scaling groups (for the cluster autoscaler)
    autoscaling_group_names: dict[str, pulumi.Output[str]]
    # node selector and tolerations of each group, by name (a workload's ``placement``; a GPU group's
    # also names the GPU resource)
    placements: dict[str, Placement]
    resources: list[pulumi.Resource]  # everything the component created (what a dependent waits for)

    def __init__(self, name: str, args: NodeGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"NodeGroups '{name}'", type_problems(args, NodeGroupsArgs) or args.problems(name))
        super().__init__("aiplatform:nodegroups:NodeGroups", name, None, opts)
        self._name = name
        self._args = args

        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=pulumi.Output.json_dumps(service_trust_policy("ec2.amazonaws.com")),
            description="Shared role of the cluster's managed nodes",
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policies = [WORKER_NODE_POLICY, ECR_READ_ONLY_POLICY] + (
            [CNI_POLICY] if args.attach_cni_policy else []
        )
        self.node_role_attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=self.node_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=pulumi.ResourceOptions(parent=self),
            )
            for policy in policies
        ]
        self.node_role_arn = self.node_role.arn

        self.launch_templates = {}
        self.groups = {}
        self.autoscaling_group_names = {}
        self.asg_tags: list[aws.autoscaling.Tag] = []
        for spec in args.specs:
            self.launch_templates[spec.name], self.groups[spec.name] = self._create_group(spec)
        self.placements = {s.name: placement_for(s) for s in args.specs}
        self.resources = [
            self.node_role,
            *self.node_role_attachments,
            *self.launch_templates.values(),
            *self.groups.values(),
            *self.asg_tags,
        ]
        self.register_outputs(
            {
                "node_role_arn": self.node_role_arn,
                "group_names": {k: g.node_group_name for k, g in self.groups.items()},
            }
        )

    def _create_group(self, spec: NodeGroupSpec) -> tuple[aws.ec2.LaunchTemplate, aws.eks.NodeGroup]:
        """One launch template and one node group, for a system or a GPU spec alike."""
        name, args = f"{self._name}-{spec.name}", self._args
        child = pulumi.ResourceOptions(parent=self)
        instance_tags = {**args.tags, "Name": name, "aiplatform.io/node-group": spec.name}
        # Bottlerocket boots from a small OS volume (/dev/xvda); images and containers live on /dev/xvdb.
        device = "/dev/xvdb" if spec.resolved_ami_type.startswith("BOTTLEROCKET") else "/dev/xvda"

        template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"Nodes of the {spec.name} node group",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=args.imds_hop_limit,
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=device,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=spec.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=instance_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            tags=dict(args.tags),
            opts=child,
        )

        group_tags = pulumi.Output.from_input(args.cluster_name).apply(
            lambda cluster: {**args.tags, **autoscaler_tags(spec, cluster)}
        )
        group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_role_arn=self.node_role.arn,
            subnet_ids=args.subnet_ids,
            version=args.kubernetes_version,
            ami_type=spec.resolved_ami_type,
            capacity_type=spec.capacity_type,
            instance_types=list(spec.instance_types),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=spec.min_size, desired_size=spec.desired_size, max_size=spec.max_size
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=node_labels(spec),
            taints=eks_taints(spec),
            tags=group_tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                # The node role needs its policies before nodes join, or creation fails after ~20 min.
                depends_on=[*self.node_role_attachments, *args.depends_on],
                # The cluster autoscaler owns the desired size after creation.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        # A managed node group has exactly one Auto Scaling group.
        asg_name = group.resources.apply(lambda rs: rs[0].autoscaling_groups[0].name)
        self.autoscaling_group_names[spec.name] = asg_name
        if args.propagate_node_template_tags:
            for key, value in sorted(node_template_tags(spec).items()):
                # Named by the tag key, so adding a label does not rename the other tags.
                self.asg_tags.append(
                    aws.autoscaling.Tag(
                        f"{name}-asg-tag-{hashlib.sha256(key.encode()).hexdigest()[:8]}",
                        autoscaling_group_name=asg_name,
                        tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                        opts=child,
                    )
                )
        return template, group
