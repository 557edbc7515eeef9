"""The simulated AWS cloud: the values only the cloud knows, made deterministic.

Given a resource type, a name and its inputs, ``SimulatedCloud.create`` answers with the id and the
outputs AWS would hand back (ids with the prefixes AWS uses, ARNs, the EKS endpoint and OIDC issuer,
KMS key ids, bucket names, EFS DNS names); ``SimulatedCloud.invoke`` answers the data-source calls the
platform makes (availability zones, caller identity, region, partition). Kubernetes objects get their
``namespace/name`` ids and deterministic auto-names. The same input always gives the same answer.

It imports nothing from Pulumi: the offline plan's mocks (``mock_engine``) answer from it, and so does the
simulated ``aws`` provider plugin the end-to-end harness hands the real engine. For that plugin it also
knows what the AWS provider does before and around a create: ``autoname`` fills the physical names the
provider generates, ``problems`` lists the inputs AWS refuses (name lengths and characters, required
fields, enum values, ranges), ``replaces`` names the changed inputs AWS cannot update in place, and
``create(..., salt=...)`` makes ids and ARNs unique per create, as AWS does, where a plan keeps them
stable.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kubernetes_versions import SUPPORTED_VERSIONS, node_group_skew_problem, upgrade_problem

ACCOUNT_ID = "123456789012"

# Prefixes AWS uses for the ids of EC2-style resources.
ID_PREFIXES = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/internetGateway:InternetGateway": "igw",
    "aws:ec2/natGateway:NatGateway": "nat",
    "aws:ec2/eip:Eip": "eipalloc",
    "aws:ec2/routeTable:RouteTable": "rtb",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
    "aws:ec2/flowLog:FlowLog": "fl",
    "aws:efs/fileSystem:FileSystem": "fs",
    "aws:efs/mountTarget:MountTarget": "fsmt",
    "aws:efs/accessPoint:AccessPoint": "fsap",
}

# ARN resource kinds for the types whose ARN is not "<module>/<name>".
ARN_KINDS = {
    "aws:iam/role:Role": "role",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "oidc-provider",
    "aws:eks/cluster:Cluster": "cluster",
    "aws:eks/nodeGroup:NodeGroup": "nodegroup",
    "aws:eks/addon:Addon": "addon",
    "aws:kms/key:Key": "key",
    "aws:kms/alias:Alias": "alias",
    "aws:secretsmanager/secret:Secret": "secret",
    "aws:efs/fileSystem:FileSystem": "file-system",
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "security-group",
    "aws:ec2/launchTemplate:LaunchTemplate": "launch-template",
}

_GLOBAL_SERVICES = {"iam", "s3"}

# Provider modules whose ARNs name another service.
_ARN_SERVICES = {"cloudwatch": "logs"}


# The property the AWS provider fills with ``<resource name>-<7 hex>`` when it is not given.
AUTONAMED = {
    "aws:iam/role:Role": "name",
    "aws:iam/policy:Policy": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:ec2/launchTemplate:LaunchTemplate": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:eks/cluster:Cluster": "name",
    "aws:eks/nodeGroup:NodeGroup": "nodeGroupName",
    "aws:kms/alias:Alias": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:cloudwatch/eventRule:EventRule": "name",
}

# Inputs AWS cannot change in place: a change replaces the resource.
REPLACE_ON_CHANGE: Mapping[str, frozenset[str]] = {
    "aws:ec2/vpc:Vpc": frozenset({"cidrBlock"}),
    "aws:ec2/subnet:Subnet": frozenset({"vpcId", "cidrBlock", "availabilityZone"}),
    "aws:ec2/natGateway:NatGateway": frozenset({"subnetId", "allocationId", "connectivityType"}),
    "aws:ec2/routeTable:RouteTable": frozenset({"vpcId"}),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": frozenset({"subnetId"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "vpcId", "description"}),
    "aws:ec2/launchTemplate:LaunchTemplate": frozenset({"name"}),
    "aws:eks/cluster:Cluster": frozenset({"name", "encryptionConfig"}),
    "aws:eks/nodeGroup:NodeGroup": frozenset(
        {
            "clusterName",
            "nodeGroupName",
            "nodeRoleArn",
            "subnetIds",
            "instanceTypes",
            "capacityType",
            "amiType",
            "diskSize",
        }
    ),
    "aws:eks/addon:Addon": frozenset({"clusterName", "addonName"}),
    "aws:eks/accessEntry:AccessEntry": frozenset({"clusterName", "principalArn", "type"}),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": frozenset(
        {"clusterName", "principalArn", "policyArn", "accessScope"}
    ),
    "aws:iam/role:Role": frozenset({"name", "path"}),
    "aws:iam/policy:Policy": frozenset({"name", "path"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "role"}),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": frozenset({"role", "policyArn"}),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": frozenset({"url"}),
    "aws:kms/alias:Alias": frozenset({"name"}),
    "aws:s3/bucket:Bucket": frozenset({"bucket"}),
    "aws:secretsmanager/secret:Secret": frozenset({"name"}),
    "aws:secretsmanager/secretVersion:SecretVersion": frozenset({"secretId", "secretString"}),
    "aws:efs/mountTarget:MountTarget": frozenset({"fileSystemId", "subnetId"}),
    "aws:autoscaling/tag:Tag": frozenset({"autoscalingGroupName", "tag"}),
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name"}),
}


def _public_ip(ident: str) -> str:
    """A documentation-range address (RFC 5737), stable for the allocation."""
    return f"198.51.100.{int(short_hash(ident, length=2), 16) % 254 + 1}"


def short_hash(*parts: str, length: int = 8) -> str:
    """A stable hex digest of the parts: the same input always plans to the same value."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def auto_name(resource_name: str, seed: str = "") -> str:
    """The physical name Pulumi would generate (``<name>-<7 hex>``): deterministic for a plan, and
    derived from the engine's random seed for the plugin."""
    return f"{resource_name}-{short_hash(resource_name, *((seed,) if seed else ()), length=7)}"


