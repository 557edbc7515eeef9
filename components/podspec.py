"""Pure pod-spec builders: containers, sidecars, init containers, volumes, probes, pod specs.

Nothing here creates a resource. Every function returns ``pulumi_kubernetes`` Args objects (or plain
values) so workloads compose the same blocks instead of copying them, and tests can check them without
the engine. Values may be ``pulumi.Input``s (e.g. the generated name of a ConfigMap).

Secure by default:

* every container gets ``runAsNonRoot``, no privilege escalation, a read-only root filesystem, all
  capabilities dropped and the ``RuntimeDefault`` seccomp profile;
* every container has requests AND limits (limits default to the requests: predictable QoS);
* no list the API server merges by key repeats a key: env names, ports, mount paths in a container;
  container names, volume names, and the ports of containers running together in a pod. Server-side
  apply rejects such a list (``duplicate entries for key``), so the builders refuse it first;
* the pod does not mount the Kubernetes API token (``automountServiceAccountToken: false``). AWS access
  does not need it: IRSA and EKS Pod Identity inject their OWN projected token volume (audience
  ``sts.amazonaws.com`` / ``pods.eks.amazonaws.com``) through the EKS webhook, independent of this flag.
  Only a pod that talks to the Kubernetes API should turn it on.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import pulumi
import pulumi_kubernetes as k8s

from . import validation
from .errors import ArgumentsError, Problem, path, require, under
from .inputs import derived
from .scheduling import Placement

core = k8s.core.v1
meta = k8s.meta.v1

CONFIG_HASH_ANNOTATION = "aiplatform.io/config-hash"
JOB_COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
# Pods run as this user and group unless told otherwise: above 10000, so the ids cannot be those of a
# user on the host (whose files a container escaping its sandbox would then own).
NON_ROOT_UID = 10001
HIGH_ID_FLOOR = 10000
MAX_ID = 2**31 - 1
# Env names that would mean static AWS credentials: pods get AWS access from their service account's role.
STATIC_AWS_CREDENTIAL_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


# -- quantities and resources -------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """CPU/memory requests and limits of one container. Limits default to the requests."""

    cpu: str  # the CPU request (a quantity: 500m, 2)
    memory: str  # the memory request (a quantity: 512Mi, 16Gi)
    cpu_limit: str | None = None  # the CPU limit (None: the request)
    memory_limit: str | None = None  # the memory limit (None: the request)

    @property
    def limits(self) -> dict[str, str]:
        return {"cpu": self.cpu_limit or self.cpu, "memory": self.memory_limit or self.memory}

    @property
    def requests(self) -> dict[str, str]:
        return {"cpu": self.cpu, "memory": self.memory}

    def problems(self) -> list[Problem]:
        """Every problem, at its field (empty when valid)."""
        problems: list[Problem] = []
        parsed: dict[str, Decimal] = {}
        for key, value in (
            ("cpu", self.cpu),
            ("memory", self.memory),
            ("cpu_limit", self.limits["cpu"]),
            ("memory_limit", self.limits["memory"]),
        ):
            try:
                parsed[key] = validation.quantity_value(value)
            except ValueError as exc:
                problems.append((key, str(exc)))
                continue
            if parsed[key] <= 0:
                problems.append((key, "must be > 0"))
        for kind in ("cpu", "memory"):
            request, limit = parsed.get(kind), parsed.get(f"{kind}_limit")
            if request is not None and limit is not None and limit < request:
                problems.append((f"{kind}_limit", f"must be >= the request ({getattr(self, kind)})"))
        return problems


def resource_requirements(
    resources: Resources,
    *,
    gpus: int = 0,
    gpu_resource: str | None = None,
    claims: Sequence[str] = (),
) -> core.ResourceRequirementsArgs:
    """Requests and limits; ``gpus`` adds the extended resource (e.g. ``nvidia.com/gpu``) to both, equal.
    ``claims`` names the pod's resource claims the container uses (GPUs by DRA, instead of ``gpus``)."""
    requests, limits = dict(resources.requests), dict(resources.limits)
    if gpus < 0:
        raise ArgumentsError("resource_requirements", [("gpus", "must be >= 0")])
    if gpus:
        if not gpu_resource:
            raise ArgumentsError(
                "resource_requirements",
                [("gpu_resource", "gpus > 0 needs the placement's gpu_resource (e.g. nvidia.com/gpu)")],
            )
        # Extended resources cannot be overcommitted: the request must equal the limit.
        requests[gpu_resource] = limits[gpu_resource] = str(gpus)
    return core.ResourceRequirementsArgs(
        requests=requests,
        limits=limits,
        claims=[core.ResourceClaimArgs(name=claim) for claim in claims] or None,
    )


