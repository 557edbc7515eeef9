"""The baseline a user would pick instead of the program: the same Kubernetes objects, from the offline
plan's ``manifests.yaml`` of the same stack, applied by ``kubectl apply --server-side`` and waited for
with ``kubectl wait`` to the readiness the program's provider waits for.

It runs on the program's cluster while the program's stack is up, in a fresh set of namespaces (each
namespace the manifests use, renamed with ``SUFFIX``): the cluster then has what only the program's
AWS side and Helm releases give it -- the node groups the simulated autoscaler scales (the cloud store's
records), the custom resource definitions of the add-ons' charts (ExternalSecret, PodMonitor,
PrometheusRule) and the load balancer controller's IngressClass. Only Kubernetes objects are applied;
values that come from AWS resources (IRSA role ARNs, certificate ARNs) stay the plan's plain values.
Cluster-scoped objects other than namespaces (StorageClasses, the IngressClass, the ClusterSecretStore)
are the program's own and already there: they are neither applied nor deleted (the plan's values of
their AWS-derived fields -- a StorageClass's file system id or KMS key -- are not the simulated cloud's,
and a StorageClass's parameters are immutable).

Pure parts (``baseline_manifests``, ``readiness``, ``wait_commands``, ``ratios``) are unit-tested; the
rest runs ``kubectl``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aiplatform.k8s_objects import SKIP_AWAIT

SUFFIX = "-kubectl"
FIELD_MANAGER = "kubectl-baseline"
# Helm 3's install order by kind (pkg/releaseutil/kind_sorter.go, InstallOrder): namespaces, then quotas
# and limit ranges before the pods they govern, ... Ingresses last. Kinds not listed (custom resources)
# go after, in the plan's order, as Helm installs them.
INSTALL_ORDER: tuple[str, ...] = (
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)


# -- pure: which objects, in which order, waited for how -------------------------------------------
def _namespace_of(document: Mapping[str, Any]) -> str | None:
    return (document.get("metadata") or {}).get("namespace")


def _renamed(document: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    metadata = dict(document.get("metadata") or {})
    if document.get("kind") == "Namespace" and document.get("apiVersion") == "v1":
        metadata["name"] = metadata["name"] + suffix
    elif metadata.get("namespace"):
        metadata["namespace"] = metadata["namespace"] + suffix
    return {**document, "metadata": metadata}


def is_shared(document: Mapping[str, Any]) -> bool:
    """A cluster-scoped object other than a namespace: the program's own, applied as it is."""
    return not _namespace_of(document) and document.get("kind") != "Namespace"


def baseline_manifests(documents: Iterable[Mapping[str, Any]], suffix: str = SUFFIX) -> list[dict[str, Any]]:
    """The plan's manifests in their own namespaces (each name + ``suffix``; a namespace they use but do
    not declare is declared), without the shared cluster-scoped objects, in Helm's install order
    (stable: the plan's order within a kind)."""
    docs = [_renamed(d, suffix) for d in documents if d and not is_shared(d)]
    declared = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
    used = sorted({ns for d in docs if (ns := _namespace_of(d))} - declared)
    docs += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in used]
    rank = {kind: i for i, kind in enumerate(INSTALL_ORDER)}
    return sorted(docs, key=lambda d: rank.get(d.get("kind", ""), len(INSTALL_ORDER)))


@dataclass(frozen=True)
class Readiness:
    """What the program's provider waits for, by namespace: the names to wait for of each check."""

    deployments: dict[str, list[str]] = field(default_factory=dict)  # Available (replicas set)
    # Replicas left to an HPA: the provider awaits the Deployment as created, at one replica, and the
    # program creates the HPA after it (its target is the Deployment's name output): one available.
    scaled: dict[str, list[str]] = field(default_factory=dict)
    services: dict[str, list[str]] = field(default_factory=dict)  # Endpoints with a ready address
    ingresses: dict[str, list[str]] = field(default_factory=dict)  # a load balancer address
    jobs: dict[str, list[str]] = field(default_factory=dict)  # Complete

    def count(self) -> int:
        groups = (self.deployments, self.scaled, self.services, self.ingresses, self.jobs)
        return sum(len(names) for group in groups for names in group.values())


def _skips_await(document: Mapping[str, Any]) -> bool:
    annotations = (document.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SKIP_AWAIT, "")).lower() == "true"


def _waits_for_endpoints(service: Mapping[str, Any]) -> bool:
    # The provider waits for endpoints of a Service that selects pods (not ExternalName, not headless).
    spec = service.get("spec") or {}
    return (
        bool(spec.get("selector")) and spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None"
    )


