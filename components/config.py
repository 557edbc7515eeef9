"""The stack configuration: typed, validated, immutable.

``load_settings`` turns ``pulumi.Config("aiplatform")`` into one ``PlatformSettings`` object or raises
``ConfigError`` listing every problem with the key path as written in ``Pulumi.<stack>.yaml``::

    aiplatform:workloads.inference[0].autoscaling.maxReplicas: must be >= minReplicas (2)

Field names are the YAML keys (camelCase). Secret values never enter these models: a secret names the
config key that holds its value, and the loader reads it as a Pulumi secret.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

import pulumi
from pulumi.errors import RunError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components import validation
from components.cluster import LOG_RETENTION_DAYS, ROLE_ARN_PATTERN, SUPPORTED_KUBERNETES_VERSIONS
from components.ingress import ACM_ARN_PATTERN
from components.network import validate_existing_network
from components.nodegroups import (
    GPU_AMI_TYPES,
    GPU_INSTANCE_FAMILIES,
    RESERVED_LABEL_PREFIXES,
    SYSTEM_AMI_TYPES,
    instance_family,
    is_arm_instance,
)
from components.podspec import STATIC_AWS_CREDENTIAL_ENV
from components.secrets import SECRET_ARN_PATTERN

NAMESPACE = "aiplatform"

# -- error reporting -------------------------------------------------------------------------------


class ConfigError(RunError):
    """A stack config that cannot be deployed. Pulumi prints a RunError without a traceback."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(self.problems))


Violation = tuple[tuple[str | int, ...], str]


def _violations(found: list[Violation]) -> None:
    """Raise the rule violations of a model at once; each carries its path relative to the model."""
    if found:
        raise PydanticCustomError("rules", "{summary}", {"violations": found, "summary": str(found)})


def _check(check: Callable[[str], str | None]) -> Callable[[str], str]:
    """Adapt a pure validator (message or None) to a pydantic field validator."""

    def run(value: str) -> str:
        problem = check(value)
        if problem:
            raise PydanticCustomError("value", "{problem}", {"problem": problem})
        return value

    return run