# -- security ------------------------------------------------------------------------------------


def container_security_context(*, read_only_root_filesystem: bool = True) -> core.SecurityContextArgs:
    """The restricted Pod Security Standard, per container."""
    return core.SecurityContextArgs(
        run_as_non_root=True,
        allow_privilege_escalation=False,
        read_only_root_filesystem=read_only_root_filesystem,
        capabilities=core.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


def run_as_problems(run_as_user: int, run_as_group: int) -> list[Problem]:
    """The user and group a pod runs as: numeric, not root (0), within Kubernetes' int32 range."""
    return [
        (name, f"{value} must be between 1 and {MAX_ID} (0 is root)")
        for name, value in (("run_as_user", run_as_user), ("run_as_group", run_as_group))
        if not (isinstance(value, int) and 1 <= value <= MAX_ID)
    ]


def pod_security_context(
    *, run_as_user: int = NON_ROOT_UID, run_as_group: int = NON_ROOT_UID, fs_group: int | None = None
) -> core.PodSecurityContextArgs:
    """Numeric non-root ids (runAsNonRoot can only verify a numeric user) and a group owning the volumes
    (``fs_group`` defaults to ``run_as_group``).

    ``fsGroup`` also makes the IRSA / Pod Identity projected token readable by the non-root user.
    ``OnRootMismatch`` skips the recursive chown of a large model volume when it is already right.
    """
    return core.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=run_as_user,
        run_as_group=run_as_group,
        fs_group=run_as_group if fs_group is None else fs_group,
        fs_group_change_policy="OnRootMismatch",
        seccomp_profile=core.SeccompProfileArgs(type="RuntimeDefault"),
    )


# -- env and mounts ------------------------------------------------------------------------------


def env_value(name: str, value: pulumi.Input[str]) -> core.EnvVarArgs:
    return core.EnvVarArgs(name=name, value=value)


def env_vars(values: Mapping[str, pulumi.Input[str]]) -> list[core.EnvVarArgs]:
    """Plain env vars, sorted by name (stable diffs)."""
    return [env_value(name, values[name]) for name in sorted(values)]


def env_from_config_map(name: str, config_map: pulumi.Input[str], key: str) -> core.EnvVarArgs:
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(
            config_map_key_ref=core.ConfigMapKeySelectorArgs(name=config_map, key=key)
        ),
    )


def env_from_secret(name: str, secret: pulumi.Input[str], key: str) -> core.EnvVarArgs:
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(secret_key_ref=core.SecretKeySelectorArgs(name=secret, key=key)),
    )


def env_from_field(name: str, field_path: str) -> core.EnvVarArgs:
    """Downward API, e.g. ``metadata.namespace`` or the Job completion index annotation."""
    return core.EnvVarArgs(
        name=name,
        value_from=core.EnvVarSourceArgs(field_ref=core.ObjectFieldSelectorArgs(field_path=field_path)),
    )


def mount(
    volume: str, path: str, *, read_only: bool = False, sub_path: str | None = None
) -> core.VolumeMountArgs:
    return core.VolumeMountArgs(name=volume, mount_path=path, read_only=read_only or None, sub_path=sub_path)


# -- probes --------------------------------------------------------------------------------------


class Probes(NamedTuple):
    startup: core.ProbeArgs | None
    readiness: core.ProbeArgs | None
    liveness: core.ProbeArgs | None


