"""EC2 instances of an EKS managed node group, as kwok nodes: the group's labels and taints, the
instance type's capacity (from the platform's instance type table) and the labels EKS and the kubelet
put on every node.

Pure builders (``node_manifest``, ``template_from_tags``) plus ``NodeFleet``, which creates and deletes
the nodes through the local API server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiplatform.compute.instance_types import InstanceType, require
from tools.e2e.cluster import KWOK_NODE_ANNOTATION
from tools.e2e.kubeapi import KubeApi

GROUP_LABEL = "eks.amazonaws.com/nodegroup"
TEMPLATE_TAG = "k8s.io/cluster-autoscaler/node-template/"
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


def node_manifest(name: str, shape: NodeShape, provider_id: str) -> dict:
    key, value = KWOK_NODE_ANNOTATION
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {**shape.labels, "kubernetes.io/hostname": name},
        },
        "spec": {"taints": [dict(t) for t in shape.taints], "providerID": provider_id},
        "status": {"capacity": dict(shape.capacity), "allocatable": dict(shape.allocatable)},
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

    def add(self, group: Mapping[str, Any], count: int, salt: str) -> list[str]:
        name = group["nodeGroupName"]
        existing = {n["metadata"]["name"] for n in self.nodes_of(name)}
        names = []
        index = 0
        while len(names) < count:
            candidate = node_name(name, index, salt)
            index += 1
            if candidate in existing:
                continue
            zone = self.zones[index % len(self.zones)]
            shape = group_shape(group, zone)
            provider_id = f"aws:///{zone}/i-{hashlib.sha256(candidate.encode()).hexdigest()[:17]}"
            self.api.create("Node", node_manifest(candidate, shape, provider_id))
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
