"""EKS Auto Mode compute: the node classes and node pools the platform's pods run on.

The cluster itself (``EksCluster(auto_mode=True)``) enables Auto Mode's compute, block storage and
load balancing, and owns the nodes' role and access entry. Auto Mode then runs, as part of the
cluster, what the program otherwise installs: the VPC CNI, kube-proxy, CoreDNS, the EBS CSI driver,
the Pod Identity agent, the NVIDIA drivers and device plugin, the load balancer controller and
Karpenter itself (``RUN_BY_EKS``). This component adds what the platform needs on top:

- a ``NodeClass`` (``eks.amazonaws.com/v1``) for the platform's CPU nodes and one for GPU nodes
  (pools with capacity reservations get their own), in the private subnets with the cluster
  security group, ephemeral storage sized for model images (Auto Mode encrypts it);
- the ``system`` NodePool: the platform's controllers and CPU workloads, shaped by the system
  settings (types, capacity type, at most ``max_nodes`` nodes);
- a ``NodePool`` per GPU pool, exactly as Karpenter mode writes it but for the node class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from ..errors import Problem, path, require, type_problems
from .instance_types import lookup
from .node_groups import NODE_GROUP_LABEL, ROLE_LABEL
from .pools import (
    ARCH_KEY,
    AUTO_NODE_CLASS_API,
    CAPACITY_TYPE_KEY,
    INSTANCE_TYPE_KEY,
    KUBERNETES_ARCH,
    NODE_POOL_API,
    OS_KEY,
    GpuPoolSpec,
    NodeClassSettings,
    auto_node_class_spec,
    node_class_name,
    node_class_ref,
    node_pool_annotations,
    node_pool_spec,
    pools_problems,
)

SYSTEM_POOL = "system"

# The instance families EKS Auto Mode starts (EKS user guide, "Learn about Amazon EKS Auto Mode
# Managed instances", supported instance reference).
AUTO_MODE_FAMILIES = frozenset(
    [
        "c8g",
        "c7a",
        "c7g",
        "c7gn",
        "c7gd",
        "c7i",
        "c7i-flex",
        "c6a",
        "c6g",
        "c6i",
        "c6gn",
        "c6id",
        "c6in",
        "c6gd",
        "c5",
        "c5a",
        "c5d",
        "c5ad",
        "c5n",
        "c4",
        "m8g",
        "m7i",
        "m7a",
        "m7g",
        "m7gd",
        "m7i-flex",
        "m6a",
        "m6i",
        "m6in",
        "m6g",
        "m6idn",
        "m6id",
        "m6gd",
        "m5",
        "m5a",
        "m5ad",
        "m5n",
        "m5dn",
        "m5d",
        "m5zn",
        "m4",
        "r8g",
        "r7a",
        "r7iz",
        "r7gd",
        "r7i",
        "r7g",
        "r6a",
        "r6i",
        "r6id",
        "r6in",
        "r6idn",
        "r6g",
        "r6gd",
        "r5",
        "r5n",
        "r5a",
        "r5dn",
        "r5b",
        "r5ad",
        "r5d",
        "r4",
        "t4g",
        "t3",
        "t3a",
        "t2",
        "z1d",
        "x8g",
        "x2gd",
        "i4g",
        "i4i",
        "i3",
        "i3en",
        "is4gen",
        "d3",
        "d3en",
        "im4gn",
        "p5",
        "p4d",
        "p3",
        "p3dn",
        "gr6",
        "g6",
        "g6e",
        "g5g",
        "g5",
        "g4dn",
        "inf2",
        "inf1",
        "trn1",
        "trn1n",
        "x2iezn",
        "x2iedn",
        "x2idn",
    ]
)

# What EKS Auto Mode runs itself, so the program installs none of it in this mode.
RUN_BY_EKS = (
    "VPC CNI (vpc-cni add-on)",
    "kube-proxy (add-on)",
    "CoreDNS (add-on)",
    "EBS CSI driver (aws-ebs-csi-driver add-on)",
    "EKS Pod Identity agent (add-on)",
    "NVIDIA device plugin (chart nvidia-device-plugin)",
    "AWS Load Balancer Controller (chart aws-load-balancer-controller)",
    "node autoscaling (chart cluster-autoscaler; Karpenter)",
)
# From Kubernetes 1.36 Auto Mode's nodes run the NVIDIA DRA driver themselves, and never it and the device
# plugin on one node (EKS user guide, "Use the NVIDIA DRA driver or device plugin on Amazon EKS").
AUTO_MODE_DRA_SINCE = "1.36"
RUN_BY_EKS_DRA = tuple(
    "NVIDIA DRA driver (its DeviceClass gpu.nvidia.com)" if "device plugin" in item else item
    for item in RUN_BY_EKS
)
# The floor of nodes the system pool always runs (Auto Mode has no minimum of its own): the plan's
# capacity and cost reports read it; Karpenter ignores it.
IDLE_NODES_ANNOTATION = "aiplatform.io/idle-nodes"


@dataclass(frozen=True)
class SystemPoolSpec:
    """The platform's CPU nodes: the system settings, as a NodePool of at most ``max_nodes`` nodes."""

    instance_types: tuple[str, ...]  # EC2 instance types the system pool may start
    max_nodes: int
    # The system node group's labels (role, group, capacity type): what its pods select on.
    labels: Mapping[str, str] = field(
        default_factory=lambda: {ROLE_LABEL: "system", NODE_GROUP_LABEL: SYSTEM_POOL}
    )
    capacity_type: Literal["on-demand", "spot"] = "on-demand"  # On-Demand or Spot instances
    disk_size_gib: int = 50  # each node's ephemeral storage, GiB
    # What always runs there needs about this many nodes: said on the pool for the cost report.
    min_nodes: int = 0