def probes(
    port: int | str = "http",
    *,
    readiness_path: str = "/ready",
    liveness_path: str = "/health",
    startup_path: str | None = None,
    startup_seconds: int = 600,
    startup_period_seconds: int = 10,
    period_seconds: int = 10,
    timeout_seconds: int = 5,
    failure_threshold: int = 3,
) -> Probes:
    """HTTP probes for a server that loads a model before it can answer.

    The startup probe gives the server ``startup_seconds`` (failureThreshold * periodSeconds >= it)
    to load; liveness and readiness only start once it has succeeded, so they can stay tight.
    """
    if startup_seconds <= 0 or startup_period_seconds <= 0:
        raise ArgumentsError(
            "probes",
            [
                (field_name, "must be > 0")
                for field_name, value in (
                    ("startup_seconds", startup_seconds),
                    ("startup_period_seconds", startup_period_seconds),
                )
                if value <= 0
            ],
        )

    def http(path: str, period: int, failures: int) -> core.ProbeArgs:
        return core.ProbeArgs(
            http_get=core.HTTPGetActionArgs(path=path, port=port),
            period_seconds=period,
            timeout_seconds=timeout_seconds,
            failure_threshold=failures,
        )

    return Probes(
        startup=http(
            startup_path or liveness_path,
            startup_period_seconds,
            math.ceil(startup_seconds / startup_period_seconds),
        ),
        readiness=http(readiness_path, period_seconds, failure_threshold),
        liveness=http(liveness_path, period_seconds, failure_threshold),
    )


