"""Every stack's AWS resources, replayed against moto: an AWS emulator of its own rules, not ours.

The offline plan answers from the project's own simulated AWS, whose idea of what AWS refuses is the
project's. This replay takes a plan's ``resources.json`` and makes, for each AWS resource in the order
the program registered it, the AWS API calls the AWS provider makes to create it (boto3, against a moto
server on 127.0.0.1), and records moto's verdict. What moto refuses (a policy document IAM would
reject, a subnet outside its VPC, two EFS mount targets in one zone, a managed policy that does not
exist, ...) fails the replay.

Ids are the cloud's: the plan's simulated ids, ARNs and endpoints are replaced in later inputs by the
ones moto handed back for the same resource (inside policy documents too). Where EKS creates AWS
resources of its own (the cluster security group, a node group's autoscaling group), the replay creates
them as EKS would, so what the program attaches to them is checked. Every input a resource carries is
either sent to AWS or named here as one the provider keeps to itself; an input the replay does not
know fails it, so the replay cannot fall behind the program unnoticed. Types moto does not implement
are listed as not checked.

    python -m tools.moto_replay --stacks dev prod      # plan each stack, replay it, print the verdicts
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiplatform.plan.cloud import SimulatedCloud

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"

# AWS types the program registers that moto does not implement (moto 5.2): never sent, listed.
NOT_IMPLEMENTED: Mapping[str, str] = {
    "aws:eks/addon:Addon": "EKS add-ons",
    "aws:eks/accessEntry:AccessEntry": "EKS access entries",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": "EKS access policy associations",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "EKS Pod Identity associations",
}


class ReplayError(Exception):
    """An input the replay does not know how to send (the replay, not AWS, is behind)."""


@dataclass
class Verdict:
    """moto's answer to one resource."""

    type: str
    name: str
    status: str  # "accepted", "refused" or "not checked"
    detail: str = ""

    def line(self) -> str:
        return f"{self.status:<12} {self.type} {self.name}{'  ' + self.detail if self.detail else ''}"


