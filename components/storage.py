"""Storage for the AI stack: an encrypted model bucket and a shared EFS file system for training.

``ModelBucket`` holds model artifacts: private, versioned, encrypted with its own KMS key, TLS only.
Workloads get read access with ``model_reader_policy`` (one prefix, read only) through
``components.iam.ServiceAccountRole``.

``SharedFileSystem`` is an encrypted EFS file system mounted in every private subnet, the EFS CSI
driver (EKS managed add-on), a StorageClass and a ReadWriteMany claim that a TrainingJob mounts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .errors import ArgumentsError, Problem, require, type_problems
from .iam import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    allow,
    policy_document,
)
from .inputs import checked_fields, plain_problems
from .validation import KMS_DELETION_WINDOW_DAYS, is_dns1123_label, is_quantity, is_s3_bucket_name

_BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9.-]{0,36}$")  # AWS appends 26 characters

EFS_CSI_ADDON = "aws-efs-csi-driver"
EFS_CSI_NAMESPACE = "kube-system"
EFS_CSI_SERVICE_ACCOUNT = "efs-csi-controller-sa"
# The node DaemonSet mounts the file systems (with IAM authorization when asked): AWS documents the
# driver's role for both service accounts.
EFS_CSI_NODE_SERVICE_ACCOUNT = "efs-csi-node-sa"
EFS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
EFS_CSI_PROVISIONER = "efs.csi.aws.com"
NFS_PORT = 2049


# -- pure policy builders --------------------------------------------------------------------------
def _clean_prefix(prefix: str) -> str:
    cleaned = prefix.strip("/")
    if not cleaned or any(c in cleaned for c in "*?"):
        raise ArgumentsError(
            "model_reader_policy",
            [("prefix", f"{prefix!r} must be a non-empty key prefix without wildcards")],
        )
    return cleaned


def model_reader_policy(bucket_arn: str, prefix: str, kms_key_arn: str | None) -> dict[str, Any]:
    """Read-only access to ``<bucket>/<prefix>/`` (and to the key that decrypts it), nothing else."""
    prefix = _clean_prefix(prefix)
    statements = [
        allow(["s3:GetObject"], [f"{bucket_arn}/{prefix}/*"], Sid="ReadModelObjects"),
        allow(
            ["s3:ListBucket"],
            [bucket_arn],
            Sid="ListModelPrefix",
            Condition={"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}},
        ),
    ]
    if kms_key_arn is not None:
        statements.append(allow(["kms:Decrypt"], [kms_key_arn], Sid="DecryptModelObjects"))
    return policy_document(statements)


def tls_only_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """Deny every request that is not HTTPS, and HTTPS below TLS 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return policy_document(
        [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ]
    )


# -- ModelBucket -----------------------------------------------------------------------------------
@dataclass
class ModelBucketArgs:
    """A private, versioned, KMS-encrypted bucket for model artifacts.

    Give ``bucket_name`` (exact) or ``bucket_prefix`` (AWS adds a unique suffix), or neither
    (Pulumi auto-names). ``protect`` (prod) protects and retains the bucket and its key.
    """

    bucket_name: str | None = None
    bucket_prefix: str | None = None
    protect: bool = False
    force_destroy: bool = False  # let a destroy delete a bucket that still holds objects
    # Delete non-current object versions after this many days; None keeps them forever.
    noncurrent_version_days: int | None = 30
    abort_incomplete_upload_days: int = 7  # days after which unfinished multipart uploads are deleted
    kms_deletion_window_days: int = 30  # days before a deleted KMS key is gone (7-30)
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on the bucket and its key

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.bucket_name is not None and self.bucket_prefix is not None:
            problems.append(("", "bucket_name/bucket_prefix: give one, not both"))
        if self.bucket_name is not None and not is_s3_bucket_name(self.bucket_name):
            problems.append(("bucket_name", f"{self.bucket_name!r} is not a valid S3 bucket name"))
        if self.bucket_prefix is not None and not _BUCKET_PREFIX.fullmatch(self.bucket_prefix):
            problems.append(
                ("bucket_prefix", f"{self.bucket_prefix!r} must be lowercase and at most 37 characters")
            )
        if self.protect and self.force_destroy:
            problems.append(
                ("force_destroy", "must be False when protect is True (it would empty a protected bucket)")
            )
        if self.noncurrent_version_days is not None and self.noncurrent_version_days < 1:
            problems.append(("noncurrent_version_days", "must be >= 1 (or None to keep old versions)"))
        if self.abort_incomplete_upload_days < 1:
            problems.append(("abort_incomplete_upload_days", "must be >= 1"))
        if self.kms_deletion_window_days not in KMS_DELETION_WINDOW_DAYS:
            problems.append(("kms_deletion_window_days", "must be between 7 and 30"))
        return problems


