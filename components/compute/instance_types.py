"""EC2 instance types the platform knows how to size: vCPUs, memory, pod density and GPUs.

Pure data and a small typed lookup. One table serves everything that reasons about a node: the node
group rules (GPU model and count per group), the GPU capacity and quota rules, the allocatable
capacity of the system nodes, the cost report and the device plugin's checks. Add a type here before
a stack uses it; a program that installs the library adds one with ``add_instance_types``.

Sources, per column:

- ``vcpus``, ``memory_mib``, ``arch``, the GPU count: EC2 ``DescribeInstanceTypes`` (``VCpuInfo``,
  ``MemoryInfo.SizeInMiB``, ``ProcessorInfo``, ``GpuInfo``), as mirrored in the cluster autoscaler's
  static AWS instance list;
- ``max_enis``, ``ipv4_per_eni``: the default network card's limits, as the EKS AMI's
  ``nodeadm`` ships them (``instance-info.jsonl``: ``defaultMaxENIs``, ``ipv4AddressesPerInterface``);
- GPU model and memory per GPU: the EC2 accelerated-computing instance pages;
- what the NVIDIA DRA driver publishes of each GPU in its ResourceSlices (``GpuModel.product_name``,
  ``GpuModel.published_memory_mib``): the driver's ``productName`` attribute is NVML's device name and
  its ``memory`` capacity NVML's total framebuffer memory (kubernetes-sigs/dra-driver-nvidia-gpu
  v0.4.1, ``cmd/gpu-kubelet-plugin/deviceinfo.go`` and ``nvlib.go``), which is what ``nvidia-smi``
  prints as the GPU's name and ``memory.total``; the values are ``nvidia-smi`` outputs of these GPUs
  with R550-R595 drivers in public repositories. The total is below the nominal memory (NVML leaves
  out what the driver reserves) and can move by a few MiB with the driver and ECC: a claim asking for
  the nominal 24 GiB of an A10G matches no device.

Accelerator label values follow the cluster autoscaler's AWS GPU types (``nvidia-tesla-t4``,
``nvidia-tesla-a100``, ``nvidia-a10g``, ``nvidia-l4``, ``nvidia-l40s``); models it does not list
follow the same pattern.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from ..errors import Problem
from ..errors import require as require_valid

Architecture = Literal["x86_64", "arm64"]

# EKS managed node groups (without a custom AMI) cap the kubelet's maxPods in the node's user data:
# 110 for instances with fewer than 30 vCPUs, 250 otherwise (EKS user guide, "How maxPods is
# determined"). Below the cap, the AMI's ENI formula decides.
MANAGED_MAX_PODS_SMALL, MANAGED_MAX_PODS_LARGE, MANAGED_MAX_PODS_VCPU_THRESHOLD = 110, 250, 30


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_gib: int  # per GPU, nominal
    accelerator: str  # node label value naming the model
    # What the NVIDIA DRA driver publishes per GPU: its ``productName`` attribute (NVML's device name)
    # and its ``memory`` capacity (NVML's total, a little below the nominal size). None: not known, so a
    # DRA selector is not checked against this model before the deploy (the scheduler still is).
    product_name: str | None = None
    published_memory_mib: int | None = None

    def __str__(self) -> str:
        return self.name


T4 = GpuModel("NVIDIA T4", 16, "nvidia-tesla-t4", "Tesla T4", 15360)
T4G = GpuModel("NVIDIA T4G", 16, "nvidia-t4g", "NVIDIA T4G", 15360)
A10G = GpuModel("NVIDIA A10G", 24, "nvidia-a10g", "NVIDIA A10G", 23028)
L4 = GpuModel("NVIDIA L4", 24, "nvidia-l4", "NVIDIA L4", 23034)
L40S = GpuModel("NVIDIA L40S", 48, "nvidia-l40s", "NVIDIA L40S", 46068)
A100_40GB = GpuModel("NVIDIA A100 40GB", 40, "nvidia-tesla-a100", "NVIDIA A100-SXM4-40GB", 40960)
A100_80GB = GpuModel("NVIDIA A100 80GB", 80, "nvidia-a100-80gb", "NVIDIA A100-SXM4-80GB", 81920)
H100 = GpuModel("NVIDIA H100", 80, "nvidia-h100", "NVIDIA H100 80GB HBM3", 81559)
H200 = GpuModel("NVIDIA H200", 141, "nvidia-h200", "NVIDIA H200", 143771)


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_mib: int
    max_enis: int
    ipv4_per_eni: int
    arch: Architecture = "x86_64"
    gpu: GpuModel | None = None
    gpus: int = 0

    def problems(self) -> list[str]:
        """What EC2 could not describe so (checked when a program adds a type)."""
        found = []
        if "." not in self.name or not all(self.name.split(".", 1)):
            found.append(f"'{self.name}' is not an instance type name (family.size, e.g. g6.xlarge)")
        for field_name in ("vcpus", "memory_mib", "max_enis", "ipv4_per_eni"):
            if getattr(self, field_name) < 1:
                found.append(f"{field_name} must be >= 1")
        if (self.gpu is None) != (self.gpus == 0) or self.gpus < 0:
            found.append("give gpu (its GpuModel) and gpus (> 0) together, or neither")
        return found

    @property
    def family(self) -> str:
        """``g5.2xlarge`` -> ``g5``."""
        return self.name.split(".", 1)[0]

    @property
    def eni_max_pods(self) -> int:
        """The AMI's ENI formula (without prefix delegation): ENIs x (IPv4 per ENI - 1) + 2.

        ``nodeadm`` also sizes the kubelet's memory reservation from this value.
        """
        return self.max_enis * (self.ipv4_per_eni - 1) + 2

    @property
    def max_pods(self) -> int:
        """Pods a node of an EKS managed node group accepts: the ENI formula under the EKS cap."""
        cap = (
            MANAGED_MAX_PODS_SMALL if self.vcpus < MANAGED_MAX_PODS_VCPU_THRESHOLD else MANAGED_MAX_PODS_LARGE
        )
        return min(self.eni_max_pods, cap)

    @property
    def gpu_memory_gib(self) -> int:
        """GPU memory of the whole instance."""
        return self.gpus * self.gpu.memory_gib if self.gpu else 0


def _table(*types: InstanceType) -> dict[str, InstanceType]:
    return {t.name: t for t in types}


_GiB = 1024

_TABLE = _table(
    # -- general purpose (system nodes) ------------------------------------------------------------
    InstanceType("t3.medium", 2, 4 * _GiB, 3, 6),
    InstanceType("t3.large", 2, 8 * _GiB, 3, 12),
    InstanceType("t3.xlarge", 4, 16 * _GiB, 4, 15),
    InstanceType("t3.2xlarge", 8, 32 * _GiB, 4, 15),
    InstanceType("m5.large", 2, 8 * _GiB, 3, 10),
    InstanceType("m5.xlarge", 4, 16 * _GiB, 4, 15),
    InstanceType("m5.2xlarge", 8, 32 * _GiB, 4, 15),
    InstanceType("m6i.large", 2, 8 * _GiB, 3, 10),
    InstanceType("m6i.xlarge", 4, 16 * _GiB, 4, 15),
    InstanceType("m6i.2xlarge", 8, 32 * _GiB, 4, 15),
    InstanceType("m6i.4xlarge", 16, 64 * _GiB, 8, 30),
    InstanceType("m7i.large", 2, 8 * _GiB, 3, 10),
    InstanceType("m7i.xlarge", 4, 16 * _GiB, 4, 15),
    InstanceType("m7i.2xlarge", 8, 32 * _GiB, 4, 15),
    InstanceType("m7g.large", 2, 8 * _GiB, 3, 10, "arm64"),
    InstanceType("m7g.xlarge", 4, 16 * _GiB, 4, 15, "arm64"),
    InstanceType("m7g.2xlarge", 8, 32 * _GiB, 4, 15, "arm64"),
    # -- NVIDIA GPUs -------------------------------------------------------------------------------
    InstanceType("g4dn.xlarge", 4, 16 * _GiB, 3, 10, gpu=T4, gpus=1),
    InstanceType("g4dn.2xlarge", 8, 32 * _GiB, 3, 10, gpu=T4, gpus=1),
    InstanceType("g4dn.4xlarge", 16, 64 * _GiB, 3, 10, gpu=T4, gpus=1),
    InstanceType("g4dn.12xlarge", 48, 192 * _GiB, 8, 30, gpu=T4, gpus=4),
    InstanceType("g5g.xlarge", 4, 8 * _GiB, 4, 15, "arm64", gpu=T4G, gpus=1),
    InstanceType("g5g.2xlarge", 8, 16 * _GiB, 4, 15, "arm64", gpu=T4G, gpus=1),
    InstanceType("g5.xlarge", 4, 16 * _GiB, 4, 15, gpu=A10G, gpus=1),
    InstanceType("g5.2xlarge", 8, 32 * _GiB, 4, 15, gpu=A10G, gpus=1),
    InstanceType("g5.4xlarge", 16, 64 * _GiB, 8, 30, gpu=A10G, gpus=1),
    InstanceType("g5.8xlarge", 32, 128 * _GiB, 8, 30, gpu=A10G, gpus=1),
    InstanceType("g5.12xlarge", 48, 192 * _GiB, 15, 50, gpu=A10G, gpus=4),
    InstanceType("g5.16xlarge", 64, 256 * _GiB, 8, 30, gpu=A10G, gpus=1),
    InstanceType("g5.24xlarge", 96, 384 * _GiB, 15, 50, gpu=A10G, gpus=4),
    InstanceType("g5.48xlarge", 192, 768 * _GiB, 7, 50, gpu=A10G, gpus=8),
    InstanceType("g6.xlarge", 4, 16 * _GiB, 4, 15, gpu=L4, gpus=1),
    InstanceType("g6.2xlarge", 8, 32 * _GiB, 4, 15, gpu=L4, gpus=1),
    InstanceType("g6.4xlarge", 16, 64 * _GiB, 8, 30, gpu=L4, gpus=1),
    InstanceType("g6.8xlarge", 32, 128 * _GiB, 8, 30, gpu=L4, gpus=1),
    InstanceType("g6.12xlarge", 48, 192 * _GiB, 8, 30, gpu=L4, gpus=4),
    InstanceType("g6.48xlarge", 192, 768 * _GiB, 15, 50, gpu=L4, gpus=8),
    InstanceType("g6e.xlarge", 4, 32 * _GiB, 4, 15, gpu=L40S, gpus=1),
    InstanceType("g6e.2xlarge", 8, 64 * _GiB, 4, 15, gpu=L40S, gpus=1),
    InstanceType("g6e.4xlarge", 16, 128 * _GiB, 8, 30, gpu=L40S, gpus=1),
    InstanceType("g6e.12xlarge", 48, 384 * _GiB, 10, 30, gpu=L40S, gpus=4),
    InstanceType("g6e.24xlarge", 96, 768 * _GiB, 10, 50, gpu=L40S, gpus=4),
    InstanceType("g6e.48xlarge", 192, 1536 * _GiB, 10, 50, gpu=L40S, gpus=8),
    InstanceType("p4d.24xlarge", 96, 1152 * _GiB, 15, 50, gpu=A100_40GB, gpus=8),
    InstanceType("p4de.24xlarge", 96, 1152 * _GiB, 15, 50, gpu=A100_80GB, gpus=8),
    InstanceType("p5.48xlarge", 192, 2048 * _GiB, 2, 50, gpu=H100, gpus=8),
    InstanceType("p5en.48xlarge", 192, 2048 * _GiB, 4, 50, gpu=H200, gpus=8),
)


# The table, read-only; ``add_instance_types`` is the one way to extend it.
INSTANCE_TYPES: Mapping[str, InstanceType] = MappingProxyType(_TABLE)


def add_instance_types(*types: InstanceType) -> None:
    """Teach the library instance types its table lacks, from a program that installs the library (a
    wheel): call it before building the components that use them. Every rule, the capacity model and
    the fit checks then know them; the cost report prices only the types of its price table. Adding a
    type again with the same values does nothing; other values for a known type are refused."""
    problems: list[Problem] = []
    for i, entry in enumerate(types):
        at = f"types[{i}]"
        known = _TABLE.get(entry.name) if isinstance(entry, InstanceType) else None
        if not isinstance(entry, InstanceType):
            problems.append(
                (at, f"got a {type(entry).__name__}, expected InstanceType: pass InstanceType(...)")
            )
        elif known is not None and known != entry:
            problems.append((at, f"'{entry.name}' is in the table already, with other values ({known})"))
        else:
            problems += [(at, reason) for reason in entry.problems()]
    require_valid("add_instance_types", problems)
    for entry in types:
        _TABLE[entry.name] = entry


# "Is this a GPU instance" has one answer, this table's: the families of its GPU types.
def gpu_instance_families() -> frozenset[str]:
    return frozenset(t.family for t in _TABLE.values() if t.gpu is not None)


def instance_family(instance_type: str) -> str:
    """``g5.2xlarge`` -> ``g5``; ``p6-b200.48xlarge`` -> ``p6-b200``."""
    return instance_type.split(".", 1)[0]


def gpu_family(family: str) -> bool | None:
    """Whether the table's types of ``family`` have GPUs; None when the table knows none of them."""
    types = [t for t in _TABLE.values() if t.family == family]
    return any(t.gpu is not None for t in types) if types else None


def lookup(name: str) -> InstanceType | None:
    """The table's entry for ``name`` (``None`` when the platform does not know the type)."""
    return INSTANCE_TYPES.get(name)


def require(name: str) -> InstanceType:
    """The table's entry for ``name``; ``KeyError`` naming this module when it is missing."""
    found = INSTANCE_TYPES.get(name)
    if found is None:
        raise KeyError(unknown_type_message(name))
    return found


def unknown_type_message(name: str) -> str:
    return (
        f"'{name}' is not in the instance type table: add its vCPUs, memory, ENI limits and GPUs (in a "
        "program: aiplatform.compute.instance_types.add_instance_types(InstanceType(...)) before building; "
        "in the library's repository: components/compute/instance_types.py)"
    )