@dataclass
class StackReplay:
    stack: str
    verdicts: list[Verdict] = field(default_factory=list)
    seconds: float = 0.0

    def with_status(self, status: str) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == status]

    @property
    def refused(self) -> list[Verdict]:
        return self.with_status("refused")

    @property
    def not_checked(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in self.with_status("not checked"):
            counts[v.type] = counts.get(v.type, 0) + 1
        return counts

    def summary(self) -> str:
        accepted, refused = len(self.with_status("accepted")), len(self.refused)
        skipped = ", ".join(f"{NOT_IMPLEMENTED[t]} ({n})" for t, n in sorted(self.not_checked.items()))
        return (
            f"{self.stack}: {accepted} accepted, {refused} refused by moto in {self.seconds:.1f} s; "
            f"not checked (moto lacks them): {skipped or 'none'}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "seconds": self.seconds,
            "verdicts": [asdict(v) for v in self.verdicts],
        }


# -- the server ---------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def moto_server(log: Path | None = None) -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port), its own process, for the ``with`` block; yields its URL.
    AWS's managed policies are loaded, so an attachment of one that does not exist is refused. Stopped
    on exit, also when the block raises."""
    port = _free_port()
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "--host", "127.0.0.1", "--port", str(port)],
        stdout=output,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the moto server did not start (exit {process.poll()})") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            output.close()


def reset(endpoint: str) -> None:
    """Empty the server's state: one server serves several stacks, each from a clean account."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60):
        pass


# -- values: the plan's simulated ones -> moto's ------------------------------------------------------
def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


class Translation:
    """The plan's simulated cloud values and the ones moto gave for the same resource's same output."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def learn(self, simulated: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
        got = dict(_flatten(actual))
        for path, value in _flatten(simulated):
            # Only the cloud's own values: long enough to be unique, and not a name that moto's value
            # merely contains (an ARN built from it).
            if path in got and value not in got[path] and len(value) >= 8:
                self.values[value] = got[path]
                # An OIDC issuer appears without its scheme in trust policies and provider ARNs.
                if value.startswith("https://") and got[path].startswith("https://"):
                    self.values[value.removeprefix("https://")] = got[path].removeprefix("https://")

    def apply(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.apply(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.apply(v) for v in value]
        if isinstance(value, str):
            if value in self.values:
                return self.values[value]
            for old in sorted(self.values, key=len, reverse=True):
                if old in value:
                    value = value.replace(old, self.values[old])
        return value


# -- the AWS calls, per type --------------------------------------------------------------------------
def _tags(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in (inputs.get("tags") or {}).items()]


def _tag_spec(kind: str, inputs: Mapping[str, Any]) -> list[dict]:
    return [{"ResourceType": kind, "Tags": _tags(inputs)}] if inputs.get("tags") else []


def _capitalized(value: Any) -> Any:
    """``{"deviceName": ..., "ebs": {"volumeSize": ...}}`` -> ``{"DeviceName": ..., "Ebs": {"VolumeSize": ...}}``."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _capitalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_capitalized(v) for v in value]
    return value


def _bool(value: Any) -> bool:
    """The provider's string booleans in EC2 structures ("true") as the API takes them."""
    return value is True or value == "true"


Handler = Callable[["Replay", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Recipe:
    """How the AWS provider creates one type: the calls, and the inputs it keeps to itself."""

    create: Handler
    sent: frozenset[str]  # inputs the calls carry
    provider_only: frozenset[str] = frozenset()  # inputs the provider uses itself (deletes, updates)


def _role(r: Replay, i: dict) -> dict:
    role = r.iam.create_role(
        RoleName=i["name"],
        AssumeRolePolicyDocument=i["assumeRolePolicy"],
        Description=i.get("description", ""),
        Tags=_tags(i),
    )["Role"]
    return {"arn": role["Arn"], "id": role["RoleName"]}


def _role_policy(r: Replay, i: dict) -> dict:
    r.iam.put_role_policy(RoleName=i["role"], PolicyName=i["name"], PolicyDocument=i["policy"])
    return {}


def _role_policy_attachment(r: Replay, i: dict) -> dict:
    r.iam.attach_role_policy(RoleName=i["role"], PolicyArn=i["policyArn"])
    return {}


def _policy(r: Replay, i: dict) -> dict:
    policy = r.iam.create_policy(
        PolicyName=i["name"], PolicyDocument=i["policy"], Description=i.get("description", ""), Tags=_tags(i)
    )["Policy"]
    return {"arn": policy["Arn"]}


def _oidc_provider(r: Replay, i: dict) -> dict:
    arn = r.iam.create_open_id_connect_provider(Url=i["url"], ClientIDList=i["clientIdLists"], Tags=_tags(i))[
        "OpenIDConnectProviderArn"
    ]
    return {"arn": arn}


def _kms_key(r: Replay, i: dict) -> dict:
    key = r.kms.create_key(
        Description=i.get("description", ""),
        Tags=[{"TagKey": k, "TagValue": v} for k, v in (i.get("tags") or {}).items()],
    )["KeyMetadata"]
    if i.get("enableKeyRotation"):
        r.kms.enable_key_rotation(KeyId=key["KeyId"])
    return {"arn": key["Arn"], "keyId": key["KeyId"], "id": key["KeyId"]}


def _kms_alias(r: Replay, i: dict) -> dict:
    r.kms.create_alias(AliasName=i["name"], TargetKeyId=i["targetKeyId"])
    return {}


def _vpc(r: Replay, i: dict) -> dict:
    vpc = r.ec2.create_vpc(CidrBlock=i["cidrBlock"], TagSpecifications=_tag_spec("vpc", i))["Vpc"]
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        if attribute in i:
            r.ec2.modify_vpc_attribute(
                VpcId=vpc["VpcId"], **{attribute[:1].upper() + attribute[1:]: {"Value": i[attribute]}}
            )
    return {"id": vpc["VpcId"]}


def _subnet(r: Replay, i: dict) -> dict:
    subnet = r.ec2.create_subnet(
        VpcId=i["vpcId"],
        CidrBlock=i["cidrBlock"],
        AvailabilityZone=i["availabilityZone"],
        TagSpecifications=_tag_spec("subnet", i),
    )["Subnet"]
    if "mapPublicIpOnLaunch" in i:
        r.ec2.modify_subnet_attribute(
            SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": i["mapPublicIpOnLaunch"]}
        )
    return {"id": subnet["SubnetId"]}


def _internet_gateway(r: Replay, i: dict) -> dict:
    gateway = r.ec2.create_internet_gateway(TagSpecifications=_tag_spec("internet-gateway", i))
    gateway_id = gateway["InternetGateway"]["InternetGatewayId"]
    if i.get("vpcId"):
        r.ec2.attach_internet_gateway(InternetGatewayId=gateway_id, VpcId=i["vpcId"])
    return {"id": gateway_id}


def _eip(r: Replay, i: dict) -> dict:
    address = r.ec2.allocate_address(
        Domain=i.get("domain", "vpc"), TagSpecifications=_tag_spec("elastic-ip", i)
    )
    return {
        "id": address["AllocationId"],
        "allocationId": address["AllocationId"],
        "publicIp": address["PublicIp"],
    }


def _nat_gateway(r: Replay, i: dict) -> dict:
    nat = r.ec2.create_nat_gateway(
        SubnetId=i["subnetId"], AllocationId=i["allocationId"], TagSpecifications=_tag_spec("natgateway", i)
    )["NatGateway"]
    return {"id": nat["NatGatewayId"]}


def _route_table(r: Replay, i: dict) -> dict:
    table = r.ec2.create_route_table(VpcId=i["vpcId"], TagSpecifications=_tag_spec("route-table", i))
    table_id = table["RouteTable"]["RouteTableId"]
    for route in i.get("routes") or []:
        target = {k[:1].upper() + k[1:]: v for k, v in route.items() if k != "cidrBlock"}
        unknown = set(target) - {"GatewayId", "NatGatewayId"}
        if unknown:
            raise ReplayError(f"routes: unknown route target {sorted(unknown)}")
        r.ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=route["cidrBlock"], **target)
    return {"id": table_id}


def _route_table_association(r: Replay, i: dict) -> dict:
    association = r.ec2.associate_route_table(SubnetId=i["subnetId"], RouteTableId=i["routeTableId"])
    return {"id": association["AssociationId"]}


def _security_group(r: Replay, i: dict) -> dict:
    group = r.ec2.create_security_group(
        GroupName=i["name"],
        Description=i.get("description", "Managed by Pulumi"),
        VpcId=i["vpcId"],
        TagSpecifications=_tag_spec("security-group", i),
    )
    return {"id": group["GroupId"]}


def _ingress_rule(r: Replay, i: dict) -> dict:
    permission: dict[str, Any] = {
        "IpProtocol": i["ipProtocol"],
        "FromPort": i["fromPort"],
        "ToPort": i["toPort"],
    }
    pair = {"GroupId": i["referencedSecurityGroupId"], "Description": i.get("description", "")}
    permission["UserIdGroupPairs"] = [pair]
    rules = r.ec2.authorize_security_group_ingress(GroupId=i["securityGroupId"], IpPermissions=[permission])
    return {"id": rules["SecurityGroupRules"][0]["SecurityGroupRuleId"]}


def _launch_template(r: Replay, i: dict) -> dict:
    data: dict[str, Any] = {}
    if "blockDeviceMappings" in i:
        mappings = _capitalized(i["blockDeviceMappings"])
        for mapping in mappings:
            ebs = mapping.get("Ebs") or {}
            for flag in ("Encrypted", "DeleteOnTermination"):
                if flag in ebs:
                    ebs[flag] = _bool(ebs[flag])
        data["BlockDeviceMappings"] = mappings
    if "metadataOptions" in i:
        data["MetadataOptions"] = _capitalized(i["metadataOptions"])
    if "tagSpecifications" in i:
        data["TagSpecifications"] = [
            {"ResourceType": spec["resourceType"], "Tags": _tags(spec)} for spec in i["tagSpecifications"]
        ]
    template = r.ec2.create_launch_template(
        LaunchTemplateName=i["name"],
        VersionDescription=i.get("description", ""),
        LaunchTemplateData=data,
        TagSpecifications=_tag_spec("launch-template", i),
    )["LaunchTemplate"]
    return {
        "id": template["LaunchTemplateId"],
        "latestVersion": template["LatestVersionNumber"],
        "defaultVersion": template["DefaultVersionNumber"],
    }


def _flow_log(r: Replay, i: dict) -> dict:
    answer = r.ec2.create_flow_logs(
        ResourceIds=[i["vpcId"]],
        ResourceType="VPC",
        TrafficType=i["trafficType"],
        LogDestinationType=i.get("logDestinationType", "cloud-watch-logs"),
        LogDestination=i["logDestination"],
        DeliverLogsPermissionArn=i["iamRoleArn"],
        TagSpecifications=_tag_spec("vpc-flow-log", i),
    )
    if answer.get("Unsuccessful"):
        raise _refusal(answer["Unsuccessful"][0]["Error"]["Message"])
    return {"id": answer["FlowLogIds"][0]}


def _ec2_tag(r: Replay, i: dict) -> dict:
    r.ec2.create_tags(Resources=[i["resourceId"]], Tags=[{"Key": i["key"], "Value": i["value"]}])
    return {}


def _file_system(r: Replay, i: dict) -> dict:
    fs = r.efs.create_file_system(
        CreationToken=r.current,  # the provider generates one per resource
        PerformanceMode=i.get("performanceMode", "generalPurpose"),
        ThroughputMode=i.get("throughputMode", "bursting"),
        Encrypted=i.get("encrypted", False),
        **({"KmsKeyId": i["kmsKeyId"]} if i.get("kmsKeyId") else {}),
        Tags=_tags(i),
    )
    if i.get("lifecyclePolicies"):
        # The API spells it TransitionToIA where the provider spells it transitionToIa.
        policies = [
            {("TransitionToIA" if k == "transitionToIa" else k[:1].upper() + k[1:]): v for k, v in p.items()}
            for p in i["lifecyclePolicies"]
        ]
        r.efs.put_lifecycle_configuration(FileSystemId=fs["FileSystemId"], LifecyclePolicies=policies)
    return {"id": fs["FileSystemId"], "arn": fs["FileSystemArn"]}


def _mount_target(r: Replay, i: dict) -> dict:
    target = r.efs.create_mount_target(
        FileSystemId=i["fileSystemId"], SubnetId=i["subnetId"], SecurityGroups=i.get("securityGroups", [])
    )
    return {"id": target["MountTargetId"]}


def _eks_cluster(r: Replay, i: dict) -> dict:
    vpc = i["vpcConfig"]
    request: dict[str, Any] = {
        "name": i["name"],
        "version": i["version"],
        "roleArn": i["roleArn"],
        "resourcesVpcConfig": {
            "subnetIds": vpc["subnetIds"],
            "endpointPublicAccess": vpc.get("endpointPublicAccess", True),
            "endpointPrivateAccess": vpc.get("endpointPrivateAccess", False),
            **({"publicAccessCidrs": vpc["publicAccessCidrs"]} if "publicAccessCidrs" in vpc else {}),
        },
        "tags": i.get("tags") or {},
    }
    if i.get("enabledClusterLogTypes"):
        request["logging"] = {"clusterLogging": [{"types": i["enabledClusterLogTypes"], "enabled": True}]}
    if i.get("encryptionConfig"):
        config = i["encryptionConfig"]
        request["encryptionConfig"] = [
            {"resources": config["resources"], "provider": {"keyArn": config["provider"]["keyArn"]}}
        ]
    for key in ("accessConfig", "computeConfig", "storageConfig", "kubernetesNetworkConfig"):
        if key in i:
            request[key if key != "accessConfig" else "accessConfig"] = i[key]
    if "bootstrapSelfManagedAddons" in i:
        request["bootstrapSelfManagedAddons"] = i["bootstrapSelfManagedAddons"]
    if "deletionProtection" in i:
        request["deletionProtection"] = i["deletionProtection"]
    cluster = r.eks.create_cluster(**request)["cluster"]
    # EKS makes the cluster security group in the cluster's VPC: the replay makes it, so rules that
    # name it can be checked.
    subnet = r.ec2.describe_subnets(SubnetIds=vpc["subnetIds"][:1])["Subnets"][0]
    group = r.ec2.create_security_group(
        GroupName=f"eks-cluster-sg-{i['name']}",
        Description="EKS created security group applied to ENI that is attached to EKS Control Plane master nodes",
        VpcId=subnet["VpcId"],
    )
    r.eks_clusters[i["name"]] = subnet["VpcId"]
    return {
        "arn": cluster["arn"],
        "id": cluster["name"],
        "endpoint": cluster.get("endpoint", ""),
        "identities": [{"oidcs": [{"issuer": cluster["identity"]["oidc"]["issuer"]}]}],
        "vpcConfig": {"clusterSecurityGroupId": group["GroupId"]},
    }


def _node_group(r: Replay, i: dict) -> dict:
    request: dict[str, Any] = {
        "clusterName": i["clusterName"],
        "nodegroupName": i["nodeGroupName"],
        "nodeRole": i["nodeRoleArn"],
        "subnets": i["subnetIds"],
        "scalingConfig": i["scalingConfig"],
        "tags": i.get("tags") or {},
    }
    for key in ("instanceTypes", "amiType", "capacityType", "labels", "version", "updateConfig"):
        if key in i:
            request[key] = i[key]
    if i.get("taints"):
        effects = {
            "NoSchedule": "NO_SCHEDULE",
            "NoExecute": "NO_EXECUTE",
            "PreferNoSchedule": "PREFER_NO_SCHEDULE",
        }
        request["taints"] = [{**t, "effect": effects.get(t["effect"], t["effect"])} for t in i["taints"]]
    if "launchTemplate" in i:
        template = i["launchTemplate"]
        request["launchTemplate"] = {"id": template["id"], "version": str(template["version"])}
    group = r.eks.create_nodegroup(**request)["nodegroup"]
    asg = group["resources"]["autoScalingGroups"][0]["name"]
    # EKS makes the group's autoscaling group: the replay makes it, so tags on it can be checked.
    scaling = i["scalingConfig"]
    launch = request.get("launchTemplate")
    r.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=asg,
        MinSize=scaling["minSize"],
        MaxSize=scaling["maxSize"],
        DesiredCapacity=scaling.get("desiredSize", scaling["minSize"]),
        VPCZoneIdentifier=",".join(i["subnetIds"]),
        **(
            {"LaunchTemplate": {"LaunchTemplateId": launch["id"], "Version": launch["version"]}}
            if launch
            else {"LaunchTemplate": {"LaunchTemplateId": r.bare_launch_template(), "Version": "1"}}
        ),
    )
    return {
        "arn": group["nodegroupArn"],
        "resources": [{"autoscalingGroups": [{"name": asg}]}],
    }


def _asg_tag(r: Replay, i: dict) -> dict:
    tag = i["tag"]
    r.autoscaling.create_or_update_tags(
        Tags=[
            {
                "ResourceId": i["autoscalingGroupName"],
                "ResourceType": "auto-scaling-group",
                "Key": tag["key"],
                "Value": tag["value"],
                "PropagateAtLaunch": tag["propagateAtLaunch"],
            }
        ]
    )
    return {}


def _log_group(r: Replay, i: dict) -> dict:
    r.logs.create_log_group(logGroupName=i["name"], tags=i.get("tags") or {})
    if i.get("retentionInDays"):
        r.logs.put_retention_policy(logGroupName=i["name"], retentionInDays=i["retentionInDays"])
    group = r.logs.describe_log_groups(logGroupNamePrefix=i["name"])["logGroups"][0]
    return {"arn": group["arn"].removesuffix(":*")}


def _event_rule(r: Replay, i: dict) -> dict:
    arn = r.events.put_rule(
        Name=i["name"], EventPattern=i["eventPattern"], Description=i.get("description", ""), Tags=_tags(i)
    )["RuleArn"]
    return {"arn": arn}


def _event_target(r: Replay, i: dict) -> dict:
    answer = r.events.put_targets(Rule=i["rule"], Targets=[{"Id": i["targetId"], "Arn": i["arn"]}])
    if answer.get("FailedEntryCount"):
        raise _refusal(answer["FailedEntries"][0].get("ErrorMessage", "target refused"))
    return {}


def _bucket(r: Replay, i: dict) -> dict:
    r.s3.create_bucket(Bucket=i["bucket"])
    if i.get("tags"):
        r.s3.put_bucket_tagging(Bucket=i["bucket"], Tagging={"TagSet": _tags(i)})
    return {}


def _bucket_lifecycle(r: Replay, i: dict) -> dict:
    r.s3.put_bucket_lifecycle_configuration(
        Bucket=i["bucket"], LifecycleConfiguration={"Rules": _lifecycle_rules(i["rules"])}
    )
    return {}


def _lifecycle_rules(rules: list[dict]) -> list[dict]:
    out = []
    for rule in rules:
        converted = _capitalized(rule)
        converted["ID"] = converted.pop("Id")
        out.append(converted)
    return out


def _bucket_ownership(r: Replay, i: dict) -> dict:
    r.s3.put_bucket_ownership_controls(
        Bucket=i["bucket"], OwnershipControls={"Rules": [{"ObjectOwnership": i["rule"]["objectOwnership"]}]}
    )
    return {}


def _bucket_policy(r: Replay, i: dict) -> dict:
    r.s3.put_bucket_policy(Bucket=i["bucket"], Policy=i["policy"])
    return {}


def _public_access_block(r: Replay, i: dict) -> dict:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    r.s3.put_public_access_block(
        Bucket=i["bucket"],
        PublicAccessBlockConfiguration={
            {
                "blockPublicAcls": "BlockPublicAcls",
                "blockPublicPolicy": "BlockPublicPolicy",
                "ignorePublicAcls": "IgnorePublicAcls",
                "restrictPublicBuckets": "RestrictPublicBuckets",
            }[f]: bool(i.get(f, False))
            for f in flags
        },
    )
    return {}


def _bucket_encryption(r: Replay, i: dict) -> dict:
    rules = []
    for rule in i["rules"]:
        default = rule["applyServerSideEncryptionByDefault"]
        converted: dict[str, Any] = {
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": default["sseAlgorithm"],
                **({"KMSMasterKeyID": default["kmsMasterKeyId"]} if "kmsMasterKeyId" in default else {}),
            }
        }
        if "bucketKeyEnabled" in rule:
            converted["BucketKeyEnabled"] = rule["bucketKeyEnabled"]
        rules.append(converted)
    r.s3.put_bucket_encryption(Bucket=i["bucket"], ServerSideEncryptionConfiguration={"Rules": rules})
    return {}


