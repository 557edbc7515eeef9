"""Settings of the AI workloads: model servers, training jobs, scheduled batch inference."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from .. import validation
from ..addons.alerts import AutoscaledService, ScheduledJob, TrainingRun, WorkloadTarget
from ..compute import capacity
from ..compute.capacity import PodSet, pod_requests
from ..dra import GpuSelector, SharingStrategy
from ..podspec import (
    FLUENT_BIT_HTTP_PORT,
    LOG_SHIPPER_RESOURCES,
    MAX_ID,
    MODEL_FETCH_RESOURCES,
    NON_ROOT_UID,
    STATIC_AWS_CREDENTIAL_ENV,
)
from ..workloads._common import (
    AWS_CLI_IMAGE,
    CONFIG_MOUNT_PATH,
    FLUENT_BIT_IMAGE,
    MAX_NAME_WITH_AWS_ROLE,
    TMP_PATH,
)
from ..workloads.inference import LOG_DIR_ENV, MODEL_DIR_ENV
from ..workloads.training import INDEX_ENV, SHM_PATH
from ._base import (
    ConfigKey,
    DnsLabel,
    EnvName,
    Hostname,
    Image,
    MetricName,
    Model,
    PositiveQuantity,
    Quantity,
    ServiceName,
    Violation,
    checked,
    raise_violations,
    unique_names,
)

Path = tuple[str | int, ...]


def _key(path: Path) -> str:
    """A relative key path as written in the stack file: ``config.files[0].mountPath``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


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
        raise_violations(found)
        return self


class GpuSelectorSettings(Model):
    """Which GPUs a DRA claim accepts, by what the NVIDIA DRA driver publishes (components/dra.py)."""

    productName: str | None = Field(
        default=None,
        description="the driver's productName (NVML's name), e.g. NVIDIA A10G, NVIDIA L4, Tesla T4",
    )
    minMemoryGiB: int | None = Field(
        default=None, ge=1, le=4096, description="the least memory the driver publishes for the GPU, GiB"
    )

    @model_validator(mode="after")
    def _some(self) -> GpuSelectorSettings:
        keys = {"product_name": ("productName",), "min_memory_gib": ("minMemoryGiB",)}
        raise_violations([(keys.get(str(p), ()), m) for p, m in self.selector().problems()])
        return self

    def selector(self) -> GpuSelector:
        return GpuSelector(product_name=self.productName, min_memory_gib=self.minMemoryGiB)


class GpuRequest(Model):
    """Where a workload's GPUs come from: a GPU node group, or a GPU pool (Karpenter, Auto Mode).

    With DRA (``compute.gpuAllocation: dra``) each pod claims ``count`` GPUs of its own, which a
    ``selector`` may narrow; or the pods of every workload naming the same ``shared`` claim (in one
    namespace) share its GPUs, by the driver's ``sharing`` strategy.
    """

    nodeGroup: DnsLabel | None = None
    pool: DnsLabel | None = None
    count: int = Field(default=1, ge=1, le=16)
    selector: GpuSelectorSettings | None = None
    shared: DnsLabel | None = Field(
        default=None, description="DRA: the name of a claim the pods share with every workload naming it"
    )
    sharing: SharingStrategy | None = Field(
        default=None, description="how the pods of a shared claim share it: TimeSlicing (default) or MPS"
    )

    @model_validator(mode="after")
    def _one_source(self) -> GpuRequest:
        found: list[Violation] = []
        if (self.nodeGroup is None) == (self.pool is None):
            found.append((("pool",), "name either nodeGroup (GPU node groups) or pool (GPU pools)"))
        if self.sharing is not None and self.shared is None:
            found.append((("sharing",), "only with shared (a claim the pods of several workloads share)"))
        raise_violations(found)
        return self

    @property
    def target(self) -> str:
        """The node group's or the pool's name."""
        return self.nodeGroup or self.pool or ""

    @property
    def per_pod(self) -> int:
        """The GPUs each pod claims for itself (a shared claim's are shared: none of its own)."""
        return 0 if self.shared else self.count

    @property
    def sharing_strategy(self) -> SharingStrategy:
        return self.sharing or "TimeSlicing"

    def gpu_selector(self) -> GpuSelector | None:
        return self.selector.selector() if self.selector else None


class SecretEnv(Model):
    name: EnvName
    secret: DnsLabel
    key: str