# -- containers ----------------------------------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """A digest names one immutable image: pull it once. A tag can be moved: ask the registry at every
    start (only the manifest is fetched when the layers are already on the node)."""
    return "IfNotPresent" if validation.is_digest_pinned(image) else "Always"


def container(
    name: str,
    image: str,
    *,
    resources: Resources,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    ports: Mapping[str, int] | None = None,
    env: Sequence[core.EnvVarArgs] = (),
    volume_mounts: Sequence[core.VolumeMountArgs] = (),
    gpus: int = 0,
    gpu_resource: str | None = None,
    claims: Sequence[str] = (),
    probes: Probes | None = None,
    read_only_root_filesystem: bool = True,
    restart_policy: str | None = None,
    working_dir: str | None = None,
    pre_stop_sleep_seconds: int | None = None,
) -> core.ContainerArgs:
    """One container with a secure security context and requests + limits (GPU count included).

    ``ports`` maps port names to numbers (``{"http": 8000}``); ``restart_policy="Always"`` on an init
    container makes it a native sidecar. ``pre_stop_sleep_seconds`` keeps a stopping server serving
    while load balancers drop it from their targets (the kubelet's sleep action: no shell needed).
    Raises ArgumentsError when a keyed list repeats a key (``container_problems``).
    """
    built = core.ContainerArgs(
        name=name,
        image=image,
        image_pull_policy=image_pull_policy(image),
        command=list(command) if command is not None else None,
        args=list(args) if args is not None else None,
        ports=[
            core.ContainerPortArgs(name=n, container_port=p, protocol="TCP") for n, p in (ports or {}).items()
        ]
        or None,
        env=list(env) or None,
        volume_mounts=list(volume_mounts) or None,
        resources=resource_requirements(resources, gpus=gpus, gpu_resource=gpu_resource, claims=claims),
        startup_probe=probes.startup if probes else None,
        readiness_probe=probes.readiness if probes else None,
        liveness_probe=probes.liveness if probes else None,
        security_context=container_security_context(read_only_root_filesystem=read_only_root_filesystem),
        restart_policy=restart_policy,
        working_dir=working_dir,
        lifecycle=core.LifecycleArgs(
            pre_stop=core.LifecycleHandlerArgs(sleep=core.SleepActionArgs(seconds=pre_stop_sleep_seconds))
        )
        if pre_stop_sleep_seconds
        else None,
    )
    require(f"container {name!r}", container_problems(built))
    return built


FLUENT_BIT_CONFIG_KEY = "fluent-bit.conf"
FLUENT_BIT_HTTP_PORT = 2020
FLUENT_BIT_CONFIG_PATH = "/fluent-bit/etc/fluent-bit.conf"


def fluent_bit_config(
    log_path: str,
    *,
    pattern: str = "*.log",
    output: Mapping[str, str] | None = None,
    flush_seconds: int = 5,
    log_level: str = "info",
    http_port: int = FLUENT_BIT_HTTP_PORT,
) -> str:
    """A fluent-bit (classic format) config: tail ``<log_path>/<pattern>``, send to ``output``.

    ``output`` is one ``[OUTPUT]`` section's keys (default: stdout, i.e. the node's log pipeline picks it
    up). ``Match`` defaults to ``*``. The built-in HTTP server serves ``/api/v1/health`` for probes.
    No tail DB: the root filesystem is read-only and the log volume is mounted read-only.
    """
    out = {"Name": "stdout", "Match": "*", **(output or {})}
    out.setdefault("Match", "*")
    sections = [
        (
            "SERVICE",
            {
                "Flush": str(flush_seconds),
                "Log_Level": log_level,
                "HTTP_Server": "On",
                "HTTP_Listen": "0.0.0.0",
                "HTTP_Port": str(http_port),
                "Health_Check": "On",
            },
        ),
        (
            "INPUT",
            {
                "Name": "tail",
                "Path": f"{log_path.rstrip('/')}/{pattern}",
                "Tag": "app.*",
                "Refresh_Interval": "5",
                "Read_from_Head": "true",
                "Mem_Buf_Limit": "5MB",
                "Skip_Long_Lines": "On",
            },
        ),
        ("OUTPUT", out),
    ]
    lines: list[str] = []
    for title, values in sections:
        lines.append(f"[{title}]")
        lines.extend(f"    {key:<16} {value}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


# What the platform's own containers in a model server's pod get (the capacity model adds them).
LOG_SHIPPER_RESOURCES = Resources(cpu="50m", memory="64Mi", cpu_limit="200m", memory_limit="128Mi")
MODEL_FETCH_RESOURCES = Resources(cpu="250m", memory="512Mi", cpu_limit="1", memory_limit="1Gi")


def log_shipper_sidecar(
    image: str,
    *,
    log_volume: str,
    log_path: str,
    config_volume: str,
    resources: Resources | None = None,
    name: str = "log-shipper",
    http_port: int = FLUENT_BIT_HTTP_PORT,
    native: bool = True,
) -> core.ContainerArgs:
    """A fluent-bit sidecar that tails the shared log emptyDir (read-only) and ships it.

    Native sidecar by default (an init container with ``restartPolicy: Always``, GA in Kubernetes 1.33,
    which every supported EKS version has): it starts before the server so no early log line is missed,
    it is stopped only AFTER the main containers (final lines are shipped), and it does not keep a Job's
    pod from completing. Put it in ``init_containers``; with ``native=False`` it is a plain container.
    The config comes from a ConfigMap mounted with ``subPath`` (subPath mounts don't see updates: the
    ConfigMap is auto-named, so a change is a new ConfigMap and a pod roll anyway).
    """
    return container(
        name,
        image,
        resources=resources or LOG_SHIPPER_RESOURCES,
        command=["/fluent-bit/bin/fluent-bit"],
        args=["-c", FLUENT_BIT_CONFIG_PATH],
        ports={"flb-http": http_port},
        volume_mounts=[
            mount(log_volume, log_path, read_only=True),
            mount(config_volume, FLUENT_BIT_CONFIG_PATH, read_only=True, sub_path=FLUENT_BIT_CONFIG_KEY),
        ],
        probes=Probes(
            startup=None,
            readiness=None,
            liveness=core.ProbeArgs(
                http_get=core.HTTPGetActionArgs(path="/api/v1/health", port=http_port),
                period_seconds=30,
                failure_threshold=3,
            ),
        ),
        restart_policy="Always" if native else None,
    )


def model_fetch_init_container(
    image: str,
    *,
    bucket: pulumi.Input[str],
    prefix: str,
    model_volume: str,
    mount_path: str,
    tmp_volume: str,
    resources: Resources | None = None,
    region: str | None = None,
    name: str = "fetch-model",
) -> core.ContainerArgs:
    """``aws s3 sync s3://<bucket>/<prefix> <mount_path> --only-show-errors`` before the server starts.

    No static keys: credentials come from the service account's IAM role (IRSA or Pod Identity inject
    them). The root filesystem stays read-only, so ``HOME`` points at a writable ``/tmp`` emptyDir
    (the CLI caches credentials under ``~/.aws``). No shell: the command is exec'd directly.
    """
    env = {"HOME": "/tmp", "AWS_PAGER": ""}
    if region:
        env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    key = prefix.strip("/")
    source = derived(lambda b: f"s3://{b}/{key}" if key else f"s3://{b}", bucket)
    return container(
        name,
        image,
        resources=resources or MODEL_FETCH_RESOURCES,
        command=["aws"],
        args=["s3", "sync", source, mount_path, "--only-show-errors"],
        env=env_vars(env),
        volume_mounts=[mount(model_volume, mount_path), mount(tmp_volume, "/tmp")],
    )


# -- volumes -------------------------------------------------------------------------------------


def empty_dir_volume(name: str, size_limit: str, *, medium: str | None = None) -> core.VolumeArgs:
    """An emptyDir that cannot fill the node's disk (or RAM, with ``medium="Memory"``)."""
    return core.VolumeArgs(
        name=name, empty_dir=core.EmptyDirVolumeSourceArgs(size_limit=size_limit, medium=medium)
    )


