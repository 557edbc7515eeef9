import json

import pytest

from aiplatform.iam import (
    IRSA_ROLE_ANNOTATION,
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    allow,
    policy_document,
)
from tests.conftest import resolve

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"


def irsa() -> WorkloadIdentity:
    return WorkloadIdentity(
        mode="irsa", cluster_name="c", oidc_provider_arn=PROVIDER_ARN, oidc_issuer_url=ISSUER
    )


def test_irsa_role_trusts_exactly_one_service_account(build, monitor):
    role = build(
        lambda: ServiceAccountRole(
            "eso",
            ServiceAccountRoleArgs(
                identity=irsa(),
                namespace="external-secrets",
                service_account="external-secrets",
                policy=policy_document(
                    [allow(["secretsmanager:GetSecretValue"], ["arn:aws:secretsmanager:x"])]
                ),
            ),
        )
    )
    trust = json.loads(monitor.named("eso-role").inputs["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": PROVIDER_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "oidc.eks.us-east-1.amazonaws.com/id/ABC123:sub": "system:serviceaccount:external-secrets:external-secrets",
            "oidc.eks.us-east-1.amazonaws.com/id/ABC123:aud": "sts.amazonaws.com",
        }
    }
    policy = json.loads(monitor.named("eso-policy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": ["arn:aws:secretsmanager:x"],
        }
    ]
    assert resolve(role.service_account_annotations) == {IRSA_ROLE_ANNOTATION: resolve(role.arn)}
    assert not monitor.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")


def test_pod_identity_role_is_associated_with_the_service_account(build, monitor):
    role = build(
        lambda: ServiceAccountRole(
            "reader",
            ServiceAccountRoleArgs(
                identity=WorkloadIdentity(mode="pod-identity", cluster_name="ai"),
                namespace="ml",
                service_account="embedder",
            ),
        )
    )
    trust = json.loads(monitor.named("reader-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    association = monitor.named("reader-association").inputs
    assert (association["clusterName"], association["namespace"], association["serviceAccount"]) == (
        "ai",
        "ml",
        "embedder",
    )
    assert resolve(role.service_account_annotations) == {}


def test_irsa_without_an_oidc_provider_is_rejected():
    with pytest.raises(ValueError, match="oidc_provider_arn"):
        WorkloadIdentity(mode="irsa", cluster_name="c")


def test_a_role_name_that_cannot_fit_iam_is_refused_before_anything_is_created(build, monitor):
    args = ServiceAccountRoleArgs(identity=irsa(), namespace="ns", service_account="sa")
    build(lambda: ServiceAccountRole("r" * 51, args))  # "<51>-role-<7 random>": 64 characters
    assert len(monitor.named("r" * 51 + "-role").name) + 8 == 64
    with pytest.raises(
        ValueError, match=r"at most 51 characters, so the role's generated name fits IAM's 64"
    ):
        ServiceAccountRole("r" * 52, args)
