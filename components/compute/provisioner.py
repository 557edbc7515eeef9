"""Where the cluster's nodes come from: one of three provisioners, chosen once by name.

- ``NodeGroupsProvisioner`` (``node-groups``): managed node groups, system and GPU, sized by the
  cluster autoscaler;
- ``KarpenterProvisioner`` (``karpenter``): the system node group, and Karpenter starting GPU nodes
  for the GPU pools;
- ``AutoModeProvisioner`` (``auto-mode``): EKS Auto Mode runs the nodes (a system pool and the GPU
  pools) and, as part of the cluster, the add-ons the program otherwise installs.

Each answers what it builds, which add-ons the platform installs beside it, which pods it runs and
on which nodes pods land (for the capacity model), and its own config rules. Nothing outside this
package compares a provisioner's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import pulumi
import pulumi_aws as aws

from ..catalog import registry
from ..cluster import AUTO_MODE_ADDONS, EksCluster
from ..dra import DEVICE_PLUGIN, DRA, GpuAllocation
from ..kubernetes_versions import DRA_GA, minor_key
from ..network import ExistingNetwork, Network
from . import autoscaler, karpenter
from .auto_mode import (
    AUTO_MODE_DRA_SINCE,
    AUTO_MODE_FAMILIES,
    RUN_BY_EKS,
    RUN_BY_EKS_DRA,
    AutoModeCompute,
    AutoModeComputeArgs,
    SystemPoolSpec,
)
from .autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from .capacity import (
    ConfigProblem,
    GroupLoad,
    Nodes,
    PodSet,
    addon_pods,
    fixed_size_problems,
    minimum_problems,
)
from .instance_types import instance_family
from .karpenter import DISCOVERY_TAG, Karpenter, KarpenterArgs
from .node_groups import NodeGroups, NodeGroupsArgs, NodeGroupSpec, node_labels
from .pools import GpuPoolSpec


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart's exact version and the repository it comes from."""

    version: str
    repository: str


@dataclass
class ComputeArgs:
    """What a provisioner builds from: the cluster and network, the nodes' specs, its charts."""

    name: str  # the platform's name: components are "<name>-nodes", "<name>-karpenter", ...
    cluster_name: str
    cluster: EksCluster
    network: Network | ExistingNetwork
    region: str
    system: NodeGroupSpec
    gpu_groups: Sequence[NodeGroupSpec] = ()
    pools: Sequence[GpuPoolSpec] = ()
    kubernetes_version: str | None = None
    # The root or ephemeral disk of GPU nodes that a pool starts.
    gpu_disk_gib: int = 200
    autoscaler_chart: ChartPin | None = None
    karpenter_chart: ChartPin | None = None
    karpenter_ami_alias: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def node_groups(self) -> list[NodeGroupSpec]:
        return [self.system, *self.gpu_groups]


@dataclass
class Compute:
    """What a provisioner built. ``system_nodes`` is what the in-cluster add-ons wait for."""

    system_nodes: pulumi.Resource
    node_groups: NodeGroups | None = None
    autoscaler: ClusterAutoscaler | None = None
    karpenter: Karpenter | None = None
    auto_mode: AutoModeCompute | None = None

    def capacity(self, name: str) -> list[pulumi.Resource]:
        """What a workload placed on the node group or pool ``name`` runs on, for it to depend on:
        created after it and, on ``destroy``, deleted before it. A NodePool deleted under its workloads
        has Karpenter drain their nodes, which their PodDisruptionBudgets refuse for as long as the
        workloads stay (the NodePool's foreground deletion, and the destroy, then never end); a node
        group deleted under them waits for its drain (EKS forces it after 5 minutes)."""
        if self.node_groups is not None and name in self.node_groups.groups:
            return [self.node_groups.groups[name]]
        for provider in (self.karpenter, self.auto_mode):
            if provider is not None and name in provider.node_pools:
                return [provider.node_pools[name]]
        return []


