"""The external-secrets operator, run for real against the local API server and moto.

It starts as the chart's Deployment starts it, with the flags a single replica outside the cluster
needs (leader election off, metrics and health on loopback) and the AWS provider's documented endpoint
overrides (``AWS_SECRETSMANAGER_ENDPOINT``, ``AWS_STS_ENDPOINT``) pointed at moto. Its credentials
come the way the stack gives them: with IRSA, the ClusterSecretStore names the operator's service
account, whose ``eks.amazonaws.com/role-arn`` annotation (the chart's ServiceAccount) the operator
reads, then it asks the API server for a token of that account (TokenRequest) and trades it with STS
(AssumeRoleWithWebIdentity); with Pod Identity, the store has no auth and the SDK's default chain asks
the (simulated) Pod Identity agent, as the EKS webhook's variables tell it to.

The checks judge what moto recorded: which role the operator assumed, with which token, and that
every secret it read is one its role may read.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiplatform.catalog.registry import EXTERNAL_SECRETS
from tools.e2e.checks import Check
from tools.e2e.cloud.moto_server import HARNESS_ACCESS_KEY, AwsRequest
from tools.e2e.cloud.store import CloudStore
from tools.e2e.operators.supervisor import Launch, base_env

# Every kind the operator's controllers watch: the chart's CRDs.
KINDS = tuple((f"{crd.group}/{crd.versions[0]}", crd.plural) for crd in EXTERNAL_SECRETS.crds)
SECRET_READS = frozenset({"GetSecretValue", "BatchGetSecretValue", "DescribeSecret", "ListSecrets"})
STS_AUDIENCE = "sts.amazonaws.com"


def launch(
    binary: str,
    kubeconfig: Path,
    secrets_manager_endpoint: str,
    sts_endpoint: str,
    metrics_port: int,
    health_port: int,
    credentials_env: Mapping[str, str],
) -> Launch:
    argv = [
        binary,
        "--enable-leader-election=false",
        f"--metrics-addr=127.0.0.1:{metrics_port}",
        f"--live-addr=127.0.0.1:{health_port}",
        "--loglevel=info",
        "--zap-time-encoding=iso8601",
    ]
    env = base_env(
        {
            "KUBECONFIG": str(kubeconfig),
            "AWS_SECRETSMANAGER_ENDPOINT": secrets_manager_endpoint,
            "AWS_STS_ENDPOINT": sts_endpoint,
            # Nothing of this machine's: no shared AWS config, and never the instance metadata service
            # (the default chain's last resort, at 169.254.169.254).
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            **credentials_env,
        }
    )
    return Launch(argv, env)


# -- what moto saw ------------------------------------------------------------------------------------
def _statements(document: Mapping[str, Any] | str | None) -> list[Mapping[str, Any]]:
    document = json.loads(document) if isinstance(document, str) else document or {}
    statements = document.get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def allows(policies: Iterable[Mapping[str, Any] | str], action: str, resource: str) -> bool:
    """Whether identity policies allow ``action`` on ``resource`` (an explicit deny wins; conditions are
    not judged: the operator's statements on Secrets Manager carry none)."""
    verdict = False
    for policy in policies:
        for statement in _statements(policy):
            acts = any(fnmatch.fnmatchcase(action, a) for a in _listed(statement.get("Action")))
            on = any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement.get("Resource")))
            if acts and on:
                if statement.get("Effect") == "Deny":
                    return False
                verdict = verdict or statement.get("Effect") == "Allow"
    return verdict


def role_policies(store: CloudStore, role: Mapping[str, Any]) -> list[Any]:
    """The role's inline policies, as the simulated cloud holds them."""
    names = {role["id"], role["outputs"].get("name"), role["outputs"].get("arn")}
    return [
        r["inputs"].get("policy")
        for r in store.all("aws:iam/rolePolicy:RolePolicy")
        if r["inputs"].get("role") in names
    ]