def _bucket_versioning(r: Replay, i: dict) -> dict:
    r.s3.put_bucket_versioning(
        Bucket=i["bucket"], VersioningConfiguration={"Status": i["versioningConfiguration"]["status"]}
    )
    return {}


def _secret(r: Replay, i: dict) -> dict:
    secret = r.secretsmanager.create_secret(
        Name=i["name"],
        Description=i.get("description", ""),
        **({"KmsKeyId": i["kmsKeyId"]} if "kmsKeyId" in i else {}),
        Tags=_tags(i),
    )
    return {"arn": secret["ARN"]}


def _queue(r: Replay, i: dict) -> dict:
    attributes = {}
    if "messageRetentionSeconds" in i:
        attributes["MessageRetentionPeriod"] = str(i["messageRetentionSeconds"])
    if "sqsManagedSseEnabled" in i:
        attributes["SqsManagedSseEnabled"] = str(i["sqsManagedSseEnabled"]).lower()
    url = r.sqs.create_queue(QueueName=i["name"], Attributes=attributes, tags=i.get("tags") or {})["QueueUrl"]
    arn = r.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"url": url, "arn": arn}


def _queue_policy(r: Replay, i: dict) -> dict:
    r.sqs.set_queue_attributes(QueueUrl=i["queueUrl"], Attributes={"Policy": i["policy"]})
    return {}


