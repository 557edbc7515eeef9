"""The simulated AWS cloud: the values only the cloud knows, made deterministic.

Given a resource type, a name and its inputs, ``SimulatedCloud.create`` answers with the id and the
outputs AWS would hand back (ids with the prefixes AWS uses, ARNs, the EKS endpoint and OIDC issuer,
KMS key ids, bucket names, EFS DNS names); ``SimulatedCloud.invoke`` answers the data-source calls the
platform makes (availability zones, caller identity, region, partition). Kubernetes objects get their
``namespace/name`` ids and deterministic auto-names. The same input always gives the same answer.

It imports nothing from Pulumi: the offline plan's mocks (``mock_engine``) answer from it, and so can any
other stand-in for the cloud.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def short_hash(*parts: str, length: int = 8) -> str:
    """A stable hex digest of the parts: the same input always plans to the same value."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def auto_name(resource_name: str) -> str:
    """The physical name Pulumi would generate, made deterministic (``<name>-<7 hex>``)."""
    return f"{resource_name}-{short_hash(resource_name, length=7)}"


@dataclass(frozen=True)
class SimulatedCloud:
    """Plausible cloud answers for a region and account."""

    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID

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
    def create(self, typ: str, name: str, inputs: Mapping[str, Any]) -> tuple[str, dict]:
        """The id and the outputs (camelCase) of a resource created from ``inputs``."""
        inputs = dict(inputs)
        if typ.startswith("kubernetes:"):
            return self._kubernetes(typ, name, inputs)
        if typ.startswith("aws:"):
            return self._aws(typ, name, inputs)
        return f"{name}-id", inputs

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

    def _aws(self, typ: str, name: str, inputs: dict) -> tuple[str, dict]:
        module = typ.split(":")[1].split("/")[0]
        physical = inputs.get("name") or inputs.get("bucket") or auto_name(name)
        prefix = ID_PREFIXES.get(typ)
        ident = f"{prefix}-{short_hash(typ, name, length=17)}" if prefix else physical
        region = "" if module in _GLOBAL_SERVICES else self.region
        account = "" if module == "s3" else self.account_id
        kind = ARN_KINDS.get(typ)
        arn_path = f"{kind}/{physical if not prefix else ident}" if kind else physical
        service = _ARN_SERVICES.get(module, module)
        if typ == "aws:secretsmanager/secret:Secret":
            arn_path = f"secret:{physical}-{short_hash(name, length=6)}"
        if typ == "aws:cloudwatch/logGroup:LogGroup":
            arn_path = f"log-group:{physical}"
        outputs: dict[str, Any] = {
            **inputs,
            "arn": f"arn:aws:{service}:{region}:{account}:{arn_path}",
            "tagsAll": inputs.get("tags") or {},
        }
        if "name" not in inputs and not prefix:
            outputs["name"] = physical
        outputs.update(self._aws_extras(typ, name, physical, inputs))
        return ident, outputs

    def _aws_extras(self, typ: str, name: str, physical: str, inputs: dict) -> dict:
        digest = short_hash(name, length=32).upper()
        if typ == "aws:eks/cluster:Cluster":
            return {
                "endpoint": f"https://{digest}.gr7.{self.region}.eks.amazonaws.com",
                "certificateAuthority": {"data": base64.b64encode(b"mock-ca-" + name.encode()).decode()},
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
        if typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
            bucket = inputs.get("bucket") or auto_name(name)
            return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if typ == "aws:efs/fileSystem:FileSystem":
            return {"dnsName": f"fs-{digest[:8].lower()}.efs.{self.region}.amazonaws.com"}
        if typ == "aws:eks/nodeGroup:NodeGroup":
            return {"status": "ACTIVE", "resources": [{"autoscalingGroups": [{"name": f"eks-{physical}"}]}]}
        return {}
