"""Shared helpers for the workload tests: a provider, placements, and readers of registered pod specs."""

from __future__ import annotations

from collections.abc import Iterator

import pulumi_kubernetes as k8s

from aiplatform.iam import WorkloadIdentity
from aiplatform.scheduling import GPU_RESOURCE, GPU_TAINT, Placement, Toleration

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
IRSA = WorkloadIdentity(
    mode="irsa",
    cluster_name="ai",
    oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{ISSUER.removeprefix('https://')}",
    oidc_issuer_url=ISSUER,
)
GPU_PLACEMENT = Placement(
    node_selector={"aiplatform.io/node-pool": "gpu"},
    tolerations=(GPU_TAINT.toleration(), Toleration(key="spot", operator="Exists", effect="NoSchedule")),
    gpu_resource=GPU_RESOURCE,
)


def provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}")


def all_containers(pod: dict) -> Iterator[dict]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def container(pod: dict, name: str) -> dict:
    (match,) = [c for c in all_containers(pod) if c["name"] == name]
    return match


def env(c: dict) -> dict[str, dict]:
    """ENV_NAME -> the env entry (value or valueFrom)."""
    return {e["name"]: e for e in c.get("env", [])}


def volumes(pod: dict) -> dict[str, dict]:
    return {v["name"]: v for v in pod.get("volumes", [])}


def mounts(c: dict) -> dict[str, dict]:
    return {m["name"]: m for m in c.get("volumeMounts", [])}


def assert_no_static_aws_keys(monitor) -> None:
    text = repr([r.inputs for r in monitor.registrations])
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def assert_secure_pod(pod: dict) -> None:
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in all_containers(pod):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]


def k8s_objects_not_after(monitor, dependency: str) -> tuple[set[str], list[str]]:
    """The kinds of the workload's Kubernetes objects, and the names of those not created after
    ``dependency`` (a resource the test passed in ``depends_on``)."""
    urn = monitor.named(dependency).urn
    objects = [
        r for r in monitor.registrations if r.type.startswith("kubernetes:") and r.custom and r.urn != urn
    ]
    return {r.type.split(":")[-1] for r in objects}, [r.name for r in objects if urn not in r.dependencies]


def assert_k8s_children_use_provider(monitor) -> None:
    urn = monitor.named("k8s").urn
    children = [r for r in monitor.registrations if r.type.startswith("kubernetes:") and r.custom]
    assert children
    for r in children:
        assert r.provider_urn == urn, r.name
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))