class Provisioner(ABC):
    """One way of providing the cluster's nodes."""

    name: ClassVar[str]  # the value of compute.provisioner
    uses_pools: ClassVar[bool] = True  # GPU capacity from compute.pools (else from nodeGroups.gpu)
    installs_autoscaler: ClassVar[bool] = False
    installs_device_plugin: ClassVar[bool] = True
    runs_alb_controller: ClassVar[bool] = True  # the AWS Load Balancer Controller, in the cluster
    eks_auto_mode: ClassVar[bool] = False  # the cluster runs EKS Auto Mode's compute
    options_key: ClassVar[str | None] = None  # its own settings under compute
    addons_run_by_eks: ClassVar[tuple[str, ...]] = ()  # EKS add-ons the cluster runs itself
    run_by_eks: ClassVar[tuple[str, ...]] = ()  # all that EKS runs instead of the program
    # GPUs by DRA (components/dra.py): the first minor AWS supports the NVIDIA DRA driver on with this
    # provisioner, whether AWS's recommendation makes it the default there, and whether the platform
    # installs the driver (EKS Auto Mode runs it in its nodes).
    dra_since: ClassVar[str] = DRA_GA
    dra_by_default: ClassVar[bool] = True
    installs_dra_driver: ClassVar[bool] = True

    @abstractmethod
    def build(self, args: ComputeArgs, opts: pulumi.ResourceOptions) -> Compute:
        """Create the nodes and the controllers that provide them."""

    def subnet_tags(self, cluster_name: str) -> dict[str, str]:
        """Tags the private subnets need for the nodes to be started in them."""
        return {}

    # -- the capacity model ---------------------------------------------------------------------------
    def pods(self) -> list[PodSet]:
        """The pods of its own controllers (on a cluster the platform manages)."""
        return []

    def nodes(
        self, system: NodeGroupSpec, gpu_groups: Sequence[NodeGroupSpec], pools: Sequence[GpuPoolSpec]
    ) -> Nodes:
        """The nodes a pod may land on."""
        return Nodes(system, tuple(pools))

    @abstractmethod
    def system_problems(self, system: NodeGroupSpec, load: GroupLoad) -> list[ConfigProblem]:
        """Whether the system nodes hold what runs there."""

    # -- config rules ---------------------------------------------------------------------------------
    def options_problems(self, has_pools: bool, options: set[str]) -> list[ConfigProblem]:
        """The compute settings it needs or refuses (paths below compute); ``options`` are the
        option sections the stack sets."""
        found: list[ConfigProblem] = [
            ((key,), f"only with provisioner {owner.name}")
            for key, owner in OPTION_OWNERS.items()
            if key in options and owner is not type(self)
        ]
        if has_pools and not self.uses_pools:
            found.insert(
                0,
                (("pools",), f"pools need provisioner {POOL_PROVISIONERS} (node-groups use nodeGroups.gpu)"),
            )
        return found

    def chart_problems(
        self, versions: Mapping[str, str | None], kubernetes_version: str, managed: bool
    ) -> list[ConfigProblem]:
        """Its chart's version (``versions``: chart key -> version), against the cluster's Kubernetes."""
        return []

    def instance_type_problem(self, instance_type: str) -> str | None:
        """Why it cannot start ``instance_type`` (None: it can)."""
        return None

    # -- GPU allocation ---------------------------------------------------------------------------------
    def gpu_allocation(self, requested: GpuAllocation | None, kubernetes_version: str) -> GpuAllocation:
        """The stack's GPU allocation: ``compute.gpuAllocation``, else AWS's recommendation, the NVIDIA
        DRA driver for new deployments from Kubernetes 1.34 where AWS supports it with this provisioner
        (EKS user guide, "Use the NVIDIA DRA driver or device plugin on Amazon EKS")."""
        if requested is not None:
            return requested
        supported = minor_key(kubernetes_version) >= minor_key(self.dra_since)
        return DRA if self.dra_by_default and supported else DEVICE_PLUGIN

    def gpu_allocation_problems(
        self,
        mode: GpuAllocation,
        kubernetes_version: str,
        versions: Mapping[str, str | None],
        gpu_groups: Sequence[NodeGroupSpec],
    ) -> list[ConfigProblem]:
        """Why ``dra`` cannot run here (paths from the config's root): a minor AWS does not support it on
        with this provisioner (``kubernetes_versions.DEVICE_MANAGEMENT``), and what the provisioner itself needs."""
        if mode != DRA or minor_key(kubernetes_version) >= minor_key(self.dra_since):
            return []
        return [
            (
                ("compute", "gpuAllocation"),
                f"dra needs Kubernetes {self.dra_since} or later with {self.name} (where AWS supports "
                f"the NVIDIA DRA driver); this cluster runs {kubernetes_version}: use device-plugin, or "
                "upgrade cluster.kubernetesVersion first",
            )
        ]

    def eks_runs(self, gpu_allocation: GpuAllocation) -> tuple[str, ...]:
        """What EKS runs instead of the program, for a stack with ``gpu_allocation``."""
        return self.run_by_eks

    def ingress_problem(self, controller: str) -> str | None:
        """Why the ingress ``controller`` cannot serve with it (None: it can)."""
        return None


