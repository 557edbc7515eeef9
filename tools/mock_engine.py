"""An offline stand-in for the Pulumi engine and the cloud.

``PlatformMocks`` answers resource registrations and invokes with plausible, deterministic values
(ids, ARNs, endpoints, the OIDC issuer, availability zones, the account id), so the real program runs
without credentials or network. ``RecordingMonitor`` keeps what the program sent for every resource:
its parent, provider, dependencies and inputs, with Pulumi's secret marker still on secret values so
they can be redacted exactly.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"
SECRET_PLACEHOLDER = "[secret]"

# Prefixes AWS uses for the ids of EC2-style resources.
_ID_PREFIXES = {
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
_ARN_KINDS = {
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


@dataclass
class PlatformMocks(Mocks):
    """Plausible cloud answers for a region and account."""

    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID

    # -- invokes -------------------------------------------------------------------------------
    def call(self, args: MockCallArgs) -> dict:
        token = args.token
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
    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        typ, name, inputs = args.typ, args.name, dict(args.inputs)
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
        prefix = _ID_PREFIXES.get(typ)
        ident = f"{prefix}-{short_hash(typ, name, length=17)}" if prefix else physical
        region = "" if module in _GLOBAL_SERVICES else self.region
        account = "" if module == "s3" else self.account_id
        kind = _ARN_KINDS.get(typ)
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


def redact_secrets(value: Any) -> Any:
    """Replace every value that carries Pulumi's secret marker with ``[secret]``.

    Also turns whole numbers back into ints: the wire format (protobuf Struct) carries every number
    as a double, and Kubernetes rejects ``replicas: 2.0``.
    """
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        return {k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _resource_ref(value: Any) -> Any:
    """Resource references (a provider, a component passed as input) plan as their URN."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_resource_sig:
            return value.get("urn")
        return {k: _resource_ref(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resource_ref(v) for v in value]
    return value


@dataclass
class Registration:
    """What the program sent the engine for one resource."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    delete_before_replace: bool

    def as_plan_entry(self) -> dict:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "inputs": self.inputs,
        }

    @property
    def provider_urn(self) -> str:
        """The provider reference without its id suffix."""
        return "::".join(self.provider.split("::")[:-1]) if self.provider else ""


class RecordingMonitor(MockMonitor):
    """A mock monitor that also records every registration as the engine would receive it."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 - the engine's method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    inputs=_resource_ref(redact_secrets(raw)),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                )
            )
        return response

    # Convenience lookups for tests and the plan.
    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"expected one resource named {name!r}, found {len(matches)}")
        return matches[0]
