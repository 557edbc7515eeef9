"""EKS Pod Identity, simulated: the agent's credentials endpoint on 127.0.0.1, answering with STS
credentials from moto for the role a Pod Identity association gives the caller's service account.

On EKS, the Pod Identity webhook gives a pod whose service account has an association two variables,
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (the agent, ``http://169.254.170.23/v1/credentials``) and
``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` (a projected service-account token of audience
``pods.eks.amazonaws.com``); the AWS SDKs' default credential chain sends the token to the agent, which
trades it with EKS Auth (``AssumeRoleForPodIdentity``) for the role's credentials. The SDKs accept any
loopback address for that URI, so a process on this machine is pointed at ``PodIdentityAgent.url``
with a token the local API server issued (``environment``).

The agent answers only as EKS would: the token must be valid for that audience (TokenReview), an
association of the cluster must name the token's service account, and the role's trust policy must let
``pods.eks.amazonaws.com`` ``sts:AssumeRole`` and ``sts:TagSession``. Each answer is recorded.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.e2e.cloud.store import CloudStore
from tools.e2e.kubeapi import ApiError, KubeApi

AUDIENCE = "pods.eks.amazonaws.com"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE = "aws:iam/role:Role"
TOKEN_SECONDS = 86400


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def trusts_pod_identity(policy: Mapping[str, Any] | str | None) -> bool:
    """Whether a trust policy lets EKS Pod Identity assume the role and tag its session."""
    document = json.loads(policy) if isinstance(policy, str) else policy or {}
    for statement in _listed_statements(document):
        principal = statement.get("Principal") or {}
        services = _listed(principal.get("Service")) if isinstance(principal, dict) else []
        actions = set(_listed(statement.get("Action")))
        if (
            statement.get("Effect") == "Allow"
            and AUDIENCE in services
            and {"sts:AssumeRole", "sts:TagSession"} <= actions
        ):
            return True
    return False


def _listed_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = document.get("Statement") or []
    return [statements] if isinstance(statements, dict) else list(statements)


def association_for(store: CloudStore, namespace: str, service_account: str) -> dict | None:
    """The Pod Identity association of ``namespace/service_account`` in the simulated cloud."""
    for record in store.all(ASSOCIATION):
        inputs = record["inputs"]
        if inputs.get("namespace") == namespace and inputs.get("serviceAccount") == service_account:
            return record
    return None


def role_named_by(store: CloudStore, arn: str) -> dict | None:
    return next((r for r in store.all(ROLE) if r["outputs"].get("arn") == arn), None)


@dataclass
class PodIdentityAgent:
    api: KubeApi
    store: CloudStore
    assume_role: Callable[..., Mapping[str, Any]]  # moto's STS AssumeRole
    answers: list[dict] = field(default_factory=list)  # who got which role, or why not

    def __post_init__(self) -> None:
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the server's method name
                status, body = agent.credentials(self.path, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):  # noqa: A002 - the base class's signature
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/credentials"
        self._thread = threading.Thread(target=self._server.serve_forever, name="pod-identity", daemon=True)

    def __enter__(self) -> PodIdentityAgent:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what a pod gets at creation -----------------------------------------------------------------
    def environment(self, namespace: str, service_account: str, token_dir: Path) -> dict[str, str]:
        """What the Pod Identity webhook gives a pod of ``namespace/service_account`` (nothing when no
        association names it): the agent's URI and a file holding a token for the agent's audience."""
        if association_for(self.store, namespace, service_account) is None:
            return {}
        token = self.api.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"audiences": [AUDIENCE], "expirationSeconds": TOKEN_SECONDS},
            },
        )["status"]["token"]
        token_dir.mkdir(parents=True, exist_ok=True)
        path = token_dir / f"{namespace}-{service_account}-eks-pod-identity-token"
        path.write_text(token)
        path.chmod(0o600)
        return {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": self.url,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(path),
        }

    # -- the agent ------------------------------------------------------------------------------------
    def credentials(self, path: str, token: str) -> tuple[int, dict]:
        answer: dict[str, Any] = {"at": time.time()}
        try:
            status, body = self._credentials(path, token.removeprefix("Bearer ").strip(), answer)
        except (ApiError, OSError, KeyError, ValueError) as exc:
            status, body = 500, {"message": f"{type(exc).__name__}: {exc}"}
        answer["status"] = status
        if status != 200:
            answer["error"] = body.get("message")
        self.answers.append(answer)
        return status, body

    def _credentials(self, path: str, token: str, answer: dict) -> tuple[int, dict]:
        if path.split("?")[0] != "/v1/credentials":
            return 404, {"message": f"no such path {path}"}
        review = self.api.request(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "spec": {"token": token, "audiences": [AUDIENCE]},
            },
        )
        status = review.get("status") or {}
        username = (status.get("user") or {}).get("username", "")
        if not status.get("authenticated") or not username.startswith("system:serviceaccount:"):
            return 401, {"message": f"the token is not a service account's token for {AUDIENCE}"}
        namespace, service_account = username.split(":")[2:4]
        answer["serviceAccount"] = f"{namespace}/{service_account}"
        association = association_for(self.store, namespace, service_account)
        if association is None:
            return 400, {"message": f"no Pod Identity association for {namespace}/{service_account}"}
        role_arn = association["inputs"]["roleArn"]
        answer["roleArn"] = role_arn
        role = role_named_by(self.store, role_arn)
        if role is None:
            return 400, {"message": f"the association's role {role_arn} does not exist"}
        if not trusts_pod_identity(role["inputs"].get("assumeRolePolicy")):
            return 403, {
                "message": f"{role_arn}'s trust policy does not let {AUDIENCE} sts:AssumeRole and sts:TagSession"
            }
        cluster = association["inputs"].get("clusterName", "")
        credentials = self.assume_role(
            RoleArn=role_arn,
            RoleSessionName=f"eks-{cluster}-{service_account}"[:64],
            Tags=[
                {"Key": "eks-cluster-name", "Value": cluster},
                {"Key": "kubernetes-namespace", "Value": namespace},
                {"Key": "kubernetes-service-account", "Value": service_account},
            ],
        )["Credentials"]
        answer["accessKeyId"] = credentials["AccessKeyId"]
        return 200, {
            "AccessKeyId": credentials["AccessKeyId"],
            "SecretAccessKey": credentials["SecretAccessKey"],
            "Token": credentials["SessionToken"],
            "Expiration": credentials["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "AccountId": role_arn.split(":")[4],
        }