def pvc_volume(name: str, claim_name: pulumi.Input[str], *, read_only: bool = False) -> core.VolumeArgs:
    return core.VolumeArgs(
        name=name,
        persistent_volume_claim=core.PersistentVolumeClaimVolumeSourceArgs(
            claim_name=claim_name, read_only=read_only or None
        ),
    )


def config_map_volume(
    name: str,
    config_map: pulumi.Input[str],
    *,
    items: Mapping[str, str] | None = None,
    default_mode: int = 0o444,
) -> core.VolumeArgs:
    """A ConfigMap as files; ``items`` maps keys to file paths (all keys when omitted)."""
    return core.VolumeArgs(
        name=name,
        config_map=core.ConfigMapVolumeSourceArgs(
            name=config_map,
            items=[core.KeyToPathArgs(key=k, path=p) for k, p in items.items()] if items else None,
            default_mode=default_mode,
        ),
    )


def secret_volume(
    name: str, secret: pulumi.Input[str], *, keys: Sequence[str] = (), default_mode: int = 0o440
) -> core.VolumeArgs:
    """A Secret as read-only files named after its keys (``keys``: only those; all when empty).

    Mode 0440: the owner and the pod's group (``fsGroup``) read them, nobody else. Mount the directory,
    not a ``subPath``, so a rotated secret reaches the running pod.
    """
    return core.VolumeArgs(
        name=name,
        secret=core.SecretVolumeSourceArgs(
            secret_name=secret,
            items=[core.KeyToPathArgs(key=k, path=k) for k in keys] or None,
            default_mode=default_mode,
        ),
    )


# -- keyed lists ---------------------------------------------------------------------------------
# Server-side apply merges these lists by key and rejects a list that repeats one; the mock engine
# never did, so the builders check what the API server would.


def duplicates(values: Iterable[Any]) -> list[Any]:
    """The values seen more than once, in first-seen order. Unknown values (Outputs) are not compared."""
    counts = Counter(v for v in values if isinstance(v, (str, int, tuple)))
    return [v for v, n in counts.items() if n > 1]


def _port_key(port: core.ContainerPortArgs) -> str:
    return f"{port.container_port}/{port.protocol or 'TCP'}"


def container_problems(c: core.ContainerArgs) -> list[Problem]:
    """Repeated env names, port names, port numbers or mount paths in one container."""
    ports = c.ports or []
    keyed = (
        ("env", "env name", [e.name for e in c.env or []]),
        ("ports", "port name", [p.name for p in ports if p.name]),
        ("ports", "port", [_port_key(p) for p in ports]),
        ("volume_mounts", "mount path", [m.mount_path for m in c.volume_mounts or []]),
    )
    return [
        (at, f"container {c.name!r}: duplicate {what} {d!r}")
        for at, what, values in keyed
        for d in duplicates(values)
    ]