_TAGS = frozenset({"tags"})

RECIPES: Mapping[str, Recipe] = {
    "aws:iam/role:Role": Recipe(_role, frozenset({"name", "assumeRolePolicy", "description"}) | _TAGS),
    "aws:iam/rolePolicy:RolePolicy": Recipe(_role_policy, frozenset({"name", "role", "policy"})),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": Recipe(
        _role_policy_attachment, frozenset({"role", "policyArn"})
    ),
    "aws:iam/policy:Policy": Recipe(_policy, frozenset({"name", "policy", "description"}) | _TAGS),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": Recipe(
        _oidc_provider, frozenset({"url", "clientIdLists"}) | _TAGS
    ),
    "aws:kms/key:Key": Recipe(
        _kms_key, frozenset({"description", "enableKeyRotation"}) | _TAGS, frozenset({"deletionWindowInDays"})
    ),
    "aws:kms/alias:Alias": Recipe(_kms_alias, frozenset({"name", "targetKeyId"})),
    "aws:ec2/vpc:Vpc": Recipe(
        _vpc, frozenset({"cidrBlock", "enableDnsSupport", "enableDnsHostnames"}) | _TAGS
    ),
    "aws:ec2/subnet:Subnet": Recipe(
        _subnet, frozenset({"vpcId", "cidrBlock", "availabilityZone", "mapPublicIpOnLaunch"}) | _TAGS
    ),
    "aws:ec2/internetGateway:InternetGateway": Recipe(_internet_gateway, frozenset({"vpcId"}) | _TAGS),
    "aws:ec2/eip:Eip": Recipe(_eip, frozenset({"domain"}) | _TAGS),
    "aws:ec2/natGateway:NatGateway": Recipe(_nat_gateway, frozenset({"subnetId", "allocationId"}) | _TAGS),
    "aws:ec2/routeTable:RouteTable": Recipe(_route_table, frozenset({"vpcId", "routes"}) | _TAGS),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": Recipe(
        _route_table_association, frozenset({"subnetId", "routeTableId"})
    ),
    "aws:ec2/securityGroup:SecurityGroup": Recipe(
        _security_group, frozenset({"name", "description", "vpcId"}) | _TAGS
    ),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": Recipe(
        _ingress_rule,
        frozenset(
            {
                "securityGroupId",
                "referencedSecurityGroupId",
                "ipProtocol",
                "fromPort",
                "toPort",
                "description",
            }
        ),
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": Recipe(
        _launch_template,
        frozenset({"name", "description", "blockDeviceMappings", "metadataOptions", "tagSpecifications"})
        | _TAGS,
        frozenset({"updateDefaultVersion"}),
    ),
    "aws:ec2/flowLog:FlowLog": Recipe(
        _flow_log,
        frozenset({"vpcId", "trafficType", "logDestinationType", "logDestination", "iamRoleArn"}) | _TAGS,
    ),
    "aws:ec2/tag:Tag": Recipe(_ec2_tag, frozenset({"resourceId", "key", "value"})),
    "aws:efs/fileSystem:FileSystem": Recipe(
        _file_system,
        frozenset({"performanceMode", "throughputMode", "encrypted", "kmsKeyId", "lifecyclePolicies"})
        | _TAGS,
    ),
    "aws:efs/mountTarget:MountTarget": Recipe(
        _mount_target, frozenset({"fileSystemId", "subnetId", "securityGroups"})
    ),
    "aws:eks/cluster:Cluster": Recipe(
        _eks_cluster,
        frozenset(
            {
                "name",
                "version",
                "roleArn",
                "vpcConfig",
                "enabledClusterLogTypes",
                "encryptionConfig",
                "accessConfig",
                "computeConfig",
                "storageConfig",
                "kubernetesNetworkConfig",
                "bootstrapSelfManagedAddons",
                "deletionProtection",
            }
        )
        | _TAGS,
    ),
    "aws:eks/nodeGroup:NodeGroup": Recipe(
        _node_group,
        frozenset(
            {
                "clusterName",
                "nodeGroupName",
                "nodeRoleArn",
                "subnetIds",
                "scalingConfig",
                "instanceTypes",
                "amiType",
                "capacityType",
                "labels",
                "version",
                "updateConfig",
                "taints",
                "launchTemplate",
            }
        )
        | _TAGS,
    ),
    "aws:autoscaling/tag:Tag": Recipe(_asg_tag, frozenset({"autoscalingGroupName", "tag"})),
    "aws:cloudwatch/logGroup:LogGroup": Recipe(_log_group, frozenset({"name", "retentionInDays"}) | _TAGS),
    "aws:cloudwatch/eventRule:EventRule": Recipe(
        _event_rule, frozenset({"name", "eventPattern", "description"}) | _TAGS
    ),
    "aws:cloudwatch/eventTarget:EventTarget": Recipe(_event_target, frozenset({"rule", "targetId", "arn"})),
    "aws:s3/bucket:Bucket": Recipe(_bucket, frozenset({"bucket"}) | _TAGS, frozenset({"forceDestroy"})),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": Recipe(
        _bucket_lifecycle, frozenset({"bucket", "rules"})
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": Recipe(
        _bucket_ownership, frozenset({"bucket", "rule"})
    ),
    "aws:s3/bucketPolicy:BucketPolicy": Recipe(_bucket_policy, frozenset({"bucket", "policy"})),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": Recipe(
        _public_access_block,
        frozenset(
            {"bucket", "blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"}
        ),
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": Recipe(
        _bucket_encryption, frozenset({"bucket", "rules"})
    ),
    "aws:s3/bucketVersioning:BucketVersioning": Recipe(
        _bucket_versioning, frozenset({"bucket", "versioningConfiguration"})
    ),
    "aws:secretsmanager/secret:Secret": Recipe(
        _secret, frozenset({"name", "description", "kmsKeyId"}) | _TAGS, frozenset({"recoveryWindowInDays"})
    ),
    "aws:sqs/queue:Queue": Recipe(
        _queue, frozenset({"name", "messageRetentionSeconds", "sqsManagedSseEnabled"}) | _TAGS
    ),
    "aws:sqs/queuePolicy:QueuePolicy": Recipe(_queue_policy, frozenset({"queueUrl", "policy"})),
}