def _trusted_subjects(role: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The ``:sub`` and ``:aud`` values the role's web-identity trust requires."""
    subjects, audiences = [], []
    for statement in _statements(role["inputs"].get("assumeRolePolicy")):
        for key, value in ((statement.get("Condition") or {}).get("StringEquals") or {}).items():
            if key.endswith(":sub"):
                subjects += _listed(value)
            elif key.endswith(":aud"):
                audiences += _listed(value)
    return subjects, audiences


def irsa_check(requests: list[AwsRequest], store: CloudStore, namespace: str, service_account: str) -> Check:
    """The operator assumed its role through STS with a token of its own service account, as the role's
    trust policy requires, and read Secrets Manager only with those temporary credentials."""
    subject = f"system:serviceaccount:{namespace}:{service_account}"
    assumed = [r for r in requests if r.action == "AssumeRoleWithWebIdentity"]
    roles = {r["outputs"].get("arn"): r for r in store.all("aws:iam/role:Role")}
    problems, seen = [], []
    for request in assumed:
        arn = request.params.get("RoleArn", "")
        claims = request.params.get("WebIdentityTokenClaims") or {}
        audiences = _listed(claims.get("aud"))
        seen.append({"role": arn, "sub": claims.get("sub"), "aud": audiences})
        role = roles.get(arn)
        if role is None:
            problems.append(f"assumed {arn}, which the stack did not create")
            continue
        subjects, trusted_audiences = _trusted_subjects(role)
        if claims.get("sub") != subject or subject not in subjects:
            problems.append(f"token subject {claims.get('sub')!r}; {arn} trusts {subjects}")
        if not set(trusted_audiences) & set(audiences):
            problems.append(f"token audiences {audiences}; {arn} trusts {trusted_audiences}")
    reads = [r for r in requests if r.service == "secretsmanager" and r.action in SECRET_READS]
    unsigned = [r.action for r in reads if r.access_key == HARNESS_ACCESS_KEY or not r.temporary]
    if unsigned:
        problems.append(f"{len(unsigned)} reads not made with temporary credentials: {sorted(set(unsigned))}")
    return Check(
        "the operator read Secrets Manager as its IRSA role",
        bool(assumed) and bool(reads) and not problems,
        f"{len(assumed)} AssumeRoleWithWebIdentity, {len(reads)} reads; {len(problems)} problems",
        {"assumed": seen, "problems": problems},
    )


def pod_identity_check(
    requests: list[AwsRequest], answers: list[dict], namespace: str, service_account: str
) -> Check:
    """The Pod Identity agent gave the operator's service account its role, and the operator read
    Secrets Manager with those credentials only."""
    mine = [a for a in answers if a.get("serviceAccount") == f"{namespace}/{service_account}"]
    granted = {a["accessKeyId"] for a in mine if a.get("status") == 200}
    reads = [r for r in requests if r.service == "secretsmanager" and r.action in SECRET_READS]
    foreign = sorted({r.access_key for r in reads} - granted)
    return Check(
        "the operator read Secrets Manager with its Pod Identity credentials",
        bool(granted) and bool(reads) and not foreign,
        f"{len(mine)} agent answers ({len(granted)} granted), {len(reads)} reads; {len(foreign)} other keys",
        {"answers": mine, "other_keys": foreign},
    )


def reads_allowed_check(requests: list[AwsRequest], store: CloudStore, role_arn: str) -> Check:
    """Every secret the operator read is one its role's policy lets it read."""
    role = next((r for r in store.all("aws:iam/role:Role") if r["outputs"].get("arn") == role_arn), None)
    policies = role_policies(store, role) if role else []
    secrets = {r["outputs"].get("name"): r["id"] for r in store.all("aws:secretsmanager/secret:Secret")}
    denied, read = [], []
    for request in requests:
        if request.service != "secretsmanager" or request.action not in SECRET_READS:
            continue
        if request.access_key == HARNESS_ACCESS_KEY:
            continue
        key = request.params.get("SecretId", "*")  # ListSecrets and its kind name no secret
        arn = secrets.get(key, key)  # a read by name is a read of that secret's ARN
        read.append(arn)
        if not allows(policies, f"secretsmanager:{request.action}", arn):
            denied.append(f"{request.action} {arn}")
    return Check(
        "every secret the operator read, its role may read",
        role is not None and bool(read) and not denied,
        f"role {role_arn}: {len(read)} reads, {len(denied)} its policy does not allow",
        {"read": sorted(set(read)), "not_allowed": denied},
    )
