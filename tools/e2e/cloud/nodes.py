"""EC2 instances of an EKS managed node group, as kwok nodes: the group's labels and taints, the
instance type's capacity (from the platform's instance type table) and the labels EKS and the kubelet
put on every node.

Pure builders (``node_manifest``, ``template_from_tags``) plus ``NodeFleet``, which creates and deletes
the nodes through the local API server, and rolls a group to a new release as a managed node group's
rolling update does: one node at a time, a new node first, then the old one cordoned, its pods evicted
through the Eviction API (which honours PodDisruptionBudgets) and the node terminated.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiplatform.compute.instance_types import InstanceType, require
from tools.e2e.cluster import KWOK_NODE_ANNOTATION
from tools.e2e.kubeapi import ApiError, KubeApi, wait_for

GROUP_LABEL = "eks.amazonaws.com/nodegroup"
TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template/"
# How long a node's drain may take before the rolling update fails.
ROLL_DRAIN_SECONDS = 300.0
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
_GiB = 1024


def kube_reserved(instance: InstanceType) -> tuple[int, int]:
    """(millicores, MiB) the EKS AL2023 AMI reserves for the kubelet and the runtime.

    CPU: 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% above; memory: 11 MiB per pod
    the node may run plus 255 MiB (``nodeadm``'s formula), and 100 MiB for the eviction threshold.
    """
    cores = instance.vcpus
    millis = 60 + (10 if cores > 1 else 0) + 5 * max(0, min(cores, 4) - 2) + 2.5 * max(0, cores - 4)
    memory = 11 * instance.max_pods + 255 + 100
    return int(millis), memory


@dataclass(frozen=True)
class NodeShape:
    """What a node of a group looks like to the scheduler."""

    instance_type: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, str], ...]
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]


def shape_of(instance_type: str, labels: Mapping[str, str], taints: list[Mapping[str, str]]) -> NodeShape:
    instance = require(instance_type)
    cpu_reserved, memory_reserved = kube_reserved(instance)
    capacity = {
        "cpu": str(instance.vcpus),
        "memory": f"{instance.memory_mib}Mi",
        "pods": str(instance.max_pods),
        "ephemeral-storage": "100Gi",
    }
    allocatable = {
        "cpu": f"{instance.vcpus * 1000 - cpu_reserved}m",
        "memory": f"{instance.memory_mib - memory_reserved}Mi",
        "pods": str(instance.max_pods),
        "ephemeral-storage": "90Gi",
    }
    if instance.gpus:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(instance.gpus)
    return NodeShape(instance_type, dict(labels), tuple(taints), capacity, allocatable)


def group_shape(group: Mapping[str, Any], zone: str) -> NodeShape:
    """The shape of a node group's nodes, from the node group's own inputs (what EKS launches)."""
    instance_type = (group.get("instanceTypes") or ["m6i.large"])[0]
    instance = require(instance_type)
    name = group["nodeGroupName"]
    labels = {
        **(group.get("labels") or {}),
        GROUP_LABEL: name,
        "eks.amazonaws.com/capacityType": group.get("capacityType") or "ON_DEMAND",
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": zone[:-1],
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64" if instance.arch == "arm64" else "amd64",
    }
    taints = [
        {"key": t["key"], "value": t.get("value", ""), "effect": _EFFECTS.get(t["effect"], t["effect"])}
        for t in group.get("taints") or []
    ]
    return shape_of(instance_type, labels, taints)


def template_from_tags(instance_type: str, tags: Mapping[str, str], zone: str) -> NodeShape:
    """The node a cluster autoscaler imagines for a group at zero: the instance type's capacity plus the
    labels, taints and resources its node-template tags declare (and nothing the tags omit)."""
    instance = require(instance_type)
    labels = {
        "node.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/zone": zone,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "arm64" if instance.arch == "arm64" else "amd64",
    }
    taints = []
    extra: dict[str, str] = {}
    for key, value in tags.items():
        if not key.startswith(TEMPLATE_TAG):
            continue
        kind, _, name = key[len(TEMPLATE_TAG) :].partition("/")
        if kind == "label":
            labels[name] = value
        elif kind == "taint":
            taint_value, _, effect = value.rpartition(":")
            taints.append({"key": name, "value": taint_value, "effect": effect})
        elif kind == "resources":
            extra[name] = value
    shape = shape_of(instance_type, labels, taints)
    return NodeShape(
        shape.instance_type,
        shape.labels,
        shape.taints,
        {**shape.capacity, **extra},
        {**shape.allocatable, **extra},
    )


def kubelet_version(group: Mapping[str, Any]) -> str | None:
    """The kubelet version a node of the group reports: the group's Kubernetes minor (its ``version``
    input). The patch is the simulation's (``.0``): the AMI release a real group boots decides it."""
    minor = group.get("version")
    return f"v{minor}.0" if minor else None


def node_manifest(name: str, shape: NodeShape, provider_id: str, kubelet: str | None = None) -> dict:
    key, value = KWOK_NODE_ANNOTATION
    status: dict[str, Any] = {"capacity": dict(shape.capacity), "allocatable": dict(shape.allocatable)}
    if kubelet:
        status["nodeInfo"] = {"kubeletVersion": kubelet}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {**shape.labels, "kubernetes.io/hostname": name},
        },
        "spec": {"taints": [dict(t) for t in shape.taints], "providerID": provider_id},
        "status": status,
    }


