"""Karpenter: GPU nodes on demand, from the pools the stack describes.

As Karpenter's own getting-started guide and CloudFormation template (v1.14) lay it out:

- the controller's IAM role, trusted through EKS Pod Identity by ``kube-system/karpenter`` only, with
  the five policies of the template (node lifecycle, IAM integration, EKS integration, interruption,
  resource discovery), every mutating statement scoped to this cluster's tags;
- the node role (the nodes' instance profile) and its ``EC2_LINUX`` access entry;
- the interruption queue (SQS, TLS only, SSE) and the EventBridge rules that feed it: spot
  interruption warnings, rebalance recommendations, instance state changes, scheduled changes (AWS
  Health) and capacity reservation interruptions;
- the ``karpenter.sh/discovery`` tag on the cluster security group (the private subnets get it from
  the network);
- the controller's Helm release (whose ``crds/`` install the NodePool, NodeClaim and EC2NodeClass
  CRDs of the same version) on the system node group;
- an ``EC2NodeClass`` per AMI need (pools with capacity reservations get their own) and a
  ``NodePool`` per pool.

Helm installs ``crds/`` on the first install only: after a chart upgrade, apply the CRDs of the new
version (``karpenter-crd`` chart or ``kubectl apply``) as Karpenter's upgrade guide says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from ..catalog.helm import helm_release
from ..catalog.registry import KARPENTER
from ..dra import DRA
from ..errors import Problem, require, type_problems
from ..iam import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    policy_document,
    service_trust_policy,
)
from ..kubernetes_versions import karpenter_minimums
from ..validation import is_exact_version
from .node_groups import CNI_POLICY, ROLE_LABEL, WORKER_NODE_POLICY
from .pools import (
    AMI_ALIAS_PATTERN,
    EC2_NODE_CLASS_API,
    NODE_POOL_API,
    GpuPoolSpec,
    NodeClassSettings,
    ec2_node_class_spec,
    node_class_name,
    node_pool_metadata,
    node_pool_spec,
    pools_problems,
)

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
DISCOVERY_TAG = "karpenter.sh/discovery"
ECR_PULL_ONLY_POLICY = "AmazonEC2ContainerRegistryPullOnly"
# What Karpenter's getting-started guide gives the controller (its two replicas, on separate nodes).
RESOURCES = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
REPLICAS = 2
# The Kubernetes minor -> the first Karpenter minor that supports it (Karpenter's compatibility matrix,
# kept in the version calendar).
MIN_VERSION_FOR_KUBERNETES = karpenter_minimums()
# Karpenter provisions nodes for pods with DRA claims from 1.15 on, behind ``settings.enableDRA`` (alpha;
# https://karpenter.sh/docs/tasks/dra/ and the EKS user guide's "Using DRA with Karpenter"); 1.14 ignores
# DRA requests when it simulates scheduling (``settings.ignoreDRARequests``, true in its chart).
DRA_MIN_VERSION = (1, 15)

# EventBridge events Karpenter drains nodes on, each routed to the interruption queue.
INTERRUPTION_EVENTS: Mapping[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
    },
    "capacity-reservation-interruption": {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
    },
}


def chart_version_problem(version: str, kubernetes_version: str) -> str | None:
    """Why this chart version cannot run the cluster's Kubernetes minor (None when it can)."""
    try:
        major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    except ValueError:
        return f"'{version}' is not a Karpenter version"
    needed = MIN_VERSION_FOR_KUBERNETES.get(kubernetes_version)
    if needed and (major, minor) < needed:
        return (
            f"Karpenter {version} does not support Kubernetes {kubernetes_version}: use "
            f"{needed[0]}.{needed[1]} or later (Karpenter's compatibility matrix)"
        )
    return None


# -- IAM, as Karpenter's CloudFormation template writes it ---------------------------------------------
@dataclass(frozen=True)
class PolicyScope:
    cluster_name: str
    region: str
    account_id: str
    partition: str = "aws"

    def ec2(self, resource: str, account: str = "*") -> str:
        """An EC2 ARN of this region; AMIs and snapshots have no account in theirs."""
        return f"arn:{self.partition}:ec2:{self.region}:{account}:{resource}"

    @property
    def owned(self) -> str:
        return f"kubernetes.io/cluster/{self.cluster_name}"


