"""What the API server holds, judged: each check returns a ``Check`` (passed, and the evidence).

They read only the cluster and the stack's state, so they hold on any cluster the scenarios run on.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from tools.e2e.cloud.nodes import GROUP_LABEL
from tools.e2e.kubeapi import ApiError, KubeApi, wait_for

GPU = "nvidia.com/gpu"
POOL_LABEL = "karpenter.sh/nodepool"  # Karpenter's label naming a node's NodePool
# Namespaces the cluster itself owns: what runs there is not the platform's.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease", "default"})


@dataclass
class Check:
    name: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def group_of(node: Mapping[str, Any]) -> str | None:
    """The node group or Karpenter NodePool a node belongs to."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    return labels.get(GROUP_LABEL) or labels.get(POOL_LABEL)


def _owner_kind(pod: Mapping[str, Any]) -> str | None:
    owners = pod["metadata"].get("ownerReferences") or []
    return owners[0]["kind"] if owners else None


def deployments_available(api: KubeApi) -> Check:
    not_ready = {}
    deployments = [d for d in api.list("Deployment") if d["metadata"]["namespace"] not in SYSTEM_NAMESPACES]
    for d in deployments:
        want = d["spec"].get("replicas", 1)
        status = d.get("status") or {}
        if status.get("availableReplicas", 0) < want or status.get("updatedReplicas", 0) < want:
            not_ready[_key(d)] = f"{status.get('availableReplicas', 0)}/{want} available"
    return Check(
        "deployments available",
        not not_ready and bool(deployments),
        f"{len(deployments) - len(not_ready)}/{len(deployments)} Deployments available",
        {"not_available": not_ready, "deployments": sorted(_key(d) for d in deployments)},
    )


def pods_scheduled(api: KubeApi, gpu_groups: Iterable[str]) -> Check:
    """No pod Pending; pods that request GPUs (or claim them) on nodes of GPU groups (or GPU NodePools),
    the rest (but node agents) off them."""
    gpu_groups = set(gpu_groups)
    nodes = {n["metadata"]["name"]: n for n in api.list("Node")}
    pending, wrong_place, placements = {}, {}, {}
    pods = [p for p in api.list("Pod") if p["metadata"]["namespace"] not in SYSTEM_NAMESPACES]
    for pod in pods:
        key = _key(pod)
        phase = pod.get("status", {}).get("phase")
        node_name = pod["spec"].get("nodeName")
        if phase == "Pending" or not node_name:
            reasons = [
                c.get("message", "")
                for c in pod.get("status", {}).get("conditions") or []
                if c.get("status") == "False"
            ]
            pending[key] = "; ".join(reasons) or phase
            continue
        group = group_of(nodes.get(node_name, {})) or "?"
        placements[key] = group
        # GPUs by the device plugin's resource, or by DRA claims.
        wants_gpu = bool(pod["spec"].get("resourceClaims")) or any(
            GPU in ((c.get("resources") or {}).get("requests") or {}) for c in pod["spec"]["containers"]
        )
        on_gpu_node = group in gpu_groups
        if wants_gpu and not on_gpu_node:
            wrong_place[key] = f"requests a GPU but runs on {group}"
        elif on_gpu_node and not wants_gpu and _owner_kind(pod) != "DaemonSet":
            wrong_place[key] = f"requests no GPU but runs on GPU group {group}"
    return Check(
        "pods scheduled and placed",
        not pending and not wrong_place and bool(pods),
        f"{len(pods)} pods: {len(pending)} pending, {len(wrong_place)} misplaced",
        {"pending": pending, "misplaced": wrong_place, "placement": placements},
    )


def gpu_nodes_run_node_agents(api: KubeApi, gpu_groups: Iterable[str], agents: Iterable[str]) -> Check:
    """Every GPU node runs each node agent (device plugin, ...): their tolerations match the GPU taints."""
    gpu_groups = set(gpu_groups)
    gpu_nodes = [n["metadata"]["name"] for n in api.list("Node") if group_of(n) in gpu_groups]
    missing = {}
    for agent in agents:
        covered = {
            p["spec"].get("nodeName")
            for p in api.list(
                "Pod", selector=f"app.kubernetes.io/name={agent},app.kubernetes.io/component=node-agent"
            )
            if p.get("status", {}).get("phase") == "Running"
        }
        lacking = sorted(set(gpu_nodes) - covered)
        if lacking:
            missing[agent] = lacking
    return Check(
        "node agents on every GPU node",
        not missing,
        f"{len(gpu_nodes)} GPU nodes; agents missing on {sum(len(v) for v in missing.values())}",
        {"gpu_nodes": gpu_nodes, "missing": missing},
    )


def state_objects_exist(api: KubeApi, state_resources: Iterable[Mapping[str, Any]]) -> Check:
    """Every Kubernetes object in the stack's state is held by the API server (custom resources included)."""
    plurals = {(prefix, kind): (plural, namespaced) for prefix, plural, namespaced, kind in api.apis()}
    missing, checked, custom = [], 0, 0
    for r in state_resources:
        typ = r.get("type", "")
        if (
            not typ.startswith("kubernetes:")
            or typ.startswith("kubernetes:helm.sh")
            or r.get("custom") is False
        ):
            continue
        outputs = r.get("outputs") or {}
        api_version, kind = outputs.get("apiVersion"), outputs.get("kind")
        meta = outputs.get("metadata") or {}
        if not api_version or not kind or not meta.get("name"):
            continue
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        found = plurals.get((prefix, kind))
        checked += 1
        if "." in api_version.split("/")[0] and not api_version.split("/")[0].endswith("k8s.io"):
            custom += 1
        if found is None:
            missing.append(f"{api_version} {kind} {meta['name']}: the server does not serve this kind")
            continue
        plural, namespaced = found
        ns = f"/namespaces/{meta['namespace']}" if namespaced and meta.get("namespace") else ""
        try:
            api.request("GET", f"{prefix}{ns}/{plural}/{meta['name']}")
        except ApiError as exc:
            missing.append(f"{api_version} {kind} {meta.get('namespace', '')}/{meta['name']}: {exc.message}")
    return Check(
        "state objects held by the API server",
        not missing and checked > 0,
        f"{checked - len(missing)}/{checked} objects found ({custom} custom resources)",
        {"missing": missing},
    )