class NodeGroupsProvisioner(Provisioner):
    name = "node-groups"
    uses_pools = False
    installs_autoscaler = True

    def build(self, args: ComputeArgs, opts: pulumi.ResourceOptions) -> Compute:
        groups = _node_groups(args, opts)
        system = groups.groups[args.system.name]
        assert args.autoscaler_chart is not None
        scaler = ClusterAutoscaler(
            f"{args.name}-autoscaler",
            ClusterAutoscalerArgs(
                cluster_name=args.cluster.name,
                region=args.region,
                identity=args.cluster.identity,
                provider=args.cluster.provider,
                chart_version=args.autoscaler_chart.version,
                chart_repository=args.autoscaler_chart.repository,
                kubernetes_version=args.kubernetes_version,
                autoscaling_group_names=tuple(groups.autoscaling_group_names.values()),
                tags=args.tags,
                depends_on=[system],
            ),
            opts=opts,
        )
        return Compute(system_nodes=system, node_groups=groups, autoscaler=scaler)

    def pods(self) -> list[PodSet]:
        return addon_pods(registry.CLUSTER_AUTOSCALER)

    def nodes(
        self, system: NodeGroupSpec, gpu_groups: Sequence[NodeGroupSpec], pools: Sequence[GpuPoolSpec]
    ) -> Nodes:
        return Nodes(system, tuple(gpu_groups))

    def system_problems(self, system: NodeGroupSpec, load: GroupLoad) -> list[ConfigProblem]:
        return minimum_problems(system, load)

    def chart_problems(
        self, versions: Mapping[str, str | None], kubernetes_version: str, managed: bool
    ) -> list[ConfigProblem]:
        # The platform installs the autoscaler on clusters it manages; its minor follows the cluster's.
        version = versions.get("clusterAutoscaler")
        if not managed or version is None:
            return []
        problem = autoscaler.chart_version_problem(version, kubernetes_version)
        return [(("charts", "clusterAutoscaler"), problem)] if problem else []

    def gpu_allocation_problems(
        self,
        mode: GpuAllocation,
        kubernetes_version: str,
        versions: Mapping[str, str | None],
        gpu_groups: Sequence[NodeGroupSpec],
    ) -> list[ConfigProblem]:
        """The cluster autoscaler scales an AWS group from zero by its node template, built from the
        group's tags (aws_cloud_provider.go, TemplateNodeInfo, 1.36.1): it holds no ResourceSlice, so
        no template offers a DRA claim a GPU. From one running node on, the template is that node with
        its slices (simulator/node_info_utils.go): a DRA group keeps a node."""
        found = super().gpu_allocation_problems(mode, kubernetes_version, versions, gpu_groups)
        if mode != DRA:
            return found
        return found + [
            (
                ("nodeGroups", "gpu", i, "scaling", "minSize"),
                "0 with gpuAllocation dra: the cluster autoscaler never starts a group's first node for "
                "a GPU claim (its AWS node templates hold no DRA devices): set minSize to 1 or more, or "
                "gpuAllocation: device-plugin to scale from zero",
            )
            for i, group in enumerate(gpu_groups)
            if group.is_gpu and group.min_size == 0
        ]