def pod_problems(spec: core.PodSpecArgs) -> list[Problem]:
    """Every container's problems, then the pod's: container and volume names, mounts without a volume,
    and ports shared by containers that run together (main containers and native sidecars share one
    network namespace, so two of them cannot bind one port, and a named Service port would be ambiguous).
    """
    listed = [
        *((path("init_containers", i), c) for i, c in enumerate(spec.init_containers or [])),
        *((path("containers", i), c) for i, c in enumerate(spec.containers)),
    ]
    containers = [c for _, c in listed]
    problems = [p for at, c in listed for p in under(at, container_problems(c))]
    volumes = [v.name for v in spec.volumes or []]
    problems += [
        ("containers", f"duplicate container name {d!r}") for d in duplicates(c.name for c in containers)
    ]
    problems += [("volumes", f"duplicate volume name {d!r}") for d in duplicates(volumes)]
    problems += [
        (
            path(at, "volume_mounts"),
            f"container {c.name!r}: mount {m.mount_path!r} names no volume of the pod ({m.name!r})",
        )
        for at, c in listed
        for m in c.volume_mounts or []
        if isinstance(m.name, str) and m.name not in volumes
    ]
    claims = [claim.name for claim in spec.resource_claims or []]
    problems += [("resource_claims", f"duplicate resource claim name {d!r}") for d in duplicates(claims)]
    problems += [
        (
            path(at, "resources"),
            f"container {c.name!r}: claim {claim.name!r} names no resource claim of the pod",
        )
        for at, c in listed
        for claim in (c.resources.claims if c.resources is not None else None) or []
        if claim.name not in claims
    ]
    running = [c for c in spec.init_containers or [] if c.restart_policy == "Always"] + list(spec.containers)
    for what, key in (("port name", lambda p: p.name), ("port", _port_key)):
        # Each container's keys once: a repeat inside one container is reported above.
        shared = duplicates(
            k for c in running for k in dict.fromkeys(key(p) for p in c.ports or [] if key(p))
        )
        problems += [("containers", f"{what} {d!r} is declared by two containers") for d in shared]
    return problems


# -- pod -----------------------------------------------------------------------------------------


def spread_across_zones(selector_labels: Mapping[str, str]) -> list[core.TopologySpreadConstraintArgs]:
    """Preferred (ScheduleAnyway) spreading over zones, then nodes, per rollout revision."""
    return [
        core.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key=key,
            when_unsatisfiable="ScheduleAnyway",
            label_selector=meta.LabelSelectorArgs(match_labels=dict(selector_labels)),
            match_label_keys=["pod-template-hash"],
        )
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def pod_spec(
    containers: Sequence[core.ContainerArgs],
    *,
    service_account_name: pulumi.Input[str],
    init_containers: Sequence[core.ContainerArgs] = (),
    volumes: Sequence[core.VolumeArgs] = (),
    placement: Placement | None = None,
    security_context: core.PodSecurityContextArgs | None = None,
    automount_service_account_token: bool = False,
    restart_policy: str | None = None,
    termination_grace_period_seconds: int = 30,
    topology_spread_constraints: Sequence[core.TopologySpreadConstraintArgs] = (),
    resource_claims: Sequence[core.PodResourceClaimArgs] = (),
) -> core.PodSpecArgs:
    """Assemble a pod: its own service account, no API token, placement from the node group's Placement,
    and the resource claims (GPUs by DRA) its containers use.

    Raises ArgumentsError when a keyed list repeats a key or a mount names no volume (``pod_problems``).
    """
    spec = core.PodSpecArgs(
        containers=list(containers),
        init_containers=list(init_containers) or None,
        volumes=list(volumes) or None,
        service_account_name=service_account_name,
        automount_service_account_token=automount_service_account_token,
        enable_service_links=False,
        security_context=security_context or pod_security_context(),
        node_selector=dict(placement.node_selector) if placement and placement.node_selector else None,
        tolerations=placement.toleration_args() if placement and placement.tolerations else None,
        restart_policy=restart_policy,
        termination_grace_period_seconds=termination_grace_period_seconds,
        topology_spread_constraints=list(topology_spread_constraints) or None,
        resource_claims=list(resource_claims) or None,
    )
    require("pod_spec", pod_problems(spec))
    return spec


def config_checksum(data: Mapping[str, Any]) -> str:
    """sha256 of the data with sorted keys: put it in the pod template so a data change rolls the pods."""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True, separators=(",", ":")).encode()).hexdigest()