class SecretFile(Model):
    """Keys of a declared secret as read-only files ``<mountPath>/<key>`` (keys empty: all of them)."""

    secret: DnsLabel
    mountPath: Annotated[str, Field(pattern=r"^/")]
    keys: list[ConfigKey] = Field(default_factory=list)


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
        raise_violations(found)
        return self


class SecurityContext(Model):
    """The user and group a workload's containers run as (the group also owns its volumes)."""

    runAsUser: int = Field(default=NON_ROOT_UID, ge=1, le=MAX_ID, description="0 (root) is not allowed")
    runAsGroup: int = Field(default=NON_ROOT_UID, ge=1, le=MAX_ID)


class WorkloadBase(Model):
    name: ServiceName
    namespace: DnsLabel
    image: Image
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    secretEnv: list[SecretEnv] = Field(default_factory=list)
    secretFiles: list[SecretFile] = Field(
        default_factory=list, description="secrets as files: preferred where the application reads files"
    )
    config: WorkloadConfig | None = None
    resources: ResourceSettings = ResourceSettings()
    gpu: GpuRequest | None = None
    securityContext: SecurityContext = SecurityContext()

    def images(self) -> list[tuple[Path, str]]:
        """``(key path, image)`` of every container the workload's pods run."""
        return [(("image",), self.image)]

    def platform_env(self) -> dict[str, str]:
        """Env vars the platform sets on the main container, and what it sets them from."""
        return {}

    def platform_mounts(self) -> dict[str, str]:
        """Mount paths of the main container that no key sets, and what they hold."""
        return {TMP_PATH: "the writable /tmp"}

    def mounts(self) -> list[tuple[Path, str]]:
        """``(key path, mount path)`` of every mount the user's keys set on the main container."""
        secrets = [(("secretFiles", i, "mountPath"), f.mountPath) for i, f in enumerate(self.secretFiles)]
        if self.config is None:
            return secrets
        if not self.config.files:
            return [(("config",), CONFIG_MOUNT_PATH), *secrets]
        first = {f.mountPath: i for i, f in reversed(list(enumerate(self.config.files)))}
        return [*((("config", "files", i, "mountPath"), path) for path, i in first.items()), *secrets]

    def pod_set(self, at: Path) -> PodSet:
        """Its pods as the capacity model counts them; ``at`` is the workload's config key."""
        main = capacity.Requests.of(
            {"cpu": self.resources.requests.cpu, "memory": self.resources.requests.memory}
        )
        low, high = self.replica_range()
        return PodSet(
            name=self.name,
            source="workload",
            requests=pod_requests([main], self.init_requests()),
            min_replicas=low,
            max_replicas=high,
            node_group=self.gpu.target if self.gpu else None,
            path=(*at, "resources", "requests"),
        )

    def replica_range(self) -> tuple[int, int]:
        """The pods that always run, and the most that run at once."""
        return 0, 1  # a CronJob that forbids concurrent runs

    def alert_target(self) -> WorkloadTarget | None:
        """What the platform's alerts watch of it (None: nothing of its own)."""
        return None

    def init_requests(self) -> list[tuple[capacity.Requests, bool]]:
        """The platform's init containers, in order: (requests, is a sidecar)."""
        return []

    @model_validator(mode="after")
    def _environment(self) -> WorkloadBase:
        """Env names and mount paths are merge keys: the API server rejects a container repeating one."""
        found: list[Violation] = []
        sources = [(("env", n), n) for n in self.env]
        sources += [(("config", "env", n), n) for n in (self.config.env if self.config else {})]
        sources += [(("secretEnv", i, "name"), ref.name) for i, ref in enumerate(self.secretEnv)]
        platform = self.platform_env()
        seen: dict[str, Path] = {}
        for path, env in sources:
            if env in STATIC_AWS_CREDENTIAL_ENV:
                found.append((path, f"{env}: no static AWS keys; pods get AWS access from their IAM role"))
            if env in platform:
                found.append((path, f"{env} is set by the platform from {platform[env]}: remove it"))
            elif env in seen:
                found.append((path, f"{env} is already set by {_key(seen[env])}"))
            seen.setdefault(env, path)
        mounted = dict(self.platform_mounts())
        for path, mount_path in self.mounts():
            if mount_path in mounted:
                found.append((path, f"'{mount_path}' is already mounted for {mounted[mount_path]}"))
            mounted.setdefault(mount_path, _key(path))
        raise_violations(found)
        return self


class ModelStorage(Model):
    type: Literal["emptyDir", "pvc"] = "emptyDir"
    size: Quantity = "20Gi"
    mountPath: Annotated[str, Field(pattern=r"^/")] = "/mnt/models"
    storageClass: DnsLabel = "gp3"


