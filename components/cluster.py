"""The EKS control plane: cluster, identity (OIDC / Pod Identity), managed add-ons, and its k8s Provider.

``EksCluster`` builds the control plane and everything that does not need worker nodes:

* the cluster IAM role, a customer-managed KMS key for envelope encryption of Secrets, the control
  plane log group (created before the cluster so EKS never creates an unmanaged one);
* the cluster with API-only authentication (access entries, no aws-auth ConfigMap) and no implicit
  admin for whoever ran ``pulumi up``: every admin is an explicit access entry;
* the IAM OIDC provider (for IRSA) and a ``WorkloadIdentity`` describing how pods get AWS credentials;
* the add-ons that must exist before nodes join (vpc-cni, kube-proxy, eks-pod-identity-agent); the
  VPC CNI runs with its own IRSA / Pod Identity role (``AmazonEKS_CNI_Policy``), so the node role
  needs no CNI permissions and pods that reach the instance metadata service cannot manage ENIs;
* a ``kubernetes.Provider`` (secret kubeconfig, ``aws eks get-token``) and the default ``gp3`` StorageClass.

Add-ons that run as Deployments (coredns, aws-ebs-csi-driver, metrics-server) stay DEGRADED until a
node can schedule them, and ``aws.eks.Addon`` waits for ACTIVE, so creating them together with the
cluster would hang the first ``pulumi up``. They are created by ``EksCluster.install_node_addons``,
which the caller invokes once the node groups exist::

    cluster = EksCluster("ai", args)
    nodes = NodeGroup(..., cluster=cluster)
    cluster.install_node_addons(depends_on=[nodes])

``ExistingCluster`` is the "bring your own cluster" variant: only a ``kubernetes.Provider`` from a
given kubeconfig, and the same ``name`` / ``kubeconfig`` / ``provider`` / ``identity`` attributes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from . import k8s_objects
from .errors import Problem, require, type_problems
from .iam import (
    IdentityMode,
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    allow,
    policy_document,
    service_trust_policy,
)
from .kubeconfig import build_kubeconfig, region_from_arn
from .validation import (
    ADDON_VERSION_PATTERN,
    DEFAULT_KUBERNETES_VERSION,
    is_eks_cluster_name,
    kubernetes_version,
    log_retention_days,
)

LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
ALL_LOG_TYPES: tuple[str, ...] = get_args(LogType)
DEFAULT_LOG_TYPES = ("api", "audit", "authenticator")

# Add-ons that work without nodes (DaemonSets, or needed for nodes to become Ready): created with the cluster.
PRE_NODE_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
# Add-ons that run Deployments and only become ACTIVE once nodes exist: ``install_node_addons``.
NODE_ADDONS = ("coredns", "aws-ebs-csi-driver", "metrics-server")
KNOWN_ADDONS = PRE_NODE_ADDONS + NODE_ADDONS

ROLE_ARN_PATTERN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")

EKS_CLUSTER_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
CLUSTER_ADMIN_ACCESS_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

# EKS Auto Mode (EKS user guide, "Learn about identity and access in EKS Auto Mode"): the cluster role
# runs compute, block storage, load balancing and networking; the node role only pulls images and
# hands pods their identities; the nodes join through an EC2 access entry with the Auto node policy.
AUTO_MODE_CLUSTER_POLICY_ARNS = tuple(
    f"arn:aws:iam::aws:policy/{name}"
    for name in (
        "AmazonEKSComputePolicy",
        "AmazonEKSBlockStoragePolicy",
        "AmazonEKSLoadBalancingPolicy",
        "AmazonEKSNetworkingPolicy",
    )
)
AUTO_MODE_NODE_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodeMinimalPolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)
AUTO_NODE_ACCESS_POLICY_ARN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy"
# What Auto Mode runs itself, as part of the cluster (not as add-ons or charts the program installs).
AUTO_MODE_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver", "eks-pod-identity-agent")
AUTO_MODE_EBS_PROVISIONER = "ebs.csi.eks.amazonaws.com"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# IPv4 clusters (this module creates no other): the AWS managed policy is the CNI's whole permission set.
VPC_CNI_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
VPC_CNI_NAMESPACE = "kube-system"
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
OIDC_CLIENT_ID = "sts.amazonaws.com"
DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def ebs_volume_key_policy(key_arn: str) -> dict:
    """What the EBS CSI driver needs to create, attach and snapshot volumes under one customer key."""
    return policy_document(
        [
            allow(
                [
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:Encrypt",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                ],
                [key_arn],
            ),
            # Attaching an encrypted volume hands EC2 a grant on the key; only for AWS resources.
            allow(
                ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                [key_arn],
                Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        ]
    )


def _role_name(arn: str) -> str:
    match = ROLE_ARN_PATTERN.fullmatch(arn)
    return match.group(2) if match else arn


def _resource_suffix(role_name: str) -> str:
    """A readable, URN-safe suffix for per-admin resource names."""
    return re.sub(r"[^a-z0-9-]+", "-", role_name.lower()).strip("-")


@dataclass(frozen=True)
class EksClusterArgs:
    """Everything ``EksCluster`` needs; ``problems()`` lists every bad field."""

    # EKS cluster name (also names the log group /aws/eks/<name>/cluster).
    name: str
    # The VPC the subnets belong to (informational for EKS, which derives it; exposed as ``vpc_id``).
    vpc_id: pulumi.Input[str]
    # Private subnets for the control-plane ENIs (at least two AZs).
    subnet_ids: pulumi.Input[Sequence[str]]
    # IAM role ARNs that get cluster-admin access entries. The creator gets no implicit access.
    admin_role_arns: Sequence[str]
    # the control plane's Kubernetes minor version, e.g. "1.34"
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    # The private endpoint is always on; the public one is opt-in and must be CIDR-restricted.
    endpoint_public_access: bool = False
    # CIDRs allowed to reach the public endpoint (needed when it is on)
    public_access_cidrs: Sequence[str] = ()
    # Prod sets this: reject a public endpoint open to the internet (0.0.0.0/0).
    forbid_open_endpoint: bool = False
    enabled_log_types: Sequence[str] = DEFAULT_LOG_TYPES  # control-plane logs sent to CloudWatch
    log_retention_days: int = 90  # days CloudWatch keeps the control-plane logs (a value CloudWatch accepts)
    # how pods get AWS credentials: IRSA (an OIDC provider) or EKS Pod Identity
    identity_mode: IdentityMode = "irsa"
    # Add-on name -> pinned version (e.g. {"vpc-cni": "v1.20.4-eksbuild.1"}). Only pinned add-ons are managed.
    addon_versions: Mapping[str, str] = field(default_factory=dict)
    # Protect the cluster and the KMS key (and retain the key if the stack is destroyed); Retain volumes.
    protect: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on every resource of the cluster
    # The kubeconfig asks for a token as this role (``--role-arn``); must be one of admin_role_arns.
    # None: the deployer's own credentials are used (they must match an admin access entry).
    kubeconfig_role_arn: str | None = None
    # EKS Auto Mode: EKS runs compute (Karpenter), networking, DNS, block storage and load balancing;
    # none of AUTO_MODE_ADDONS may be pinned. ``auto_mode_system_pool`` enables the built-in ``system``
    # NodePool (tainted CriticalAddonsOnly); without it the compute config names no pool and no role.
    auto_mode: bool = False
    auto_mode_system_pool: bool = False

    def problems(self) -> list[Problem]:
        """Every problem with these args (empty when valid)."""
        problems: list[Problem] = []
        if not is_eks_cluster_name(self.name):
            problems.append(
                (
                    "name",
                    f"{self.name!r} is not a valid EKS cluster name "
                    "(1-100 letters, digits, '-' or '_', starting with a letter or digit)",
                )
            )
        if problem := kubernetes_version(self.kubernetes_version):
            problems.append(("kubernetes_version", problem))
        if isinstance(self.vpc_id, str) and not self.vpc_id:
            problems.append(("vpc_id", "must not be empty"))
        if isinstance(self.subnet_ids, list | tuple) and len(set(self.subnet_ids)) < 2:
            problems.append(("subnet_ids", "need at least two subnets (in different availability zones)"))
        problems += self._endpoint_problems()
        problems += self._admin_problems()
        unknown_logs = [t for t in self.enabled_log_types if t not in ALL_LOG_TYPES]
        if unknown_logs:
            problems.append(
                (
                    "enabled_log_types",
                    f"unknown {', '.join(map(repr, unknown_logs))} (allowed: {', '.join(ALL_LOG_TYPES)})",
                )
            )
        if problem := log_retention_days(self.log_retention_days):
            problems.append(("log_retention_days", problem))
        if self.identity_mode not in get_args(IdentityMode):
            problems.append(("identity_mode", f"{self.identity_mode!r} is not one of 'irsa', 'pod-identity'"))
        problems += self._addon_problems()
        return problems

    def _endpoint_problems(self) -> list[Problem]:
        at = "public_access_cidrs"
        cidrs = list(self.public_access_cidrs)
        if not self.endpoint_public_access:
            return [(at, "must be empty when endpoint_public_access is False")] if cidrs else []
        if not cidrs:
            return [(at, "must list at least one CIDR when endpoint_public_access is True")]
        problems: list[Problem] = []
        for cidr in cidrs:
            try:
                network = ipaddress.IPv4Network(cidr, strict=True)
            except ValueError:
                problems.append((at, f"{cidr!r} is not an IPv4 CIDR block"))
                continue
            if network.prefixlen == 0 and self.forbid_open_endpoint:
                problems.append(
                    (at, f"{cidr} opens the API endpoint to the internet (forbid_open_endpoint is set)")
                )
        return problems

    def _admin_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        arns = list(self.admin_role_arns)
        if not arns:
            problems.append(
                (
                    "admin_role_arns",
                    "need at least one role (the cluster creator gets no implicit admin access)",
                )
            )
        bad = [a for a in arns if not ROLE_ARN_PATTERN.fullmatch(a)]
        if bad:
            problems.append(("admin_role_arns", f"not IAM role ARNs: {', '.join(map(repr, bad))}"))
        suffixes = [_resource_suffix(_role_name(a)) for a in arns if a not in bad]
        duplicates = sorted({s for s in suffixes if suffixes.count(s) > 1})
        if duplicates:
            problems.append(
                ("admin_role_arns", f"role names must be unique, repeated: {', '.join(duplicates)}")
            )
        if self.kubeconfig_role_arn is not None and self.kubeconfig_role_arn not in arns:
            problems.append(("kubeconfig_role_arn", "must be one of admin_role_arns"))
        return problems

    def _addon_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        unknown = [n for n in self.addon_versions if n not in KNOWN_ADDONS]
        if unknown:
            problems.append(
                (
                    "addon_versions",
                    f"unknown add-on {', '.join(map(repr, unknown))} (known: {', '.join(KNOWN_ADDONS)})",
                )
            )
        for addon, version in self.addon_versions.items():
            if addon in KNOWN_ADDONS and not (
                isinstance(version, str) and ADDON_VERSION_PATTERN.fullmatch(version)
            ):
                problems.append(
                    (
                        f"addon_versions.{addon}",
                        f"{version!r} is not a pinned EKS add-on version (like v1.2.3-eksbuild.1)",
                    )
                )
        if (
            self.identity_mode == "pod-identity"
            and not self.auto_mode
            and "eks-pod-identity-agent" not in self.addon_versions
        ):
            problems.append(
                ("addon_versions", "identity_mode 'pod-identity' needs 'eks-pod-identity-agent' pinned")
            )
        run_by_eks = [a for a in self.addon_versions if self.auto_mode and a in AUTO_MODE_ADDONS]
        if run_by_eks:
            problems.append(
                ("addon_versions", f"EKS Auto Mode runs {', '.join(run_by_eks)} itself: do not pin them")
            )
        if self.auto_mode_system_pool and not self.auto_mode:
            problems.append(("auto_mode_system_pool", "only with auto_mode"))
        return problems


class EksCluster(pulumi.ComponentResource):
    """An EKS control plane with encryption, logging, access entries, OIDC, add-ons and a k8s Provider."""

    cluster: aws.eks.Cluster  # the EKS cluster
    cluster_role: aws.iam.Role  # the control plane's IAM role
    kms_key: aws.kms.Key  # the key encrypting the cluster's Secrets
    log_group: aws.cloudwatch.LogGroup  # the control-plane logs' CloudWatch log group
    oidc_provider: aws.iam.OpenIdConnectProvider  # the IAM OIDC provider of the cluster (IRSA)
    access_entries: list[aws.eks.AccessEntry]  # the admins' access entries
    # the cluster-admin policy of each admin's access entry
    admin_policy_associations: list[aws.eks.AccessPolicyAssociation]
    addons: dict[str, aws.eks.Addon]  # the managed EKS add-ons by name
    pre_node_addons: list[aws.eks.Addon]  # the add-ons node groups wait for (the CNI first)
    ebs_csi_role: ServiceAccountRole | None  # the EBS CSI driver's IAM role (None: not installed)
    vpc_cni_role: ServiceAccountRole | None  # the VPC CNI's own IAM role (None: it uses the nodes' role)
    volume_key: aws.kms.Key  # the key encrypting the default StorageClass's volumes
    storage_class: kubernetes.storage.v1.StorageClass  # the default StorageClass (encrypted gp3)
    name: pulumi.Output[str]  # the cluster's name
    endpoint: pulumi.Output[str]  # the API server's URL
    certificate_authority_data: pulumi.Output[str]  # the cluster's CA certificate (base64)
    kubeconfig: pulumi.Output[str]  # a kubeconfig for the cluster (a secret)
    provider: kubernetes.Provider  # the Kubernetes provider every in-cluster resource takes
    identity: WorkloadIdentity  # how pods get AWS credentials (pass it to workloads and roles)
    oidc_provider_arn: pulumi.Output[str]  # the OIDC provider's ARN
    oidc_issuer_url: pulumi.Output[str]  # the cluster's OIDC issuer URL
    security_group_id: pulumi.Output[str]  # the cluster security group's id
    kms_key_arn: pulumi.Output[str]  # the Secrets key's ARN
    vpc_id: pulumi.Output[str]  # the cluster's VPC id

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"EksCluster {name!r}", type_problems(args, EksClusterArgs) or args.problems())
        super().__init__("aiplatform:cluster:EksCluster", name, None, opts)
        self._resource_prefix = name
        self._args = args
        self._tags = dict(args.tags)
        self._node_addons_installed = False

        self._create_cluster_role()
        self._create_encryption_key()
        self._create_log_group()
        self.auto_node_role = self._create_auto_node_role() if args.auto_mode else None
        self._create_cluster()
        self._create_access_entries()
        self.auto_node_access: list[pulumi.Resource] = self._create_auto_node_access()
        self._create_oidc_provider()

        self.identity = WorkloadIdentity(
            mode=args.identity_mode,
            cluster_name=self.name,
            oidc_provider_arn=self.oidc_provider_arn,
            oidc_issuer_url=self.oidc_issuer_url,
        )
        self.addons = {}
        self.vpc_cni_role = None
        if "vpc-cni" in args.addon_versions:
            self.vpc_cni_role = self._addon_role(
                "vpc-cni", VPC_CNI_NAMESPACE, VPC_CNI_SERVICE_ACCOUNT, [VPC_CNI_POLICY_ARN]
            )
        # The Pod Identity agent first: with Pod Identity the VPC CNI gets its credentials from it.
        for addon in sorted(PRE_NODE_ADDONS, key=lambda a: a != "eks-pod-identity-agent"):
            if addon in args.addon_versions:
                role = self.vpc_cni_role if addon == "vpc-cni" else None
                self.addons[addon] = self._create_addon(addon, role=role)
        # Node groups should depend on these (the CNI must be there before nodes can become Ready).
        self.pre_node_addons = list(self.addons.values())
        self._create_volume_key()
        self.ebs_csi_role = None
        if "aws-ebs-csi-driver" in args.addon_versions:
            self.ebs_csi_role = self._addon_role(
                "ebs-csi",
                EBS_CSI_NAMESPACE,
                EBS_CSI_SERVICE_ACCOUNT,
                [EBS_CSI_POLICY_ARN],
                policy=self.volume_key.arn.apply(ebs_volume_key_policy),
            )

        self._create_provider()
        self._create_storage_class()

        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "kubeconfig": self.kubeconfig,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer_url": self.oidc_issuer_url,
                "security_group_id": self.security_group_id,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    # -- steps ---------------------------------------------------------------------------------
    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_cluster_role(self) -> None:
        prefix, auto = self._resource_prefix, self._args.auto_mode
        self.cluster_role = aws.iam.Role(
            f"{prefix}-cluster-role",
            assume_role_policy=json.dumps(service_trust_policy("eks.amazonaws.com", tag_session=auto)),
            description=f"EKS control plane of {self._args.name}",
            tags=self._tags,
            opts=self._opts(),
        )
        self._cluster_policy = aws.iam.RolePolicyAttachment(
            f"{prefix}-cluster-policy",
            role=self.cluster_role.name,
            policy_arn=EKS_CLUSTER_POLICY_ARN,
            opts=self._opts(),
        )
        self._auto_mode_policies = [
            aws.iam.RolePolicyAttachment(
                f"{prefix}-cluster-{arn.rsplit('/', 1)[1].removeprefix('AmazonEKS').lower()}",
                role=self.cluster_role.name,
                policy_arn=arn,
                opts=self._opts(),
            )
            for arn in (AUTO_MODE_CLUSTER_POLICY_ARNS if auto else ())
        ]
        self._auto_node_policies: list[aws.iam.RolePolicyAttachment] = []

    def _create_auto_node_role(self) -> aws.iam.Role:
        """The role of Auto Mode's nodes: pull images, hand pods their identities, nothing else."""
        prefix = self._resource_prefix
        role = aws.iam.Role(
            f"{prefix}-auto-node-role",
            assume_role_policy=json.dumps(service_trust_policy("ec2.amazonaws.com")),
            description=f"Nodes EKS Auto Mode runs for {self._args.name}",
            tags=self._tags,
            opts=self._opts(),
        )
        self._auto_node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{prefix}-auto-node-{arn.rsplit('/', 1)[1].removeprefix('Amazon').lower()}",
                role=role.name,
                policy_arn=arn,
                opts=self._opts(),
            )
            for arn in AUTO_MODE_NODE_POLICY_ARNS
        ]
        return role

    def _create_auto_node_access(self) -> list[pulumi.Resource]:
        """The Auto Mode nodes' access entry. With the built-in system pool EKS creates it for the
        compute config's role (a second one would fail); without it, the program does."""
        role = self.auto_node_role
        if role is None or self._args.auto_mode_system_pool:
            return []
        prefix = self._resource_prefix
        entry = aws.eks.AccessEntry(
            f"{prefix}-auto-nodes",
            cluster_name=self.cluster.name,
            principal_arn=role.arn,
            type="EC2",
            tags=self._tags,
            opts=self._opts(),
        )
        association = aws.eks.AccessPolicyAssociation(
            f"{prefix}-auto-nodes-policy",
            cluster_name=self.cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=AUTO_NODE_ACCESS_POLICY_ARN,
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=self._opts(),
        )
        return [entry, association]

    def _create_encryption_key(self) -> None:
        prefix, args = self._resource_prefix, self._args
        self.kms_key = aws.kms.Key(
            f"{prefix}-secrets-key",
            description=f"Envelope encryption of Kubernetes Secrets in EKS cluster {args.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tags,
            opts=self._opts(protect=args.protect, retain_on_delete=args.protect),
        )
        self.kms_key_arn = self.kms_key.arn
        aws.kms.Alias(
            f"{prefix}-secrets-key-alias",
            name=f"alias/eks/{args.name}-secrets",
            target_key_id=self.kms_key.key_id,
            opts=self._opts(),
        )
        # The control plane uses the key through the cluster role (the default key policy delegates to IAM).
        self._cluster_kms_policy = aws.iam.RolePolicy(
            f"{prefix}-cluster-kms",
            role=self.cluster_role.id,
            policy=self.kms_key.arn.apply(
                lambda arn: json.dumps(
                    policy_document(
                        [allow(["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"], [arn])]
                    )
                )
            ),
            opts=self._opts(),
        )

    def _create_log_group(self) -> None:
        args = self._args
        self.log_group = aws.cloudwatch.LogGroup(
            f"{self._resource_prefix}-logs",
            name=f"/aws/eks/{args.name}/cluster",
            retention_in_days=args.log_retention_days,
            tags=self._tags,
            opts=self._opts(),
        )

    def _create_cluster(self) -> None:
        args = self._args
        self.cluster = aws.eks.Cluster(
            f"{self._resource_prefix}-cluster",
            name=args.name,
            version=args.kubernetes_version,
            role_arn=self.cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.subnet_ids,
                endpoint_private_access=True,
                endpoint_public_access=args.endpoint_public_access,
                public_access_cidrs=list(args.public_access_cidrs) if args.endpoint_public_access else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=self.kms_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(args.enabled_log_types),
            deletion_protection=args.protect,
            tags=self._tags,
            **self._auto_mode_config(),
            opts=self._opts(
                protect=args.protect,
                # The log group must exist first, or EKS creates an unmanaged one without retention;
                # the role needs its policies before EKS assumes it.
                depends_on=[
                    self.log_group,
                    self._cluster_policy,
                    self._cluster_kms_policy,
                    *self._auto_mode_policies,
                    *self._auto_node_policies,
                ],
            ),
        )
        self.name = self.cluster.name
        self.endpoint = self.cluster.endpoint
        self.certificate_authority_data = self.cluster.certificate_authority.apply(lambda ca: ca.data)
        self.security_group_id = self.cluster.vpc_config.apply(lambda vpc: vpc.cluster_security_group_id)
        self.vpc_id = pulumi.Output.from_input(args.vpc_id)

    def _auto_mode_config(self) -> dict:
        """Auto Mode's three capabilities, enabled together as EKS requires; no self-managed add-ons."""
        if not self._args.auto_mode:
            return {}
        role = self.auto_node_role
        assert role is not None
        pools = ["system"] if self._args.auto_mode_system_pool else []
        return dict(
            bootstrap_self_managed_addons=False,
            compute_config=aws.eks.ClusterComputeConfigArgs(
                enabled=True, node_pools=pools, node_role_arn=role.arn if pools else None
            ),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(
                elastic_load_balancing=aws.eks.ClusterKubernetesNetworkConfigElasticLoadBalancingArgs(
                    enabled=True
                )
            ),
            storage_config=aws.eks.ClusterStorageConfigArgs(
                block_storage=aws.eks.ClusterStorageConfigBlockStorageArgs(enabled=True)
            ),
        )

    def _create_access_entries(self) -> None:
        prefix = self._resource_prefix
        self.access_entries = []
        self.admin_policy_associations = []
        for arn in self._args.admin_role_arns:
            suffix = _resource_suffix(_role_name(arn))
            entry = aws.eks.AccessEntry(
                f"{prefix}-admin-{suffix}",
                cluster_name=self.cluster.name,
                principal_arn=arn,
                type="STANDARD",
                tags=self._tags,
                opts=self._opts(),
            )
            association = aws.eks.AccessPolicyAssociation(
                f"{prefix}-admin-{suffix}-policy",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_ACCESS_POLICY_ARN,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=self._opts(),
            )
            self.access_entries.append(entry)
            self.admin_policy_associations.append(association)

    def _create_oidc_provider(self) -> None:
        self.oidc_issuer_url = self.cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
        # No thumbprint_lists: it is optional in pulumi-aws 7, and for EKS issuers IAM validates against
        # its own trusted root CAs (a pinned thumbprint would only go stale).
        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{self._resource_prefix}-oidc",
            url=self.oidc_issuer_url,
            client_id_lists=[OIDC_CLIENT_ID],
            tags=self._tags,
            opts=self._opts(),
        )
        self.oidc_provider_arn = self.oidc_provider.arn

    def _addon_role(
        self,
        part: str,
        namespace: str,
        service_account: str,
        managed_policy_arns: Sequence[str],
        policy: pulumi.Input[Mapping] | None = None,
    ) -> ServiceAccountRole:
        """The role of one add-on's service account (IRSA or Pod Identity, as the cluster's pods)."""
        return ServiceAccountRole(
            f"{self._resource_prefix}-{part}",
            ServiceAccountRoleArgs(
                identity=self.identity,
                namespace=namespace,
                service_account=service_account,
                managed_policy_arns=managed_policy_arns,
                policy=policy,
                tags=self._tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_addon(
        self,
        addon: str,
        depends_on: Sequence[pulumi.Resource] = (),
        role: ServiceAccountRole | None = None,
    ) -> aws.eks.Addon:
        """A pinned managed add-on; ``role`` is the role its service account runs with.

        IRSA: the add-on annotates its service account with the role ARN. Pod Identity: the role's own
        association binds the service account (an IRSA annotation would make the SDK try
        AssumeRoleWithWebIdentity against a role that does not trust OIDC), so the add-on waits for
        the association and for the agent that serves the credentials.
        """
        role_arn = None
        if role is not None and self.identity.mode == "irsa":
            role_arn = role.arn
        elif role is not None:
            agent = self.addons.get("eks-pod-identity-agent")
            depends_on = list(dict.fromkeys([*depends_on, role, *([agent] if agent is not None else [])]))
        return aws.eks.Addon(
            f"{self._resource_prefix}-addon-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            addon_version=self._args.addon_versions[addon],
            # EKS installs self-managed vpc-cni/kube-proxy/coredns; the managed add-on takes them over.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            service_account_role_arn=role_arn,
            tags=self._tags,
            opts=self._opts(depends_on=list(depends_on)),
        )

    def _create_provider(self) -> None:
        args = self._args
        kubeconfig = pulumi.Output.all(
            self.cluster.name, self.endpoint, self.certificate_authority_data, self.cluster.arn
        ).apply(
            lambda v: build_kubeconfig(
                v[0], v[1], v[2], region_from_arn(v[3]), role_arn=args.kubeconfig_role_arn
            )
        )
        self.kubeconfig = pulumi.Output.secret(kubeconfig)
        self.provider = k8s_objects.provider(
            f"{self._resource_prefix}-k8s",
            self.kubeconfig,
            # The provider can only authenticate once the admin access entries and policies exist.
            opts=self._opts(depends_on=[self.cluster, *self.access_entries, *self.admin_policy_associations]),
        )

    def _create_volume_key(self) -> None:
        """A customer-managed key for the volumes of the default StorageClass (not the AWS-managed one)."""
        prefix, args = self._resource_prefix, self._args
        self.volume_key = aws.kms.Key(
            f"{prefix}-volumes-key",
            description=f"Encryption of EBS volumes provisioned in EKS cluster {args.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=self._tags,
            opts=self._opts(protect=args.protect, retain_on_delete=args.protect),
        )
        aws.kms.Alias(
            f"{prefix}-volumes-key-alias",
            name=f"alias/eks/{args.name}-volumes",
            target_key_id=self.volume_key.key_id,
            opts=self._opts(),
        )
        if args.auto_mode:
            # Auto Mode's block storage creates volumes with the cluster role.
            aws.iam.RolePolicy(
                f"{prefix}-cluster-volumes-key",
                role=self.cluster_role.id,
                policy=self.volume_key.arn.apply(lambda arn: json.dumps(ebs_volume_key_policy(arn))),
                opts=self._opts(),
            )

    def _create_storage_class(self) -> None:
        self.storage_class = kubernetes.storage.v1.StorageClass(
            f"{self._resource_prefix}-gp3",
            metadata=kubernetes.meta.v1.ObjectMetaArgs(
                name="gp3",
                annotations={DEFAULT_STORAGE_CLASS_ANNOTATION: "true"},
            ),
            provisioner=AUTO_MODE_EBS_PROVISIONER if self._args.auto_mode else EBS_CSI_PROVISIONER,
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": self.volume_key.arn},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain" if self._args.protect else "Delete",
            opts=self._opts(provider=self.provider),
        )

    # -- after the nodes -----------------------------------------------------------------------
    def install_node_addons(self, depends_on: Sequence[pulumi.Resource]) -> list[aws.eks.Addon]:
        """Create the pinned add-ons that need schedulable nodes: coredns, aws-ebs-csi-driver, metrics-server.

        Call once, after the node groups exist, passing them as ``depends_on``. Add-ons that are not
        pinned in ``EksClusterArgs.addon_versions`` are skipped. Returns the created add-ons (also
        available in ``self.addons``).
        """
        if self._node_addons_installed:
            raise RuntimeError(
                f"install_node_addons was already called for cluster {self._resource_prefix!r}"
            )
        self._node_addons_installed = True
        after = [*depends_on, *self.addons.values()]
        created: list[aws.eks.Addon] = []
        for addon in NODE_ADDONS:
            if addon not in self._args.addon_versions:
                continue
            role = self.ebs_csi_role if addon == "aws-ebs-csi-driver" else None
            self.addons[addon] = self._create_addon(addon, depends_on=after, role=role)
            created.append(self.addons[addon])
        return created


@dataclass(frozen=True)
class ExistingClusterArgs:
    """A cluster created elsewhere: its name, a kubeconfig (a Pulumi secret) and how pods get AWS access."""

    name: str  # the existing EKS cluster's name
    kubeconfig: pulumi.Input[str]  # a kubeconfig for the cluster (pass a Pulumi secret)
    # how the cluster's pods get AWS credentials: IRSA or EKS Pod Identity
    identity_mode: IdentityMode = "irsa"
    # the cluster's IAM OIDC provider ARN (required with ``irsa``)
    oidc_provider_arn: pulumi.Input[str] | None = None
    oidc_issuer_url: pulumi.Input[str] | None = None  # the cluster's OIDC issuer URL (required with ``irsa``)

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not is_eks_cluster_name(self.name):
            problems.append(("name", f"{self.name!r} is not a valid EKS cluster name"))
        if self.kubeconfig is None or (isinstance(self.kubeconfig, str) and not self.kubeconfig.strip()):
            problems.append(("kubeconfig", "must not be empty"))
        if self.identity_mode not in get_args(IdentityMode):
            problems.append(("identity_mode", f"{self.identity_mode!r} is not one of 'irsa', 'pod-identity'"))
        if self.identity_mode == "irsa":
            if self.oidc_provider_arn is None:
                problems.append(("oidc_provider_arn", "required when identity_mode is 'irsa'"))
            if self.oidc_issuer_url is None:
                problems.append(("oidc_issuer_url", "required when identity_mode is 'irsa'"))
        return problems


class ExistingCluster(pulumi.ComponentResource):
    """Bring your own cluster: only a ``kubernetes.Provider``; nothing is created in AWS."""

    name: pulumi.Output[str]  # the cluster's name
    kubeconfig: pulumi.Output[str]  # its kubeconfig (a secret)
    provider: kubernetes.Provider  # the Kubernetes provider every in-cluster resource takes
    identity: WorkloadIdentity  # how pods get AWS credentials (pass it to workloads and roles)
    oidc_provider_arn: pulumi.Output[str] | None  # the OIDC provider's ARN (IRSA)
    oidc_issuer_url: pulumi.Output[str] | None  # the OIDC issuer URL (IRSA)

    def __init__(self, name: str, args: ExistingClusterArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"ExistingCluster {name!r}", type_problems(args, ExistingClusterArgs) or args.problems())
        super().__init__("aiplatform:cluster:ExistingCluster", name, None, opts)
        self.name = pulumi.Output.from_input(args.name)
        self.kubeconfig = pulumi.Output.secret(args.kubeconfig)
        self.oidc_provider_arn = (
            pulumi.Output.from_input(args.oidc_provider_arn) if args.oidc_provider_arn is not None else None
        )
        self.oidc_issuer_url = (
            pulumi.Output.from_input(args.oidc_issuer_url) if args.oidc_issuer_url is not None else None
        )
        self.identity = WorkloadIdentity(
            mode=args.identity_mode,
            cluster_name=self.name,
            oidc_provider_arn=self.oidc_provider_arn,
            oidc_issuer_url=self.oidc_issuer_url,
        )
        self.provider = k8s_objects.provider(
            f"{name}-k8s", self.kubeconfig, pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"name": self.name, "kubeconfig": self.kubeconfig})