def system_node_pool_spec(spec: SystemPoolSpec) -> dict[str, Any]:
    """The ``system`` NodePool: untainted, labelled like the system node group; its limits are
    ``max_nodes`` of its largest type."""
    instances = [t for t in map(lookup, spec.instance_types) if t is not None]
    arches = sorted({KUBERNETES_ARCH[t.arch] for t in instances})
    cpu = spec.max_nodes * max((t.vcpus for t in instances), default=0)
    memory_gib = spec.max_nodes * max((t.memory_mib for t in instances), default=0) // 1024
    return {
        "template": {
            "metadata": {"labels": dict(spec.labels)},
            "spec": {
                "nodeClassRef": node_class_ref("auto-mode", SYSTEM_POOL),
                "requirements": [
                    {"key": OS_KEY, "operator": "In", "values": ["linux"]},
                    {"key": ARCH_KEY, "operator": "In", "values": arches},
                    {"key": INSTANCE_TYPE_KEY, "operator": "In", "values": list(spec.instance_types)},
                    {"key": CAPACITY_TYPE_KEY, "operator": "In", "values": [spec.capacity_type]},
                ],
            },
        },
        "limits": {"cpu": str(cpu), "memory": f"{memory_gib}Gi"},
        # The controllers move one node at a time, after the node has been underused for a while.
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "10m",
            "budgets": [{"nodes": "1"}],
        },
    }


@dataclass
class AutoModeComputeArgs:
    provider: k8s.Provider  # the cluster's Kubernetes provider
    # The Auto Mode nodes' role (``EksCluster.auto_node_role``), which has its access entry.
    node_role_name: pulumi.Input[str]
    # The private subnets the nodes go in, and the cluster security group they carry.
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]  # the cluster security group the nodes carry
    system: SystemPoolSpec  # the platform's CPU node pool
    # One NodePool each; pools with capacity reservations get their own NodeClass.
    pools: Sequence[GpuPoolSpec] = ()
    # The ephemeral storage of every GPU node.
    gpu_disk_size_gib: int = 200
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on the nodes Auto Mode starts
    # The cluster and the nodes' access entry.
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems = pools_problems(self.pools)
        problems += [
            (path("system", "instance_types", i), f"'{t}' is not in the instance type table")
            for i, t in enumerate(self.system.instance_types)
            if lookup(t) is None
        ]
        if self.system.max_nodes < 1:
            problems.append(("system.max_nodes", f"{self.system.max_nodes} must be at least 1"))
        return problems


class AutoModeCompute(pulumi.ComponentResource):
    """Node classes and node pools of an EKS Auto Mode cluster."""

    node_classes: dict[str, k8s.apiextensions.CustomResource]  # the NodeClasses, by name
    node_pools: dict[str, k8s.apiextensions.CustomResource]  # the GPU NodePools, by pool name
    system_pool: k8s.apiextensions.CustomResource  # the NodePool of the platform's CPU nodes

    def __init__(self, name: str, args: AutoModeComputeArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"AutoModeCompute '{name}'", type_problems(args, AutoModeComputeArgs) or args.problems())
        super().__init__("aiplatform:automode:AutoModeCompute", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=args.provider, depends_on=list(args.depends_on)
        )
        placement = pulumi.Output.all(args.subnet_ids, args.security_group_id)

        def node_class(
            class_name: str, disk: int, pool: GpuPoolSpec | None = None
        ) -> k8s.apiextensions.CustomResource:
            settings = NodeClassSettings(
                role_name=args.node_role_name, disk_size_gib=disk, tags=dict(args.tags)
            )
            return k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{class_name}",
                api_version=AUTO_NODE_CLASS_API,
                kind="NodeClass",
                metadata={"name": class_name},
                spec=placement.apply(
                    lambda v: auto_node_class_spec(
                        settings, v[0], [v[1]], pool.reservations if pool else None
                    )
                ),
                opts=k8s_opts,
            )

        def node_pool(
            pool_name: str, spec: Any, after: pulumi.Resource, annotations: dict[str, str] | None = None
        ) -> k8s.apiextensions.CustomResource:
            return k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool_name}",
                api_version=NODE_POOL_API,
                kind="NodePool",
                metadata={"name": pool_name, **({"annotations": annotations} if annotations else {})},
                spec=spec,
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[after])),
            )

        self.node_classes = {SYSTEM_POOL: node_class(SYSTEM_POOL, args.system.disk_size_gib)}
        for pool in args.pools:
            class_name = node_class_name(pool)
            if class_name not in self.node_classes:
                self.node_classes[class_name] = node_class(class_name, args.gpu_disk_size_gib, pool)
        self.system_pool = node_pool(
            SYSTEM_POOL,
            system_node_pool_spec(args.system),
            self.node_classes[SYSTEM_POOL],
            {IDLE_NODES_ANNOTATION: str(args.system.min_nodes)},
        )
        self.node_pools = {
            pool.name: node_pool(
                pool.name,
                node_pool_spec(pool, "auto-mode"),
                self.node_classes[node_class_name(pool)],
                node_pool_annotations(pool),
            )
            for pool in args.pools
        }
        self.register_outputs({"node_pools": [SYSTEM_POOL, *self.node_pools]})
