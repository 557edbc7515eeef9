import json

import pulumi
import pulumi_kubernetes as kubernetes
import pytest

from aiplatform.addons.secrets import (
    ExternalSecrets,
    ExternalSecretsArgs,
    SecretSpec,
    cluster_secret_store_spec,
    eso_policy,
    external_secret_spec,
)
from aiplatform.errors import describe
from aiplatform.iam import WorkloadIdentity
from tests.conftest import is_secret, resolve

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"
LEAK = "sk-test-DO-NOT-LEAK-123"
EXISTING = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/hf-AbC123"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/"


def irsa() -> WorkloadIdentity:
    return WorkloadIdentity(
        mode="irsa", cluster_name="ai", oidc_provider_arn=PROVIDER_ARN, oidc_issuer_url=ISSUER
    )


def make(identity: WorkloadIdentity | None = None, protect: bool = True, specs=None) -> ExternalSecrets:
    provider = kubernetes.Provider("k8s", kubeconfig="{}")
    if specs is None:
        specs = (
            SecretSpec(
                name="openai-secret",
                namespace="ml",
                keys=("api-key",),
                initial_value=pulumi.Output.secret(json.dumps({"api-key": LEAK})),
            ),
            SecretSpec(name="hf-secret", namespace="ml", keys=("huggingface-token",), existing_arn=EXISTING),
        )
    return ExternalSecrets(
        "eso",
        ExternalSecretsArgs(
            stack_name="aiplatform-prod",
            region="us-east-1",
            identity=identity or irsa(),
            provider=provider,
            chart_version="2.1.0",
            specs=specs,
            protect=protect,
            tags={"stack": "prod"},
        ),
    )


def test_role_reads_exactly_the_listed_secrets_and_decrypts_via_secrets_manager(build, monitor):
    eso = build(make)
    created = resolve(eso.secret_arns["openai-secret"])
    assert created.startswith(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:aiplatform-prod/openai-secret-"
    )
    key_arn = resolve(eso.kms_key_arn)
    assert key_arn.startswith(KEY_ARN)

    policy = json.loads(monitor.named("eso-controller-policy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Sid": "ReadPlatformSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Resource": sorted([created, EXISTING]),
        },
        {
            "Sid": "DecryptViaSecretsManager",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [key_arn],
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
        },
    ]
    assert "*" not in json.dumps(policy)

    trust = json.loads(monitor.named("eso-controller-role").inputs["assumeRolePolicy"])
    issuer = ISSUER.removeprefix("https://")
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:external-secrets:external-secrets",
        f"{issuer}:aud": "sts.amazonaws.com",
    }


def test_secret_kms_key_and_version(build, monitor):
    build(make)
    key = monitor.named("eso-key").inputs
    assert key["enableKeyRotation"] is True
    alias = monitor.named("eso-key-alias").inputs
    assert alias["name"] == "alias/aiplatform-prod-secrets"

    secret = monitor.named("eso-openai-secret").inputs
    assert secret["name"] == "aiplatform-prod/openai-secret"
    assert secret["kmsKeyId"].startswith(KEY_ARN)
    assert secret["recoveryWindowInDays"] == 30
    assert secret["tags"]["stack"] == "prod"
    # The existing secret is referenced, never created.
    assert [r.name for r in monitor.of_type("aws:secretsmanager/secret:Secret")] == ["eso-openai-secret"]

    version = monitor.named("eso-openai-secret-initial")
    assert version.inputs["secretString"] == "[secret]"
    assert version.ignore_changes == ["secretString"]


def test_stateful_resources_are_protected_in_prod_only(build, monitor):
    build(make)
    for res in ("eso-key", "eso-openai-secret", "eso-openai-secret-initial"):
        assert monitor.named(res).protect and monitor.named(res).retain_on_delete, res


def test_nothing_is_protected_in_dev(build, monitor):
    build(lambda: make(protect=False))
    assert not any(r.protect or r.retain_on_delete for r in monitor.registrations)


def test_initial_value_never_reaches_the_engine_in_clear(build, monitor):
    eso = build(make)
    assert monitor.registrations
    for registration in monitor.registrations:
        assert LEAK not in json.dumps(registration.inputs), registration.name
    assert LEAK not in json.dumps([r.as_plan_entry() for r in monitor.registrations])
    assert not is_secret(eso.kms_key_arn)


def test_helm_release_values_and_ordering(build, monitor):
    eso = build(make)
    release = monitor.named("eso-release")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "external-secrets",
        "2.1.0",
        "external-secrets",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://charts.external-secrets.io"}
    values = inputs["values"]
    assert values["installCRDs"] is True
    assert values["serviceAccount"] == {
        "create": True,
        "name": "external-secrets",
        "annotations": {"eks.amazonaws.com/role-arn": resolve(eso.role.arn)},
    }
    assert values["resources"]["limits"]["memory"] == "256Mi"
    assert release.provider_urn == monitor.named("k8s").urn
    # The role with its policy attached exists before the operator's pods start.
    for child in ("eso-controller-role", "eso-controller-policy"):
        assert monitor.named(child).urn in release.dependencies
    assert monitor.named("eso-namespace").inputs["metadata"]["name"] == "external-secrets"


def test_custom_resources_wait_for_the_release_and_use_the_provider(build, monitor):
    build(make)
    release_urn = monitor.named("eso-release").urn
    provider_urn = monitor.named("k8s").urn
    crs = [r for r in monitor.registrations if r.type.startswith("kubernetes:external-secrets.io/v1:")]
    assert sorted(r.name for r in crs) == ["eso-ml-hf-secret", "eso-ml-openai-secret", "eso-store"]
    for cr in crs:
        assert release_urn in cr.dependencies, cr.name
        assert cr.provider_urn == provider_urn, cr.name
    # The seeded secret is synced only once it has a value.
    assert (
        monitor.named("eso-openai-secret-initial").urn in monitor.named("eso-ml-openai-secret").dependencies
    )


