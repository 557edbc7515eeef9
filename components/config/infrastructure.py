"""Settings of the infrastructure: network, cluster, node groups, add-on charts, GPU support."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .. import validation
from ..catalog.registry import ADD_ONS, AddOn
from ..cluster import DEFAULT_LOG_TYPES, LogType
from ..compute.instance_types import (
    InstanceType,
    gpu_family,
    gpu_instance_families,
    instance_family,
    lookup,
    unknown_type_message,
)
from ..compute.node_groups import (
    EKS_LABEL_KEY_MAX,
    EKS_TAINTS_PER_GROUP,
    GPU_AMI_TYPES,
    RESERVED_LABEL_PREFIXES,
    SYSTEM_AMI_TYPES,
    NodeGroupSpec,
    gpu_type_problems,
    is_arm_instance,
    max_group_name_length,
)
from ..dra import DEVICE_PLUGIN, GpuAllocation
from ..errors import describe
from ..iam import IdentityMode
from ..network import MAX_AZ_COUNT, MIN_AZ_COUNT, NatGatewayMode, existing_network_problems
from ..scheduling import Taint
from ..validation import DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS
from ._base import (
    RESOURCE_PREFIX,
    AddonVersion,
    Arn,
    ChartRepositoryUrl,
    ChartVersion,
    Cidr,
    DnsLabel,
    Ipv4Cidr,
    Model,
    RetentionDays,
    RoleArn,
    Violation,
    checked,
    duplicates,
    raise_violations,
    unique_names,
)

# -- network ---------------------------------------------------------------------------------------


class ExistingNetworkSettings(Model):
    vpcId: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    publicSubnetIds: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)
    privateSubnetIds: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)

    @model_validator(mode="after")
    def _subnets(self) -> ExistingNetworkSettings:
        problems = existing_network_problems(self.vpcId, self.privateSubnetIds, self.publicSubnetIds)
        raise_violations([((), describe(problem)) for problem in problems])
        return self


class NetworkSettings(Model):
    vpcCidr: Cidr = "10.0.0.0/16"
    azCount: int = Field(default=2, ge=MIN_AZ_COUNT, le=MAX_AZ_COUNT)
    natGateways: NatGatewayMode = "single"
    flowLogs: bool = False
    flowLogRetentionDays: RetentionDays = 30
    existing: ExistingNetworkSettings | None = None

    @model_validator(mode="after")
    def _vpc_size(self) -> NetworkSettings:
        network = ipaddress.ip_network(self.vpcCidr)
        if network.version != 4 or not (16 <= network.prefixlen <= 20):
            raise_violations(
                [(("vpcCidr",), f"must be an IPv4 block from /16 to /20 (got /{network.prefixlen})")]
            )
        if not network.is_private:
            raise_violations(
                [(("vpcCidr",), "must be a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")]
            )
        return self


# -- cluster ---------------------------------------------------------------------------------------

DEFAULT_ADDONS = (
    "vpc-cni",
    "coredns",
    "kube-proxy",
    "aws-ebs-csi-driver",
    "eks-pod-identity-agent",
    "metrics-server",
)


class EndpointSettings(Model):
    publicAccess: bool = False
    publicAccessCidrs: list[Ipv4Cidr] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cidrs(self) -> EndpointSettings:
        if self.publicAccess and not self.publicAccessCidrs:
            raise_violations(
                [(("publicAccessCidrs",), "list the CIDRs allowed to reach the public endpoint")]
            )
        if not self.publicAccess and self.publicAccessCidrs:
            raise_violations([(("publicAccessCidrs",), "set publicAccess: true to use publicAccessCidrs")])
        return self


class ExistingClusterSettings(Model):
    kubeconfigSecret: str = Field(
        default="existingKubeconfig",
        description="config key holding the kubeconfig as a secret: pulumi config set --secret",
    )
    oidcProviderArn: Arn | None = None
    oidcIssuerUrl: Annotated[str, Field(pattern=r"^https://")] | None = None


class ClusterSettings(Model):
    mode: Literal["managed", "existing"] = "managed"
    name: DnsLabel = "ai-platform"
    kubernetesVersion: str = DEFAULT_KUBERNETES_VERSION
    endpoint: EndpointSettings = EndpointSettings()
    adminRoleArns: list[RoleArn] = Field(default_factory=list)
    logTypes: list[LogType] = list(DEFAULT_LOG_TYPES)
    logRetentionDays: RetentionDays = 90
    identityMode: IdentityMode = "irsa"
    addons: dict[str, AddonVersion] = Field(default_factory=dict)
    existing: ExistingClusterSettings | None = None

    @field_validator("kubernetesVersion")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES_VERSIONS:
            raise PydanticCustomError(
                "value",
                "{problem}",
                {"problem": f"must be one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}"},
            )
        return value

    @model_validator(mode="after")
    def _mode(self) -> ClusterSettings:
        found: list[Violation] = []
        if self.mode == "managed" and not self.adminRoleArns:
            found.append(
                (("adminRoleArns",), "list at least one IAM role: the cluster grants its creator no access")
            )
        found += [
            (("adminRoleArns",), f"role '{name}' is listed more than once")
            for name in duplicates(arn.rsplit("/", 1)[-1] for arn in self.adminRoleArns)
        ]
        if self.mode == "managed":
            # Which add-ons must be pinned depends on the provisioner: a rule with compute says.
            found += [(("addons", a), "unknown add-on") for a in self.addons if a not in DEFAULT_ADDONS]
        if self.mode == "existing" and self.existing is None:
            found.append((("existing",), "mode: existing needs existing.kubeconfigSecret"))
        existing = self.existing
        if (
            self.identityMode == "irsa"
            and existing
            and not (existing.oidcProviderArn and existing.oidcIssuerUrl)
        ):
            found.append(
                (("existing", "oidcProviderArn"), "irsa on an existing cluster needs its OIDC provider")
            )
        raise_violations(found)
        return self


# -- node groups -----------------------------------------------------------------------------------


class Scaling(Model):
    minSize: int = Field(ge=0, le=1000)
    desiredSize: int = Field(ge=0, le=1000)
    maxSize: int = Field(ge=1, le=1000)

    @model_validator(mode="after")
    def _order(self) -> Scaling:
        found: list[Violation] = []
        if self.desiredSize < self.minSize:
            found.append((("desiredSize",), f"must be >= minSize ({self.minSize})"))
        if self.maxSize < max(self.minSize, self.desiredSize):
            found.append(
                (("maxSize",), f"must be >= minSize ({self.minSize}) and desiredSize ({self.desiredSize})")
            )
        raise_violations(found)
        return self


def _eks_label_key(key: str) -> str | None:
    """A Kubernetes label or taint key that EKS also accepts (it caps the whole key at 63)."""
    if len(key) > EKS_LABEL_KEY_MAX:
        return f"EKS takes keys of at most {EKS_LABEL_KEY_MAX} characters, prefix included"
    return validation.label_key(key)


class TaintSettings(Model):
    key: Annotated[str, AfterValidator(checked(_eks_label_key))]
    value: Annotated[str, AfterValidator(checked(validation.label_value))] = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


# The platform names a GPU group's EKS node group "<prefix>-nodes-<name>-<random>".
MAX_GPU_GROUP_NAME = max_group_name_length(f"{RESOURCE_PREFIX}-nodes")


class SystemNodeGroupSettings(Model):
    instanceTypes: list[str] = Field(default_factory=lambda: ["m6i.large"], min_length=1)
    amiType: str = "AL2023_x86_64_STANDARD"
    capacityType: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    scaling: Scaling = Scaling(minSize=2, desiredSize=2, maxSize=4)
    diskSizeGiB: int = Field(default=50, ge=20, le=16384)

    @model_validator(mode="after")
    def _types(self) -> SystemNodeGroupSettings:
        found: list[Violation] = []
        if self.amiType not in SYSTEM_AMI_TYPES:
            found.append((("amiType",), f"must be one of {', '.join(sorted(SYSTEM_AMI_TYPES))}"))
        for i, instance in enumerate(self.instanceTypes):
            if gpu_family(instance_family(instance)):
                found.append((("instanceTypes", i), "GPU instances do not belong in the system group"))
            elif lookup(instance) is None:
                # The capacity check needs its vCPUs, memory and pod limit.
                found.append((("instanceTypes", i), unknown_type_message(instance)))
        if self.scaling.minSize < 1:
            found.append(
                (("scaling", "minSize"), "the system group runs cluster add-ons: keep at least 1 node")
            )
        raise_violations(found)
        return self

    def spec(self) -> NodeGroupSpec:
        """The node group these settings describe."""
        return NodeGroupSpec(
            name="system",
            role="system",
            instance_types=tuple(self.instanceTypes),
            capacity_type=self.capacityType,
            ami_type=self.amiType,
            min_size=self.scaling.minSize,
            desired_size=self.scaling.desiredSize,
            max_size=self.scaling.maxSize,
            disk_size_gib=self.diskSizeGiB,
        )


class GpuNodeGroupSettings(Model):
    name: DnsLabel
    instanceTypes: list[str] = Field(min_length=1)
    amiType: str = "AL2023_x86_64_NVIDIA"
    capacityType: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    scaling: Scaling
    diskSizeGiB: int = Field(default=200, ge=50, le=16384)
    accelerator: DnsLabel | None = Field(
        default=None, description="label value naming the GPU model (the instance type table's when omitted)"
    )
    gpusPerNode: int | None = Field(
        default=None, ge=1, le=16, description="GPUs per node (the instance type table's when omitted)"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSettings] = Field(default_factory=list, description="taints besides nvidia.com/gpu")

    @model_validator(mode="after")
    def _gpu(self) -> GpuNodeGroupSettings:
        found: list[Violation] = []
        if len(self.name) > MAX_GPU_GROUP_NAME:
            found.append(
                (
                    ("name",),
                    f"at most {MAX_GPU_GROUP_NAME} characters: EKS node group names hold 63, and the "
                    f"platform's is '{RESOURCE_PREFIX}-nodes-<name>-<7 random>'",
                )
            )
        for key, value in self.labels.items():
            if key.startswith((*RESERVED_LABEL_PREFIXES, "aiplatform.io/", "nvidia.com/")):
                found.append(
                    (("labels", key), "is reserved: Kubernetes, EKS and the platform set these labels")
                )
            elif problem := _eks_label_key(key) or validation.label_value(value):
                found.append((("labels", key), problem))
            elif not value:
                found.append(
                    (("labels", key), "EKS takes label values of 1 to 63 characters, not an empty one")
                )
        if len(self.taints) >= EKS_TAINTS_PER_GROUP:
            found.append(
                (
                    ("taints",),
                    f"at most {EKS_TAINTS_PER_GROUP - 1}: EKS allows {EKS_TAINTS_PER_GROUP} per node "
                    "group and the platform adds the GPU taint",
                )
            )
        if self.amiType not in GPU_AMI_TYPES:
            found.append(
                (("amiType",), f"GPU groups need an NVIDIA AMI type: {', '.join(sorted(GPU_AMI_TYPES))}")
            )
        arm_ami = "ARM_64" in self.amiType
        for i, instance in enumerate(self.instanceTypes):
            if gpu_family(instance_family(instance)) is False:
                found.append(
                    (
                        ("instanceTypes", i),
                        f"'{instance}' is not a GPU instance type (families: {', '.join(sorted(gpu_instance_families()))})",
                    )
                )
            elif is_arm_instance(instance) != arm_ami:
                found.append(
                    (("instanceTypes", i), f"'{instance}' does not match the {self.amiType} architecture")
                )
        fields = {
            "instance_types": "instanceTypes",
            "accelerator": "accelerator",
            "gpus_per_node": "gpusPerNode",
        }
        for problem in gpu_type_problems(self.instanceTypes, self.accelerator, self.gpusPerNode):
            path = (
                (fields[problem.field],) if problem.index is None else (fields[problem.field], problem.index)
            )
            found.append((path, problem.message))
        raise_violations(found)
        return self

    @property
    def instance(self) -> InstanceType:
        """The table's entry for the group's first type (all of them agree on GPU model and count)."""
        entry = lookup(self.instanceTypes[0])
        assert entry is not None and entry.gpu is not None  # guaranteed by the validation above
        return entry

    @property
    def gpu_count(self) -> int:
        """GPUs per node."""
        return self.instance.gpus

    @property
    def accelerator_label(self) -> str:
        assert self.instance.gpu is not None
        return self.instance.gpu.accelerator

    def spec(self, gpu_allocation: GpuAllocation = DEVICE_PLUGIN) -> NodeGroupSpec:
        """The node group these settings describe, its GPUs allocated by ``gpu_allocation``."""
        return NodeGroupSpec(
            name=self.name,
            role="gpu",
            instance_types=tuple(self.instanceTypes),
            capacity_type=self.capacityType,
            ami_type=self.amiType,
            min_size=self.scaling.minSize,
            desired_size=self.scaling.desiredSize,
            max_size=self.scaling.maxSize,
            disk_size_gib=self.diskSizeGiB,
            labels=dict(self.labels),
            accelerator=self.accelerator_label,
            gpus_per_node=self.gpu_count,
            taints=tuple(Taint(key=t.key, value=t.value, effect=t.effect) for t in self.taints),
            gpu_allocation=gpu_allocation,
        )


class NodeGroupsSettings(Model):
    system: SystemNodeGroupSettings = SystemNodeGroupSettings()
    gpu: list[GpuNodeGroupSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> NodeGroupsSettings:
        raise_violations([(("gpu", *path), msg) for path, msg in unique_names(self.gpu, "GPU node group")])
        return self

    def specs(self) -> list[NodeGroupSpec]:
        """Every node group: the system group first, then the GPU groups."""
        return [self.system.spec(), *(group.spec() for group in self.gpu)]


# -- add-on charts ---------------------------------------------------------------------------------


# The charts: keys, one per add-on of the registry.
ChartKey = Literal[tuple(addon.key for addon in ADD_ONS)]  # type: ignore[valid-type]


def chart_version_field(addon: AddOn) -> tuple[Any, Any]:
    """The ``charts:`` field of ``addon``'s version: required, defaulted to its pin, or required only
    with its ``pinned_when`` setting."""
    if addon.optional_pin:
        return ChartVersion, Field(default=addon.version, description=f"default {addon.version}")
    if addon.pinned_when is None:
        return ChartVersion, ...
    return ChartVersion | None, Field(default=None, description=f"required with {addon.pinned_when}")


# A field per add-on, in the registry's order: the version it pins.
_ChartVersions = create_model(
    "_ChartVersions", __base__=Model, **{addon.key: chart_version_field(addon) for addon in ADD_ONS}
)


class ChartSettings(_ChartVersions):  # type: ignore[misc, valid-type]
    """Pinned Helm chart versions, and where the charts come from.

    Each chart comes from its project's repository (named in its descriptor) unless ``mirror`` names
    one repository that serves every chart (air-gapped and enterprise users mirror charts); an entry of
    ``repositories`` moves one chart and wins over ``mirror``.
    """

    mirror: ChartRepositoryUrl | None = None
    repositories: dict[ChartKey, ChartRepositoryUrl] = Field(default_factory=dict)

    def version(self, addon: AddOn) -> str | None:
        """The version of ``addon`` these settings pin."""
        return getattr(self, addon.key)

    def repository(self, addon: AddOn) -> str:
        """Where the platform fetches ``addon``'s chart from."""
        return self.repositories.get(addon.key) or self.mirror or addon.repository