class KarpenterProvisioner(Provisioner):
    name = "karpenter"
    options_key = "karpenter"
    # Karpenter's DRA support (1.15 on) is alpha, behind a setting: the device plugin stays the default.
    dra_by_default = False

    def build(self, args: ComputeArgs, opts: pulumi.ResourceOptions) -> Compute:
        groups = _node_groups(args, opts)
        system = groups.groups[args.system.name]
        assert args.karpenter_chart is not None and args.karpenter_ami_alias is not None  # config rules
        agent = args.cluster.addons.get("eks-pod-identity-agent")
        controller = Karpenter(
            f"{args.name}-karpenter",
            KarpenterArgs(
                cluster_name=args.cluster_name,
                region=args.region,
                provider=args.cluster.provider,
                pools=args.pools,
                chart_version=args.karpenter_chart.version,
                chart_repository=args.karpenter_chart.repository,
                ami_alias=args.karpenter_ami_alias,
                cluster_security_group_id=args.cluster.security_group_id,
                account_id=aws.get_caller_identity().account_id,
                disk_size_gib=args.gpu_disk_gib,
                subnet_ids_to_tag=args.network.private_subnet_ids
                if isinstance(args.network, ExistingNetwork)
                else (),
                attach_cni_policy=args.cluster.vpc_cni_role is None,
                tags=args.tags,
                # The controller runs on the system nodes, with credentials from the Pod Identity agent.
                depends_on=[system, *([agent] if agent else [])],
            ),
            opts=opts,
        )
        return Compute(system_nodes=system, node_groups=groups, karpenter=controller)

    def subnet_tags(self, cluster_name: str) -> dict[str, str]:
        """Karpenter finds the subnets its nodes go in by this tag."""
        return {DISCOVERY_TAG: cluster_name}

    def pods(self) -> list[PodSet]:
        return addon_pods(registry.KARPENTER)

    def system_problems(self, system: NodeGroupSpec, load: GroupLoad) -> list[ConfigProblem]:
        # No cluster autoscaler sizes the system group: it keeps its desired size.
        return fixed_size_problems(system, load, karpenter.REPLICAS)

    def options_problems(self, has_pools: bool, options: set[str]) -> list[ConfigProblem]:
        found = super().options_problems(has_pools, options)
        if "karpenter" not in options:
            found.insert(
                0, (("karpenter",), "provisioner karpenter needs karpenter.amiAlias (al2023@vYYYYMMDD)")
            )
        return found

    def chart_problems(
        self, versions: Mapping[str, str | None], kubernetes_version: str, managed: bool
    ) -> list[ConfigProblem]:
        """Karpenter's chart is pinned, at a version that supports the cluster's Kubernetes minor."""
        version = versions.get("karpenter")
        if version is None:
            return [
                (
                    ("charts", "karpenter"),
                    "pin the karpenter chart version (compute.provisioner is karpenter)",
                )
            ]
        problem = karpenter.chart_version_problem(version, kubernetes_version)
        return [(("charts", "karpenter"), problem)] if problem else []

    def gpu_allocation_problems(
        self,
        mode: GpuAllocation,
        kubernetes_version: str,
        versions: Mapping[str, str | None],
        gpu_groups: Sequence[NodeGroupSpec],
    ) -> list[ConfigProblem]:
        found = super().gpu_allocation_problems(mode, kubernetes_version, versions, gpu_groups)
        version = versions.get("karpenter")
        if mode == DRA and version and (problem := karpenter.dra_version_problem(version)):
            found.append((("compute", "gpuAllocation"), problem))
        return found


