"""AWS access for Kubernetes service accounts: IRSA or EKS Pod Identity, one helper for both.

Every component that needs AWS access from a pod (external-secrets, the load balancer controller,
the cluster autoscaler, the EBS CSI driver, model readers) gets its role from ``ServiceAccountRole``,
so the trust policy is written in exactly one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from .errors import Problem, require, type_problems
from .inputs import derived
from .validation import AUTONAME_SUFFIX_LENGTH

IdentityMode = Literal["irsa", "pod-identity"]

IAM_ROLE_NAME_MAX = 64
# A ServiceAccountRole named N creates the role "N-role" plus Pulumi's random suffix, within 64.
MAX_ROLE_OWNER_NAME = IAM_ROLE_NAME_MAX - AUTONAME_SUFFIX_LENGTH - len("-role")

IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
STS_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def policy_document(statements: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An IAM policy document; built in Python so the plan shows the real policy text."""
    return {"Version": "2012-10-17", "Statement": [dict(s) for s in statements]}


def allow(
    actions: Sequence[str], resources: Sequence[pulumi.Input[str]] | pulumi.Input[str], **extra: Any
) -> dict[str, Any]:
    """One ``Allow`` statement with sorted actions (stable diffs). A resource may be another
    resource's output (``secret.arn``): a role's ``policy`` takes such a document."""
    statement: dict[str, Any] = {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    statement.update(extra)
    return statement


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str | Sequence[str]
) -> dict:
    """Trust exactly the named service account(s) of one namespace of one cluster, and only for STS."""
    issuer = oidc_issuer.removeprefix("https://")
    names = [service_account] if isinstance(service_account, str) else list(service_account)
    subjects = [service_account_subject(namespace, name) for name in names]
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        # Exact names (a list means any of them), never a wildcard.
                        f"{issuer}:sub": subjects[0] if len(subjects) == 1 else subjects,
                        f"{issuer}:aud": STS_AUDIENCE,
                    }
                },
            }
        ]
    )


