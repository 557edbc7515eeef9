"""Settings of GPU capacity: node groups (the default), Karpenter or EKS Auto Mode node pools."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, PositiveInt, model_validator

from .. import validation
from ..compute.instance_types import INSTANCE_TYPES, gpu_family, lookup, unknown_type_message
from ..compute.pools import (
    AMI_ALIAS_PATTERN,
    POOL_RESERVED_LABEL_PREFIXES,
    BlockedWindow,
    CapacityReservations,
    Disruption,
    GpuPoolSpec,
    pool_problems,
)
from ..compute.provisioner import provisioner_named
from ..dra import DEVICE_PLUGIN, GpuAllocation
from ..scheduling import Taint
from ._base import DnsLabel, Model, Violation, checked, raise_violations, unique_names
from .infrastructure import TaintSettings

ProvisionerName = Literal[
    "node-groups", "karpenter", "auto-mode"
]  # one Provisioner each (compute/provisioner.py)
CapacityTypeSetting = Literal["spot", "on-demand", "reserved"]
GpuAllocationName = Literal["device-plugin", "dra"]  # components/dra.py


def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)
    return AfterValidator(checked(lambda v: None if compiled.fullmatch(v) else f"'{v}' is not {what}"))


Cron = Annotated[str, AfterValidator(checked(validation.cron_schedule))]
KarpenterDuration = Annotated[
    str, _matching(r"(([0-9]+(s|m|h))+|Never)", "a duration such as 30s, 10m, 1h or Never")
]
WindowDuration = Annotated[
    str, _matching(r"(([0-9]+(h|m))|([0-9]+h[0-9]+m))", "a duration such as 8h or 1h30m")
]
BudgetNodes = Annotated[
    str, _matching(r"((100|[0-9]{1,2})%|[0-9]+)", "a node count or a percentage such as 1 or 10%")
]
ReservationId = Annotated[str, _matching(r"cr-[0-9a-z]+", "a capacity reservation id (cr-...)")]
AmiAlias = Annotated[
    str,
    _matching(
        AMI_ALIAS_PATTERN.pattern.strip("^$"), "a pinned AL2023 release (al2023@vYYYYMMDD; never latest)"
    ),
]


class ReservationSettings(Model):
    ids: list[ReservationId] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict, max_length=20)
    capacityBlock: bool = Field(
        default=False, description="the reservations are EC2 Capacity Blocks for ML (reserved capacity only)"
    )
    instances: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="the instances the reservations hold, by type: billed whether used, so the idle cost counts them",
    )

    @model_validator(mode="after")
    def _some(self) -> ReservationSettings:
        if not self.ids and not self.tags:
            raise_violations([((), "select reservations by ids or tags")])
        return self


class BlockedWindowSettings(Model):
    schedule: Cron = Field(description="5-field cron, UTC")
    duration: WindowDuration


class DisruptionSettings(Model):
    consolidationPolicy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmpty"
    consolidateAfter: KarpenterDuration = "10m"
    maxNodes: BudgetNodes = Field(
        default="10%", description="nodes disrupted at once: a count or a percentage"
    )
    blockedWindows: list[BlockedWindowSettings] = Field(default_factory=list)


class PoolLimits(Model):
    gpus: int = Field(ge=1, le=100000)
    cpu: int = Field(ge=1, le=1000000, description="vCPUs")


class GpuPoolSettings(Model):
    name: DnsLabel
    instanceFamilies: list[str] = Field(default_factory=list)
    instanceTypes: list[str] = Field(default_factory=list)
    capacityTypes: list[CapacityTypeSetting] = Field(default_factory=lambda: ["on-demand"], min_length=1)
    capacityReservations: ReservationSettings | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSettings] = Field(default_factory=list, description="taints besides nvidia.com/gpu")
    limits: PoolLimits
    disruption: DisruptionSettings = DisruptionSettings()

    @property
    def allowed_types(self) -> tuple[str, ...]:
        """The configured types, then every type of the configured families the table knows."""
        from_families = [
            t.name for t in INSTANCE_TYPES.values() if t.family in self.instanceFamilies and t.gpu is not None
        ]
        return tuple(dict.fromkeys([*self.instanceTypes, *from_families]))

    @model_validator(mode="after")
    def _pool(self) -> GpuPoolSettings:
        found: list[Violation] = []
        if not self.instanceFamilies and not self.instanceTypes:
            found.append((("instanceTypes",), "name instanceFamilies or instanceTypes"))
        for i, family in enumerate(self.instanceFamilies):
            has_gpus = gpu_family(family)
            if has_gpus is False:
                found.append((("instanceFamilies", i), f"'{family}' is not a GPU instance family"))
            elif has_gpus is None:
                found.append(
                    (
                        ("instanceFamilies", i),
                        f"the instance type table (components/compute/instance_types.py) knows no '{family}' type: "
                        "add the sizes the pool may start there",
                    )
                )
        for i, name in enumerate(self.instanceTypes):
            entry = lookup(name)
            if entry is None:
                found.append((("instanceTypes", i), unknown_type_message(name)))
            elif entry.gpu is None:
                found.append((("instanceTypes", i), f"'{name}' has no GPU: GPU pools start GPU instances"))
        if len(set(self.capacityTypes)) != len(self.capacityTypes):
            found.append((("capacityTypes",), "name each capacity type once"))
        for key, value in self.labels.items():
            if key.startswith((*POOL_RESERVED_LABEL_PREFIXES, "aiplatform.io/", "nvidia.com/")):
                found.append(
                    (("labels", key), "is reserved: Kubernetes, EKS, Karpenter and the platform set these")
                )
            elif problem := validation.label_key(key) or validation.label_value(value):
                found.append((("labels", key), problem))
        if not found:
            found += self._spec_violations()
        raise_violations(found)
        return self

    def _spec_violations(self) -> list[Violation]:
        """What the pool builder refuses, mapped back to this pool's keys."""
        keys = {
            "instance_types": ("instanceTypes",) if self.instanceTypes else ("instanceFamilies",),
            "max_gpus": ("limits", "gpus"),
            "max_cpu": ("limits", "cpu"),
            "capacity_types": ("capacityTypes",),
            "reservations": ("capacityReservations",),
            "reservations.ids": ("capacityReservations", "ids"),
            "name": ("name",),
        }
        found: list[Violation] = []
        for field, message in pool_problems(self.spec()):
            if field.startswith("reservations.instances."):
                key = ("capacityReservations", "instances", field.removeprefix("reservations.instances."))
            else:
                key = keys.get(field, (field,))
            found.append((key, message))
        return found

    def spec(self, gpu_allocation: GpuAllocation = DEVICE_PLUGIN) -> GpuPoolSpec:
        """The pool these settings describe, its GPUs allocated by ``gpu_allocation``."""
        reservations = self.capacityReservations
        d = self.disruption
        return GpuPoolSpec(
            name=self.name,
            instance_types=self.allowed_types,
            max_gpus=self.limits.gpus,
            max_cpu=self.limits.cpu,
            capacity_types=tuple(self.capacityTypes),
            reservations=CapacityReservations(
                ids=tuple(reservations.ids),
                tags=dict(reservations.tags),
                capacity_block=reservations.capacityBlock,
                instances=dict(reservations.instances),
            )
            if reservations
            else None,
            labels=dict(self.labels),
            taints=tuple(Taint(key=t.key, value=t.value, effect=t.effect) for t in self.taints),
            disruption=Disruption(
                consolidation_policy=d.consolidationPolicy,
                consolidate_after=d.consolidateAfter,
                max_nodes=d.maxNodes,
                blocked=tuple(BlockedWindow(w.schedule, w.duration) for w in d.blockedWindows),
            ),
            gpu_allocation=gpu_allocation,
        )