def snapshot(api: KubeApi) -> set[str]:
    """Every object the API server holds, as ``apiVersion kind namespace/name`` (events aside)."""
    objects = set()
    for prefix, plural, _namespaced, kind in api.apis():
        if kind in ("Event", "Lease", "EndpointSlice", "Endpoints") or plural in (
            "events",
            "componentstatuses",
        ):
            continue
        try:
            items = api.list_path(f"{prefix}/{plural}")
        except ApiError:
            continue
        version = prefix.removeprefix("/api/").removeprefix("/apis/")
        for item in items:
            objects.add(f"{version} {kind} {_key(item)}")
    return objects


def nothing_left(
    before: set[str], after: set[str], kept_crds: Iterable[str], retained_volumes: Iterable[str] = ()
) -> Check:
    """After destroy, the cluster holds what it held before the first deployment, except the CRDs Helm
    installed from charts' ``crds/`` folders (Helm never deletes those) and volumes whose storage class
    retains them (prod keeps its data): both counted apart."""
    kept_crds = list(kept_crds)
    kept = {f"apiextensions.k8s.io/v1 CustomResourceDefinition {name}" for name in kept_crds}
    # The API server registers an APIService for each served version of a CRD's group: it stays with them.
    groups = {name.split(".", 1)[1] for name in kept_crds}
    kept |= {
        x
        for x in after
        if x.startswith("apiregistration.k8s.io/v1 APIService ")
        and x.rsplit(" ", 1)[1].split(".", 1)[1] in groups
    }
    retained = {x for x in after - before if x.startswith("v1 PersistentVolume ")} & set(retained_volumes)
    left = sorted(after - before - kept - retained)
    crds_kept = sorted((after - before) & kept)
    return Check(
        "destroy left nothing of the platform",
        not left,
        f"{len(left)} objects left; {len(crds_kept)} kept by Helm's crds/ rule; {len(retained)} volumes kept by Retain",
        {"left": left, "helm_kept": crds_kept, "retained_volumes": sorted(retained)},
    )


def autoscaled_at_minimum(api: KubeApi, timeout: float = 120) -> Check:
    """Each Deployment an HPA manages runs at least the HPA's minReplicas, available (the HPA controller
    scales up to the minimum on its own; GPU replicas may need a scale-up from zero first)."""
    hpas = [h for h in api.request("GET", "/apis/autoscaling/v2/horizontalpodautoscalers")["items"]]

    def short() -> dict[str, str]:
        missing = {}
        for hpa in hpas:
            ref, ns = hpa["spec"]["scaleTargetRef"], hpa["metadata"]["namespace"]
            want = hpa["spec"].get("minReplicas", 1)
            status = (api.get("Deployment", ref["name"], ns) or {}).get("status") or {}
            if status.get("availableReplicas", 0) < want:
                missing[f"{ns}/{ref['name']}"] = f"{status.get('availableReplicas', 0)}/{want} available"
        return missing

    started = time.monotonic()
    with contextlib.suppress(TimeoutError):  # what is still short is reported below
        wait_for(lambda: not short(), timeout=timeout, what="HPAs at their minimum")
    missing = short()
    return Check(
        "autoscaled Deployments at their minimum",
        not missing,
        f"{len(hpas) - len(missing)}/{len(hpas)} at minReplicas after {time.monotonic() - started:.0f} s",
        {"short": missing},
    )


def _minor_of(version: str | None) -> str | None:
    """ "1.36", from what /version or EKS reports ("1" and "36+", "v1.36.3", "1.36")."""
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


def control_plane_version(
    server_version: Mapping[str, Any], eks_versions: Mapping[str, str | None], stack_minor: str
) -> Check:
    """The API server's ``/version`` reports the stack's ``aiplatform:cluster.kubernetesVersion`` minor,
    and so does every EKS cluster the stack created (its ``version`` output)."""
    major = str(server_version.get("major", ""))
    minor = re.sub(r"\D", "", str(server_version.get("minor", "")))
    served = f"{major}.{minor}" if major and minor else _minor_of(server_version.get("gitVersion"))
    clusters = {name: _minor_of(version) for name, version in eks_versions.items()}
    wrong = {name: version for name, version in eks_versions.items() if clusters[name] != stack_minor}
    return Check(
        "the control plane runs the stack's Kubernetes minor",
        served == stack_minor and bool(clusters) and not wrong,
        f"stack {stack_minor}; API server {server_version.get('gitVersion')} ({served}); "
        f"EKS clusters {', '.join(f'{n}: {v}' for n, v in eks_versions.items()) or 'none'}",
        {
            "stack_minor": stack_minor,
            "server_version": dict(server_version),
            "eks_versions": dict(eks_versions),
            "mismatched_eks": wrong,
        },
    )
