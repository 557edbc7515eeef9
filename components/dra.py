"""GPUs by Dynamic Resource Allocation (DRA, ``resource.k8s.io/v1``, GA since Kubernetes 1.34).

A stack gives pods GPUs one of two ways, chosen once (``compute.gpuAllocation``, else its provisioner's
default for the cluster's minor):

- ``device-plugin``: NVIDIA's device plugin advertises ``nvidia.com/gpu`` on each GPU node and a
  container asks for a count of it;
- ``dra``: NVIDIA's DRA driver publishes each GPU node's GPUs in a ResourceSlice (driver
  ``gpu.nvidia.com``, with attributes such as ``productName`` and the ``memory`` capacity) and a pod
  references ResourceClaims, which kube-scheduler allocates from those slices: one claim per pod from
  a ResourceClaimTemplate, or one claim several pods share (they then use the same GPU).

This module holds the driver's names (its DeviceClass, attribute and capacity names, at the pinned
chart version), and pure builders: the CEL a ``GpuSelector`` becomes, a claim's spec, the sharing
configuration the driver reads, the namespace quota key of a device class. No resource is created here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from .errors import Problem

GpuAllocation = Literal["device-plugin", "dra"]
DEVICE_PLUGIN: GpuAllocation = "device-plugin"
DRA: GpuAllocation = "dra"
GPU_ALLOCATIONS: tuple[GpuAllocation, ...] = (DEVICE_PLUGIN, DRA)

# The NVIDIA DRA driver (kubernetes-sigs/dra-driver-nvidia-gpu v0.4.1): its name, which is also the
# domain of the attributes and capacities it publishes (cmd/gpu-kubelet-plugin/main.go, deviceinfo.go,
# partitions.go), and the DeviceClasses its chart installs with GPU allocation on (templates/deviceclass-*.yaml).
DRIVER = "gpu.nvidia.com"
GPU_DEVICE_CLASS = "gpu.nvidia.com"  # a whole GPU: device.attributes['gpu.nvidia.com'].type == 'gpu'
DEVICE_CLASSES = ("gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com")
PRODUCT_NAME = "productName"  # NVML's device name, e.g. "NVIDIA A10G"
MEMORY = "memory"  # NVML's total framebuffer memory, in bytes (a binary quantity)

# The name a pod gives its GPU claim (spec.resourceClaims[].name), which its containers reference.
CLAIM_NAME = "gpu"
REQUEST_NAME = "gpu"  # the claim's device request

# The driver's opaque configuration of a claim (api/nvidia.com/resource/v1beta1: GpuConfig).
GPU_CONFIG_API_VERSION = "resource.nvidia.com/v1beta1"
SharingStrategy = Literal["TimeSlicing", "MPS"]
SHARING_STRATEGIES: tuple[SharingStrategy, ...] = ("TimeSlicing", "MPS")
# Each strategy is behind one of the driver's feature gates (pkg/featuregates at v0.4.1: both alpha,
# off by default); the driver refuses a claim whose strategy's gate is off.
SHARING_FEATURE_GATES: dict[str, str] = {"TimeSlicing": "TimeSlicingSettings", "MPS": "MPSSupport"}

_PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()/+-]{0,127}$")


@dataclass(frozen=True)
class SharedGpuClaim:
    """A ResourceClaim the pods of several workloads use together (``workloads.SharedGpu.reference``):
    they run on the node its GPUs were allocated on and share them."""

    claim_name: pulumi.Input[str]  # the ResourceClaim's name
    namespace: str  # its namespace: only pods of this namespace can use it
    devices: int = 1  # the GPUs it claims
    source: str | None = None  # the node group or pool its GPUs come from (None: not known)


def quota_key(device_class: str) -> str:
    """The ResourceQuota key that caps the devices of ``device_class`` a namespace's claims request."""
    return f"{device_class}.deviceclass.resource.k8s.io/devices"


