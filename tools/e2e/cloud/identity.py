"""What AWS knows a resource by, and so what a second create of the same resource does.

The engine may send a create and never learn its outcome (its process killed mid-update): AWS made the
resource, the state has only a pending create. What the next create of that resource does depends on the
type, as in AWS:

- ``refuse``: AWS keys the type by a name or a combination of inputs and refuses a second one with that
  key (``EntityAlreadyExists`` for an IAM role of the same name). An autonamed resource escapes this: the
  engine draws a new random suffix for a create it has no record of, so the second create has another
  name and makes a second resource;
- ``same``: the call is a put (``PutRolePolicy``, ``CreateOrUpdateTags``, S3's ``PutBucket...``): a second
  call with the same key changes the same resource;
- no key: AWS makes a second resource (a VPC, a NAT gateway, a KMS key, an EFS file system). Client tokens
  do not help across engine runs: the AWS provider draws a new ``ClientToken`` (NAT gateway, EKS) or
  ``CreationToken`` (EFS, unless the program sets one) for every create call, so only the SDK's retries
  of one call are idempotent.

``IDENTITIES`` is that table for the types the platform creates; ``duplicate_of`` is what the simulated
AWS checks before a create; ``find`` is how a person finds a pending create's resource in AWS (the
console or the CLI: by its key, else by its tags and description), which the recovery of an interrupted
update imports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REFUSE, SAME = "refuse", "same"


@dataclass(frozen=True)
class Identity:
    key: tuple[str, ...] = ()  # input paths ("tag.key") AWS keys the type by; () for none
    on_duplicate: str = ""  # REFUSE, SAME, or "" (a second resource)
    error: str = ""  # AWS's error code when it refuses
    search: tuple[str, ...] = ("tags",)  # what finds a resource of a type without a key


def _refuse(*key: str, error: str) -> Identity:
    return Identity(key, REFUSE, error)


def _same(*key: str) -> Identity:
    return Identity(key, SAME)


IDENTITIES: Mapping[str, Identity] = {
    "aws:iam/role:Role": _refuse("name", error="EntityAlreadyExists"),
    "aws:iam/policy:Policy": _refuse("name", error="EntityAlreadyExists"),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _refuse("url", error="EntityAlreadyExists"),
    "aws:iam/rolePolicy:RolePolicy": _same("role", "name"),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _same("role", "policyArn"),
    "aws:eks/cluster:Cluster": _refuse("name", error="ResourceInUseException"),
    "aws:eks/nodeGroup:NodeGroup": _refuse("clusterName", "nodeGroupName", error="ResourceInUseException"),
    "aws:eks/addon:Addon": _refuse("clusterName", "addonName", error="ResourceInUseException"),
    "aws:eks/accessEntry:AccessEntry": _refuse("clusterName", "principalArn", error="ResourceInUseException"),
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": _same(
        "clusterName", "principalArn", "policyArn"
    ),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": _refuse(
        "clusterName", "namespace", "serviceAccount", error="ResourceInUseException"
    ),
    "aws:kms/alias:Alias": _refuse("name", error="AlreadyExistsException"),
    "aws:kms/key:Key": Identity(search=("description", "tags")),
    "aws:secretsmanager/secret:Secret": _refuse("name", error="ResourceExistsException"),
    "aws:secretsmanager/secretVersion:SecretVersion": _same("secretId"),
    # us-east-1 answers a second CreateBucket of one's own bucket with 200 OK (every other region refuses
    # with BucketAlreadyOwnedByYou); the stacks run there.
    "aws:s3/bucket:Bucket": _same("bucket"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _same("bucket"),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _same("bucket"),
    "aws:s3/bucketPolicy:BucketPolicy": _same("bucket"),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _same("bucket"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _same("bucket"),
    "aws:s3/bucketVersioning:BucketVersioning": _same("bucket"),
    "aws:cloudwatch/logGroup:LogGroup": _refuse("name", error="ResourceAlreadyExistsException"),
    "aws:cloudwatch/eventRule:EventRule": _same("name", "eventBusName"),
    "aws:cloudwatch/eventTarget:EventTarget": _same("rule", "targetId"),
    "aws:sqs/queue:Queue": _same("name"),
    "aws:sqs/queuePolicy:QueuePolicy": _same("queueUrl"),
    "aws:ec2/vpc:Vpc": Identity(),
    "aws:ec2/internetGateway:InternetGateway": Identity(),
    "aws:ec2/natGateway:NatGateway": Identity(),
    "aws:ec2/eip:Eip": Identity(),
    "aws:ec2/routeTable:RouteTable": Identity(),
    "aws:ec2/subnet:Subnet": _refuse("vpcId", "cidrBlock", error="InvalidSubnet.Conflict"),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": _refuse(
        "subnetId", error="Resource.AlreadyAssociated"
    ),
    "aws:ec2/securityGroup:SecurityGroup": _refuse("vpcId", "name", error="InvalidGroup.Duplicate"),
    "aws:ec2/launchTemplate:LaunchTemplate": _refuse(
        "name", error="InvalidLaunchTemplateName.AlreadyExistsException"
    ),
    "aws:ec2/flowLog:FlowLog": _refuse(
        "vpcId", "trafficType", "logDestination", error="FlowLogAlreadyExists"
    ),
    "aws:ec2/tag:Tag": _same("resourceId", "key"),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": _refuse(
        "securityGroupId",
        "ipProtocol",
        "fromPort",
        "toPort",
        "referencedSecurityGroupId",
        "cidrIpv4",
        error="InvalidPermission.Duplicate",
    ),
    "aws:autoscaling/tag:Tag": _same("autoscalingGroupName", "tag.key"),
    "aws:efs/fileSystem:FileSystem": Identity(),
    "aws:efs/mountTarget:MountTarget": _refuse("fileSystemId", "subnetId", error="MountTargetConflict"),
    "aws:efs/accessPoint:AccessPoint": Identity(),
}


def identity(typ: str) -> Identity:
    """The type's identity; a type the table does not know is taken to have no key (a second create
    makes a second resource), the case that can orphan one."""
    return IDENTITIES.get(typ, Identity())


def _get(inputs: Mapping[str, Any], path: str) -> Any:
    node: Any = inputs
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def key_of(typ: str, inputs: Mapping[str, Any]) -> tuple | None:
    """The values AWS keys this resource by (None: the type has no key)."""
    ident = identity(typ)
    if not ident.key:
        return None
    return tuple(repr(_get(inputs, path)) for path in ident.key)


def _search_values(typ: str, inputs: Mapping[str, Any]) -> tuple:
    return tuple(repr(_get(inputs, path)) for path in identity(typ).search)


def find(typ: str, inputs: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The records of ``typ`` a person finds for a resource created from ``inputs``: by its key where the
    type has one, else by its tags (and description): ``aws ec2 describe-vpcs --filters
    Name=tag:Name,Values=...``. Several: the resource was created more than once."""
    key = key_of(typ, inputs)
    found = []
    for record in records:
        if record["type"] != typ:
            continue
        if key is not None:
            if key_of(typ, record["inputs"]) == key:
                found.append(dict(record))
        elif _search_values(typ, record["inputs"]) == _search_values(typ, inputs):
            found.append(dict(record))
    return found


def duplicate_of(typ: str, inputs: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> dict | None:
    """The existing resource a create of ``inputs`` collides with, for a type AWS keys (None: AWS makes a
    new resource)."""
    if key_of(typ, inputs) is None:
        return None
    found = find(typ, inputs, records)
    return found[0] if found else None


def refusal(typ: str, inputs: Mapping[str, Any], existing: Mapping[str, Any]) -> str:
    """AWS's error for a create that collides with ``existing``."""
    ident = identity(typ)
    key = ", ".join(f"{path}={_get(inputs, path)}" for path in ident.key)
    kind = typ.rsplit(":", 1)[-1]
    return f"{ident.error}: {kind} {existing['id']} already exists ({key})"