# The AWS provider completes a ``bucket_prefix`` with a 26-digit unique id (a timestamp and a counter).
UNIQUE_SUFFIX_DIGITS = 26


def prefixed_name(prefix: str, resource_name: str) -> str:
    """The name AWS gives a resource created with a name prefix: the prefix and 26 digits
    (deterministic here, from the resource's name)."""
    digits = int(short_hash("prefix", resource_name, prefix, length=32), 16) % 10**UNIQUE_SUFFIX_DIGITS
    return f"{prefix}{digits:0{UNIQUE_SUFFIX_DIGITS}d}"


def bucket_name(resource_name: str, inputs: Mapping[str, Any]) -> str:
    """An S3 bucket's name: ``bucket``, else ``bucketPrefix`` completed by AWS, else Pulumi's auto-name."""
    if inputs.get("bucket"):
        return str(inputs["bucket"])
    if inputs.get("bucketPrefix"):
        return prefixed_name(str(inputs["bucketPrefix"]), resource_name)
    return auto_name(resource_name)


@dataclass(frozen=True)
class EksEndpoint:
    """Where a simulated EKS cluster's API is really served (the e2e harness's local API server)."""

    url: str
    ca_data: str  # base64 PEM, as EKS returns it


# -- validation ------------------------------------------------------------------------------------
Problem = tuple[str, str]  # (property path, reason)

# The minors EKS offers: the version calendar's (past their end of extended support EKS creates none,
# but the calendar only holds minors the platform runs, all within it until that day).
EKS_VERSIONS = SUPPORTED_VERSIONS
# Kept apart from aiplatform.validation on purpose: an independent oracle of what CloudWatch refuses.
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
AMI_TYPES = frozenset(
    {
        "AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA",
        "AL2023_x86_64_NEURON", "BOTTLEROCKET_x86_64", "BOTTLEROCKET_ARM_64", "BOTTLEROCKET_x86_64_NVIDIA",
        "BOTTLEROCKET_ARM_64_NVIDIA", "CUSTOM",
    }
)  # fmt: skip