def readiness(documents: Iterable[Mapping[str, Any]]) -> Readiness:
    """The objects the provider awaits (those without ``pulumi.com/skipAwait``), as ``kubectl wait``
    checks them: Deployments Available (one replica available where an HPA sets the replicas),
    Services with endpoints, Ingresses with an address, Jobs Complete."""
    found = Readiness()
    for d in documents:
        kind, ns = d.get("kind"), _namespace_of(d)
        if not ns or _skips_await(d):
            continue
        replicas_set = (d.get("spec") or {}).get("replicas") is not None
        group = {
            "Deployment": found.deployments if replicas_set else found.scaled,
            "Ingress": found.ingresses,
            "Job": found.jobs,
            "Service": found.services if _waits_for_endpoints(d) else None,
        }.get(kind or "")
        if group is not None:
            group.setdefault(ns, []).append(d["metadata"]["name"])
    return found


def wait_commands(ready: Readiness, timeout_seconds: int) -> list[list[str]]:
    """``kubectl wait`` argument lists (without the kubectl and kubeconfig), one per namespace and check."""
    checks = (
        (ready.deployments, "deployment", "condition=Available"),
        (ready.scaled, "deployment", "jsonpath={.status.availableReplicas}"),
        # The first ready address (a wildcard matching several addresses is an error to kubectl wait).
        (ready.services, "endpoints", "jsonpath={.subsets[0].addresses[0].ip}"),
        (ready.ingresses, "ingress", "jsonpath={.status.loadBalancer.ingress}"),
        (ready.jobs, "job", "condition=Complete"),
    )
    commands = []
    for group, resource, condition in checks:
        for ns, names in sorted(group.items()):
            commands.append(
                ["wait", "-n", ns, f"--for={condition}", f"--timeout={timeout_seconds}s"]
                + [f"{resource}/{name}" for name in names]
            )
    return commands


def ratios(program: Mapping[str, float], kubectl: Mapping[str, float]) -> dict[str, float | None]:
    """program seconds / kubectl seconds per operation both timed (None where kubectl took no time)."""
    return {
        op: round(program[op] / kubectl[op], 2) if kubectl[op] else None for op in kubectl if op in program
    }


# -- running kubectl ---------------------------------------------------------------------------------
class KubectlError(RuntimeError):
    pass


@dataclass
class Kubectl:
    path: str
    kubeconfig: Path
    log: Any = print

    def argv(self, args: Sequence[str]) -> list[str]:
        return [self.path, "--kubeconfig", str(self.kubeconfig), *args]

    def run(self, *args: str) -> str:
        result = subprocess.run(self.argv(args), capture_output=True, text=True)
        self.log(
            f"$ kubectl {' '.join(args[:6])}{' ...' if len(args) > 6 else ''}  (exit {result.returncode})"
        )
        if result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args[:6])} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def run_together(self, commands: Sequence[Sequence[str]]) -> dict[str, float]:
        """Commands side by side (each ``kubectl wait`` watches its objects); fails if any fails. The
        seconds each took, by ``<namespace> <condition>``."""
        start = time.monotonic()
        running = {
            f"{c[2]} {c[3]}": subprocess.Popen(
                self.argv(c), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            for c in commands
        }
        took: dict[str, float] = {}
        failures = []
        while running:
            for label, child in list(running.items()):
                if child.poll() is None:
                    continue
                del running[label]
                took[label] = round(time.monotonic() - start, 1)
                stderr = child.stderr.read() if child.stderr else ""
                self.log(f"$ kubectl wait {label} ...  (exit {child.returncode}, {took[label]} s)")
                if child.returncode != 0:
                    failures.append(f"kubectl wait {label}: {stderr.strip()[-500:]}")
            time.sleep(0.1)
        if failures:
            raise KubectlError("; ".join(failures))
        return took


def measure_kubectl(
    kubectl: Kubectl, plan_manifests: Path, work_dir: Path, timeout_seconds: int = 1500
) -> dict[str, float]:
    """``up`` (apply + wait) and ``destroy`` (delete --wait) of the baseline, in seconds; with the
    apply alone and each wait (from the end of the apply)."""
    documents = [d for d in yaml.safe_load_all(plan_manifests.read_text()) if d]
    docs = baseline_manifests(documents)
    work_dir.mkdir(parents=True, exist_ok=True)
    applied = work_dir / "baseline.yaml"
    applied.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    times: dict[str, float] = {}
    start = time.monotonic()
    kubectl.run("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", str(applied))
    applied_at = time.monotonic()
    waits = kubectl.run_together(wait_commands(readiness(docs), timeout_seconds))
    times["up"] = round(time.monotonic() - start, 1)
    times["apply"] = round(applied_at - start, 1)
    times |= {f"wait {label}": seconds for label, seconds in waits.items()}
    start = time.monotonic()
    kubectl.run(
        "delete", "--wait=true", "--ignore-not-found", f"--timeout={timeout_seconds}s", "-f", str(applied)
    )
    times["destroy"] = round(time.monotonic() - start, 1)
    return times