class KarpenterSettings(Model):
    amiAlias: AmiAlias = Field(
        description="the EKS AL2023 AMI release the GPU nodes boot (al2023@vYYYYMMDD): pinned, never latest"
    )


class AutoModeSettings(Model):
    builtinSystemPool: bool = Field(
        default=False, description="also enable Auto Mode's built-in system pool (tainted CriticalAddonsOnly)"
    )


class ComputeSettings(Model):
    provisioner: ProvisionerName = "node-groups"
    gpuAllocation: GpuAllocationName | None = Field(
        default=None,
        description="device-plugin (nvidia.com/gpu) or dra (ResourceClaims on the NVIDIA DRA driver's "
        "DeviceClass); default: AWS's recommendation for the provisioner and Kubernetes minor",
    )
    pools: list[GpuPoolSettings] = Field(default_factory=list)
    gpuDiskGiB: int = Field(default=200, ge=50, le=16384, description="root or ephemeral disk of GPU nodes")
    karpenter: KarpenterSettings | None = None
    autoMode: AutoModeSettings = AutoModeSettings()

    @property
    def uses_pools(self) -> bool:
        return provisioner_named(self.provisioner).uses_pools

    @model_validator(mode="after")
    def _provisioner(self) -> ComputeSettings:
        found: list[Violation] = [(("pools", *p), m) for p, m in unique_names(self.pools, "GPU pool")]
        # The option sections the stack sets (autoMode has a default: only an explicit one counts).
        options = {"karpenter"} if self.karpenter is not None else set()
        options |= {"autoMode"} & self.model_fields_set
        found += provisioner_named(self.provisioner).options_problems(bool(self.pools), options)
        found += [
            (("pools", i, "name"), "'system' names the platform's own CPU pool in auto-mode")
            for i, pool in enumerate(self.pools)
            if pool.name == "system"
        ]
        raise_violations(found)
        return self

    def specs(self, gpu_allocation: GpuAllocation = DEVICE_PLUGIN) -> list[GpuPoolSpec]:
        return [pool.spec(gpu_allocation) for pool in self.pools]


def gpu_allocation(s: Any) -> GpuAllocation:
    """The stack's GPU allocation, decided once: ``compute.gpuAllocation``, else the provisioner's
    default for the cluster's Kubernetes minor. ``s``: the settings, or sections holding compute and
    cluster."""
    return provisioner_named(s.compute.provisioner).gpu_allocation(
        s.compute.gpuAllocation, s.cluster.kubernetesVersion
    )