def node_name(group: str, index: int, salt: str) -> str:
    digest = hashlib.sha256(f"{group}/{salt}/{index}".encode()).hexdigest()[:6]
    return f"{group}-{digest}-{index}"


@dataclass
class NodeFleet:
    """The nodes of node groups, in the local cluster."""

    api: KubeApi
    zones: tuple[str, ...] = ("us-east-1a", "us-east-1b")
    created: list[str] = field(default_factory=list)

    def nodes_of(self, group: str) -> list[dict]:
        return self.api.list("Node", selector=f"{GROUP_LABEL}={group}")

    def add(self, group: Mapping[str, Any], count: int, salt: str, zone: str | None = None) -> list[str]:
        name = group["nodeGroupName"]
        existing = {n["metadata"]["name"] for n in self.nodes_of(name)}
        names = []
        index = 0
        while len(names) < count:
            candidate = node_name(name, index, salt)
            index += 1
            if candidate in existing:
                continue
            node_zone = zone or self.zones[index % len(self.zones)]
            shape = group_shape(group, node_zone)
            provider_id = f"aws:///{node_zone}/i-{hashlib.sha256(candidate.encode()).hexdigest()[:17]}"
            self.api.create("Node", node_manifest(candidate, shape, provider_id, kubelet_version(group)))
            names.append(candidate)
        self.created += names
        return names

    def scale_to(self, group: Mapping[str, Any], size: int, salt: str) -> None:
        nodes = sorted(n["metadata"]["name"] for n in self.nodes_of(group["nodeGroupName"]))
        if len(nodes) < size:
            self.add(group, size - len(nodes), salt)
        for extra in nodes[size:]:
            self.api.delete("Node", extra)

    def remove_group(self, group: str) -> None:
        for node in self.nodes_of(group):
            self.api.delete("Node", node["metadata"]["name"])

    # -- a managed node group's rolling update -------------------------------------------------------
    def roll(
        self,
        group: Mapping[str, Any],
        salt: str,
        record: Callable[..., None] = lambda kind, **fields: None,
        drain_seconds: float = ROLL_DRAIN_SECONDS,
    ) -> list[dict[str, Any]]:
        """Replace each node of the group not at its release by a new one, one at a time: the new node
        joins (Ready) in the old one's zone, the old one is cordoned, its pods are evicted through the
        Eviction API (a PodDisruptionBudget that allows no disruption yet makes it retry), and it is
        terminated. ``record`` is called with each replaced node's event; returns them."""
        name, kubelet = group["nodeGroupName"], kubelet_version(group)
        outdated = sorted(
            (n for n in self.nodes_of(name) if _node_kubelet(n) != kubelet),
            key=lambda n: n["metadata"]["name"],
        )
        events = []
        for index, old in enumerate(outdated):
            start = time.time()
            old_name = old["metadata"]["name"]
            zone = old["metadata"].get("labels", {}).get("topology.kubernetes.io/zone")
            [new] = self.add(group, 1, salt=f"{salt}-roll-{index}", zone=zone)
            wait_for(lambda n=new: _ready(self.api.get("Node", n)), timeout=60, what=f"node {new} Ready")
            self.api.merge_patch("Node", old_name, {"spec": {"unschedulable": True}})
            evicted, refused = self.drain(old_name, drain_seconds)
            self.api.delete("Node", old_name)
            event = {
                "group": name,
                "old": old_name,
                "old_kubelet": _node_kubelet(old),
                "new": new,
                "new_kubelet": kubelet,
                "evicted": evicted,
                "refused": refused,
                "started": start,
                "ended": time.time(),
                "seconds": round(time.time() - start, 2),
            }
            record("node-replaced", **event)
            events.append(event)
        return events

    def drain(self, node: str, timeout: float) -> tuple[list[str], int]:
        """Evict the node's pods (not DaemonSet pods, which go with the node) through the Eviction API,
        retrying while a PodDisruptionBudget refuses (HTTP 429), until each pod is gone. Returns the
        evicted pods and how many times a budget refused; raises after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        evicted: list[str] = []
        refused = 0
        while True:
            pods = [p for p in self.api.list("Pod", fields=f"spec.nodeName={node}") if not _daemon_pod(p)]
            if not pods:
                return evicted, refused
            for pod in pods:
                meta = pod["metadata"]
                key = f"{meta['namespace']}/{meta['name']}"
                if meta.get("deletionTimestamp"):
                    continue
                try:
                    self.api.request(
                        "POST",
                        self.api.path("Pod", meta["namespace"], meta["name"], "eviction"),
                        {
                            "apiVersion": "policy/v1",
                            "kind": "Eviction",
                            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                        },
                    )
                    evicted.append(key)
                except ApiError as exc:
                    if exc.status == 429:  # a PodDisruptionBudget allows no disruption now
                        refused += 1
                    elif exc.status != 404:
                        raise
            if time.monotonic() > deadline:
                left = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods)
                raise TimeoutError(
                    f"node {node}: pods still running after {timeout:.0f} s of evictions ({left}); "
                    f"PodDisruptionBudgets refused {refused} evictions (EKS fails the update with "
                    "PodEvictionFailure)"
                )
            time.sleep(1)


def _node_kubelet(node: Mapping[str, Any]) -> str | None:
    return ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion")


def _ready(node: Mapping[str, Any] | None) -> bool:
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _daemon_pod(pod: Mapping[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])