class ModelFetch(Model):
    # S3 object keys are at most 1024 bytes; the prefix is ASCII by its pattern.
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9._-]$", max_length=1024)]
    image: Image = Field(default=AWS_CLI_IMAGE, description="the AWS CLI image that syncs the model")


class LogShipper(Model):
    logPath: Annotated[str, Field(pattern=r"^/")] = "/var/log/app"
    image: Image = FLUENT_BIT_IMAGE


class Probes(Model):
    path: Annotated[str, Field(pattern=r"^/")] = "/health"
    startupSeconds: int = Field(default=600, ge=10, le=7200)


class CustomMetricTarget(Model):
    name: MetricName
    averageValue: PositiveQuantity


class Autoscaling(Model):
    minReplicas: int = Field(ge=1, le=1000)
    maxReplicas: int = Field(ge=1, le=1000)
    cpuUtilization: int | None = Field(default=None, ge=1, le=100)
    memoryUtilization: int | None = Field(default=None, ge=1, le=100)
    customMetrics: list[CustomMetricTarget] = Field(default_factory=list)
    acceptsLowerCeiling: bool = Field(
        default=False,
        description="a GPU workload whose maxReplicas its node group or GPU quota cannot hold: "
        "the replicas above that ceiling stay Pending, on purpose",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        found: list[Violation] = []
        if self.maxReplicas < self.minReplicas:
            found.append((("maxReplicas",), f"must be >= minReplicas ({self.minReplicas})"))
        if self.cpuUtilization is None and self.memoryUtilization is None and not self.customMetrics:
            found.append(((), "give at least one of cpuUtilization, memoryUtilization, customMetrics"))
        raise_violations(found)
        return self


class Route(Model):
    host: Hostname
    path: Annotated[str, Field(pattern=r"^/")] = "/"
    tls: bool = True


class InferenceSettings(WorkloadBase):
    port: int = Field(default=8000, ge=1, le=validation.MAX_PORT)
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

    def platform_env(self) -> dict[str, str]:
        env = {}
        if self.modelStorage:
            env[MODEL_DIR_ENV] = "modelStorage.mountPath"
        if self.logShipper:
            env[LOG_DIR_ENV] = "logShipper.logPath"
        return env

    def replica_range(self) -> tuple[int, int]:
        if self.autoscaling:
            return self.autoscaling.minReplicas, self.autoscaling.maxReplicas
        return self.replicas, self.replicas

    def alert_target(self) -> WorkloadTarget | None:
        # Only an HPA can run at its maximum.
        if self.autoscaling is None:
            return None
        return AutoscaledService(self.namespace, self.name, self.autoscaling.maxReplicas)

    def init_requests(self) -> list[tuple[capacity.Requests, bool]]:
        # In the order the pod declares them: the log shipper sidecar, then the model fetch.
        found: list[tuple[capacity.Requests, bool]] = []
        if self.logShipper:
            found.append((capacity.Requests.of_resources(LOG_SHIPPER_RESOURCES), True))
        if self.modelFetch:
            found.append((capacity.Requests.of_resources(MODEL_FETCH_RESOURCES), False))
        return found

    def images(self) -> list[tuple[Path, str]]:
        images = super().images()
        if self.modelFetch:
            images.append((("modelFetch", "image"), self.modelFetch.image))
        if self.logShipper:
            images.append((("logShipper", "image"), self.logShipper.image))
        return images

    def mounts(self) -> list[tuple[Path, str]]:
        mounts = super().mounts()
        if self.modelStorage:
            mounts.append((("modelStorage", "mountPath"), self.modelStorage.mountPath))
        if self.logShipper:
            mounts.append((("logShipper", "logPath"), self.logShipper.logPath))
        return mounts

    @model_validator(mode="after")
    def _storage(self) -> InferenceSettings:
        found: list[Violation] = []
        if self.logShipper and self.port == FLUENT_BIT_HTTP_PORT:
            found.append(
                (("port",), f"{self.port} is the log shipper's port (a pod's containers share ports)")
            )
        if self.autoscaling and self.autoscaling.customMetrics and self.metricsPath is None:
            found.append((("metricsPath",), "custom metrics come from scraping the server: set metricsPath"))
        if self.modelFetch and not self.modelStorage:
            found.append((("modelStorage",), "modelFetch needs a modelStorage volume to download into"))
        if self.modelFetch and len(self.name) > MAX_NAME_WITH_AWS_ROLE:
            found.append(
                (
                    ("name",),
                    f"at most {MAX_NAME_WITH_AWS_ROLE} characters with modelFetch: the server's IAM role "
                    "is named after it, and IAM role names hold 64",
                )
            )
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
        raise_violations(found)
        return self


INT32_MAX = 2**31 - 1  # Kubernetes int32 fields
TRAINING_SHM_SIZE = "2Gi"  # the memory-backed /dev/shm every TrainingJob pod gets


class TrainingSettings(WorkloadBase):
    completions: int = Field(ge=1, le=10000)
    parallelism: int = Field(ge=1, le=1000)
    backoffLimit: int = Field(default=4, ge=0, le=100)
    ttlSecondsAfterFinished: int | None = Field(
        default=None,
        ge=0,
        le=INT32_MAX,
        description="off by default: a TTL-deleted Job is re-created (re-run) by the next up",
    )
    indexArg: str | None = Field(
        default="--job-index", description="flag passed with $(JOB_COMPLETION_INDEX); null: env var only"
    )
    activeDeadlineSeconds: int = Field(default=86400, ge=60)
    sharedStorageMountPath: Annotated[str, Field(pattern=r"^/")] | None = None

    def replica_range(self) -> tuple[int, int]:
        return 0, self.parallelism

    def alert_target(self) -> WorkloadTarget | None:
        return TrainingRun(self.namespace, self.name)

    def platform_env(self) -> dict[str, str]:
        return {INDEX_ENV: "the completion index"}

    def platform_mounts(self) -> dict[str, str]:
        return {**super().platform_mounts(), SHM_PATH: f"the {TRAINING_SHM_SIZE} shared memory"}

    def mounts(self) -> list[tuple[Path, str]]:
        mounts = super().mounts()
        if self.sharedStorageMountPath:
            mounts.append((("sharedStorageMountPath",), self.sharedStorageMountPath))
        return mounts

    @model_validator(mode="after")
    def _parallel(self) -> TrainingSettings:
        found: list[Violation] = []
        if self.parallelism > self.completions:
            found.append((("parallelism",), f"must be <= completions ({self.completions})"))
        memory = validation.quantity_value(self.resources.limits.memory)
        if memory <= validation.quantity_value(TRAINING_SHM_SIZE):
            found.append(
                (
                    ("resources", "limits", "memory"),
                    f"must exceed the {TRAINING_SHM_SIZE} /dev/shm that counts against it",
                )
            )
        raise_violations(found)
        return self


class BatchSettings(WorkloadBase):
    schedule: Annotated[str, AfterValidator(checked(validation.cron_schedule))]
    timeZone: Annotated[str, AfterValidator(checked(validation.time_zone))] = "Etc/UTC"
    startingDeadlineSeconds: int = Field(default=600, ge=10)
    backoffLimit: int = Field(default=2, ge=0, le=100)
    activeDeadlineSeconds: int = Field(default=14400, ge=60)
    configMountPath: Annotated[str, Field(pattern=r"^/")] = "/config"

    def alert_target(self) -> WorkloadTarget | None:
        return ScheduledJob(self.namespace, self.name, self.startingDeadlineSeconds)

    def mounts(self) -> list[tuple[Path, str]]:
        mounts = super().mounts()
        if self.config is not None and not self.config.files:
            mounts[0] = (("configMountPath",), self.configMountPath)
        return mounts

    @model_validator(mode="after")
    def _name_length(self) -> BatchSettings:
        if len(self.name) > 52:
            raise_violations(
                [(("name",), "at most 52 characters: the CronJob controller appends 11 to each Job's name")]
            )
        return self


class WorkloadsSettings(Model):
    """The workload kinds: one list per kind, its key the kind's name, in the order they deploy."""

    inference: list[InferenceSettings] = Field(default_factory=list)
    training: list[TrainingSettings] = Field(default_factory=list)
    batch: list[BatchSettings] = Field(default_factory=list)

    @classmethod
    def kinds(cls) -> list[str]:
        return list(cls.model_fields)

    @model_validator(mode="after")
    def _names(self) -> WorkloadsSettings:
        found: list[Violation] = []
        for kind in self.kinds():
            found += [
                ((kind, *path), msg) for path, msg in unique_names(getattr(self, kind), f"{kind} workload")
            ]
        raise_violations(found)
        return self

    def all(self) -> list[tuple[str, int, WorkloadBase]]:
        """Every workload with its kind and index, kind by kind."""
        return [(kind, i, w) for kind in self.kinds() for i, w in enumerate(getattr(self, kind))]
