"""GPUs by DRA in the simulated cloud: the NVIDIA DRA driver's kubelet plugin played for kwok GPU nodes,
and what the cluster autoscaler knows of a pending pod's claims.

- ``KubeletPlugin``: on each node where a pod of the driver's kubelet plugin DaemonSet runs (the stand-in
  chart places it by the values the program sets, as the real chart does), a ResourceSlice of the node's
  GPUs as the driver publishes them: driver ``gpu.nvidia.com``, one pool named after the node, one device
  ``gpu-<i>`` per GPU with the attributes ``type``, ``uuid`` and ``productName`` and the ``memory``
  capacity, all from the instance type table (the driver's names, ``aiplatform.dra``). The slice is owned
  by its Node, so it goes with it. Such a node runs no device plugin (the chart refuses both on one
  node): it advertises no ``nvidia.com/gpu``. The real kube-scheduler allocates claims from these slices.
- ``pod_device_requests`` / ``node_devices`` / ``device_shape``: the cluster autoscaler's view of DRA
  (1.36.1): a new node of a group offers the devices of the group's running node, copied from its slices
  (``SanitizedTemplateNodeInfoFromNodeInfo``); a group without a node offers none, since its AWS template,
  built from the group's tags, holds no ResourceSlice (``TemplateNodeInfo``). The selectors the platform
  writes are evaluated here; any other CEL is not, and such a claim gets no node.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiplatform.compute.instance_types import lookup
from aiplatform.dra import DRIVER, MEMORY, PRODUCT_NAME
from tools.e2e.cloud.nodes import NodeShape
from tools.e2e.kubeapi import ApiError, KubeApi

CHART = "dra-driver-nvidia-gpu"
AGENT_SELECTOR = f"app.kubernetes.io/name={CHART},app.kubernetes.io/component=node-agent"
GPU_RESOURCE = "nvidia.com/gpu"
# The pseudo-resource the autoscaler's node arithmetic counts a node's devices in.
DEVICES = f"{DRIVER} devices"


@dataclass(frozen=True)
class Device:
    """A GPU as the driver publishes it: what a selector reads."""

    name: str
    product_name: str
    memory_mib: int


def slice_manifest(node: Mapping[str, Any]) -> dict | None:
    """The ResourceSlice the driver's kubelet plugin publishes for ``node`` (None: no GPU the table knows)."""
    meta = node["metadata"]
    instance = lookup((meta.get("labels") or {}).get("node.kubernetes.io/instance-type", ""))
    if instance is None or instance.gpu is None:
        return None
    gpu = instance.gpu
    devices = []
    for index in range(instance.gpus):
        uuid = hashlib.sha256(f"{meta['name']}/{index}".encode()).hexdigest()
        devices.append(
            {
                "name": f"gpu-{index}",
                "attributes": {
                    "type": {"string": "gpu"},
                    "uuid": {
                        "string": f"GPU-{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
                    },
                    PRODUCT_NAME: {"string": gpu.product_name},
                },
                "capacity": {MEMORY: {"value": f"{gpu.published_memory_mib}Mi"}},
            }
        )
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {
            "name": f"{meta['name']}-{DRIVER}",
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {
            "driver": DRIVER,
            "nodeName": meta["name"],
            "pool": {"name": meta["name"], "generation": 1, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


class KubeletPlugin:
    """The driver's kubelet plugin on every node its DaemonSet's pod runs on."""

    def __init__(self, api: KubeApi):
        self.api = api
        self.published: dict[str, float] = {}  # node -> when its slice was published

    def step(self) -> None:
        try:
            agents = self.api.list("Pod", selector=AGENT_SELECTOR)
        except ApiError:
            return
        nodes = {
            p["spec"].get("nodeName")
            for p in agents
            if (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")
        }
        if not nodes:
            return
        existing = {
            s["spec"].get("nodeName") for s in self.api.list("ResourceSlice", fields=f"spec.driver={DRIVER}")
        }
        for name in sorted(n for n in nodes if n):
            node = self.api.get("Node", name)
            if node is None or node["metadata"].get("deletionTimestamp"):
                continue
            self._no_device_plugin(node)
            manifest = slice_manifest(node)
            if name in existing or manifest is None:
                continue
            try:
                self.api.create("ResourceSlice", manifest)
            except ApiError as exc:
                if exc.status != 409:
                    raise
            self.published[name] = time.time()

    def _no_device_plugin(self, node: dict) -> None:
        """A node the DRA driver manages advertises no device-plugin GPUs."""
        status = node.get("status") or {}
        if GPU_RESOURCE not in (status.get("capacity") or {}) and GPU_RESOURCE not in (
            status.get("allocatable") or {}
        ):
            return
        for part in ("capacity", "allocatable"):
            (status.get(part) or {}).pop(GPU_RESOURCE, None)
        self.api.replace_status("Node", node)


# -- the autoscaler's view ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceRequest:
    """What one request of a claim asks: ``count`` devices of ``device_class`` matching ``selectors``."""

    device_class: str
    count: int
    selectors: tuple[str, ...] = ()


_PRODUCT = re.compile(rf"^device\.attributes\['{re.escape(DRIVER)}'\]\.{PRODUCT_NAME} == '([^']*)'$")
_MEMORY = re.compile(
    rf"^device\.capacity\['{re.escape(DRIVER)}'\]\.{MEMORY}\.compareTo\(quantity\('(\d+)Gi'\)\) >= 0$"
)


def matches(request: DeviceRequest, device: Device) -> bool | None:
    """Whether ``device`` satisfies the request's selectors (None: a selector this simulation cannot
    evaluate)."""
    for selector in request.selectors:
        if found := _PRODUCT.match(selector):
            if device.product_name != found.group(1):
                return False
        elif found := _MEMORY.match(selector):
            if device.memory_mib < int(found.group(1)) * 1024:
                return False
        else:
            return None
    return True


def _requests(spec: Mapping[str, Any]) -> list[DeviceRequest]:
    found = []
    for request in (spec.get("devices") or {}).get("requests") or []:
        exactly = request.get("exactly") or {}
        selectors = tuple((s.get("cel") or {}).get("expression", "") for s in exactly.get("selectors") or [])
        found.append(
            DeviceRequest(exactly.get("deviceClassName", ""), int(exactly.get("count") or 1), selectors)
        )
    return found


def pod_device_requests(api: KubeApi, pod: Mapping[str, Any]) -> list[DeviceRequest] | None:
    """The devices a pending pod's claims still need (None: the pod claims none; an empty list: its claims
    are allocated already, to a node of their own, which no new node changes)."""
    claims = pod["spec"].get("resourceClaims") or []
    if not claims:
        return None
    namespace = pod["metadata"]["namespace"]
    found: list[DeviceRequest] = []
    for claim in claims:
        if name := claim.get("resourceClaimName"):
            shared = api.get("ResourceClaim", name, namespace)
            if shared is None or (shared.get("status") or {}).get("allocation"):
                return []
            found += _requests(shared["spec"])
        elif name := claim.get("resourceClaimTemplateName"):
            template = api.get("ResourceClaimTemplate", name, namespace)
            found += _requests(((template or {}).get("spec") or {}).get("spec") or {})
    return found


def shared_claims(pod: Mapping[str, Any]) -> list[str]:
    """The shared claims a pod names, as ``namespace/name``."""
    namespace = pod["metadata"]["namespace"]
    return [
        f"{namespace}/{c['resourceClaimName']}"
        for c in pod["spec"].get("resourceClaims") or []
        if c.get("resourceClaimName")
    ]


def one_pod_per_shared_claim(
    pending: Sequence[Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
    """The pods to plan nodes for: of the pods naming one unallocated shared claim, the first only (its
    devices are allocated once; the others follow it to its node). The others, with why they wait."""
    planned, seen, waiting = [], set(), {}
    for pod in pending:
        claims = shared_claims(pod)
        if claims and all(c in seen for c in claims):
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            waiting[key] = f"shares {', '.join(claims)} with a pod a node is planned for"
            continue
        seen.update(claims)
        planned.append(pod)
    return planned, waiting


def node_devices(slices: Sequence[Mapping[str, Any]]) -> dict[str, list[Device]]:
    """Each node's GPUs, from the driver's ResourceSlices."""
    found: dict[str, list[Device]] = {}
    for item in slices:
        spec = item["spec"]
        if spec.get("driver") != DRIVER:
            continue
        for device in spec.get("devices") or []:
            attributes, capacity = device.get("attributes") or {}, device.get("capacity") or {}
            memory = str((capacity.get(MEMORY) or {}).get("value", "0Mi"))
            found.setdefault(spec.get("nodeName", ""), []).append(
                Device(
                    device["name"],
                    (attributes.get(PRODUCT_NAME) or {}).get("string", ""),
                    int(memory.removesuffix("Mi")) if memory.endswith("Mi") else 0,
                )
            )
    return found


def device_fit(requests: Sequence[DeviceRequest], devices: Sequence[Device] | None) -> tuple[str | None, int]:
    """Why a new node with ``devices`` cannot satisfy ``requests`` (None: it can), and how many devices
    they take."""
    if devices is None:
        return "no DRA devices in its node template (the group has no running node to copy them from)", 0
    needed = 0
    for request in requests:
        fitting = [matches(request, d) for d in devices]
        if None in fitting:
            return f"a selector the simulated autoscaler cannot evaluate ({', '.join(request.selectors)})", 0
        if sum(fitting) < request.count:
            return (
                f"its devices do not satisfy {request.device_class} x {request.count} {list(request.selectors)}",
                0,
            )
        needed += request.count
    return None, needed


def device_shape(shape: NodeShape, devices: Sequence[Device] | None) -> NodeShape:
    """``shape`` offering its devices as the autoscaler counts them on a new node."""
    if devices is None:
        return shape
    count = str(len(devices))
    return NodeShape(
        shape.instance_type,
        shape.labels,
        shape.taints,
        {**shape.capacity, DEVICES: count},
        {**shape.allocatable, DEVICES: count},
    )


def as_requests(needed: int) -> dict[str, Decimal]:
    return {DEVICES: Decimal(needed)} if needed else {}