def _name(value: Any, pattern: str, max_len: int, what: str, min_len: int = 1) -> str | None:
    if not isinstance(value, str):
        return None  # unknown in a preview, or absent (checked as required elsewhere)
    if not min_len <= len(value) <= max_len:
        return f"{what} must be {min_len} to {max_len} characters (got {len(value)})"
    if not re.fullmatch(pattern, value):
        return f"{what} {value!r} has characters AWS does not allow (pattern {pattern})"
    return None


def _tags(inputs: Mapping[str, Any], key: str = "tags") -> list[Problem]:
    tags = inputs.get(key)
    if not isinstance(tags, Mapping):
        return []
    problems = []
    if len(tags) > 50:
        problems.append((key, f"at most 50 tags per resource (got {len(tags)})"))
    for k, v in tags.items():
        if not 1 <= len(k) <= 128:
            problems.append((f"{key}.{k}", "tag keys are 1 to 128 characters"))
        if k.lower().startswith("aws:"):
            problems.append((f"{key}.{k}", "tag keys must not start with 'aws:' (reserved)"))
        if isinstance(v, str) and len(v) > 256:
            problems.append((f"{key}.{k}", "tag values are at most 256 characters"))
    return problems


class Unknown:
    """A value not known yet (a preview): present, but not judged."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


def _required(inputs: Mapping[str, Any], *keys: str) -> list[Problem]:
    return [(k, "required") for k in keys if inputs.get(k) in (None, "", [], {})]


def _policy_document(value: Any, key: str, max_len: int) -> list[Problem]:
    if not isinstance(value, str):
        return []
    try:
        document = json.loads(value)
    except ValueError:
        return [(key, "is not a JSON policy document")]
    problems = []
    if len(re.sub(r"\s", "", value)) > max_len:
        problems.append((key, f"policy documents are at most {max_len} characters without whitespace"))
    if not isinstance(document, dict) or "Statement" not in document:
        problems.append((key, "a policy document needs a Statement"))
    return problems


def _cidr(value: Any, key: str, smallest: int, largest: int) -> list[Problem]:
    if not isinstance(value, str):
        return []
    try:
        net = ipaddress.ip_network(value)
    except ValueError:
        return [(key, f"{value!r} is not a CIDR block")]
    if not largest <= net.prefixlen <= smallest:
        return [(key, f"{value}: the prefix must be between /{largest} and /{smallest}")]
    return []


def _validate_eks_cluster(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "roleArn", "vpcConfig")
    # Apart from aiplatform.validation's cluster name rule on purpose: an independent oracle of EKS.
    if msg := _name(i.get("name"), r"[0-9A-Za-z][A-Za-z0-9\-_]*", 100, "cluster name"):
        problems.append(("name", msg))
    version = i.get("version")
    if isinstance(version, str) and version not in EKS_VERSIONS:
        problems.append(
            ("version", f"unsupported Kubernetes version {version} (supported: {', '.join(EKS_VERSIONS)})")
        )
    subnets = (i.get("vpcConfig") or {}).get("subnetIds")
    if isinstance(subnets, list) and len(subnets) < 2:
        problems.append(("vpcConfig.subnetIds", "EKS needs subnets in at least two availability zones"))
    return problems


def _validate_node_group(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "clusterName", "nodeRoleArn", "subnetIds", "scalingConfig")
    if msg := _name(i.get("nodeGroupName"), r"[0-9A-Za-z][A-Za-z0-9\-_]*", 63, "node group name"):
        problems.append(("nodeGroupName", msg))
    scaling = i.get("scalingConfig") or {}
    lo, want, hi = (scaling.get(k) for k in ("minSize", "desiredSize", "maxSize"))
    if all(isinstance(v, int | float) for v in (lo, want, hi)):
        if lo < 0 or hi < 1:
            problems.append(("scalingConfig", "minSize must be >= 0 and maxSize >= 1"))
        if not lo <= want <= hi:
            problems.append(
                ("scalingConfig.desiredSize", f"must be between minSize ({lo}) and maxSize ({hi})")
            )
    if (capacity := i.get("capacityType")) is not None and capacity not in (
        "ON_DEMAND",
        "SPOT",
        "CAPACITY_BLOCK",
    ):
        problems.append(("capacityType", f"{capacity!r} is not ON_DEMAND, SPOT or CAPACITY_BLOCK"))
    if (ami := i.get("amiType")) is not None and ami not in AMI_TYPES:
        problems.append(("amiType", f"{ami!r} is not an EKS AMI type"))
    if i.get("launchTemplate") and i.get("diskSize") is not None:
        problems.append(("diskSize", "with a launch template, the disk size belongs in the launch template"))
    return problems


def _validate_launch_template(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if msg := _name(i.get("name"), r"[a-zA-Z0-9().\-/_]+", 128, "launch template name", min_len=3):
        problems.append(("name", msg))
    meta = i.get("metadataOptions") or {}
    if (tokens := meta.get("httpTokens")) is not None and tokens not in ("optional", "required"):
        problems.append(("metadataOptions.httpTokens", f"{tokens!r} is not optional or required"))
    hops = meta.get("httpPutResponseHopLimit")
    if isinstance(hops, int | float) and not 1 <= hops <= 64:
        problems.append(("metadataOptions.httpPutResponseHopLimit", "must be 1 to 64"))
    return problems


def _validate_role(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "assumeRolePolicy")
    if msg := _name(i.get("name"), r"[\w+=,.@-]+", 64, "role name"):
        problems.append(("name", msg))
    problems += _policy_document(i.get("assumeRolePolicy"), "assumeRolePolicy", 2048)
    return problems


def _validate_role_policy(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "role", "policy")
    if msg := _name(i.get("name"), r"[\w+=,.@-]+", 128, "policy name"):
        problems.append(("name", msg))
    return problems + _policy_document(i.get("policy"), "policy", 10240)


def _validate_policy(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "policy")
    if msg := _name(i.get("name"), r"[\w+=,.@-]+", 128, "policy name"):
        problems.append(("name", msg))
    return problems + _policy_document(i.get("policy"), "policy", 6144)


def _validate_secret(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if msg := _name(i.get("name"), r"[\w/+=.@-]+", 512, "secret name"):
        problems.append(("name", msg))
    window = i.get("recoveryWindowInDays")
    if isinstance(window, int | float) and window != 0 and not 7 <= window <= 30:
        problems.append(("recoveryWindowInDays", "must be 0 (force delete) or 7 to 30"))
    return problems


def _validate_kms_key(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    window = i.get("deletionWindowInDays")
    if isinstance(window, int | float) and not 7 <= window <= 30:
        problems.append(("deletionWindowInDays", "must be 7 to 30"))
    if (usage := i.get("keyUsage")) is not None and usage not in (
        "ENCRYPT_DECRYPT",
        "SIGN_VERIFY",
        "GENERATE_VERIFY_MAC",
    ):
        problems.append(("keyUsage", f"{usage!r} is not a KMS key usage"))
    if isinstance(i.get("policy"), str):
        problems += _policy_document(i["policy"], "policy", 32768)
    return problems


def _validate_kms_alias(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "targetKeyId")
    name = i.get("name")
    if isinstance(name, str):
        if not name.startswith("alias/") or name.startswith("alias/aws/"):
            problems.append(("name", "must start with 'alias/' and not 'alias/aws/'"))
        elif msg := _name(name, r"alias/[a-zA-Z0-9/_-]+", 256, "alias name"):
            problems.append(("name", msg))
    return problems


def _validate_bucket(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    # Apart from aiplatform.validation's bucket name rule on purpose: an independent oracle of S3.
    if msg := _name(i.get("bucket"), r"[a-z0-9][a-z0-9.-]*[a-z0-9]", 63, "bucket name", min_len=3):
        problems.append(("bucket", msg))
    return problems


def _validate_log_group(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if msg := _name(i.get("name"), r"[\w\-/.#]+", 512, "log group name"):
        problems.append(("name", msg))
    days = i.get("retentionInDays")
    if isinstance(days, int | float) and days not in LOG_RETENTION_DAYS:
        problems.append(("retentionInDays", f"{days:g} is not a retention CloudWatch Logs offers"))
    return problems


def _validate_security_group(i: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if msg := _name(i.get("name"), r"[\x20-\x7e]+", 255, "security group name"):
        problems.append(("name", msg))
    description = i.get("description")
    if isinstance(description, str) and (len(description) > 255 or not description.isascii()):
        problems.append(("description", "at most 255 ASCII characters"))
    return problems


def _validate_asg_tag(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "autoscalingGroupName", "tag")
    tag = i.get("tag") or {}
    key, value = tag.get("key"), tag.get("value")
    if isinstance(key, str) and not 1 <= len(key) <= 128:
        problems.append(("tag.key", "autoscaling tag keys are 1 to 128 characters"))
    if isinstance(value, str) and len(value) > 256:
        problems.append(("tag.value", "autoscaling tag values are at most 256 characters"))
    return problems


def _validate_addon(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "clusterName", "addonName")
    for key in ("resolveConflictsOnCreate", "resolveConflictsOnUpdate"):
        if (value := i.get(key)) is not None and value not in ("NONE", "OVERWRITE", "PRESERVE"):
            problems.append((key, f"{value!r} is not NONE, OVERWRITE or PRESERVE"))
    return problems


def _validate_access_entry(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "clusterName", "principalArn")
    kinds = ("STANDARD", "FARGATE_LINUX", "EC2_LINUX", "EC2_WINDOWS", "EC2", "HYBRID_LINUX", "HYPERPOD_LINUX")
    if (kind := i.get("type")) is not None and kind not in kinds:
        problems.append(("type", f"{kind!r} is not an access entry type"))
    return problems


def _validate_oidc_provider(i: Mapping[str, Any]) -> list[Problem]:
    problems = _required(i, "url", "clientIdLists")
    url = i.get("url")
    if isinstance(url, str) and not url.startswith("https://"):
        problems.append(("url", "must be an https:// URL"))
    for n, thumb in enumerate(i.get("thumbprintLists") or []):
        if isinstance(thumb, str) and not re.fullmatch(r"[0-9a-fA-F]{40}", thumb):
            problems.append((f"thumbprintLists[{n}]", "a thumbprint is 40 hex characters"))
    return problems


_VALIDATORS: Mapping[str, Callable[[Mapping[str, Any]], list[Problem]]] = {
    "aws:ec2/vpc:Vpc": lambda i: _cidr(i.get("cidrBlock"), "cidrBlock", 28, 16),
    "aws:ec2/subnet:Subnet": lambda i: (
        _required(i, "vpcId", "cidrBlock") + _cidr(i.get("cidrBlock"), "cidrBlock", 28, 16)
    ),
    "aws:ec2/natGateway:NatGateway": lambda i: _required(
        i, "subnetId", *(() if i.get("connectivityType") == "private" else ("allocationId",))
    ),
    "aws:ec2/securityGroup:SecurityGroup": _validate_security_group,
    "aws:ec2/launchTemplate:LaunchTemplate": _validate_launch_template,
    "aws:eks/cluster:Cluster": _validate_eks_cluster,
    "aws:eks/nodeGroup:NodeGroup": _validate_node_group,
    "aws:eks/addon:Addon": _validate_addon,
    "aws:eks/accessEntry:AccessEntry": _validate_access_entry,
    "aws:iam/role:Role": _validate_role,
    "aws:iam/rolePolicy:RolePolicy": _validate_role_policy,
    "aws:iam/policy:Policy": _validate_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": lambda i: _required(i, "role", "policyArn"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _validate_oidc_provider,
    "aws:secretsmanager/secret:Secret": _validate_secret,
    "aws:secretsmanager/secretVersion:SecretVersion": lambda i: _required(i, "secretId"),
    "aws:kms/key:Key": _validate_kms_key,
    "aws:kms/alias:Alias": _validate_kms_alias,
    "aws:s3/bucket:Bucket": _validate_bucket,
    "aws:cloudwatch/logGroup:LogGroup": _validate_log_group,
    "aws:autoscaling/tag:Tag": _validate_asg_tag,
    "aws:efs/mountTarget:MountTarget": lambda i: _required(i, "fileSystemId", "subnetId"),
}


@dataclass(frozen=True)
class SimulatedCloud:
    """Plausible cloud answers for a region and account."""

    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    eks: EksEndpoint | None = None  # where a simulated EKS cluster's API is really served

    # -- invokes -------------------------------------------------------------------------------
    def invoke(self, token: str, args: Mapping[str, Any] | None = None) -> dict:
        """The result of a data-source call (camelCase, as the provider returns it)."""
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            letters = "abcdef"
            return {
                "names": [f"{self.region}{c}" for c in letters],
                "zoneIds": [f"use1-az{i + 1}" for i in range(len(letters))],
                "state": "available",
                "id": self.region,
            }
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/planner",
                "userId": "AIDAPLANNER",
                "id": self.account_id,
            }
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        return {}

    # -- resources -----------------------------------------------------------------------------
    def create(self, typ: str, name: str, inputs: Mapping[str, Any], salt: str = "") -> tuple[str, dict]:
        """The id and the outputs (camelCase) of a resource created from ``inputs``.

        ``salt`` makes ids and ARNs unique per create (a replacement gets new ones, as in AWS); a plan
        leaves it empty, so the same program always plans to the same values.
        """
        inputs = dict(inputs)
        if typ.startswith("kubernetes:"):
            return self._kubernetes(typ, name, inputs)
        if typ.startswith("aws:"):
            return self._aws(typ, name, inputs, (salt,) if salt else ())
        return f"{name}-id", inputs

    @staticmethod
    def autoname(typ: str, name: str, inputs: Mapping[str, Any], seed: str = "") -> dict:
        """The inputs with the physical name filled in where the AWS provider generates one."""
        prop = AUTONAMED.get(typ)
        result = dict(inputs)
        if prop and not result.get(prop) and not result.get(f"{prop}Prefix"):
            generated = auto_name(name, seed)
            result[prop] = f"alias/{generated}" if typ == "aws:kms/alias:Alias" else generated
        return result

    @staticmethod
    def problems(typ: str, inputs: Mapping[str, Any]) -> list[Problem]:
        """What AWS would refuse in these inputs; values not known yet (a preview) are not judged."""
        validator = _VALIDATORS.get(typ)
        problems = list(validator(inputs)) if validator else []
        if "tags" in inputs:
            problems += _tags(inputs)
        return problems

    @staticmethod
    def update_problems(
        typ: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        node_groups: Mapping[str, str] | None = None,
    ) -> list[Problem]:
        """What AWS refuses in an update from ``olds`` to ``news`` (beyond what ``problems`` refuses in
        ``news`` alone): an EKS cluster moves one Kubernetes minor at a time, never down, and only
        while its managed node groups (``node_groups``: name -> minor) run its current minor."""
        if typ == "aws:eks/cluster:Cluster":
            old, new = olds.get("version"), news.get("version")
            if isinstance(old, str) and isinstance(new, str) and old != new:
                problem = upgrade_problem(old, new) or node_group_skew_problem(old, node_groups or {})
                if problem:
                    return [("version", problem)]
        return []

    @staticmethod
    def replaces(typ: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        """The changed inputs that force a replacement."""
        return sorted(k for k in REPLACE_ON_CHANGE.get(typ, ()) if olds.get(k) != news.get(k))

    def _kubernetes(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        if typ == "kubernetes:helm.sh/v3:Release":
            release = inputs.get("name") or auto_name(name)
            namespace = inputs.get("namespace", "default")
            inputs["name"] = release
            inputs["status"] = {
                "name": release,
                "namespace": namespace,
                "chart": inputs.get("chart"),
                "version": inputs.get("version"),
                "status": "deployed",
                "revision": 1,
            }
            return f"{namespace}/{release}", inputs
        metadata = dict(inputs.get("metadata") or {})
        if not metadata.get("name") and not metadata.get("generateName"):
            metadata["name"] = auto_name(name)
        if metadata:
            inputs["metadata"] = metadata
        namespace = metadata.get("namespace")
        ident = f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name", name))
        return ident, inputs

    def _aws(self, typ: str, name: str, inputs: dict, salted: tuple[str, ...]) -> tuple[str, dict]:
        module = typ.split(":")[1].split("/")[0]
        # ``bucket``: a bucket's name, or the bucket an S3 sub-resource configures.
        physical = inputs.get("name") or bucket_name(name, inputs)
        prefix = ID_PREFIXES.get(typ)
        ident = f"{prefix}-{short_hash(typ, name, *salted, length=17)}" if prefix else physical
        region = "" if module in _GLOBAL_SERVICES else self.region
        account = "" if module == "s3" else self.account_id
        kind = ARN_KINDS.get(typ)
        arn_path = f"{kind}/{physical if not prefix else ident}" if kind else physical
        service = _ARN_SERVICES.get(module, module)
        if typ == "aws:secretsmanager/secret:Secret":
            arn_path = f"secret:{physical}-{short_hash(name, *salted, length=6)}"
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            arn_path = f"log-group:{physical}"
        if typ == "aws:cloudwatch/eventRule:EventRule":
            service, arn_path = "events", f"rule/{physical}"
        outputs: dict[str, Any] = {
            **inputs,
            "arn": f"arn:aws:{service}:{region}:{account}:{arn_path}",
            "tagsAll": inputs.get("tags") or {},
        }
        if "name" not in inputs and not prefix:
            outputs["name"] = physical
        outputs.update(self._aws_extras(typ, name, physical, inputs, salted))
        if typ == "aws:kms/key:Key" and salted:
            ident = outputs["keyId"]  # a key is known by its key id, new for every key AWS makes
        if typ == "aws:ec2/eip:Eip":
            # An Elastic IP is known by its allocation id, which is also its id.
            outputs.update(
                {"allocationId": ident, "publicIp": _public_ip(ident), "domain": inputs.get("domain", "vpc")}
            )
        return ident, outputs

    def _aws_extras(self, typ: str, name: str, physical: str, inputs: dict, salted: tuple[str, ...]) -> dict:
        digest = short_hash(name, *salted, length=32).upper()
        if typ == "aws:eks/cluster:Cluster":
            endpoint = self.eks.url if self.eks else f"https://{digest}.gr7.{self.region}.eks.amazonaws.com"
            ca_data = self.eks.ca_data if self.eks else base64.b64encode(b"mock-ca-" + name.encode()).decode()
            return {
                "endpoint": endpoint,
                "certificateAuthority": {"data": ca_data},
                "identities": [
                    {"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{digest}"}]}
                ],
                "platformVersion": "eks.1",
                "status": "ACTIVE",
                "vpcConfig": {
                    **(inputs.get("vpcConfig") or {}),
                    "clusterSecurityGroupId": f"sg-{digest[:17].lower()}",
                },
            }
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            url = str(inputs.get("url", "")).removeprefix("https://")
            return {"arn": f"arn:aws:iam::{self.account_id}:oidc-provider/{url}"}
        if typ == "aws:kms/key:Key":
            key_id = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}".lower()
            return {"keyId": key_id, "arn": f"arn:aws:kms:{self.region}:{self.account_id}:key/{key_id}"}
        if typ == "aws:acm/certificate:Certificate":
            certificate = (
                f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}".lower()
            )
            return {"arn": f"arn:aws:acm:{self.region}:{self.account_id}:certificate/{certificate}"}
        if typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            bucket = bucket_name(name, inputs)
            return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if typ == "aws:efs/fileSystem:FileSystem":
            return {"dnsName": f"fs-{digest[:8].lower()}.efs.{self.region}.amazonaws.com"}
        if typ == "aws:sqs/queue:Queue":
            return {"url": f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{physical}"}
        if typ == "aws:eks/nodeGroup:NodeGroup":
            # EKS names the group's autoscaling group after it, unique per create.
            asg = f"eks-{physical}" + (f"-{digest[:8].lower()}" if salted else "")
            return {"status": "ACTIVE", "resources": [{"autoscalingGroups": [{"name": asg}]}]}
        return {}