@dataclass(frozen=True)
class GpuSelector:
    """Which GPUs a claim accepts, by what the driver publishes: the GPU model's ``productName``
    (NVML's name: ``NVIDIA A10G``, ``NVIDIA L4``, ``Tesla T4``) and a floor on its ``memory``.

    The driver publishes NVML's total memory, a little below the nominal size: an A10G (24 GB) publishes
    23028 MiB, so ``min_memory_gib=22`` matches it and 24 does not (``instance_types.py`` has each model's).
    """

    product_name: str | None = None  # the productName a GPU must have (None: any model)
    min_memory_gib: int | None = None  # the least memory a GPU must publish, GiB (None: any)

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if self.product_name is not None and not _PRODUCT_NAME.fullmatch(self.product_name):
            found.append(("product_name", f"{self.product_name!r} is not a GPU product name"))
        if self.min_memory_gib is not None and not 1 <= self.min_memory_gib <= 4096:
            found.append(("min_memory_gib", f"{self.min_memory_gib} must be between 1 and 4096"))
        if self.product_name is None and self.min_memory_gib is None:
            found.append(("", "select by product_name, min_memory_gib or both (or pass no selector)"))
        return found

    def cel(self) -> list[str]:
        """One CEL expression per condition (a device must satisfy every selector of a request)."""
        found = []
        if self.product_name is not None:
            found.append(f"device.attributes['{DRIVER}'].{PRODUCT_NAME} == '{self.product_name}'")
        if self.min_memory_gib is not None:
            found.append(
                f"device.capacity['{DRIVER}'].{MEMORY}.compareTo(quantity('{self.min_memory_gib}Gi')) >= 0"
            )
        return found

    def matches(self, product_name: str, memory_mib: int) -> bool:
        """Whether a GPU the driver publishes with ``product_name`` and ``memory_mib`` matches."""
        if self.product_name is not None and product_name != self.product_name:
            return False
        return self.min_memory_gib is None or memory_mib >= self.min_memory_gib * 1024

    def describe(self) -> str:
        parts = [f"productName '{self.product_name}'"] if self.product_name is not None else []
        if self.min_memory_gib is not None:
            parts.append(f"at least {self.min_memory_gib} GiB")
        return " with ".join(parts)


def sharing_parameters(strategy: SharingStrategy) -> dict[str, Any]:
    """The driver's ``GpuConfig`` that makes the pods of one claim share its GPU by ``strategy``."""
    sharing: dict[str, Any] = {"strategy": strategy}
    if strategy == "TimeSlicing":
        sharing["timeSlicingConfig"] = {"interval": "Default"}
    else:
        sharing["mpsConfig"] = {}
    return {"apiVersion": GPU_CONFIG_API_VERSION, "kind": "GpuConfig", "sharing": sharing}


def claim_spec(
    count: int,
    *,
    device_class: str = GPU_DEVICE_CLASS,
    selector: GpuSelector | None = None,
    sharing: SharingStrategy | None = None,
) -> k8s.resource.v1.ResourceClaimSpecArgs:
    """A claim of exactly ``count`` devices of ``device_class`` that ``selector`` accepts, configured
    for sharing by ``sharing`` (a claim several pods use)."""
    resource = k8s.resource.v1
    exactly = resource.ExactDeviceRequestArgs(
        device_class_name=device_class,
        allocation_mode="ExactCount",
        count=count,
        selectors=[
            resource.DeviceSelectorArgs(cel=resource.CELDeviceSelectorArgs(expression=expression))
            for expression in (selector.cel() if selector else [])
        ]
        or None,
    )
    config = None
    if sharing is not None:
        config = [
            resource.DeviceClaimConfigurationArgs(
                requests=[REQUEST_NAME],
                opaque=resource.OpaqueDeviceConfigurationArgs(
                    driver=DRIVER, parameters=sharing_parameters(sharing)
                ),
            )
        ]
    return resource.ResourceClaimSpecArgs(
        devices=resource.DeviceClaimArgs(
            requests=[resource.DeviceRequestArgs(name=REQUEST_NAME, exactly=exactly)], config=config
        )
    )
