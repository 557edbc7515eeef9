"""A small Kubernetes REST client (bearer token + cluster CA), enough for the harness's checks and its
simulated controllers. Standard library only, so the simulated cloud plugin starts fast."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# Kinds the harness reads or writes, with their API path prefixes and whether they are namespaced.
_CORE = "/api/v1"
KINDS: dict[str, tuple[str, str, bool]] = {
    # kind: (api prefix, plural, namespaced)
    "Namespace": (_CORE, "namespaces", False),
    "Node": (_CORE, "nodes", False),
    "Pod": (_CORE, "pods", True),
    "Service": (_CORE, "services", True),
    "Endpoints": (_CORE, "endpoints", True),
    "Secret": (_CORE, "secrets", True),
    "ConfigMap": (_CORE, "configmaps", True),
    "Event": (_CORE, "events", True),
    "PersistentVolume": (_CORE, "persistentvolumes", False),
    "PersistentVolumeClaim": (_CORE, "persistentvolumeclaims", True),
    "ResourceQuota": (_CORE, "resourcequotas", True),
    "ServiceAccount": (_CORE, "serviceaccounts", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "ReplicaSet": ("/apis/apps/v1", "replicasets", True),
    "DaemonSet": ("/apis/apps/v1", "daemonsets", True),
    "StatefulSet": ("/apis/apps/v1", "statefulsets", True),
    "Job": ("/apis/batch/v1", "jobs", True),
    "CronJob": ("/apis/batch/v1", "cronjobs", True),
    "Ingress": ("/apis/networking.k8s.io/v1", "ingresses", True),
    "IngressClass": ("/apis/networking.k8s.io/v1", "ingressclasses", False),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
    "CustomResourceDefinition": ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "ExternalSecret": ("/apis/external-secrets.io/v1", "externalsecrets", True),
    "ClusterSecretStore": ("/apis/external-secrets.io/v1", "clustersecretstores", False),
    "ResourceSlice": ("/apis/resource.k8s.io/v1", "resourceslices", False),
    "ResourceClaim": ("/apis/resource.k8s.io/v1", "resourceclaims", True),
    "ResourceClaimTemplate": ("/apis/resource.k8s.io/v1", "resourceclaimtemplates", True),
    "DeviceClass": ("/apis/resource.k8s.io/v1", "deviceclasses", False),
    "NodePool": ("/apis/karpenter.sh/v1", "nodepools", False),
    "NodeClaim": ("/apis/karpenter.sh/v1", "nodeclaims", False),
    "EC2NodeClass": ("/apis/karpenter.k8s.aws/v1", "ec2nodeclasses", False),
}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str, what: str):
        self.status = status
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        super().__init__(f"{what}: HTTP {status}: {message}")
        self.message = message


@dataclass(frozen=True)
class KubeApi:
    server: str  # https://127.0.0.1:<port>
    token: str
    ca_file: str

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._context(), timeout=timeout) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors="replace"), f"{method} {path}") from None
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text  # /readyz and /livez answer in plain text

    # -- paths -----------------------------------------------------------------------------------
    @staticmethod
    def path(kind: str, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        prefix, plural, namespaced = KINDS[kind]
        parts = [prefix]
        if namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(plural)
        if name:
            parts.append(name)
        if sub:
            parts.append(sub)
        return "/".join(parts)

    # -- verbs -----------------------------------------------------------------------------------
    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.request("GET", self.path(kind, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, selector: str = "", fields: str = ""
    ) -> list[dict]:
        query = urllib.parse.urlencode(
            {k: v for k, v in (("labelSelector", selector), ("fieldSelector", fields)) if v}
        )
        return self.request("GET", self.path(kind, namespace) + (f"?{query}" if query else "")).get(
            "items", []
        )

    def list_path(self, path: str) -> list[dict]:
        return self.request("GET", path).get("items", [])

    def create(self, kind: str, obj: dict, namespace: str | None = None) -> dict:
        return self.request("POST", self.path(kind, namespace), obj)

    def merge_patch(
        self, kind: str, name: str, patch: dict, namespace: str | None = None, sub: str = ""
    ) -> dict:
        return self.request(
            "PATCH", self.path(kind, namespace, name, sub), patch, "application/merge-patch+json"
        )

    def replace_status(self, kind: str, obj: dict) -> dict:
        meta = obj["metadata"]
        return self.request("PUT", self.path(kind, meta.get("namespace"), meta["name"], "status"), obj)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.request("DELETE", self.path(kind, namespace, name))
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def apis(self) -> Iterator[tuple[str, str, bool, str]]:
        """Every listable resource the server serves: (path prefix, plural, namespaced, kind)."""
        core = self.request("GET", "/api/v1")
        for res in core["resources"]:
            if "/" not in res["name"] and "list" in res.get("verbs", []):
                yield "/api/v1", res["name"], res["namespaced"], res["kind"]
        for group in self.request("GET", "/apis")["groups"]:
            version = group["preferredVersion"]["groupVersion"]
            try:
                listing = self.request("GET", f"/apis/{version}")
            except ApiError:
                continue  # an aggregated API that is not available
            for res in listing["resources"]:
                if "/" not in res["name"] and "list" in res.get("verbs", []):
                    yield f"/apis/{version}", res["name"], res["namespaced"], res["kind"]


def wait_for(
    condition: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition"
) -> Any:
    """Poll until ``condition()`` returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (OSError, ApiError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)