def pod_identity_trust_policy() -> dict:
    """The EKS Pod Identity agent assumes the role; the association pins the service account."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ]
    )


def service_trust_policy(service: str, tag_session: bool = False) -> dict:
    """Trust an AWS service principal (``eks.amazonaws.com``, ``ec2.amazonaws.com``...);
    ``tag_session`` also lets it tag its sessions (EKS Auto Mode's cluster role needs that)."""
    action: str | list[str] = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    return policy_document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": action}])


@dataclass(frozen=True)
class WorkloadIdentity:
    """How pods of one cluster obtain AWS credentials.

    ``irsa`` needs the cluster's OIDC provider ARN and issuer URL; ``pod-identity`` needs the
    cluster name (and the Pod Identity agent add-on installed).
    """

    mode: IdentityMode  # IRSA (a web identity through the cluster's OIDC provider) or EKS Pod Identity
    cluster_name: pulumi.Input[str]  # the cluster (Pod Identity associations name it)
    # the cluster's IAM OIDC provider ARN (required with ``irsa``)
    oidc_provider_arn: pulumi.Input[str] | None = None
    oidc_issuer_url: pulumi.Input[str] | None = None  # the cluster's OIDC issuer URL (required with ``irsa``)

    def __post_init__(self) -> None:
        if self.mode == "irsa":
            require(
                "WorkloadIdentity",
                [
                    (field_name, "irsa needs oidc_provider_arn and oidc_issuer_url")
                    for field_name in ("oidc_provider_arn", "oidc_issuer_url")
                    if getattr(self, field_name) is None
                ],
            )


@dataclass
class ServiceAccountRoleArgs:
    """A role for the Kubernetes service account ``namespace/service_account``.

    ``also`` names more service accounts of the same namespace that run with the same role (e.g. a CSI
    driver's controller and node); ``service_account`` is the one whose annotations the role returns.
    """

    identity: WorkloadIdentity  # how the cluster's pods get AWS credentials (the role's trust follows it)
    namespace: pulumi.Input[str]  # the service account's namespace (may be a Namespace's output)
    service_account: str
    # Inline permissions: a policy document (may contain Outputs, e.g. ARNs of other resources).
    policy: pulumi.Input[Mapping[str, Any]] | None = None
    # AWS managed or customer policies attached to the role, by ARN (may be a Policy's ``arn``)
    managed_policy_arns: Sequence[pulumi.Input[str]] = ()
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on the role
    also: Sequence[str] = ()

    @property
    def service_accounts(self) -> list[str]:
        return list(dict.fromkeys([self.service_account, *self.also]))


def _role_owner_problems(name: str) -> list[Problem]:
    """The role is auto-named after its component: ``<name>-role-<7 random>`` must fit IAM."""
    if len(name) > MAX_ROLE_OWNER_NAME:
        reason = f"at most {MAX_ROLE_OWNER_NAME} characters, so the role's generated name fits IAM's {IAM_ROLE_NAME_MAX}"
        return [("name", reason)]
    return []


class ServiceAccountRole(pulumi.ComponentResource):
    """An IAM role that only one service account of one cluster can assume.

    Example::

        import pulumi_aws as aws

        from aiplatform.iam import ServiceAccountRole, ServiceAccountRoleArgs, allow, policy_document

        secret = aws.secretsmanager.Secret("openai", name="openai-key")
        role = ServiceAccountRole("reader", ServiceAccountRoleArgs(
            identity=cluster.identity, namespace="ai", service_account="reader",
            policy=policy_document([allow(["secretsmanager:GetSecretValue"], [secret.arn])]),
        ))
        annotations = role.service_account_annotations  # put these on the ServiceAccount
    """

    role: aws.iam.Role  # the IAM role
    arn: pulumi.Output[str]  # its ARN
    # the annotations the service account carries (IRSA's role ARN; empty with Pod Identity)
    service_account_annotations: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: ServiceAccountRoleArgs, opts: pulumi.ResourceOptions | None = None):
        require(
            f"ServiceAccountRole {name!r}",
            type_problems(args, ServiceAccountRoleArgs) or _role_owner_problems(name),
        )
        super().__init__("aiplatform:iam:ServiceAccountRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        identity = args.identity

        accounts = args.service_accounts
        if identity.mode == "irsa":
            trust = pulumi.Output.all(
                identity.oidc_provider_arn, identity.oidc_issuer_url, args.namespace
            ).apply(lambda v: json.dumps(irsa_trust_policy(v[0], v[1], v[2], accounts)))
        else:
            trust = pulumi.Output.from_input(json.dumps(pod_identity_trust_policy()))

        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=trust,
            description=derived(
                lambda namespace: f"Assumed by {namespace}/{', '.join(accounts)} ({identity.mode})",
                args.namespace,
            ),
            tags=dict(args.tags),
            opts=child,
        )
        if args.policy is not None:
            aws.iam.RolePolicy(
                f"{name}-policy",
                role=self.role.id,
                policy=pulumi.Output.from_input(args.policy).apply(json.dumps),
                opts=child,
            )
        for index, policy_arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-managed-{index}", role=self.role.name, policy_arn=policy_arn, opts=child
            )

        if identity.mode == "pod-identity":
            for index, service_account in enumerate(args.service_accounts):
                aws.eks.PodIdentityAssociation(
                    f"{name}-association" + (f"-{service_account}" if index else ""),
                    cluster_name=identity.cluster_name,
                    namespace=args.namespace,
                    service_account=service_account,
                    role_arn=self.role.arn,
                    tags=dict(args.tags),
                    opts=child,
                )
            self.service_account_annotations = pulumi.Output.from_input({})
        else:
            self.service_account_annotations = self.role.arn.apply(lambda arn: {IRSA_ROLE_ANNOTATION: arn})

        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})