def test_cluster_secret_store_irsa(build, monitor):
    build(make)
    store = monitor.named("eso-store").inputs
    assert store["apiVersion"] == "external-secrets.io/v1"
    assert store["kind"] == "ClusterSecretStore"
    assert store["metadata"]["name"] == "aws-secrets-manager"
    assert store["spec"] == {
        "provider": {
            "aws": {
                "service": "SecretsManager",
                "region": "us-east-1",
                "auth": {
                    "jwt": {
                        "serviceAccountRef": {"name": "external-secrets", "namespace": "external-secrets"}
                    }
                },
            }
        }
    }


def test_pod_identity_store_has_no_auth_block_and_association(build, monitor):
    build(lambda: make(identity=WorkloadIdentity(mode="pod-identity", cluster_name="ai")))
    assert monitor.named("eso-store").inputs["spec"] == {
        "provider": {"aws": {"service": "SecretsManager", "region": "us-east-1"}}
    }
    association = monitor.named("eso-controller-association").inputs
    assert (association["namespace"], association["serviceAccount"]) == (
        "external-secrets",
        "external-secrets",
    )
    assert monitor.named("eso-release").inputs["values"]["serviceAccount"]["annotations"] == {}


def test_external_secret_spec_exact(build, monitor):
    eso = build(make)
    created = monitor.named("eso-ml-openai-secret").inputs
    assert created["metadata"] == {"name": "openai-secret", "namespace": "ml"}
    assert created["spec"] == {
        "refreshInterval": "1h0m0s",  # as the operator writes it back
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws-secrets-manager"},
        "target": {"name": "openai-secret", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
        "data": [
            {
                "secretKey": "api-key",
                "remoteRef": {"key": "aiplatform-prod/openai-secret", "property": "api-key"},
            }
        ],
    }
    existing = monitor.named("eso-ml-hf-secret").inputs["spec"]
    assert existing["data"] == [
        {"secretKey": "huggingface-token", "remoteRef": {"key": EXISTING, "property": "huggingface-token"}}
    ]
    assert set(eso.external_secrets) == {"openai-secret", "hf-secret"}
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


# -- pure builders and validation ------------------------------------------------------------------


def test_pure_builders():
    spec = SecretSpec(name="s", namespace="ns", keys=("a", "b"), refresh_interval="15m")
    assert external_secret_spec(spec, "stack/s", "store")["refreshInterval"] == "15m0s"
    assert external_secret_spec(spec, "stack/s", "store")["data"] == [
        {"secretKey": "a", "remoteRef": {"key": "stack/s", "property": "a"}},
        {"secretKey": "b", "remoteRef": {"key": "stack/s", "property": "b"}},
    ]
    assert "auth" not in cluster_secret_store_spec("eu-west-1", "pod-identity")["provider"]["aws"]
    policy = eso_policy([], [KEY_ARN + "k"], "eu-west-1")
    assert [s["Sid"] for s in policy["Statement"]] == ["DecryptViaSecretsManager"]
    with pytest.raises(ValueError, match="wildcard"):
        eso_policy(["arn:aws:secretsmanager:us-east-1:123456789012:secret:*"], [], "us-east-1")


def test_spec_validation_lists_every_problem():
    args = ExternalSecretsArgs(
        stack_name="s",
        region="us-east-1",
        identity=irsa(),
        provider=None,
        chart_version="2.1.0",
        specs=[
            SecretSpec(name="Bad_Name", namespace="ml", keys=("k",)),
            SecretSpec(name="ok", namespace="ml", keys=(), refresh_interval="hourly"),
            SecretSpec(name="ok", namespace="ML", keys=("k", "k", "bad key")),
            SecretSpec(
                name="ext",
                namespace="ml",
                keys=("k",),
                existing_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:partial",
                initial_value="{}",
            ),
            SecretSpec(name="seed", namespace="ml", keys=("a",), initial_value=json.dumps({"b": "v"})),
        ],
    )
    text = "\n".join(map(describe, args.problems()))
    for expected in (
        "specs[0].name: 'Bad_Name' is not a DNS-1123 name",
        "specs[1].keys: list at least one key",
        "specs[1].refresh_interval: 'hourly'",
        "specs[2].name: 'ok' is already used by specs[1]",
        "specs[2].namespace: 'ML' is not a DNS-1123 label",
        "specs[2].keys: ['bad key'] are not valid Secret keys",
        "specs[2].keys: duplicated ['k']",
        "specs[3].existing_arn:",
        "specs[3]: existing_arn and initial_value are exclusive",
        "specs[4].initial_value: missing keys ['a']",
        "specs[4].initial_value: keys ['b'] are not listed in keys",
    ):
        assert expected in text
    assert "'v'" not in text  # seed values never appear in errors


def test_component_validates_before_creating_anything(build, monitor):
    def bad():
        return ExternalSecrets(
            "eso",
            ExternalSecretsArgs(
                stack_name="s",
                region="us-east-1",
                identity=irsa(),
                provider=None,
                chart_version="latest",
                recovery_window_in_days=0,
                specs=(SecretSpec(name="x", namespace="ml", keys=()),),
            ),
        )

    with pytest.raises(ValueError) as info:
        build(bad)
    message = str(info.value)
    assert "chart_version: 'latest' must be an exact version" in message
    assert "recovery_window_in_days: 0 (delete immediately) is not allowed when protect=True" in message
    assert "specs[0].keys" in message
    assert not monitor.registrations
