import json
import re

import pulumi
import pulumi_kubernetes as k8s
import pytest

from aiplatform.iam import WorkloadIdentity
from aiplatform.storage import (
    ModelBucket,
    ModelBucketArgs,
    SharedFileSystem,
    SharedFileSystemArgs,
    model_reader_policy,
)
from tests.conftest import resolve

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"
BUCKET_ARN = "arn:aws:s3:::models"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/abc"


def irsa() -> WorkloadIdentity:
    return WorkloadIdentity(
        mode="irsa", cluster_name="ai", oidc_provider_arn=PROVIDER_ARN, oidc_issuer_url=ISSUER
    )


def unique_urns(monitor) -> None:
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


# -- model_reader_policy (pure) -------------------------------------------------------------------
def test_model_reader_policy_is_read_only_on_one_prefix():
    assert model_reader_policy(BUCKET_ARN, "/llama-3/", KEY_ARN) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::models/llama-3/*"],
                "Sid": "ReadModelObjects",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": ["arn:aws:s3:::models"],
                "Sid": "ListModelPrefix",
                "Condition": {"StringLike": {"s3:prefix": ["llama-3/*", "llama-3"]}},
            },
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [KEY_ARN],
                "Sid": "DecryptModelObjects",
            },
        ],
    }


def test_model_reader_policy_without_key_and_rejects_wildcards():
    statements = model_reader_policy(BUCKET_ARN, "m", None)["Statement"]
    assert [s["Action"] for s in statements] == [["s3:GetObject"], ["s3:ListBucket"]]
    for bad in ("", "/", "models/*", "a?b"):
        with pytest.raises(ValueError, match="prefix"):
            model_reader_policy(BUCKET_ARN, bad, KEY_ARN)


# -- ModelBucket ----------------------------------------------------------------------------------
def test_model_bucket_is_private_versioned_kms_encrypted_and_tls_only(build, monitor):
    bucket = build(lambda: ModelBucket("models", ModelBucketArgs(bucket_name="acme-models")))
    key_arn = resolve(bucket.kms_key_arn)
    assert resolve(bucket.bucket) == "acme-models"
    assert resolve(bucket.arn) == "arn:aws:s3:::acme-models"
    assert key_arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")

    assert monitor.named("models-bucket").inputs["forceDestroy"] is False
    assert monitor.named("models-key").inputs["enableKeyRotation"] is True
    assert monitor.named("models-encryption").inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn},
            "bucketKeyEnabled": True,
        }
    ]
    pab = monitor.named("models-public-access").inputs
    assert {k: pab[k] for k in pab if k != "bucket"} == {
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    assert monitor.named("models-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert monitor.named("models-ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}

    policy = json.loads(monitor.named("models-policy").inputs["policy"])
    deny_plain = policy["Statement"][0]
    assert deny_plain == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::acme-models", "arn:aws:s3:::acme-models/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert policy["Statement"][1]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert monitor.named("models-public-access").urn in monitor.named("models-policy").dependencies

    rules = monitor.named("models-lifecycle").inputs["rules"]
    assert [r["id"] for r in rules] == ["abort-incomplete-uploads", "expire-noncurrent-versions"]
    assert rules[1]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert monitor.named("models-versioning").urn in monitor.named("models-lifecycle").dependencies

    for registration in monitor.registrations:
        assert not registration.protect and not registration.retain_on_delete
    unique_urns(monitor)


def test_protected_model_bucket_protects_and_retains_bucket_and_key(build, monitor):
    build(lambda: ModelBucket("models", ModelBucketArgs(bucket_prefix="acme-models", protect=True)))
    for name in ("models-bucket", "models-key"):
        assert monitor.named(name).protect and monitor.named(name).retain_on_delete
    assert monitor.named("models-bucket").inputs["forceDestroy"] is False
    assert monitor.named("models-bucket").inputs["bucketPrefix"] == "acme-models"
    assert not monitor.named("models-versioning").protect


def test_a_bucket_prefix_plans_the_name_aws_completes_it_to(build, monitor):
    """AWS completes ``bucket_prefix`` with 26 digits; the plan's bucket and its settings use that name."""
    models = build(lambda: ModelBucket("models", ModelBucketArgs(bucket_prefix="acme-models")))
    name = resolve(models.bucket)
    assert re.fullmatch(r"acme-models[0-9]{26}", name), name
    assert resolve(models.arn) == f"arn:aws:s3:::{name}"
    assert monitor.named("models-versioning").inputs["bucket"] == name


def test_reader_policy_method_uses_the_bucket_and_key(build):
    bucket = build(lambda: ModelBucket("models", ModelBucketArgs(bucket_name="acme-models")))
    policy = resolve(bucket.reader_policy("llama"))
    assert policy == model_reader_policy("arn:aws:s3:::acme-models", "llama", resolve(bucket.kms_key_arn))


def test_model_bucket_lists_every_bad_field():
    with pytest.raises(ValueError) as err:
        ModelBucket(
            "bad",
            ModelBucketArgs(bucket_name="Bad_Name", bucket_prefix="x", protect=True, force_destroy=True),
        )
    message = str(err.value)
    for field_name in ("bucket_name/bucket_prefix", "bucket_name:", "force_destroy"):
        assert field_name in message


# -- SharedFileSystem -----------------------------------------------------------------------------
def fs_args(provider, **overrides) -> SharedFileSystemArgs:
    values = dict(
        provider=provider,
        identity=irsa(),
        vpc_id="vpc-1",
        subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        cluster_security_group_id="sg-cluster",
        csi_driver_version="v2.1.4-eksbuild.1",
        claim_name="checkpoints",
        claim_namespace="training",
        claim_size="2Ti",
    )
    values.update(overrides)
    return SharedFileSystemArgs(**values)


def test_shared_file_system(build, monitor):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return provider, SharedFileSystem("shared", fs_args(provider))

    provider, shared = build(program)
    provider_urn = resolve(provider.urn)

    fs = monitor.named("shared-fs")
    assert fs.inputs["encrypted"] is True
    assert fs.inputs["performanceMode"] == "generalPurpose"
    assert fs.inputs["throughputMode"] == "elastic"
    assert fs.inputs["lifecyclePolicies"] == [
        {"transitionToIa": "AFTER_30_DAYS"},
        {"transitionToPrimaryStorageClass": "AFTER_1_ACCESS"},
    ]
    assert not fs.protect and not fs.retain_on_delete

    targets = monitor.of_type("aws:efs/mountTarget:MountTarget")
    assert sorted(t.inputs["subnetId"] for t in targets) == ["subnet-a", "subnet-b", "subnet-c"]
    sg_id = monitor.named("shared-sg").urn
    assert all(t.inputs["fileSystemId"] == resolve(shared.file_system_id) for t in targets)
    assert all(sg_id in t.dependencies for t in targets)

    (rule,) = monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {k: v for k, v in rule.inputs.items() if k not in ("securityGroupId", "description")} == {
        "referencedSecurityGroupId": "sg-cluster",
        "ipProtocol": "tcp",
        "fromPort": 2049,
        "toPort": 2049,
    }
    assert not monitor.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")

    trust = json.loads(monitor.named("shared-efs-csi-role").inputs["assumeRolePolicy"])
    # The controller and the node DaemonSet, by exact name (AWS documents the role for both).
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {
            "oidc.eks.us-east-1.amazonaws.com/id/ABC123:sub": [
                "system:serviceaccount:kube-system:efs-csi-controller-sa",
                "system:serviceaccount:kube-system:efs-csi-node-sa",
            ],
            "oidc.eks.us-east-1.amazonaws.com/id/ABC123:aud": "sts.amazonaws.com",
        }
    }
    assert monitor.named("shared-efs-csi-managed-0").inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"
    )
    addon = monitor.named("shared-efs-csi-addon").inputs
    assert (addon["addonName"], addon["addonVersion"], addon["clusterName"]) == (
        "aws-efs-csi-driver",
        "v2.1.4-eksbuild.1",
        "ai",
    )
    assert addon["serviceAccountRoleArn"] == resolve(shared.csi_role.arn)

    sc = monitor.named("shared-storage-class")
    assert sc.inputs["provisioner"] == "efs.csi.aws.com"
    assert sc.inputs["metadata"]["name"] == "efs"
    assert sc.inputs["reclaimPolicy"] == "Delete"
    params = sc.inputs["parameters"]
    assert (params["provisioningMode"], params["fileSystemId"], params["directoryPerms"]) == (
        "efs-ap",
        resolve(shared.file_system_id),
        "700",
    )

    claim = monitor.named("shared-claim")
    assert claim.inputs["metadata"] == {"name": "checkpoints", "namespace": "training"}
    assert claim.inputs["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "efs",
        "resources": {"requests": {"storage": "2Ti"}},
    }
    assert monitor.named("shared-efs-csi-addon").urn in claim.dependencies
    assert (resolve(shared.claim_name), resolve(shared.storage_class_name)) == ("checkpoints", "efs")

    for registration in monitor.registrations:
        if registration.type.startswith("kubernetes:") and registration.custom:
            assert registration.provider_urn == provider_urn, registration.name
    unique_urns(monitor)


def test_shared_file_system_with_output_subnets_and_protect(build, monitor):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        args = fs_args(
            provider,
            subnet_ids=pulumi.Output.from_input(["subnet-x", "subnet-y"]),
            subnet_count=2,
            cluster_security_group_id=None,
            vpc_cidr="10.0.0.0/16",
            kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/efs",
            protect=True,
        )
        return SharedFileSystem("shared", args)

    build(program)
    targets = monitor.of_type("aws:efs/mountTarget:MountTarget")
    assert sorted(t.inputs["subnetId"] for t in targets) == ["subnet-x", "subnet-y"]
    fs = monitor.named("shared-fs")
    assert fs.protect and fs.retain_on_delete
    assert fs.inputs["kmsKeyId"] == "arn:aws:kms:us-east-1:123456789012:key/efs"
    assert monitor.named("shared-storage-class").inputs["reclaimPolicy"] == "Retain"
    (rule,) = monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert (rule.inputs["cidrIpv4"], rule.inputs["fromPort"], rule.inputs["toPort"]) == (
        "10.0.0.0/16",
        2049,
        2049,
    )


def test_shared_file_system_with_pod_identity_uses_the_association(build, monitor):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return SharedFileSystem(
            "shared", fs_args(provider, identity=WorkloadIdentity(mode="pod-identity", cluster_name="ai"))
        )

    shared = build(program)
    associations = monitor.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    assert sorted((a.name, a.inputs["namespace"], a.inputs["serviceAccount"]) for a in associations) == [
        ("shared-efs-csi-association", "kube-system", "efs-csi-controller-sa"),
        ("shared-efs-csi-association-efs-csi-node-sa", "kube-system", "efs-csi-node-sa"),
    ]
    assert {a.inputs["roleArn"] for a in associations} == {resolve(shared.csi_role.arn)}
    assert "serviceAccountRoleArn" not in monitor.named("shared-efs-csi-addon").inputs


def test_shared_file_system_lists_every_bad_field():
    provider = object()
    with pytest.raises(ValueError) as err:
        SharedFileSystem(
            "bad",
            fs_args(
                provider,
                subnet_ids=pulumi.Output.from_input(["a"]),
                cluster_security_group_id=None,
                csi_driver_version="latest",
                claim_name="Bad_Claim",
                claim_size="lots",
            ),
        )
    message = str(err.value)
    for field_name in (
        "subnet_count",
        "cluster_security_group_id/vpc_cidr",
        "csi_driver_version",
        "claim_name",
        "claim_size",
    ):
        assert field_name in message


def test_shared_file_system_tolerates_preview(build, monitor):
    pulumi.runtime.set_mocks(monitor.mocks, project="aiplatform", stack="test", preview=True, monitor=monitor)

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        models = ModelBucket("models", ModelBucketArgs(protect=True))
        shared = SharedFileSystem(
            "shared", fs_args(provider, subnet_ids=pulumi.Output.from_input(["a", "b"]), subnet_count=2)
        )
        return models, shared

    build(program)
    assert len(monitor.of_type("aws:efs/mountTarget:MountTarget")) == 2
    assert monitor.named("models-bucket").protect