class ModelBucket(pulumi.ComponentResource):
    """An S3 bucket for model artifacts with its own KMS key.

    Example::

        from aiplatform.storage import ModelBucket, ModelBucketArgs

        models = ModelBucket("models", ModelBucketArgs(bucket_prefix="ai-models", protect=True))
        policy = models.reader_policy("llama-3")  # Output[dict] for a ServiceAccountRole
    """

    bucket: pulumi.Output[str]  # the bucket's name
    arn: pulumi.Output[str]  # its ARN
    kms_key_arn: pulumi.Output[str]  # the ARN of the key encrypting it
    bucket_resource: aws.s3.Bucket  # the S3 bucket
    kms_key: aws.kms.Key  # the key encrypting it

    def __init__(self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"ModelBucket {name!r}", type_problems(args, ModelBucketArgs) or args.problems())
        super().__init__("aiplatform:storage:ModelBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        tags = dict(args.tags)

        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the model bucket {name}",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_days,
            tags=tags,
            opts=stateful,
        )
        self.bucket_resource = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            bucket_prefix=args.bucket_prefix,
            force_destroy=args.force_destroy,
            tags=tags,
            opts=stateful,
        )
        bucket_id = self.bucket_resource.id

        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket_id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.kms_key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        # After the public access block: S3 rejects policy writes racing a PutPublicAccessBlock.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket_id,
            policy=self.bucket_resource.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )

        rules = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=args.abort_incomplete_upload_days
                ),
            )
        ]
        if args.noncurrent_version_days is not None:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=args.noncurrent_version_days
                    ),
                )
            )
        # Lifecycle rules on versions only make sense once versioning is on.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket_id,
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
        )

        self.bucket = self.bucket_resource.bucket
        self.arn = self.bucket_resource.arn
        self.kms_key_arn = self.kms_key.arn
        self.register_outputs({"bucket": self.bucket, "arn": self.arn, "kms_key_arn": self.kms_key_arn})

    def reader_policy(self, prefix: str) -> pulumi.Output[dict[str, Any]]:
        """``model_reader_policy`` for this bucket and key (validated now, resolved later)."""
        _clean_prefix(prefix)
        return pulumi.Output.all(self.arn, self.kms_key_arn).apply(
            lambda v: model_reader_policy(v[0], prefix, v[1])
        )