class AutoModeProvisioner(Provisioner):
    name = "auto-mode"
    installs_device_plugin = False  # Auto Mode's GPU nodes run NVIDIA's device plugin themselves
    runs_alb_controller = False  # Auto Mode serves load balancers itself
    eks_auto_mode = True
    options_key = "autoMode"
    addons_run_by_eks = AUTO_MODE_ADDONS
    run_by_eks = RUN_BY_EKS
    dra_since = AUTO_MODE_DRA_SINCE  # its nodes run the NVIDIA DRA driver from 1.36
    installs_dra_driver = False

    def eks_runs(self, gpu_allocation: GpuAllocation) -> tuple[str, ...]:
        return RUN_BY_EKS_DRA if gpu_allocation == DRA else RUN_BY_EKS

    def build(self, args: ComputeArgs, opts: pulumi.ResourceOptions) -> Compute:
        cluster = args.cluster
        assert cluster.auto_node_role is not None
        system = args.system
        compute = AutoModeCompute(
            f"{args.name}-auto-mode",
            AutoModeComputeArgs(
                provider=cluster.provider,
                node_role_name=cluster.auto_node_role.name,
                subnet_ids=args.network.private_subnet_ids,
                security_group_id=cluster.security_group_id,
                system=SystemPoolSpec(
                    labels=node_labels(system),
                    instance_types=system.instance_types,
                    max_nodes=system.max_size,
                    capacity_type="spot" if system.capacity_type == "SPOT" else "on-demand",
                    disk_size_gib=system.disk_size_gib,
                    min_nodes=system.min_size,
                ),
                pools=args.pools,
                gpu_disk_size_gib=args.gpu_disk_gib,
                tags=args.tags,
                depends_on=[cluster.cluster, *cluster.auto_node_access],
            ),
            opts=opts,
        )
        return Compute(system_nodes=compute.system_pool, auto_mode=compute)

    def system_problems(self, system: NodeGroupSpec, load: GroupLoad) -> list[ConfigProblem]:
        return []  # Auto Mode grows the system pool to what runs there

    def instance_type_problem(self, instance_type: str) -> str | None:
        family = instance_family(instance_type)
        if family in AUTO_MODE_FAMILIES:
            return None
        return f"'{family}' is not an instance family EKS Auto Mode runs"

    def ingress_problem(self, controller: str) -> str | None:
        if controller == "alb":
            return None
        return "EKS Auto Mode serves load balancers itself, not for ingress-nginx's controller: use alb"


def _node_groups(args: ComputeArgs, opts: pulumi.ResourceOptions) -> NodeGroups:
    return NodeGroups(
        f"{args.name}-nodes",
        NodeGroupsArgs(
            cluster_name=args.cluster.name,
            subnet_ids=args.network.private_subnet_ids,
            specs=args.node_groups,
            kubernetes_version=args.kubernetes_version,
            tags=args.tags,
            attach_cni_policy=args.cluster.vpc_cni_role is None,
            # Nodes in private subnets join the cluster through the NAT gateways.
            depends_on=[*args.cluster.pre_node_addons, *args.network.private_egress],
        ),
        opts=opts,
    )


PROVISIONERS: Mapping[str, Provisioner] = {
    p.name: p for p in (NodeGroupsProvisioner(), KarpenterProvisioner(), AutoModeProvisioner())
}
OPTION_OWNERS: Mapping[str, type[Provisioner]] = {
    p.options_key: type(p) for p in PROVISIONERS.values() if p.options_key is not None
}
# How messages name the provisioners with GPU pools: "karpenter or auto-mode".
POOL_PROVISIONERS = " or ".join(p.name for p in PROVISIONERS.values() if p.uses_pools)


def provisioner_named(name: str) -> Provisioner:
    """The provisioner ``compute.provisioner`` names."""
    return PROVISIONERS[name]