def _statement(sid: str, actions: str | list[str], resources: str | list[str], **condition: Any) -> dict:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Resource": resources, "Action": actions}
    if condition:
        statement["Condition"] = condition
    return statement


def node_lifecycle_policy(s: PolicyScope) -> dict:
    """Launch, tag and terminate instances (and their launch templates) of this cluster only."""
    owned = f"aws:ResourceTag/{s.owned}"
    in_a_pool = {"aws:ResourceTag/karpenter.sh/nodepool": "*"}
    created = [
        s.ec2(f"{kind}/*")
        for kind in (
            "fleet",
            "instance",
            "volume",
            "network-interface",
            "launch-template",
            "spot-instances-request",
        )
    ]
    request_tags = {
        f"aws:RequestTag/{s.owned}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": s.cluster_name,
    }
    to_a_pool = {"aws:RequestTag/karpenter.sh/nodepool": "*"}
    return policy_document(
        [
            _statement(
                "AllowScopedEC2InstanceAccessActions",
                ["ec2:RunInstances", "ec2:CreateFleet"],
                [
                    s.ec2("image/*", account=""),
                    s.ec2("snapshot/*", account=""),
                    s.ec2("security-group/*"),
                    s.ec2("subnet/*"),
                    s.ec2("capacity-reservation/*"),
                    s.ec2("placement-group/*"),
                ],
            ),
            _statement(
                "AllowScopedEC2LaunchTemplateAccessActions",
                ["ec2:RunInstances", "ec2:CreateFleet"],
                s.ec2("launch-template/*"),
                StringEquals={owned: "owned"},
                StringLike=in_a_pool,
            ),
            _statement(
                "AllowScopedEC2InstanceActionsWithTags",
                ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                created,
                StringEquals=request_tags,
                StringLike=to_a_pool,
            ),
            _statement(
                "AllowScopedResourceCreationTagging",
                "ec2:CreateTags",
                created,
                StringEquals={
                    **request_tags,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                StringLike=to_a_pool,
            ),
            _statement(
                "AllowScopedResourceTagging",
                "ec2:CreateTags",
                s.ec2("instance/*"),
                StringEquals={owned: "owned"},
                StringLike=in_a_pool,
                StringEqualsIfExists={"aws:RequestTag/eks:eks-cluster-name": s.cluster_name},
                **{
                    "ForAllValues:StringEquals": {
                        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                    }
                },
            ),
            _statement(
                "AllowScopedDeletion",
                ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                [s.ec2("instance/*"), s.ec2("launch-template/*")],
                StringEquals={owned: "owned"},
                StringLike=in_a_pool,
            ),
        ]
    )


def iam_integration_policy(s: PolicyScope, node_role_arn: str) -> dict:
    """Pass the node role to EC2, and manage the instance profiles Karpenter makes for it."""
    owned, profiles = s.owned, f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*"
    region_tag = "topology.kubernetes.io/region"
    return policy_document(
        [
            _statement(
                "AllowPassingInstanceRole",
                "iam:PassRole",
                node_role_arn,
                StringEquals={"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]},
            ),
            _statement(
                "AllowScopedInstanceProfileCreationActions",
                ["iam:CreateInstanceProfile"],
                profiles,
                StringEquals={
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": s.cluster_name,
                    f"aws:RequestTag/{region_tag}": s.region,
                },
                StringLike={"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            ),
            _statement(
                "AllowScopedInstanceProfileTagActions",
                ["iam:TagInstanceProfile"],
                profiles,
                StringEquals={
                    f"aws:ResourceTag/{owned}": "owned",
                    f"aws:ResourceTag/{region_tag}": s.region,
                    f"aws:RequestTag/{owned}": "owned",
                    "aws:RequestTag/eks:eks-cluster-name": s.cluster_name,
                    f"aws:RequestTag/{region_tag}": s.region,
                },
                StringLike={
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            ),
            _statement(
                "AllowScopedInstanceProfileActions",
                [
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                profiles,
                StringEquals={f"aws:ResourceTag/{owned}": "owned", f"aws:ResourceTag/{region_tag}": s.region},
                StringLike={"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            ),
        ]
    )


def eks_integration_policy(s: PolicyScope) -> dict:
    """Find this cluster's API endpoint."""
    return policy_document(
        [
            _statement(
                "AllowAPIServerEndpointDiscovery",
                "eks:DescribeCluster",
                f"arn:{s.partition}:eks:{s.region}:{s.account_id}:cluster/{s.cluster_name}",
            )
        ]
    )


def interruption_policy(queue_arn: str) -> dict:
    """Read and delete the messages of its own interruption queue."""
    return policy_document(
        [
            _statement(
                "AllowInterruptionQueueActions",
                ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
                queue_arn,
            )
        ]
    )


def resource_discovery_policy(s: PolicyScope) -> dict:
    """Read-only lookups (EC2 supports no resource scoping for them): limited to the cluster's region."""
    return policy_document(
        [
            _statement(
                "AllowRegionalReadActions",
                [
                    "ec2:DescribeCapacityReservations",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeSubnets",
                ],
                "*",
                StringEquals={"aws:RequestedRegion": s.region},
            ),
            _statement(
                "AllowSSMReadActions",
                "ssm:GetParameter",
                f"arn:{s.partition}:ssm:{s.region}::parameter/aws/service/*",
            ),
            _statement("AllowPricingReadActions", "pricing:GetProducts", "*"),
            _statement("AllowUnscopedInstanceProfileListAction", "iam:ListInstanceProfiles", "*"),
            _statement(
                "AllowInstanceProfileReadActions",
                "iam:GetInstanceProfile",
                f"arn:{s.partition}:iam::{s.account_id}:instance-profile/*",
            ),
        ]
    )


def interruption_queue_policy(queue_arn: str) -> dict:
    """EventBridge (and SQS) may send to the queue; nothing reaches it without TLS."""
    return {
        "Version": "2012-10-17",
        "Id": "EC2InterruptionPolicy",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
            },
            {
                "Sid": "DenyHTTP",
                "Effect": "Deny",
                "Action": "sqs:*",
                "Resource": queue_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                "Principal": "*",
            },
        ],
    }


def dra_version_problem(version: str) -> str | None:
    """Why this Karpenter cannot start nodes for pods with DRA claims (None: it can)."""
    try:
        major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    except ValueError:
        return f"'{version}' is not a Karpenter version"
    if (major, minor) >= DRA_MIN_VERSION:
        return None
    return (
        f"Karpenter {version} does not provision nodes for DRA claims: pin charts.karpenter "
        f"{DRA_MIN_VERSION[0]}.{DRA_MIN_VERSION[1]} or later (its DRA support), or use device-plugin"
    )


def controller_values(cluster_name: str, queue_name: str, dra: bool = False) -> dict[str, Any]:
    """Helm values of the karpenter chart: this cluster, its queue, on the system node group; ``dra``:
    its pools' GPUs are claimed through DRA, which Karpenter simulates only with ``enableDRA``."""
    settings: dict[str, Any] = {"clusterName": cluster_name, "interruptionQueue": queue_name}
    if dra:
        settings["enableDRA"] = True
    return {
        "settings": settings,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "replicas": REPLICAS,
        "controller": {"resources": RESOURCES},
        # Merged with the chart's kubernetes.io/os selector; its affinity keeps it off its own nodes.
        "nodeSelector": {ROLE_LABEL: "system"},
    }


# -- the component ---------------------------------------------------------------------------------
@dataclass
class KarpenterArgs:
    # The EKS cluster's name: the IAM conditions, discovery tags and controller settings name it.
    cluster_name: str
    region: str  # the AWS region of the cluster (the controller's settings and the IAM conditions)
    provider: k8s.Provider  # the cluster's Kubernetes provider
    # One NodePool each; pools with capacity reservations get their own EC2NodeClass.
    pools: Sequence[GpuPoolSpec]
    # The karpenter chart's exact version (its crds/ install the CRDs of that version).
    chart_version: str
    # The EKS AL2023 AMI release the nodes boot, pinned: al2023@vYYYYMMDD.
    ami_alias: str
    # The cluster security group: the nodes' group, tagged for discovery.
    cluster_security_group_id: pulumi.Input[str]
    # where the karpenter chart comes from (an OCI registry or a mirror)
    chart_repository: str = KARPENTER.repository
    account_id: pulumi.Input[str] | None = None  # None: the caller's account
    # The encrypted gp3 root volume of every GPU node (images of large models are large).
    disk_size_gib: int = 200
    # Subnets the program does not create (an existing network) are tagged here; its own carry the tag.
    subnet_ids_to_tag: Sequence[str] = ()
    # False when the VPC CNI runs with its own role (see nodegroups.CNI_POLICY).
    attach_cni_policy: bool = True
    partition: str = "aws"  # the AWS partition of the ARNs (``aws``, ``aws-cn``, ``aws-us-gov``)
    # AWS tags on the IAM roles, the queue and the nodes Karpenter starts
    tags: Mapping[str, str] = field(default_factory=dict)
    # The system node group (where the controller runs) and the Pod Identity agent.
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not self.pools:
            problems.append(("pools", "at least one GPU pool"))
        problems += pools_problems(self.pools)
        if not is_exact_version(self.chart_version):
            problems.append(
                ("chart_version", f"{self.chart_version!r} must be an exact version such as 1.14.1")
            )
        if not AMI_ALIAS_PATTERN.fullmatch(self.ami_alias):
            problems.append(
                ("ami_alias", f"{self.ami_alias!r} must pin an AL2023 release (al2023@vYYYYMMDD)")
            )
        if any(p.gpu_allocation == DRA for p in self.pools) and (
            reason := dra_version_problem(self.chart_version)
        ):
            problems.append(("chart_version", reason))
        if not 20 <= self.disk_size_gib <= 16384:
            problems.append(("disk_size_gib", f"{self.disk_size_gib} must be 20 to 16384"))
        return problems


class Karpenter(pulumi.ComponentResource):
    """The Karpenter controller, its AWS side, and the GPU pools as NodePools."""

    node_role: aws.iam.Role  # the IAM role of the nodes Karpenter starts
    node_access: aws.eks.AccessEntry  # that role's access entry
    controller_role: ServiceAccountRole  # the controller's IAM role
    queue: aws.sqs.Queue  # the SQS queue of interruption events
    rules: dict[str, aws.cloudwatch.EventRule]  # the EventBridge rules feeding that queue
    release: k8s.helm.v3.Release  # the karpenter Helm release
    node_classes: dict[str, k8s.apiextensions.CustomResource]  # the EC2NodeClasses, by name
    node_pools: dict[str, k8s.apiextensions.CustomResource]  # the NodePools, by pool name

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"Karpenter '{name}'", type_problems(args, KarpenterArgs) or args.problems())
        super().__init__("aiplatform:karpenter:Karpenter", name, None, opts)
        self._name, self._args = name, args
        tags = dict(args.tags)
        discovery = {DISCOVERY_TAG: args.cluster_name}

        self._create_node_role(tags)
        self._create_interruption_queue(tags)
        self._tag_discovery(discovery)
        self._create_controller_role(tags)

        self.release = helm_release(
            f"{name}-chart",
            chart=KARPENTER.chart,
            version=args.chart_version,
            repository=args.chart_repository,
            namespace=NAMESPACE,
            values=self.queue.name.apply(
                lambda queue: controller_values(
                    args.cluster_name, queue, dra=any(p.gpu_allocation == DRA for p in args.pools)
                )
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                # Its credentials (the Pod Identity association) and its nodes must be there first.
                depends_on=[self.controller_role, self.node_access, *args.depends_on],
            ),
        )

        settings = NodeClassSettings(
            role_name=self.node_role.name, disk_size_gib=args.disk_size_gib, tags=tags
        )
        self.node_classes = {}
        for pool in args.pools:
            class_name = node_class_name(pool)
            if class_name in self.node_classes:
                continue
            self.node_classes[class_name] = k8s.apiextensions.CustomResource(
                f"{name}-nodeclass-{class_name}",
                api_version=EC2_NODE_CLASS_API,
                kind="EC2NodeClass",
                metadata={"name": class_name},
                spec=ec2_node_class_spec(settings, args.ami_alias, discovery, pool.reservations),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.release]),
            )
        self.node_pools = {
            pool.name: k8s.apiextensions.CustomResource(
                f"{name}-nodepool-{pool.name}",
                api_version=NODE_POOL_API,
                kind="NodePool",
                metadata=node_pool_metadata(pool),
                spec=node_pool_spec(pool, "karpenter"),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    provider=args.provider,
                    depends_on=[self.release, self.node_classes[node_class_name(pool)]],
                ),
            )
            for pool in args.pools
        }
        self.register_outputs(
            {"queue": self.queue.name, "node_role": self.node_role.name, "node_pools": list(self.node_pools)}
        )

    # -- steps ---------------------------------------------------------------------------------
    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_node_role(self, tags: dict[str, str]) -> None:
        name, args = self._name, self._args
        self.node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=json.dumps(service_trust_policy("ec2.amazonaws.com")),
            description=f"Nodes Karpenter starts for {args.cluster_name}",
            tags=tags,
            opts=self._opts(),
        )
        policies = [WORKER_NODE_POLICY, ECR_PULL_ONLY_POLICY] + (
            [CNI_POLICY] if args.attach_cni_policy else []
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.lower().replace('_', '-')}",
                role=self.node_role.name,
                policy_arn=f"arn:{args.partition}:iam::aws:policy/{policy}",
                opts=self._opts(),
            )
            for policy in policies
        ]
        self.node_access = aws.eks.AccessEntry(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            tags=tags,
            opts=self._opts(depends_on=attachments),
        )

    def _create_interruption_queue(self, tags: dict[str, str]) -> None:
        name = self._name
        self.queue = aws.sqs.Queue(
            f"{name}-interruptions",
            message_retention_seconds=300,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=self._opts(),
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions-policy",
            queue_url=self.queue.url,
            policy=self.queue.arn.apply(lambda arn: json.dumps(interruption_queue_policy(arn))),
            opts=self._opts(),
        )
        self.rules = {}
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                description=f"Karpenter interruption handling ({event}) for {self._args.cluster_name}",
                event_pattern=json.dumps(pattern),
                tags=tags,
                opts=self._opts(),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}-target",
                rule=rule.name,
                target_id="KarpenterInterruptionQueueTarget",
                arn=self.queue.arn,
                opts=self._opts(),
            )
            self.rules[event] = rule

    def _tag_discovery(self, discovery: dict[str, str]) -> None:
        """The node security group, and subnets the program does not create, carry the discovery tag."""
        name, args = self._name, self._args
        ((key, value),) = discovery.items()
        aws.ec2.Tag(
            f"{name}-discovery-sg",
            resource_id=args.cluster_security_group_id,
            key=key,
            value=value,
            opts=self._opts(),
        )
        for index, subnet in enumerate(args.subnet_ids_to_tag):
            aws.ec2.Tag(
                f"{name}-discovery-subnet-{index}",
                resource_id=subnet,
                key=key,
                value=value,
                opts=self._opts(),
            )

    def _create_controller_role(self, tags: dict[str, str]) -> None:
        name, args = self._name, self._args
        account = (
            pulumi.Output.from_input(args.account_id)
            if args.account_id is not None
            else pulumi.Output.from_input(aws.get_caller_identity().account_id)
        )
        scope = account.apply(lambda a: PolicyScope(args.cluster_name, args.region, a, args.partition))
        documents = {
            "node-lifecycle": scope.apply(node_lifecycle_policy),
            "iam-integration": pulumi.Output.all(scope, self.node_role.arn).apply(
                lambda v: iam_integration_policy(v[0], v[1])
            ),
            "eks-integration": scope.apply(eks_integration_policy),
            "interruption": self.queue.arn.apply(interruption_policy),
            "resource-discovery": scope.apply(resource_discovery_policy),
        }
        self.controller_policies = {
            part: aws.iam.Policy(
                f"{name}-{part}",
                description=f"Karpenter controller of {args.cluster_name}: {part.replace('-', ' ')}",
                policy=document.apply(json.dumps),
                tags=tags,
                opts=self._opts(),
            )
            for part, document in documents.items()
        }
        # Pod Identity whatever the cluster's pods use: Karpenter documents it, and it needs no OIDC.
        self.controller_role = ServiceAccountRole(
            f"{name}-controller",
            ServiceAccountRoleArgs(
                identity=WorkloadIdentity(mode="pod-identity", cluster_name=args.cluster_name),
                namespace=NAMESPACE,
                service_account=SERVICE_ACCOUNT,
                managed_policy_arns=[p.arn for p in self.controller_policies.values()],  # type: ignore[misc]
                tags=tags,
            ),
            opts=self._opts(),
        )