# -- SharedFileSystem ------------------------------------------------------------------------------
@dataclass
class SharedFileSystemArgs:
    """An EFS file system for distributed training, with the CSI driver, a StorageClass and a claim.

    ``subnet_ids`` may be a plain list (one mount target each) or an Output list; with an Output,
    also give ``subnet_count`` (the number of mount targets must be known when planning).
    NFS is allowed from ``cluster_security_group_id`` and/or ``vpc_cidr`` (at least one).
    ``claim_namespace`` may be a Namespace's output (checked when it resolves, see ``components.inputs``).
    """

    provider: k8s.Provider  # the cluster's Kubernetes provider
    identity: WorkloadIdentity  # how the EFS CSI driver's pods get their IAM role
    vpc_id: pulumi.Input[str]  # the VPC of the mount targets and their security group
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    csi_driver_version: str  # the aws-efs-csi-driver EKS add-on's exact version (e.g. v2.1.0-eksbuild.1)
    subnet_count: int | None = None
    cluster_security_group_id: pulumi.Input[str] | None = None
    vpc_cidr: pulumi.Input[str] | None = None
    kms_key_arn: pulumi.Input[str] | None = None  # None: the AWS-managed EFS key
    claim_name: str = "shared-training"  # the PersistentVolumeClaim's name
    claim_namespace: pulumi.Input[str] = "training"  # the claim's namespace (pods mount it there only)
    claim_size: str = "1Ti"  # EFS is elastic; Kubernetes still needs a number
    storage_class_name: str = "efs"  # the StorageClass's name
    directory_perms: str = "700"  # permissions of each claim's directory on the file system (octal, e.g. 700)
    # when files move to Infrequent Access (an EFS value, e.g. AFTER_30_DAYS; None: never)
    transition_to_ia: str | None = "AFTER_30_DAYS"
    protect: bool = False  # protect and retain the file system (a destroy leaves it)
    # the CSI driver add-on's configuration values (None: its defaults)
    addon_configuration: Mapping[str, Any] | None = None
    # AWS tags on the file system, its mount targets' security group and the role
    tags: Mapping[str, str] = field(default_factory=dict)
    # What the claim waits for besides the driver (e.g. its namespace, schedulable nodes).
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if isinstance(self.subnet_ids, (list, tuple)):
            if not self.subnet_ids:
                problems.append(("subnet_ids", "at least one private subnet is needed"))
            elif self.subnet_count is not None and self.subnet_count != len(self.subnet_ids):
                problems.append(
                    ("subnet_count", f"{self.subnet_count} does not match {len(self.subnet_ids)} subnet_ids")
                )
        elif self.subnet_count is None or self.subnet_count < 1:
            problems.append(("subnet_count", "required (>= 1) when subnet_ids is an Output"))
        if self.cluster_security_group_id is None and self.vpc_cidr is None:
            problems.append(("", "cluster_security_group_id/vpc_cidr: give at least one NFS source"))
        version = self.csi_driver_version.strip()
        if not version or version.lower() == "latest":
            problems.append(
                ("csi_driver_version", "pin an add-on version (e.g. v2.1.4-eksbuild.1), not 'latest'")
            )
        for field_name in LABEL_FIELDS:
            problems += plain_problems(field_name, getattr(self, field_name), _dns_label_reason)
        if not is_quantity(self.claim_size):
            problems.append(("claim_size", f"{self.claim_size!r} is not a Kubernetes quantity"))
        if not re.fullmatch(r"[0-7]{3,4}", self.directory_perms):
            problems.append(("directory_perms", f"{self.directory_perms!r} must be octal like '700'"))
        return problems


def _dns_label_reason(value: object) -> str | None:
    return None if is_dns1123_label(value) else f"{value!r} is not a DNS-1123 label"


# Names the claim and its class take (``claim_namespace`` may be another resource's output).
LABEL_FIELDS = ("claim_name", "claim_namespace", "storage_class_name")


