"""The guardrails policy pack: one compliant and one non-compliant resource per policy, the committed
stacks, the levels per environment, and the plan's report. ``policy/__main__.py`` is never imported
(constructing ``PolicyPack`` starts the policy server)."""

from __future__ import annotations

import ast
import copy
import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from aiplatform import guardrails as p
from aiplatform import validation
from aiplatform.compute.pools import NodeClassSettings, ec2_node_class_spec, node_pool_spec
from aiplatform.config import ConfigError
from aiplatform.plan import cli as plan_tool
from aiplatform.plan.policy_report import evaluate, evaluate_stack, policy_report
from tests.compute.test_pools import training_pool
from tests.program import plan_config, planned
from tests.stacks import stack_config
from tools import syntax

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
OPTS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
TYPES = {
    "Deployment": "kubernetes:apps/v1:Deployment",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    "DaemonSet": "kubernetes:apps/v1:DaemonSet",
    "Job": "kubernetes:batch/v1:Job",
    "CronJob": "kubernetes:batch/v1:CronJob",
    "Pod": "kubernetes:core/v1:Pod",
    "HPA": "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    "PDB": "kubernetes:policy/v1:PodDisruptionBudget",
    "ExternalSecret": "kubernetes:external-secrets.io/v1:ExternalSecret",
    "Ingress": "kubernetes:networking.k8s.io/v1:Ingress",
    "Release": "kubernetes:helm.sh/v3:Release",
    "Role": "aws:iam/role:Role",
    "RolePolicy": "aws:iam/rolePolicy:RolePolicy",
    "Policy": "aws:iam/policy:Policy",
    "Cluster": "aws:eks/cluster:Cluster",
    "LaunchTemplate": "aws:ec2/launchTemplate:LaunchTemplate",
    "NodeGroup": "aws:eks/nodeGroup:NodeGroup",
    "Bucket": "aws:s3/bucket:Bucket",
    "Encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "PublicAccess": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
}
LABELS = {"app.kubernetes.io/name": "llm"}

# -- small, compliant building blocks ------------------------------------------------------------


def container(name: str = "server", **changes) -> dict:
    base = {
        "name": name,
        "image": "registry.example.com/ai/llm:1.4.0",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {**base, **changes}


def pod(*containers: dict, init: tuple[dict, ...] = (), **changes) -> dict:
    base = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": list(containers) or [container()],
    }
    if init:
        base["initContainers"] = list(init)
    return {**base, **changes}


def workload(kind: str, spec: dict, replicas: int | None = None, name: str = "llm") -> tuple[str, dict]:
    template = {"metadata": {"labels": LABELS}, "spec": spec}
    body = {
        "Pod": spec,
        "Job": {"template": template},
        "CronJob": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": template}}},
    }.get(kind, {"selector": {"matchLabels": LABELS}, "template": template})
    if replicas is not None:
        body["replicas"] = replicas
    return TYPES[kind], {"metadata": {"name": name, "namespace": "ml"}, "kind": kind, "spec": body}


def deployment(*containers: dict, **pod_changes) -> tuple[str, dict]:
    return workload("Deployment", pod(*containers, **pod_changes))


def with_security(**context) -> dict:
    return container(securityContext={**container()["securityContext"], **context})