class _Refusal(Exception):
    pass


def _refusal(message: str) -> _Refusal:
    return _Refusal(message)


# -- one replay ---------------------------------------------------------------------------------------
class Replay:
    """One stack's AWS resources against a moto server, in registration order."""

    def __init__(self, endpoint: str, region: str = REGION):
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        config = Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60)

        def client(service: str):
            return session.client(service, endpoint_url=endpoint, config=config)

        self.iam, self.kms, self.ec2, self.efs = client("iam"), client("kms"), client("ec2"), client("efs")
        self.eks, self.autoscaling, self.logs = client("eks"), client("autoscaling"), client("logs")
        self.events, self.s3, self.sqs = client("events"), client("s3"), client("sqs")
        self.secretsmanager = client("secretsmanager")
        self.cloud = SimulatedCloud(region=region)
        self.translation = Translation()
        self.created: list[str] = []
        self.current = ""  # the resource being created
        self.eks_clusters: dict[str, str] = {}
        self._bare_template: str | None = None

    def bare_launch_template(self) -> str:
        """The launch template EKS makes for a node group that names none."""
        if self._bare_template is None:
            template = self.ec2.create_launch_template(
                LaunchTemplateName="eks-default", LaunchTemplateData={}
            )
            self._bare_template = template["LaunchTemplate"]["LaunchTemplateId"]
        return self._bare_template

    def resource(self, entry: Mapping[str, Any]) -> Verdict:
        from botocore.exceptions import ClientError, ParamValidationError

        typ, name = entry["type"], entry["name"]
        if typ in NOT_IMPLEMENTED:
            return Verdict(typ, name, "not checked", f"moto lacks {NOT_IMPLEMENTED[typ]}")
        recipe = RECIPES.get(typ)
        if recipe is None:
            raise ReplayError(f"{typ} '{name}': no recipe to replay this type (add one to RECIPES)")
        unknown = set(entry["inputs"]) - recipe.sent - recipe.provider_only
        if unknown:
            raise ReplayError(f"{typ} '{name}': inputs the replay does not send: {sorted(unknown)}")
        # The physical names the AWS provider generates, as the plan generated them.
        named = self.cloud.autoname(typ, name, entry["inputs"])
        ident, simulated = self.cloud.create(typ, name, named)
        inputs = self.translation.apply(named)
        self.current = name
        try:
            actual = recipe.create(self, inputs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return Verdict(typ, name, "refused", f"{error.get('Code')}: {error.get('Message')}")
        except ParamValidationError as exc:
            return Verdict(typ, name, "refused", f"invalid request: {exc}")
        except _Refusal as exc:
            return Verdict(typ, name, "refused", str(exc))
        self.created.append(name)
        self.translation.learn({"id": ident, **simulated}, actual)
        return Verdict(typ, name, "accepted")

    def run(self, resources: list[Mapping[str, Any]], stack: str = "") -> StackReplay:
        result = StackReplay(stack)
        start = time.monotonic()
        for entry in resources:
            if entry.get("custom") and entry["type"].startswith("aws:"):
                result.verdicts.append(self.resource(entry))
        result.seconds = round(time.monotonic() - start, 1)
        return result


def replay(endpoint: str, resources: list[Mapping[str, Any]], stack: str = "") -> StackReplay:
    """Replay one plan's resources on a clean moto account."""
    reset(endpoint)
    return Replay(endpoint).run(resources, stack)


# -- the stacks ---------------------------------------------------------------------------------------
def stack_file(stack: str) -> Path:
    committed = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    return committed if committed.exists() else PROJECT_ROOT / "examples" / "stacks" / f"Pulumi.{stack}.yaml"


def planned_resources(stack: str, out: Path) -> list[dict[str, Any]]:
    """The stack's offline plan (``resources.json``), written into ``out``."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.plan",
            "--stack",
            stack,
            "--config-file",
            str(stack_file(stack)),
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{stack}: the plan failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}"
        )
    return json.loads((out / "resources.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    parser.add_argument("--verbose", action="store_true", help="print every resource's verdict")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        for stack in args.stacks:
            result = replay(endpoint, planned_resources(stack, Path(tmp) / stack), stack)
            for verdict in result.verdicts:
                if args.verbose or verdict.status == "refused":
                    print(f"  {verdict.line()}")
            print(result.summary())
            failed |= bool(result.refused)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