class SharedFileSystem(pulumi.ComponentResource):
    """Encrypted EFS + mount targets + EFS CSI add-on + StorageClass + ReadWriteMany claim."""

    file_system_id: pulumi.Output[str]  # the EFS file system's id
    storage_class_name: pulumi.Output[str]  # the StorageClass's name
    claim_name: pulumi.Output[str]  # the claim's name (a workload's ``SharedVolume``)
    file_system: aws.efs.FileSystem  # the EFS file system
    security_group: aws.ec2.SecurityGroup  # the mount targets' security group (NFS from the cluster)
    mount_targets: list[aws.efs.MountTarget]  # one mount target per subnet
    addon: aws.eks.Addon  # the EFS CSI driver add-on
    csi_role: ServiceAccountRole  # the driver's IAM role
    storage_class: k8s.storage.v1.StorageClass  # the StorageClass
    claim: k8s.core.v1.PersistentVolumeClaim  # the ReadWriteMany claim

    def __init__(self, name: str, args: SharedFileSystemArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"SharedFileSystem {name!r}"
        require(subject, type_problems(args, SharedFileSystemArgs) or args.problems())
        super().__init__("aiplatform:storage:SharedFileSystem", name, None, opts)
        args = checked_fields(subject, args, {"claim_namespace": _dns_label_reason})
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        lifecycle = []
        if args.transition_to_ia is not None:
            lifecycle = [
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia=args.transition_to_ia),
                aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
            ]
        self.file_system = aws.efs.FileSystem(
            f"{name}-fs",
            encrypted=True,
            kms_key_id=args.kms_key_arn,
            performance_mode="generalPurpose",
            throughput_mode="elastic",
            lifecycle_policies=lifecycle,
            tags={**tags, "Name": name},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )

        # Mount targets accept NFS only; no egress rules (the AWS default allow-all is removed).
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"EFS mount targets of {name}: NFS from the cluster only",
            tags={**tags, "Name": f"{name}-efs"},
            opts=child,
        )
        # NFS in, from the cluster's security group and/or the VPC range; nothing else.
        sources = {
            "cluster": (
                {"referenced_security_group_id": args.cluster_security_group_id},
                "the EKS cluster security group",
            ),
            "vpc": ({"cidr_ipv4": args.vpc_cidr}, "the VPC"),
        }
        for source, (peer, description) in sources.items():
            if next(iter(peer.values())) is None:
                continue
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nfs-from-{source}",
                security_group_id=self.security_group.id,
                ip_protocol="tcp",
                from_port=NFS_PORT,
                to_port=NFS_PORT,
                description=f"NFS from {description}",
                opts=child,
                **peer,
            )

        if isinstance(args.subnet_ids, (list, tuple)):
            subnets: list[pulumi.Input[str]] = list(args.subnet_ids)
        else:
            ids = pulumi.Output.from_input(args.subnet_ids)
            subnets = [ids.apply(lambda v, i=i: v[i]) for i in range(args.subnet_count or 0)]
        self.mount_targets = [
            aws.efs.MountTarget(
                f"{name}-mount-{index}",
                file_system_id=self.file_system.id,
                subnet_id=subnet,
                security_groups=[self.security_group.id],
                opts=child,
            )
            for index, subnet in enumerate(subnets)
        ]

        self.csi_role = ServiceAccountRole(
            f"{name}-efs-csi",
            ServiceAccountRoleArgs(
                identity=args.identity,
                namespace=EFS_CSI_NAMESPACE,
                service_account=EFS_CSI_SERVICE_ACCOUNT,
                also=[EFS_CSI_NODE_SERVICE_ACCOUNT],
                managed_policy_arns=[EFS_CSI_POLICY_ARN],
                tags=tags,
            ),
            opts=child,
        )
        # IRSA: the add-on annotates its service accounts with the role. Pod Identity: the
        # ServiceAccountRole already created the associations for the same service accounts.
        self.addon = aws.eks.Addon(
            f"{name}-efs-csi-addon",
            cluster_name=args.identity.cluster_name,
            addon_name=EFS_CSI_ADDON,
            addon_version=args.csi_driver_version,
            service_account_role_arn=self.csi_role.arn if args.identity.mode == "irsa" else None,
            configuration_values=json.dumps(dict(args.addon_configuration))
            if args.addon_configuration
            else None,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="PRESERVE",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.csi_role, *args.depends_on]),
        )

        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.storage_class_name),
            provisioner=EFS_CSI_PROVISIONER,
            parameters={
                "provisioningMode": "efs-ap",
                "fileSystemId": self.file_system.id,
                "directoryPerms": args.directory_perms,
                "basePath": "/dynamic",
            },
            reclaim_policy="Retain" if args.protect else "Delete",
            volume_binding_mode="Immediate",
            opts=k8s_opts,
        )
        # The claim binds only once the driver runs and the file system is reachable.
        self.claim = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.claim_name, namespace=args.claim_namespace),
            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                access_modes=["ReadWriteMany"],
                storage_class_name=self.storage_class.metadata.apply(lambda m: m.name),
                resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": args.claim_size}),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[self.addon, *self.mount_targets, *args.depends_on],
            ),
        )

        self.file_system_id = self.file_system.id
        self.storage_class_name = self.storage_class.metadata.apply(lambda m: m.name)
        self.claim_name = self.claim.metadata.apply(lambda m: m.name)
        self.register_outputs(
            {
                "file_system_id": self.file_system_id,
                "storage_class_name": self.storage_class_name,
                "claim_name": self.claim_name,
            }
        )