def trust(condition: dict | None) -> tuple[str, dict]:
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.eks/id/ABC"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        statement["Condition"] = condition
    return TYPES["Role"], {
        "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    }


def iam(typ: str, action, resource) -> tuple[str, dict]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return TYPES[typ], {"policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})}


def cluster(vpc: dict, encryption: dict | None = None) -> tuple[str, dict]:
    encryption = encryption or {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:::key/k"}}
    return TYPES["Cluster"], {"vpcConfig": vpc, "encryptionConfig": encryption}


def hpa(low: int, high: int) -> tuple[str, dict]:
    spec = {"minReplicas": low, "maxReplicas": high, "scaleTargetRef": {"kind": "Deployment", "name": "llm"}}
    return TYPES["HPA"], {"metadata": {"name": "llm", "namespace": "ml"}, "spec": spec}


def external_secret(interval: str) -> tuple[str, dict]:
    return TYPES["ExternalSecret"], {
        "metadata": {"name": "s", "namespace": "ml"},
        "spec": {"refreshInterval": interval},
    }


def ingress(tls: list | None, annotations: dict | None = None) -> tuple[str, dict]:
    spec: dict = {"rules": [{"host": "llm.example.com"}]}
    if tls is not None:
        spec["tls"] = tls
    return TYPES["Ingress"], {"metadata": {"name": "llm", "annotations": annotations or {}}, "spec": spec}


def release(version: str | None) -> tuple[str, dict]:
    props = {"chart": "external-secrets", "repositoryOpts": {"repo": "https://charts.external-secrets.io"}}
    if version is not None:
        props["version"] = version
    return TYPES["Release"], props


GPU = {
    "requests": {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": "1"},
    "limits": {"memory": "8Gi", "nvidia.com/gpu": "1"},
}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
# A container using the pod's DRA claim "gpu", and the pod's claim made from a template.
CLAIMED = {**container()["resources"], "claims": [{"name": "gpu"}]}
POD_CLAIMS = [{"name": "gpu", "resourceClaimTemplateName": "llm-gpu"}]
SUB = {
    "StringEquals": {
        "oidc.eks/id/ABC:sub": "system:serviceaccount:ml:llm",
        "oidc.eks/id/ABC:aud": "sts.amazonaws.com",
    }
}

# -- one compliant and at least one non-compliant resource per resource policy ------------------
# (policy, compliant (type, props), [(non-compliant (type, props), expected message fragment), ...])


def node_pool(limits: dict | None) -> tuple[str, dict]:
    spec = node_pool_spec(training_pool(), "karpenter")
    spec.pop("limits")
    if limits is not None:
        spec["limits"] = limits
    return p.NODE_POOL_TYPE, {"metadata": {"name": "training"}, "spec": spec}


def ec2_node_class(
    tokens: str = "required", encrypted: bool = True, mappings: bool = True
) -> tuple[str, dict]:
    spec = ec2_node_class_spec(
        NodeClassSettings(role_name="nodes"), "al2023@v20260714", {"karpenter.sh/discovery": "ai"}
    )
    spec["metadataOptions"]["httpTokens"] = tokens
    spec["blockDeviceMappings"][0]["ebs"]["encrypted"] = encrypted
    if not mappings:
        del spec["blockDeviceMappings"]
    return p.EC2_NODE_CLASS_TYPE, {"metadata": {"name": "gpu"}, "spec": spec}


RESOURCE_CASES = [
    (
        p.container_resources,
        deployment(),
        [
            (deployment(container(resources={"requests": {"cpu": "1"}})), "requests.memory, limits.memory"),
            (deployment(init=(container("fetch", resources={}),)), "container 'fetch'"),
            (workload("CronJob", pod(container(resources={"limits": {"memory": "1Gi"}}))), "requests.cpu"),
        ],
    ),
    (
        p.image_pinned,
        deployment(container(image="registry.example.com/ai/llm@sha256:" + "a" * 64)),
        [
            (deployment(container(image="registry.example.com/ai/llm:latest")), "uses :latest"),
            (deployment(container(image="registry.example.com:5000/ai/llm")), "has no tag"),
            (workload("Pod", pod(container(), container("sidecar", image="fluent-bit"))), "'sidecar'"),
        ],
    ),
    (
        p.no_privileged,
        deployment(with_security(privileged=False)),
        [(workload("DaemonSet", pod(with_security(privileged=True))), "runs privileged")],
    ),
    (
        p.no_privilege_escalation,
        deployment(),
        [
            (deployment(with_security(allowPrivilegeEscalation=True)), "allowPrivilegeEscalation"),
            (deployment(init=(container("init", securityContext={}),)), "container 'init'"),
        ],
    ),
    (
        p.run_as_non_root,
        deployment(securityContext={}, containers=[with_security(runAsNonRoot=True)]),
        [
            (deployment(securityContext={}), "may run as root"),
            (deployment(with_security(runAsUser=0)), "user 0"),
        ],
    ),
    (
        p.drop_all_capabilities,
        deployment(with_security(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})),
        [
            (deployment(with_security(capabilities={"drop": ["NET_RAW"]})), "does not drop ALL"),
            (deployment(with_security(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]})), "SYS_ADMIN"),
        ],
    ),
    (
        p.seccomp_runtime_default,
        deployment(
            securityContext={"runAsNonRoot": True},
            containers=[with_security(seccompProfile={"type": "RuntimeDefault"})],
        ),
        [
            (deployment(securityContext={"runAsNonRoot": True}), "seccomp profile is unset"),
            (deployment(with_security(seccompProfile={"type": "Unconfined"})), "Unconfined"),
        ],
    ),
    (
        p.gpu_tolerates_taint,
        deployment(container(resources=GPU), tolerations=[GPU_TOLERATION]),
        [
            (deployment(container(resources=GPU)), "does not tolerate"),
            (
                workload(
                    "Job", pod(container(resources=GPU), tolerations=[{**GPU_TOLERATION, "value": "no"}])
                ),
                "request nvidia.com/gpu",
            ),
        ],
    ),
    (
        p.gpu_one_allocation,
        deployment(container(resources=CLAIMED), tolerations=[GPU_TOLERATION], resourceClaims=POD_CLAIMS),
        [
            (
                deployment(container(resources=GPU), tolerations=[GPU_TOLERATION], resourceClaims=POD_CLAIMS),
                "request nvidia.com/gpu and the pod has the DRA claims gpu",
            ),
            (
                workload(
                    "Job",
                    pod(
                        container(resources=CLAIMED),
                        init=(container("warmup", resources=GPU),),
                        resourceClaims=POD_CLAIMS,
                    ),
                ),
                "containers warmup request nvidia.com/gpu",
            ),
        ],
    ),
    (
        p.no_static_aws_credentials,
        deployment(container(env=[{"name": "AWS_REGION", "value": "us-east-1"}])),
        [
            (
                deployment(container(env=[{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA..."}])),
                "AWS_ACCESS_KEY_ID",
            ),
            (
                workload(
                    "StatefulSet",
                    pod(
                        container(
                            env=[
                                {
                                    "name": "AWS_SECRET_ACCESS_KEY",
                                    "valueFrom": {"secretKeyRef": {"name": "aws", "key": "secret"}},
                                }
                            ]
                        )
                    ),
                ),
                "AWS_SECRET_ACCESS_KEY",
            ),
        ],
    ),
    (
        p.irsa_trust_scoped,
        trust(SUB),
        [
            (trust(None), "without a ':sub' condition"),
            (trust({"StringEquals": {"oidc.eks/id/ABC:aud": "sts.amazonaws.com"}}), "without a ':sub'"),
            (trust({"StringLike": {"oidc.eks/id/ABC:sub": "system:serviceaccount:*"}}), "wildcard"),
        ],
    ),
    (
        p.iam_no_wildcards,
        iam("RolePolicy", ["s3:GetObject"], "arn:aws:s3:::models/llm/*"),
        [
            (iam("RolePolicy", "*", "arn:aws:s3:::models"), "wildcard actions *"),
            (iam("Policy", ["s3:*"], "arn:aws:s3:::models"), "wildcard actions s3:*"),
            (iam("Policy", ["secretsmanager:GetSecretValue"], "*"), "on Resource '*'"),
            (iam("RolePolicy", ["kms:Decrypt", "ec2:DescribeInstances"], ["*"]), "kms:Decrypt on Resource"),
        ],
    ),
    (
        p.eks_endpoint_restricted,
        cluster({"endpointPublicAccess": True, "publicAccessCidrs": ["198.51.100.0/24"]}),
        [
            (
                cluster({"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}),
                "open to the world",
            ),
            (cluster({"endpointPublicAccess": True}), "without publicAccessCidrs"),
        ],
    ),
    (
        p.eks_secrets_encrypted,
        cluster({"endpointPublicAccess": False}),
        [
            (
                cluster({"endpointPublicAccess": False}, {"resources": ["configmaps"]}),
                "not envelope-encrypted",
            ),
            ((TYPES["Cluster"], {"vpcConfig": {}}), "not envelope-encrypted"),
        ],
    ),
    (
        p.nodes_imdsv2,
        (TYPES["LaunchTemplate"], {"metadataOptions": {"httpTokens": "required", "httpEndpoint": "enabled"}}),
        [
            (
                (TYPES["LaunchTemplate"], {"metadataOptions": {"httpTokens": "optional"}}),
                "httpTokens is optional",
            ),
            ((TYPES["LaunchTemplate"], {}), "httpTokens is unset"),
            ((TYPES["NodeGroup"], {"clusterName": "ai", "scalingConfig": {}}), "has no launch template"),
        ],
    ),
    (
        p.node_pools_limited,
        node_pool({"cpu": "192", "nvidia.com/gpu": "16"}),
        [
            (node_pool(None), "sets no cpu or nvidia.com/gpu limit"),
            (node_pool({"memory": "1Ti"}), "sets no cpu or nvidia.com/gpu limit"),
            (node_pool({"cpu": "192"}), "starts GPU nodes but sets no nvidia.com/gpu limit"),
        ],
    ),
    (
        p.ec2_node_classes_hardened,
        ec2_node_class(),
        [
            (ec2_node_class(tokens="optional"), "httpTokens is optional: require IMDSv2"),
            (ec2_node_class(encrypted=False), "/dev/xvda is not encrypted"),
            (ec2_node_class(mappings=False), "states no blockDeviceMappings"),
        ],
    ),
    (p.hpa_bounds, hpa(2, 2), [(hpa(3, 2), "minReplicas 3 > maxReplicas 2")]),
    (
        p.external_secret_refresh,
        external_secret("1h30m"),
        [
            (external_secret("30s"), "outside 1m..24h"),
            (external_secret("48h"), "outside 1m..24h"),
            (external_secret("0"), "never refreshes"),
            (external_secret("soon"), "not a duration"),
        ],
    ),
    (
        p.helm_version_pinned,
        release("2.10.0"),
        [(release(None), "no version"), (release("^2.0.0"), "'^2.0.0'"), (release("2.x"), "pin an exact")],
    ),
    (
        p.ingress_tls,
        ingress([{"hosts": ["*.example.com"], "secretName": "tls"}]),
        [
            (ingress(None), "plain HTTP"),
            (ingress([{"hosts": ["other.example.com"]}]), "llm.example.com are not covered"),
        ],
    ),
]


def resource_violations(policy, resource: tuple[str, dict], proxy: bool = False) -> list[str]:
    typ, props = resource
    props = unknown_checking_proxy(copy.deepcopy(props)) if proxy else copy.deepcopy(props)
    found: list[str] = []
    args = ResourceValidationArgs(typ, props, f"urn:pulumi:test::aiplatform::{typ}::r", "r", OPTS, None)
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


@pytest.mark.parametrize("proxy", [False, True], ids=["dict", "proxy"])
@pytest.mark.parametrize(("policy", "good", "bad"), RESOURCE_CASES, ids=[c[0].name for c in RESOURCE_CASES])
def test_resource_policy_accepts_the_compliant_and_reports_the_non_compliant(policy, good, bad, proxy):
    assert resource_violations(policy, good, proxy) == []
    for resource, expected in bad:
        found = resource_violations(policy, resource, proxy)
        assert len(found) == 1 and expected in found[0], (resource, found)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_imdsv2_judges_node_groups_whose_launch_template_id_is_unknown(stack):
    """In a first preview the template does not exist yet: its id is unknown, the reference is there."""
    groups = [r for r in planned(stack).registrations if r.type == TYPES["NodeGroup"]]
    assert len(groups) >= 3
    for group in groups:
        unknown_id = copy.deepcopy(group.inputs)
        unknown_id["launchTemplate"] = {"id": UNKNOWN_STRING_VALUE, "version": UNKNOWN_STRING_VALUE}
        # No UnknownValueError (which would skip the check) and no violation.
        assert resource_violations(p.nodes_imdsv2, (group.type, unknown_id), proxy=True) == []
        computed = {**unknown_id, "launchTemplate": UNKNOWN_OBJECT_VALUE}
        assert resource_violations(p.nodes_imdsv2, (group.type, computed), proxy=True) == []
        without = {k: v for k, v in unknown_id.items() if k != "launchTemplate"}
        assert resource_violations(p.nodes_imdsv2, (group.type, without), proxy=True) == [
            "node group r has no launch template, so nothing enforces IMDSv2 on its nodes"
        ]
        empty = {**unknown_id, "launchTemplate": {"id": "", "version": UNKNOWN_STRING_VALUE}}
        assert len(resource_violations(p.nodes_imdsv2, (group.type, empty), proxy=True)) == 1


def test_resource_policies_ignore_other_types():
    unrelated = ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"})
    for policy, _good, _bad in RESOURCE_CASES:
        assert resource_violations(policy, unrelated) == []


# -- stack policies ------------------------------------------------------------------------------


def stack_violations(policy, resources: list[tuple[str, str, dict]]) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    items = [
        PolicyResource(
            typ, props, f"urn:pulumi:test::aiplatform::{typ}::{name}", name, OPTS, None, None, [], {}
        )
        for typ, name, props in resources
    ]
    policy.validate(StackValidationArgs(items), lambda message, urn=None: found.append((message, urn)))
    return found


BUCKET = (TYPES["Bucket"], "models", {"bucket": "ai-models"})
ENCRYPTED = (
    TYPES["Encryption"],
    "models-sse",
    {"bucket": "ai-models", "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
)
PRIVATE = (
    TYPES["PublicAccess"],
    "models-pab",
    {"bucket": "ai-models", **dict.fromkeys(p.PUBLIC_ACCESS_FLAGS, True)},
)
logs_private = (PRIVATE[0], "logs-pab", {**PRIVATE[2], "bucket": "ai-logs"})
PDB = (
    TYPES["PDB"],
    "llm-pdb",
    {"metadata": {"namespace": "ml"}, "spec": {"selector": {"matchLabels": LABELS}}},
)


def named(resource: tuple[str, dict], name: str = "llm") -> tuple[str, str, dict]:
    return resource[0], name, resource[1]


CLUSTER = (TYPES["Cluster"], "cluster", {"version": "1.36"})
AUTO_MODE_CLUSTER = (TYPES["Cluster"], "cluster", {"version": "1.36", "computeConfig": {"enabled": True}})
DRA_DRIVER = (
    TYPES["Release"],
    "dra-driver",
    {"chart": "oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu", "version": "0.4.1"},
)


def claim_template(device_class: str = "gpu.nvidia.com", name: str = "llm-gpu") -> tuple[str, str, dict]:
    request = {"name": "gpu", "exactly": {"deviceClassName": device_class, "count": 1}}
    spec = {"spec": {"devices": {"requests": [request]}}}
    return (
        "kubernetes:resource.k8s.io/v1:ResourceClaimTemplate",
        name,
        {"metadata": {"namespace": "ml"}, "spec": spec},
    )


def shared_claim(device_class: str) -> tuple[str, str, dict]:
    request = {"name": "gpu", "firstAvailable": [{"name": "big", "deviceClassName": device_class}]}
    spec = {"devices": {"requests": [request]}}
    return (
        "kubernetes:resource.k8s.io/v1:ResourceClaim",
        "shared",
        {"metadata": {"namespace": "ml"}, "spec": spec},
    )


STACK_CASES = [
    (
        p.claims_use_installed_device_classes,
        [
            CLUSTER,
            DRA_DRIVER,
            claim_template(),
            claim_template("mig.nvidia.com", "small"),
            shared_claim("gpu.nvidia.com"),
        ],
        [
            (
                [CLUSTER, claim_template()],
                "DeviceClass 'gpu.nvidia.com', which nothing in this stack installs",
            ),
            ([CLUSTER, DRA_DRIVER, claim_template("gpu.example.com")], "'gpu.example.com'"),
            ([CLUSTER, DRA_DRIVER, shared_claim("fpga.example.com")], "ResourceClaim"),
            (
                [
                    (TYPES["Cluster"], "cluster", {"version": "1.35", "computeConfig": {"enabled": True}}),
                    claim_template(),
                ],
                "nothing in this stack installs (none)",
            ),
        ],
    ),
    (
        p.s3_encrypted_private,
        [BUCKET, ENCRYPTED, PRIVATE],
        [
            ([BUCKET, PRIVATE], "no server-side encryption"),
            (
                [BUCKET, ENCRYPTED, (PRIVATE[0], PRIVATE[1], {**PRIVATE[2], "blockPublicPolicy": False})],
                "public access block",
            ),
            (
                [BUCKET, ENCRYPTED, PRIVATE, (TYPES["Bucket"], "logs", {"bucket": "ai-logs"}), logs_private],
                "bucket logs has no server-side encryption",
            ),
        ],
    ),
    (
        p.deployments_have_pdb,
        [
            named(workload("Deployment", pod(), replicas=3)),
            PDB,
            named(workload("Deployment", pod(), replicas=1), "one"),
        ],
        [
            ([named(workload("Deployment", pod(), replicas=2))], "runs 2 replicas"),
            ([named(workload("Deployment", pod())), named(hpa(1, 4), "llm-hpa")], "is autoscaled"),
            (
                [
                    named(workload("Deployment", pod(), replicas=2)),
                    (PDB[0], PDB[1], {**PDB[2], "metadata": {"namespace": "other"}}),
                ],
                "no PodDisruptionBudget",
            ),
        ],
    ),
]


@pytest.mark.parametrize(("policy", "good", "bad"), STACK_CASES, ids=[c[0].name for c in STACK_CASES])
def test_stack_policy_accepts_the_compliant_and_reports_the_non_compliant(policy, good, bad):
    assert stack_violations(policy, good) == []
    for resources, expected in bad:
        found = stack_violations(policy, resources)
        assert len(found) == 1 and expected in found[0][0], (resources, found)
        assert found[0][1], "a stack violation names the resource it is about"


def test_every_policy_has_cases():
    covered = {c[0].name for c in RESOURCE_CASES} | {c[0].name for c in STACK_CASES}
    assert covered == {policy.name for policy in p.POLICIES}


# -- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"])
def test_pod_spec_and_containers_find_every_container_of_every_workload_kind(kind):
    typ, props = workload(kind, pod(container(), container("sidecar"), init=(container("fetch"),)))
    spec = p.pod_spec(typ, props)
    assert [c["name"] for c in p.containers(spec)] == ["fetch", "server", "sidecar"]
    assert p.pod_spec("kubernetes:core/v1:Service", {"spec": {}}) is None


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/ai/llm:1.4.0",
        "registry.example.com/ai/llm:latest",
        "registry.example.com:5000/ai/llm",
        "fluent-bit",
        "registry.example.com/ai/llm@sha256:" + "a" * 64,
    ],
)
def test_the_image_rule_agrees_with_the_config_layer(image):
    # The config layer asks for a tag or a digest; the policy also refuses the tag "latest".
    config_rejects = validation.image_reference(image) is not None or image.endswith(":latest")
    assert (p.image_problem(image) is not None) == config_rejects


@pytest.mark.parametrize("version", ["2.10.0", "v1.2.3-rc.1", "^2.0.0", "2.x", "latest", "1.2"])
def test_the_version_rule_agrees_with_the_config_layer(version):
    assert p.is_exact_version(version) == validation.is_exact_version(version)


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("1.5h", 5400), ("0", 0), ("1d", None)]
)
def test_durations(text, seconds):
    assert p.duration_seconds(text) == seconds
    if "." not in text:  # the config layer accepts whole numbers only; Go (and the operator) also decimals
        assert (validation.duration(text) is None) == (seconds is not None and text != "0")


# -- levels per environment: one source of truth -------------------------------------------------


def levels(environment: str) -> dict[str, str]:
    return {policy.name: policy.enforcement_level.value for policy in p.policies_for(environment)}


def test_the_pack_has_at_least_15_policies_each_mandatory_or_advisory():
    assert len(p.POLICIES) >= 15 and len({x.name for x in p.POLICIES}) == len(p.POLICIES)
    for environment in ("dev", "prod"):
        assert set(levels(environment).values()) <= {"mandatory", "advisory"}
    assert all(isinstance(x, ResourceValidationPolicy | StackValidationPolicy) for x in p.POLICIES)


def test_prod_raises_levels_and_never_lowers_them():
    dev, prod = levels("dev"), levels("prod")
    assert dev["image-pinned"] == "advisory" and prod["image-pinned"] == "mandatory"
    assert dev["ingress-tls"] == "advisory" and prod["ingress-tls"] == "mandatory"
    assert dev["eks-endpoint-not-public"] == "advisory" and prod["eks-endpoint-not-public"] == "mandatory"
    assert all(prod[name] == "mandatory" for name, level in dev.items() if level == "mandatory")
    assert set(p.PROD_LEVELS) <= set(dev)
    # the module's own policies keep their base level
    assert p.image_pinned.enforcement_level == EnforcementLevel.ADVISORY


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PULUMI_STACK": "prod"}, "prod"),
        ({"PULUMI_STACK": "team-prod"}, "prod"),
        ({"PULUMI_STACK": "dev"}, "dev"),
        (
            {"PULUMI_STACK": "sandbox", "PULUMI_CONFIG": json.dumps({"aiplatform:environment": "prod"})},
            "prod",
        ),
        ({"PULUMI_STACK": "prod", "PULUMI_CONFIG": json.dumps({"aiplatform:environment": "dev"})}, "prod"),
        ({"PULUMI_STACK": "prod", "AIPLATFORM_POLICY_ENVIRONMENT": "dev"}, "dev"),
        ({}, "dev"),
    ],
)
def test_the_pack_reads_its_environment_from_the_cli(environ, expected):
    assert p.environment_from_env(environ) == expected


def test_the_pack_files_wire_the_policies_without_being_imported():
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python"
    main = syntax.parse((POLICY_DIR / "__main__.py").read_text())
    calls = [
        n for n in ast.walk(main) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "PolicyPack"
    ]
    assert len(calls) == 1
    keywords = {k.arg for k in calls[0].keywords}
    assert {"name", "enforcement_level", "policies"} <= keywords
    assert "PolicyPack(" not in Path(p.__file__).read_text()


# -- the committed stacks and the plan ------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_committed_stacks_have_no_mandatory_violation(stack):
    violations = evaluate_stack(stack, planned(stack).registrations)
    assert [v for v in violations if v.mandatory] == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_plan_report_prints_the_counts_and_writes_policy_json(stack, tmp_path):
    report = policy_report(plan_tool.Plan(stack=stack, out_dir=tmp_path, run=planned(stack)))
    assert not report.blocking
    assert report.lines[0].startswith("0 mandatory violations")
    document = json.loads(report.files["policy.json"])
    assert document["environment"] == stack and document["violations"] == []
    assert {x["name"] for x in document["policies"]} == {x.name for x in p.POLICIES}


def _with_latest_image(registrations):
    """A copy of the registrations whose first Deployment runs ':latest' (the config layer forbids it)."""
    changed = copy.deepcopy(registrations)
    target = next(r for r in changed if r.type == TYPES["Deployment"])
    target.inputs["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/ai/llm:latest"
    return changed, target


def test_what_if_prod_runs_latest_the_policy_blocks_it():
    registrations, target = _with_latest_image(planned("prod").registrations)
    blocking = [v for v in evaluate_stack("prod", registrations) if v.mandatory]
    assert [(v.policy, v.urn) for v in blocking] == [("image-pinned", target.urn)]
    # the same resource in dev is only advised
    dev = evaluate(p.policies_for("dev"), registrations)
    assert [(v.policy, v.level) for v in dev] == [("image-pinned", "advisory")]


def test_what_if_the_config_layer_stops_latest_in_prod_first():
    config = stack_config("prod")
    config["aiplatform:workloads"]["inference"][0]["image"] = "registry.example.com/ai/llm:latest"
    with pytest.raises(ConfigError, match=r"inference\[0\]\.image: prod runs images by digest"):
        plan_config(config, "prod")


def test_what_if_a_prod_stack_configured_as_dev_is_blocked_by_the_plan(tmp_path, capsys):
    """Stack 'prod' whose file says environment: dev: the config layer allows ':latest', the policy does not."""
    config = stack_config("prod")
    config["aiplatform:environment"] = "dev"
    config["aiplatform:workloads"]["inference"][0]["image"] = "registry.example.com/ai/llm:latest"
    path = tmp_path / "what-if.yaml"
    path.write_text(yaml.safe_dump({"config": config}), encoding="utf-8")
    code = plan_tool.main(["--stack", "prod", "--config-file", str(path), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == plan_tool.EXIT_BLOCKED, printed
    assert "1 mandatory violations" in printed and "[mandatory] image-pinned" in printed
    violations = json.loads((tmp_path / "out" / "policy.json").read_text())["violations"]
    assert [v["policy"] for v in violations] == ["image-pinned"]


def test_violations_are_plain_data():
    registrations, _ = _with_latest_image(planned("prod").registrations)
    violation = evaluate_stack("prod", registrations)[0]
    assert set(dataclasses.asdict(violation)) == {"policy", "level", "message", "urn", "name", "type"}


def test_auto_mode_brings_the_gpu_device_class_and_a_team_program_is_not_judged():
    # EKS Auto Mode's nodes run the NVIDIA DRA driver from 1.36; a program without an EKS cluster (a
    # team's on the platform) cannot see the platform's classes.
    policy = p.claims_use_installed_device_classes
    assert stack_violations(policy, [AUTO_MODE_CLUSTER, claim_template()]) == []
    assert stack_violations(policy, [claim_template("anything.example.com")]) == []