DnsLabel = Annotated[str, AfterValidator(_check(validation.dns1123_label))]
Quantity = Annotated[str, AfterValidator(_check(validation.quantity))]
Cidr = Annotated[str, AfterValidator(_check(validation.cidr))]
Image = Annotated[str, AfterValidator(_check(validation.image_reference))]
Hostname = Annotated[str, AfterValidator(_check(validation.hostname))]
Duration = Annotated[str, AfterValidator(_check(validation.duration))]
EnvName = Annotated[str, AfterValidator(_check(validation.env_name))]
RetentionDays = Annotated[
    int,
    AfterValidator(
        _check(
            lambda days: (
                None if days in LOG_RETENTION_DAYS else f"must be one of {sorted(LOG_RETENTION_DAYS)}"
            )
        )
    ),
]
ChartVersion = Annotated[
    str,
    AfterValidator(
        _check(
            lambda v: (
                None
                if validation.is_exact_version(v)
                else f"'{v}' is not an exact chart version (e.g. 1.2.3)"
            )
        )
    ),
]
AddonVersion = Annotated[str, Field(pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$")]
Arn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{0,12}:.+$")]


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.fullmatch(value) else f"'{value}' is not {what}"


RoleArn = Annotated[
    str,
    AfterValidator(
        _check(_pattern(ROLE_ARN_PATTERN, "an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"))
    ),
]
CertificateArn = Annotated[str, AfterValidator(_check(_pattern(ACM_ARN_PATTERN, "an ACM certificate ARN")))]
SecretArn = Annotated[
    str,
    AfterValidator(
        _check(_pattern(SECRET_ARN_PATTERN, "a full Secrets Manager ARN (ending in -<6 characters>)"))
    ),
]
Ipv4Cidr = Annotated[
    str,
    AfterValidator(_check(validation.cidr)),
    AfterValidator(
        _check(lambda v: None if ipaddress.ip_network(v).version == 4 else f"'{v}' is not an IPv4 block")
    ),
]
ServiceName = Annotated[str, AfterValidator(_check(validation.dns1035_label))]
ConfigKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]
PositiveQuantity = Annotated[
    Quantity,
    AfterValidator(_check(lambda v: None if validation.quantity_value(v) > 0 else "must be greater than 0")),
]


class Model(BaseModel):
    """Strict, immutable settings: unknown keys are errors, and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, str_strip_whitespace=False)


def _duplicates(names: Iterable[str]) -> set[str]:
    return {name for name, count in Counter(names).items() if count > 1}


def _unique(items: list, what: str, key: Callable[[Any], str] = lambda item: item.name) -> list[Violation]:
    dupes = _duplicates(key(item) for item in items)
    return [
        ((i, "name"), f"duplicate {what} '{key(item)}'") for i, item in enumerate(items) if key(item) in dupes
    ]


# -- network ---------------------------------------------------------------------------------------


class ExistingNetworkSettings(Model):
    vpcId: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$")
    publicSubnetIds: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)
    privateSubnetIds: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(min_length=2)

    @model_validator(mode="after")
    def _subnets(self) -> ExistingNetworkSettings:
        problems = validate_existing_network(self.vpcId, self.privateSubnetIds, self.publicSubnetIds)
        _violations([((), problem) for problem in problems])
        return self


class NetworkSettings(Model):
    vpcCidr: Cidr = "10.0.0.0/16"
    azCount: int = Field(default=2, ge=2, le=6)
    natGateways: Literal["single", "per-az"] = "single"
    flowLogs: bool = False
    flowLogRetentionDays: RetentionDays = 30
    existing: ExistingNetworkSettings | None = None

    @model_validator(mode="after")
    def _vpc_size(self) -> NetworkSettings:
        network = ipaddress.ip_network(self.vpcCidr)
        if network.version != 4 or not (16 <= network.prefixlen <= 20):
            _violations([(("vpcCidr",), f"must be an IPv4 block from /16 to /20 (got /{network.prefixlen})")])
        if not network.is_private:
            _violations(
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
            _violations([(("publicAccessCidrs",), "list the CIDRs allowed to reach the public endpoint")])
        if not self.publicAccess and self.publicAccessCidrs:
            _violations([(("publicAccessCidrs",), "set publicAccess: true to use publicAccessCidrs")])
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
    kubernetesVersion: str = "1.34"
    endpoint: EndpointSettings = EndpointSettings()
    adminRoleArns: list[RoleArn] = Field(default_factory=list)
    logTypes: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = [
        "api",
        "audit",
        "authenticator",
    ]
    logRetentionDays: RetentionDays = 90
    identityMode: Literal["irsa", "pod-identity"] = "irsa"
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
            for name in _duplicates(arn.rsplit("/", 1)[-1] for arn in self.adminRoleArns)
        ]
        if self.mode == "managed":
            missing = [a for a in DEFAULT_ADDONS if a not in self.addons]
            if missing:
                found.append((("addons",), f"pin a version for every add-on: missing {', '.join(missing)}"))
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
        _violations(found)
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
        _violations(found)
        return self


class TaintSettings(Model):
    key: str = Field(min_length=1, max_length=253)
    value: str = Field(default="", max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


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
        found += [
            (("instanceTypes", i), "GPU instances do not belong in the system group")
            for i, t in enumerate(self.instanceTypes)
            if instance_family(t) in GPU_INSTANCE_FAMILIES
        ]
        if self.scaling.minSize < 1:
            found.append(
                (("scaling", "minSize"), "the system group runs cluster add-ons: keep at least 1 node")
            )
        _violations(found)
        return self


class GpuNodeGroupSettings(Model):
    name: DnsLabel
    instanceTypes: list[str] = Field(min_length=1)
    amiType: str = "AL2023_x86_64_NVIDIA"
    capacityType: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    scaling: Scaling
    diskSizeGiB: int = Field(default=200, ge=50, le=16384)
    accelerator: DnsLabel = Field(description="label value naming the GPU model, e.g. nvidia-a10g")
    gpusPerNode: int = Field(default=1, ge=1, le=16)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[TaintSettings] = Field(default_factory=list, description="taints besides nvidia.com/gpu")

    @model_validator(mode="after")
    def _gpu(self) -> GpuNodeGroupSettings:
        found: list[Violation] = [
            (("labels", key), "is reserved: Kubernetes, EKS and the platform set these labels")
            for key in self.labels
            if key.startswith((*RESERVED_LABEL_PREFIXES, "aiplatform.io/", "nvidia.com/"))
        ]
        if self.amiType not in GPU_AMI_TYPES:
            found.append(
                (("amiType",), f"GPU groups need an NVIDIA AMI type: {', '.join(sorted(GPU_AMI_TYPES))}")
            )
        arm_ami = "ARM_64" in self.amiType
        for i, instance in enumerate(self.instanceTypes):
            if instance_family(instance) not in GPU_INSTANCE_FAMILIES:
                found.append(
                    (
                        ("instanceTypes", i),
                        f"'{instance}' is not a GPU instance type (families: {', '.join(sorted(GPU_INSTANCE_FAMILIES))})",
                    )
                )
            elif is_arm_instance(instance) != arm_ami:
                found.append(
                    (("instanceTypes", i), f"'{instance}' does not match the {self.amiType} architecture")
                )
        _violations(found)
        return self


class NodeGroupsSettings(Model):
    system: SystemNodeGroupSettings = SystemNodeGroupSettings()
    gpu: list[GpuNodeGroupSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> NodeGroupsSettings:
        _violations([(("gpu", *path), msg) for path, msg in _unique(self.gpu, "GPU node group")])
        return self


# -- add-on charts ---------------------------------------------------------------------------------


class ChartSettings(Model):
    """Pinned Helm chart versions; the repositories are fixed in the components."""

    externalSecrets: ChartVersion
    awsLoadBalancerController: ChartVersion
    ingressNginx: ChartVersion
    nvidiaDevicePlugin: ChartVersion
    dcgmExporter: ChartVersion
    clusterAutoscaler: ChartVersion
    kubePrometheusStack: ChartVersion
    prometheusAdapter: ChartVersion


class GpuSettings(Model):
    dcgmExporter: bool = True


# -- secrets and ingress ---------------------------------------------------------------------------


class SecretSettings(Model):
    name: DnsLabel = Field(description="name of the Kubernetes Secret the operator keeps in sync")
    namespace: DnsLabel
    keys: list[Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")]] = Field(min_length=1)
    description: str = ""
    existingArn: SecretArn | None = None
    valueFrom: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="config key of a secret JSON object {key: value} used as the initial value",
    )
    refreshInterval: Duration = "1h"

    @model_validator(mode="after")
    def _source(self) -> SecretSettings:
        found: list[Violation] = [(("keys",), f"duplicate key '{k}'") for k in _duplicates(self.keys)]
        if self.existingArn and self.valueFrom:
            found.append(
                (("valueFrom",), "an existing secret keeps its own value: drop valueFrom or existingArn")
            )
        _violations(found)
        return self


class IngressSettings(Model):
    controller: Literal["alb", "nginx"] = "alb"
    scheme: Literal["internet-facing", "internal"] = "internet-facing"
    certificateArn: CertificateArn | None = None
    tlsSecret: DnsLabel | None = Field(
        default=None, description="nginx: the secret (from secrets) holding tls.crt/tls.key"
    )
    sslPolicy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"

    @model_validator(mode="after")
    def _tls_source(self) -> IngressSettings:
        found: list[Violation] = []
        if self.controller == "nginx" and self.certificateArn:
            found.append((("certificateArn",), "ingress-nginx terminates TLS in the cluster: use tlsSecret"))
        _violations(found)
        return self


# -- observability and storage ---------------------------------------------------------------------


class CustomMetricSettings(Model):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    series: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    kind: Literal["rate", "gauge"] = "rate"


class ObservabilitySettings(Model):
    enabled: bool = True
    prometheusRetention: Annotated[str, Field(pattern=r"^[0-9]+(h|d|w|y)$")] = "15d"
    prometheusStorage: Quantity = "50Gi"
    grafana: bool = False
    customMetrics: list[CustomMetricSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> ObservabilitySettings:
        _violations([(("customMetrics", *path), msg) for path, msg in _unique(self.customMetrics, "metric")])
        return self


# 63 - len("-models-") - 12 (account id) - 1 - 14 (the longest region name)
MAX_CLUSTER_NAME_FOR_BUCKET = 28


class ModelBucketSettings(Model):
    name: (
        Annotated[
            str,
            AfterValidator(
                _check(
                    lambda v: None if validation.is_s3_bucket_name(v) else f"'{v}' is not an S3 bucket name"
                )
            ),
        ]
        | None
    ) = Field(default=None, description="bucket name; generated from the stack when omitted")
    noncurrentVersionDays: int = Field(default=30, ge=1, le=3650)


class SharedFileSystemSettings(Model):
    enabled: bool = False
    namespace: DnsLabel = "ml-training"
    claimName: DnsLabel = "training-shared"
    size: Quantity = "1Ti"
    efsCsiDriverVersion: AddonVersion | None = None

    @model_validator(mode="after")
    def _driver(self) -> SharedFileSystemSettings:
        if self.enabled and not self.efsCsiDriverVersion:
            _violations([(("efsCsiDriverVersion",), "pin the aws-efs-csi-driver add-on version")])
        return self


class StorageSettings(Model):
    modelBucket: ModelBucketSettings = ModelBucketSettings()
    sharedFileSystem: SharedFileSystemSettings = SharedFileSystemSettings()


class QuotaSettings(Model):
    cpu: Quantity = "32"
    memory: Quantity = "128Gi"
    gpus: int = Field(default=0, ge=0, le=1024)
    pods: int = Field(default=100, ge=1, le=10000)
    persistentVolumeClaims: int = Field(default=20, ge=0, le=1000)


class NamespaceSettings(Model):
    name: DnsLabel
    quota: QuotaSettings = QuotaSettings()

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith("kube-") or value in {"default", "external-secrets", "monitoring"}:
            raise PydanticCustomError(
                "value", "{problem}", {"problem": f"'{value}' is reserved for the platform"}
            )
        return value


# -- workloads -------------------------------------------------------------------------------------


class Requests(Model):
    cpu: PositiveQuantity = "250m"
    memory: PositiveQuantity = "512Mi"


class Limits(Model):
    cpu: Quantity | None = Field(default=None, description="defaults to the CPU request")
    memory: Quantity = Field(description="always set: an unbounded pod can starve its node")


class ResourceSettings(Model):
    requests: Requests = Requests()
    limits: Limits = Limits(memory="1Gi")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourceSettings:
        found: list[Violation] = []
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if limit is not None and validation.quantity_value(limit) < validation.quantity_value(request):
                found.append((("limits", name), f"must be >= requests.{name} ({request})"))
        _violations(found)
        return self


class GpuRequest(Model):
    nodeGroup: DnsLabel
    count: int = Field(default=1, ge=1, le=16)


class SecretEnv(Model):
    name: EnvName
    secret: DnsLabel
    key: str


class ConfigFile(Model):
    key: str
    mountPath: Annotated[str, Field(pattern=r"^/")]


class WorkloadConfig(Model):
    """A ConfigMap owned by the workload: some keys as env vars, some as files."""

    name: DnsLabel | None = Field(
        default=None,
        description="a fixed ConfigMap name (pods roll on data changes through a hash annotation); auto-named when omitted",
    )
    data: dict[ConfigKey, str] = Field(min_length=1)
    env: dict[EnvName, str] = Field(default_factory=dict, description="ENV_VAR: configmap-key")
    files: list[ConfigFile] = Field(default_factory=list)

    @model_validator(mode="after")
    def _keys_exist(self) -> WorkloadConfig:
        found: list[Violation] = [
            (("env", env), f"'{key}' is not a key of data")
            for env, key in self.env.items()
            if key not in self.data
        ]
        found += [
            (("files", i, "key"), f"'{f.key}' is not a key of data")
            for i, f in enumerate(self.files)
            if f.key not in self.data
        ]
        _violations(found)
        return self


class WorkloadBase(Model):
    name: ServiceName
    namespace: DnsLabel
    image: Image
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    secretEnv: list[SecretEnv] = Field(default_factory=list)
    config: WorkloadConfig | None = None
    resources: ResourceSettings = ResourceSettings()
    gpu: GpuRequest | None = None

    @model_validator(mode="after")
    def _environment(self) -> WorkloadBase:
        found: list[Violation] = []
        sources = [(("env", n), n) for n in self.env]
        sources += [(("config", "env", n), n) for n in (self.config.env if self.config else {})]
        sources += [(("secretEnv", i, "name"), ref.name) for i, ref in enumerate(self.secretEnv)]
        seen: dict[str, tuple[str | int, ...]] = {}
        for path, env in sources:
            if env in STATIC_AWS_CREDENTIAL_ENV:
                found.append((path, f"{env}: no static AWS keys; pods get AWS access from their IAM role"))
            if env in seen:
                found.append((path, f"{env} is already set by {'.'.join(map(str, seen[env]))}"))
            seen.setdefault(env, path)
        _violations(found)
        return self


class ModelStorage(Model):
    type: Literal["emptyDir", "pvc"] = "emptyDir"
    size: Quantity = "20Gi"
    mountPath: Annotated[str, Field(pattern=r"^/")] = "/mnt/models"
    storageClass: DnsLabel = "gp3"


class ModelFetch(Model):
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9._-]$")]


class LogShipper(Model):
    logPath: Annotated[str, Field(pattern=r"^/")] = "/var/log/app"
    image: Image = "cr.fluentbit.io/fluent/fluent-bit:4.0.3"


class Probes(Model):
    path: Annotated[str, Field(pattern=r"^/")] = "/health"
    startupSeconds: int = Field(default=600, ge=10, le=7200)


class CustomMetricTarget(Model):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    averageValue: PositiveQuantity


class Autoscaling(Model):
    minReplicas: int = Field(ge=1, le=1000)
    maxReplicas: int = Field(ge=1, le=1000)
    cpuUtilization: int | None = Field(default=None, ge=1, le=100)
    memoryUtilization: int | None = Field(default=None, ge=1, le=100)
    customMetrics: list[CustomMetricTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        found: list[Violation] = []
        if self.maxReplicas < self.minReplicas:
            found.append((("maxReplicas",), f"must be >= minReplicas ({self.minReplicas})"))
        if self.cpuUtilization is None and self.memoryUtilization is None and not self.customMetrics:
            found.append(((), "give at least one of cpuUtilization, memoryUtilization, customMetrics"))
        _violations(found)
        return self


class Route(Model):
    host: Hostname
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    tls: bool = True


class InferenceSettings(WorkloadBase):
    port: int = Field(default=8000, ge=1, le=65535)
    replicas: int = Field(default=1, ge=0, le=1000)
    modelStorage: ModelStorage | None = None
    modelFetch: ModelFetch | None = None
    logShipper: LogShipper | None = None
    probes: Probes = Probes()
    metricsPath: Annotated[str, Field(pattern=r"^/")] | None = Field(
        default="/metrics", description="scraped by Prometheus (a PodMonitor); null: not scraped"
    )
    autoscaling: Autoscaling | None = None
    ingress: Route | None = None

    @model_validator(mode="after")
    def _storage(self) -> InferenceSettings:
        found: list[Violation] = []
        if self.autoscaling and self.autoscaling.customMetrics and self.metricsPath is None:
            found.append((("metricsPath",), "custom metrics come from scraping the server: set metricsPath"))
        if self.modelFetch and not self.modelStorage:
            found.append((("modelStorage",), "modelFetch needs a modelStorage volume to download into"))
        if self.modelStorage and self.modelStorage.type == "emptyDir" and not self.modelFetch:
            found.append(
                (("modelFetch",), "an emptyDir model volume starts empty: set modelFetch to fill it")
            )
        scale = max(self.replicas, self.autoscaling.maxReplicas if self.autoscaling else 0)
        if self.modelStorage and self.modelStorage.type == "pvc" and scale > 1:
            found.append(
                (
                    ("modelStorage", "type"),
                    "a ReadWriteOnce PVC cannot serve several replicas: use emptyDir with modelFetch",
                )
            )
        _violations(found)
        return self


TRAINING_SHM_SIZE = "2Gi"  # the memory-backed /dev/shm every TrainingJob pod gets


class TrainingSettings(WorkloadBase):
    completions: int = Field(ge=1, le=10000)
    parallelism: int = Field(ge=1, le=1000)
    backoffLimit: int = Field(default=4, ge=0, le=100)
    ttlSecondsAfterFinished: int | None = Field(
        default=None,
        ge=0,
        description="off by default: a TTL-deleted Job is re-created (re-run) by the next up",
    )
    indexArg: str | None = Field(
        default="--job-index", description="flag passed with $(JOB_COMPLETION_INDEX); null: env var only"
    )
    activeDeadlineSeconds: int = Field(default=86400, ge=60)
    sharedStorageMountPath: Annotated[str, Field(pattern=r"^/")] | None = None

    @model_validator(mode="after")
    def _parallel(self) -> TrainingSettings:
        found: list[Violation] = []
        if self.parallelism > self.completions:
            found.append((("parallelism",), f"must be <= completions ({self.completions})"))
        if "JOB_COMPLETION_INDEX" in self.env:
            found.append((("env", "JOB_COMPLETION_INDEX"), "is set from the completion index: remove it"))
        memory = validation.quantity_value(self.resources.limits.memory)
        if memory <= validation.quantity_value(TRAINING_SHM_SIZE):
            found.append(
                (
                    ("resources", "limits", "memory"),
                    f"must exceed the {TRAINING_SHM_SIZE} /dev/shm that counts against it",
                )
            )
        _violations(found)
        return self


class BatchSettings(WorkloadBase):
    schedule: Annotated[str, AfterValidator(_check(validation.cron_schedule))]
    timeZone: Annotated[str, AfterValidator(_check(validation.time_zone))] = "Etc/UTC"
    startingDeadlineSeconds: int = Field(default=600, ge=10)
    backoffLimit: int = Field(default=2, ge=0, le=100)
    activeDeadlineSeconds: int = Field(default=14400, ge=60)
    configMountPath: Annotated[str, Field(pattern=r"^/")] = "/config"

    @model_validator(mode="after")
    def _name_length(self) -> BatchSettings:
        if len(self.name) > 52:
            _violations(
                [(("name",), "at most 52 characters: the CronJob controller appends 11 to each Job's name")]
            )
        return self


class WorkloadsSettings(Model):
    inference: list[InferenceSettings] = Field(default_factory=list)
    training: list[TrainingSettings] = Field(default_factory=list)
    batch: list[BatchSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> WorkloadsSettings:
        found: list[Violation] = []
        for kind in ("inference", "training", "batch"):
            found += [((kind, *path), msg) for path, msg in _unique(getattr(self, kind), f"{kind} workload")]
        _violations(found)
        return self

    def all(self) -> list[tuple[str, int, WorkloadBase]]:
        return [
            (kind, i, w)
            for kind in ("inference", "training", "batch")
            for i, w in enumerate(getattr(self, kind))
        ]


# -- the whole platform ----------------------------------------------------------------------------


class PlatformSettings(Model):
    environment: Literal["dev", "prod"]
    network: NetworkSettings = NetworkSettings()
    cluster: ClusterSettings
    nodeGroups: NodeGroupsSettings = NodeGroupsSettings()
    charts: ChartSettings
    gpu: GpuSettings = GpuSettings()
    secrets: list[SecretSettings] = Field(default_factory=list)
    ingress: IngressSettings = IngressSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    storage: StorageSettings = StorageSettings()
    namespaces: list[NamespaceSettings] = Field(default_factory=list)
    workloads: WorkloadsSettings = WorkloadsSettings()
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @model_validator(mode="after")
    def _cross_section(self) -> PlatformSettings:
        found: list[Violation] = []
        found += [(("secrets", *p), m) for p, m in _unique(self.secrets, "secret")]
        found += [(("namespaces", *p), m) for p, m in _unique(self.namespaces, "namespace")]
        found += self._reference_rules()
        found += self._ingress_rules()
        if self.is_prod:
            found += self._prod_rules()
        _violations(found)
        return self

    def _reference_rules(self) -> list[Violation]:
        found: list[Violation] = []
        namespaces = {n.name for n in self.namespaces}
        gpu_groups = {g.name: g for g in self.nodeGroups.gpu}
        secrets = {(s.namespace, s.name): s for s in self.secrets}
        served = {m.name for m in self.observability.customMetrics} if self.observability.enabled else set()
        for i, secret in enumerate(self.secrets):
            if secret.namespace not in namespaces:
                found.append(
                    (("secrets", i, "namespace"), f"'{secret.namespace}' is not declared in namespaces")
                )
        for kind, i, w in self.workloads.all():
            at = ("workloads", kind, i)
            if w.namespace not in namespaces:
                found.append(((*at, "namespace"), f"'{w.namespace}' is not declared in namespaces"))
            if w.gpu:
                group = gpu_groups.get(w.gpu.nodeGroup)
                if group is None:
                    found.append(((*at, "gpu", "nodeGroup"), f"no GPU node group named '{w.gpu.nodeGroup}'"))
                elif w.gpu.count > group.gpusPerNode:
                    found.append(
                        (
                            (*at, "gpu", "count"),
                            f"must be <= {group.gpusPerNode} (GPUs per node of '{group.name}')",
                        )
                    )
            for j, ref in enumerate(w.secretEnv):
                secret = secrets.get((w.namespace, ref.secret))
                if secret is None:
                    found.append(
                        (
                            (*at, "secretEnv", j, "secret"),
                            f"no secret '{ref.secret}' in namespace '{w.namespace}'",
                        )
                    )
                elif ref.key not in secret.keys:
                    found.append(
                        ((*at, "secretEnv", j, "key"), f"secret '{ref.secret}' has no key '{ref.key}'")
                    )
            if isinstance(w, TrainingSettings) and w.sharedStorageMountPath:
                shared = self.storage.sharedFileSystem
                if not shared.enabled:
                    found.append(((*at, "sharedStorageMountPath"), "enable storage.sharedFileSystem first"))
                elif shared.namespace != w.namespace:
                    found.append(((*at, "namespace"), f"the shared volume lives in '{shared.namespace}'"))
            if isinstance(w, InferenceSettings) and w.autoscaling:
                for j, metric in enumerate(w.autoscaling.customMetrics):
                    if metric.name not in served:
                        found.append(
                            (
                                (*at, "autoscaling", "customMetrics", j, "name"),
                                f"no observability.customMetrics rule serves '{metric.name}' (the HPA would never scale)",
                            )
                        )
        # The generated bucket name <cluster>-models-<12-digit account>-<region> must fit in 63.
        if self.storage.modelBucket.name is None and len(self.cluster.name) > MAX_CLUSTER_NAME_FOR_BUCKET:
            found.append(
                (
                    ("storage", "modelBucket", "name"),
                    "name the bucket: the cluster name is too long to derive one",
                )
            )
        if (
            self.storage.sharedFileSystem.enabled
            and self.storage.sharedFileSystem.namespace not in namespaces
        ):
            found.append((("storage", "sharedFileSystem", "namespace"), "is not declared in namespaces"))
        return found

    def _ingress_rules(self) -> list[Violation]:
        found: list[Violation] = []
        routed = [(i, w) for i, w in enumerate(self.workloads.inference) if w.ingress]
        hosts = Counter((w.ingress.host, w.ingress.path) for _, w in routed)
        for i, w in routed:
            at = ("workloads", "inference", i, "ingress")
            if hosts[(w.ingress.host, w.ingress.path)] > 1:
                found.append(((*at, "host"), f"'{w.ingress.host}{w.ingress.path}' is routed twice"))
            if w.ingress.tls and self.ingress.controller == "alb" and not self.ingress.certificateArn:
                found.append(
                    (
                        ("ingress", "certificateArn"),
                        f"TLS for '{w.ingress.host}' needs an ACM certificate ARN",
                    )
                )
            if w.ingress.tls and self.ingress.controller == "nginx":
                found += self._nginx_tls_secret(w)
        return list(dict.fromkeys(found))

    def _nginx_tls_secret(self, w: InferenceSettings) -> list[Violation]:
        """ingress-nginx reads the certificate from a Secret in the Ingress's own namespace."""
        name = self.ingress.tlsSecret
        assert w.ingress is not None
        if not name:
            return [(("ingress", "tlsSecret"), f"TLS for '{w.ingress.host}' needs tlsSecret")]
        secret = next((s for s in self.secrets if s.name == name and s.namespace == w.namespace), None)
        if secret is None:
            return [
                (
                    ("ingress", "tlsSecret"),
                    f"declare secret '{name}' in namespace '{w.namespace}' under secrets",
                )
            ]
        missing = [k for k in ("tls.crt", "tls.key") if k not in secret.keys]
        if missing:
            return [(("ingress", "tlsSecret"), f"secret '{name}' needs the keys {', '.join(missing)}")]
        return []

    def _prod_rules(self) -> list[Violation]:
        found: list[Violation] = []
        for kind, i, w in self.workloads.all():
            if validation.is_latest(w.image):
                found.append(
                    (("workloads", kind, i, "image"), "':latest' is not allowed in prod: pin a version")
                )
        for i, w in enumerate(self.workloads.inference):
            at = ("workloads", "inference", i)
            if w.ingress and self.ingress.scheme == "internet-facing" and not w.ingress.tls:
                found.append(((*at, "ingress", "tls"), "a public ingress in prod must use TLS"))
            floor = w.autoscaling.minReplicas if w.autoscaling else w.replicas
            if floor < 2:
                key = ("autoscaling", "minReplicas") if w.autoscaling else ("replicas",)
                found.append(((*at, *key), "prod inference needs at least 2 replicas"))
        endpoint = self.cluster.endpoint
        if "0.0.0.0/0" in endpoint.publicAccessCidrs:
            found.append(
                (("cluster", "endpoint", "publicAccessCidrs"), "prod must not open the API to 0.0.0.0/0")
            )
        return found


# -- loading ---------------------------------------------------------------------------------------

SECTIONS = tuple(PlatformSettings.model_fields)


MAX_KEY_LENGTH, MAX_MESSAGE_LENGTH = 60, 240


def _clip(text: str, limit: int) -> str:
    """Problem lines quote what was given; a huge key or value must not flood the terminal."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem(loc: Sequence[str | int], message: str) -> str:
    """``aiplatform:<key path>: <message>``, the key path as a person writes it in the stack file."""
    if not loc:
        return f"{NAMESPACE}: {_clip(message, MAX_MESSAGE_LENGTH)}"
    section, *rest = loc
    path = f"{NAMESPACE}:{_clip(str(section), MAX_KEY_LENGTH)}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{_clip(str(part), MAX_KEY_LENGTH)}"
    return f"{path}: {_clip(message, MAX_MESSAGE_LENGTH)}"


def _describe(error: Mapping[str, Any]) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against Pulumi.yaml)"
    if kind == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


def problems_of(error: ValidationError) -> list[str]:
    """Every problem of a validation error as ``aiplatform:<key path>: <what is wrong>``."""
    problems: list[str] = []
    for item in error.errors():
        # Validator wrappers add "function-after[...]" steps to the location; they are not keys.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-after"))]
        if item["type"] == "rules":
            problems += [_problem([*loc, *path], message) for path, message in item["ctx"]["violations"]]
        else:
            problems.append(_problem(loc, _describe(item)))
    return list(dict.fromkeys(problems))


def parse_settings(raw: Mapping[str, Any]) -> PlatformSettings:
    """Validate a mapping of section name -> value (as in the stack file, without the namespace)."""
    try:
        return PlatformSettings.model_validate(dict(raw))
    except ValidationError as exc:
        raise ConfigError(problems_of(exc)) from None


def secret_config_keys(raw: Mapping[str, Any]) -> set[str]:
    """Config keys that hold secret values and are named by other settings (never parsed as settings)."""
    keys: set[str] = set()
    for secret in raw.get("secrets") or []:
        if isinstance(secret, Mapping) and isinstance(secret.get("valueFrom"), str):
            keys.add(secret["valueFrom"])
    cluster = raw.get("cluster")
    if isinstance(cluster, Mapping) and isinstance(cluster.get("existing"), Mapping):
        keys.add(str(cluster["existing"].get("kubeconfigSecret", "existingKubeconfig")))
    elif isinstance(cluster, Mapping) and cluster.get("mode") == "existing":
        keys.add("existingKubeconfig")
    return keys


# Stands in for a secret config value: settings never hold secret values, only their key names.
SECRET_VALUE = object()


def _raw_namespace_config() -> dict[str, Any]:
    """Every ``aiplatform:*`` key the runtime was given, objects decoded from their JSON form."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for full_key, value in values.items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE or not key:
            continue
        if runtime_config.is_config_secret(full_key):
            raw[key] = SECRET_VALUE
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def load_settings() -> PlatformSettings:
    """Read and validate the ``aiplatform:`` config of the current stack, or raise ``ConfigError``."""
    raw = _raw_namespace_config()
    secret_keys = secret_config_keys(raw)
    problems: list[str] = []
    for key, value in raw.items():
        if key in secret_keys:
            continue
        if key not in SECTIONS:
            problems.append(_problem([key], f"unknown key (known keys: {', '.join(SECTIONS)})"))
        elif value is SECRET_VALUE:
            problems.append(_problem([key], "must not be a secret (only secret values are encrypted)"))
        elif value is None:
            problems.append(_problem([key], "is empty: give it a value or remove the key"))
    settings_raw = {k: v for k, v in raw.items() if k in SECTIONS and v is not None and v is not SECRET_VALUE}
    try:
        settings = parse_settings(settings_raw)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return settings


def secret_value(key: str) -> pulumi.Output[str] | None:
    """A secret config value of this namespace, as a Pulumi secret (never a plain string)."""
    return pulumi.Config(NAMESPACE).get_secret(key)
