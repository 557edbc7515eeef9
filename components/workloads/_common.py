"""What every workload shares: common args, labels, validation, config wiring, service account, pod.

ConfigMaps are auto-named (no ``metadata.name``) and their generated name is passed into the pod spec as
an Output: a data change replaces the ConfigMap (create-before-delete), so the pod template sees a new
name and the pods roll, and old pods keep their old ConfigMap until they are gone. The pod template also
carries ``aiplatform.io/config-hash``: it makes the reason for a roll visible, and it is what rolls the
pods when a stable ``config_map_name`` is asked for (e.g. a ConfigMap other apps read, like
``ai-service-config``), which is updated in place (see ``k8s_objects``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import pulumi
import pulumi_kubernetes as k8s

from .. import accepted_findings, dra, fit, k8s_objects, podspec, validation
from ..compute.capacity import Requests, pod_requests
from ..dra import GpuSelector, SharedGpuClaim
from ..errors import Problem, path, under
from ..iam import (
    MAX_ROLE_OWNER_NAME,
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    policy_document,
)
from ..inputs import checked, is_known, plain_problems
from ..podspec import Resources
from ..scheduling import Placement

core = k8s.core.v1
meta = k8s.meta.v1

FLUENT_BIT_IMAGE = "cr.fluentbit.io/fluent/fluent-bit:4.0.3"
AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.27.0"
PART_OF = "aiplatform"
CONFIG_MOUNT_PATH = "/app/config"  # where config files go unless told otherwise
TMP_PATH = "/tmp"  # a writable emptyDir, since the root filesystem is read-only


@dataclass(frozen=True)
class SecretFiles:
    """Keys of a Secret (made elsewhere, e.g. an ExternalSecret) as read-only files ``mount_path/<key>``
    (``keys`` empty: every key). Files keep secrets out of the environment, which child processes,
    crash dumps and ``/proc/<pid>/environ`` expose."""

    secret: pulumi.Input[str]  # the Secret's name (may be another resource's output)
    mount_path: str
    keys: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class WorkloadArgs:
    """Inputs every workload takes.

    ``config_data`` becomes a ConfigMap this component creates; ``config_env`` maps ENV_NAME -> key of it,
    ``config_files`` are the keys mounted as files under ``config_mount_path`` (None: every key), or a
    mapping key -> directory to mount keys in different directories (one read-only volume per directory).
    ``secret_env`` is ``(ENV_NAME, secret_name, key)`` and ``secret_files`` mounts secrets as files
    (prefer them where the application reads files); the Secret is made elsewhere (an ExternalSecret):
    pass that resource in ``depends_on``: every object of the workload comes after what it names (its
    namespace too, which the API server must hold before any object in it). ``identity`` +
    ``aws_policy_statements`` give the pod's service account an IAM role (never static keys).

    ``namespace`` and the Secret names may be other resources' outputs (a Namespace's
    ``metadata.name``, an ExternalSecret's target): plain values are checked before anything is
    created, ``Output`` values when they resolve (a bad one fails the deployment, naming the argument).
    A ``TeamNamespace.workload_namespace`` is a plain name that also carries the namespace's quota.
    """

    provider: k8s.Provider  # the cluster's Kubernetes provider; every object goes through it
    namespace: pulumi.Input[str]  # where every object of the workload goes
    image: str  # the main container's image (pin a version or a digest)
    resources: Resources  # the main container's requests and limits
    # node selector and tolerations of a node group (GPU groups: also the GPU resource or DeviceClass)
    placement: Placement | None = None
    gpus: int = 0  # GPUs per pod; needs a ``placement`` on a GPU group
    # GPUs by DRA (a placement with a ``device_class``): which GPUs each pod's claim accepts
    gpu_selector: GpuSelector | None = None
    # GPUs by DRA: a claim the pods share with other workloads' pods (``SharedGpu.reference``), instead
    # of claims of their own (``gpus`` 0)
    shared_gpu: SharedGpuClaim | None = None
    command: Sequence[str] | None = None  # the container's command (None: the image's entrypoint)
    args: Sequence[str] | None = None  # the container's arguments (None: the image's)
    # plain environment variables (secrets go in ``secret_env``)
    env: Mapping[str, str] = field(default_factory=dict)
    # the data of a ConfigMap the workload creates (None: no ConfigMap)
    config_data: Mapping[str, str] | None = None
    # ENV_NAME -> a key of ``config_data``, read into the environment
    config_env: Mapping[str, str] = field(default_factory=dict)
    # keys of ``config_data`` mounted as files under ``config_mount_path`` (None: every key), or
    # key -> directory to mount keys in different directories (one read-only volume per directory)
    config_files: Sequence[str] | Mapping[str, str] | None = None
    config_mount_path: str = CONFIG_MOUNT_PATH  # where ``config_files`` are mounted
    # a stable name for the ConfigMap (None: auto-named, so a change rolls the pods)
    config_map_name: str | None = None
    # ``(ENV_NAME, secret_name, key)``: a key of a Secret made elsewhere, in the environment
    secret_env: Sequence[tuple[str, pulumi.Input[str], str]] = ()
    # Secrets made elsewhere mounted as read-only files (prefer them where the application reads files)
    secret_files: Sequence[SecretFiles] = ()
    # what every object of the workload comes after (the ExternalSecret of a Secret it reads, its namespace)
    depends_on: Sequence[pulumi.Resource] = ()
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels on every object of the workload
    # how the pod's service account gets an IAM role (IRSA or Pod Identity; never static keys)
    identity: WorkloadIdentity | None = None
    # the IAM statements of that role (needs ``identity``)
    aws_policy_statements: Sequence[Mapping[str, Any]] = ()
    read_only_root_filesystem: bool = True  # a read-only root filesystem, with a writable /tmp
    tmp_size: str = "1Gi"  # size limit of the /tmp emptyDir
    run_as_user: int = podspec.NON_ROOT_UID  # the pod's user: high by default, never a host user's
    run_as_group: int = podspec.NON_ROOT_UID  # the pod's group, which also owns its volumes (fsGroup)
    # Scanner findings the caller accepts on purpose: checkov check id -> the reason, said on the
    # object (e.g. tagged images in dev). The component adds the ones its own choices cause.
    accepted_findings: Mapping[str, str] = field(default_factory=dict)


# -- labels and validation -----------------------------------------------------------------------


def selector_labels(name: str) -> dict[str, str]:
    """The immutable part: what Services, PDBs and spreading select on."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def standard_labels(name: str, component: str, extra: Mapping[str, str] = ()) -> dict[str, str]:
    return {
        **dict(extra),
        **selector_labels(name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def name_problems(name: str, max_name_length: int = 63) -> list[Problem]:
    """The workload's name names its Service, Deployment or Job: a DNS-1035 label."""
    if validation.dns1035_label(name) or len(name) > max_name_length:
        return [
            (
                "name",
                f"{name!r} must be a DNS-1035 label (lowercase letters, digits, '-', starting with a "
                f"letter) of at most {max_name_length} characters",
            )
        ]
    return []


def common_problems(
    args: WorkloadArgs,
    *,
    platform_env: Mapping[str, str] = {},
    mounts: Sequence[tuple[str, str]] = (),
) -> list[Problem]:
    """Every problem with the shared inputs.

    ``platform_env`` maps the env vars the workload sets itself to the field that sets them, and
    ``mounts`` lists its own ``(field, mount path)``: a user entry repeating one is an error (the API
    server rejects a container whose env names or mount paths repeat).
    """
    problems: list[Problem] = plain_problems("namespace", args.namespace, namespace_reason)
    if problem := validation.image_reference(args.image):
        problems.append(("image", problem))
    problems += under("resources", args.resources.problems())
    problems += gpu_problems(args)
    problems += podspec.run_as_problems(args.run_as_user, args.run_as_group)
    problems += under("accepted_findings", accepted_findings.finding_problems(args.accepted_findings))
    if not args.tmp_size or validation.quantity(args.tmp_size):
        problems.append(("tmp_size", f"{args.tmp_size!r} is not a Kubernetes quantity"))

    env_sources = [("env", n) for n in args.env]
    env_sources += [("config_env", n) for n in args.config_env]
    env_sources += [("secret_env", entry[0] if entry else "") for entry in args.secret_env]
    for source, env_name in env_sources:
        if validation.env_name(env_name):
            problems.append((source, f"{env_name!r} is not a valid environment variable name"))
        if env_name in podspec.STATIC_AWS_CREDENTIAL_ENV:
            problems.append(
                (
                    f"{source}.{env_name}",
                    "static AWS credentials are not allowed; give the workload an "
                    "IAM role (identity + aws_policy_statements)",
                )
            )
    set_by = [(field_name, env_name) for env_name, field_name in platform_env.items()]
    set_by += [(f"{source}.{env_name}", env_name) for source, env_name in env_sources]
    problems += repeats(set_by, "already set by")
    for index, entry in enumerate(args.secret_env):
        plain = [p for i, p in enumerate(entry) if i != 1 or is_known(p)]
        if len(entry) != 3 or not all(isinstance(p, str) and p for p in plain):
            problems.append(
                (path("secret_env", index), f"must be (ENV_NAME, secret_name, key), got {entry!r}")
            )
    for index, files in enumerate(args.secret_files):
        problems += plain_problems(path("secret_files", index, "secret"), files.secret, secret_name_reason)
        if not files.mount_path.startswith("/"):
            problems.append(
                (path("secret_files", index, "mount_path"), f"{files.mount_path!r} must be absolute")
            )
        problems += [
            (
                path("secret_files", index, "keys"),
                f"{key!r} is not a Secret key (letters, digits, '-', '_', '.')",
            )
            for key in files.keys
            if validation.config_key(key)
        ]
    problems += repeats([*workload_mounts(args), *mounts], "mount path {value!r} is already used by")

    data = args.config_data
    if data is None:
        if args.config_env or args.config_files:
            problems.append(("", "config_env/config_files: need config_data"))
    else:
        for key in data:
            if validation.config_key(key):
                problems.append(
                    (f"config_data.{key}", "keys may only contain letters, digits, '-', '_' and '.'")
                )
        for env_name, key in args.config_env.items():
            if key not in data:
                problems.append((f"config_env.{env_name}", f"key {key!r} is not in config_data"))
        for key in args.config_files or ():
            if key not in data:
                problems.append(("config_files", f"key {key!r} is not in config_data"))
        for directory in config_file_directories(args):
            if not directory.startswith("/"):
                problems.append(("config_files", f"mount path {directory!r} must be absolute"))
    if args.config_map_name is not None and not validation.is_dns1123_label(args.config_map_name):
        problems.append(("config_map_name", f"{args.config_map_name!r} is not a valid name"))
    if args.aws_policy_statements and args.identity is None:
        problems.append(("aws_policy_statements", "need identity (how the pod gets AWS credentials)"))
    return problems


def namespace_reason(namespace: object) -> str | None:
    return None if validation.is_dns1123_label(namespace) else f"{namespace!r} is not a valid namespace name"


def secret_name_reason(secret: object) -> str | None:
    return None if validation.is_dns1123_subdomain(secret) else f"{secret!r} is not a Secret name"


def secret_env_name_reason(secret: object) -> str | None:
    """A ``secret_env`` entry's Secret name, resolved: the rule its plain form follows (non-empty)."""
    return (
        None
        if isinstance(secret, str) and secret
        else f"must be (ENV_NAME, secret_name, key), got {secret!r}"
    )


W = TypeVar("W", bound=WorkloadArgs)


def checked_args(subject: str, args: W) -> W:
    """``args`` as the resources take them: each ``Output`` argument checked when it resolves (a bad
    value fails with ``ArgumentsError(subject, ...)``). Plain arguments, checked before anything was
    created, stay as they are (the same object when every argument is plain)."""
    changes: dict[str, Any] = {}
    if not is_known(args.namespace):
        changes["namespace"] = checked(subject, "namespace", args.namespace, namespace_reason)
    if not all(is_known(entry[1]) for entry in args.secret_env):
        changes["secret_env"] = [
            (env, checked(subject, path("secret_env", i), secret, secret_env_name_reason), key)
            for i, (env, secret, key) in enumerate(args.secret_env)
        ]
    if not all(is_known(files.secret) for files in args.secret_files):
        changes["secret_files"] = [
            dataclasses.replace(
                files,
                secret=checked(subject, path("secret_files", i, "secret"), files.secret, secret_name_reason),
            )
            for i, files in enumerate(args.secret_files)
        ]
    return dataclasses.replace(args, **changes) if changes else args


def repeats(sources: Sequence[tuple[str, str]], message: str) -> list[Problem]:
    """``(field, <message> <first field>)`` for every source whose value an earlier source already has.

    ``sources`` are ``(field, value)`` in order; ``message`` may use ``{value}``.
    """
    seen: dict[str, str] = {}
    found = []
    for source, value in sources:
        if value in seen:
            found.append((source, f"{message.format(value=value)} {seen[value]}"))
        seen.setdefault(value, source)
    return found


def workload_mounts(args: WorkloadArgs) -> list[tuple[str, str]]:
    """``(field, mount path)`` of what every workload's main container mounts: /tmp, the config files."""
    mounts = [("tmp_size (the writable /tmp)", TMP_PATH)] if args.read_only_root_filesystem else []
    field_name = "config_files" if args.config_files else "config_mount_path"
    mounts += [(field_name, directory) for directory in config_file_directories(args)]
    return mounts + [(f"secret_files[{i}].mount_path", f.mount_path) for i, f in enumerate(args.secret_files)]


def gpu_problems(args: WorkloadArgs) -> list[Problem]:
    gpus, placement = args.gpus, args.placement
    if gpus < 0:
        return [("gpus", "must be >= 0")]
    if gpus and (placement is None or not placement.gives_gpus):
        return [("gpus", "> 0 needs a placement with gpu_resource (the GPU node group's Placement)")]
    dra = placement is not None and placement.device_class is not None
    needs_dra = (
        "needs a placement whose GPUs pods claim through DRA (placement.device_class): the device "
        "plugin's nvidia.com/gpu neither selects GPUs by their attributes nor shares them"
    )
    problems: list[Problem] = []
    if args.gpu_selector is not None:
        if not dra:
            problems.append(("gpu_selector", needs_dra))
        elif not gpus:
            problems.append(("gpu_selector", "selects the GPUs of each pod's own claim: set gpus"))
        problems += under("gpu_selector", args.gpu_selector.problems())
    shared = args.shared_gpu
    if shared is not None:
        if not dra:
            problems.append(("shared_gpu", needs_dra))
        if gpus:
            problems.append(("gpus", "must be 0 with shared_gpu: the pods use the shared claim's GPUs"))
        if isinstance(args.namespace, str) and shared.namespace != args.namespace:
            problems.append(
                (
                    "shared_gpu",
                    f"the claim is in namespace {shared.namespace!r}, the workload in {args.namespace!r}: "
                    "a pod can use only claims of its own namespace",
                )
            )
        node = placement.fit if placement else None
        if shared.source is not None and node is not None and node.name != shared.source:
            problems.append(
                (
                    "shared_gpu",
                    f"the claim's GPUs come from {shared.source!r}, the workload is placed on "
                    f"{node.name!r}: place it where its claim is",
                )
            )
    return problems


def claims_gpus(args: WorkloadArgs) -> bool:
    """The pods get GPUs by DRA: a claim of their own (``gpus``) or a shared one."""
    placement = args.placement
    return placement is not None and placement.device_class is not None and bool(args.gpus or args.shared_gpu)


def create_gpu_claim_template(
    parent: pulumi.Resource, name: str, args: WorkloadArgs, labels: Mapping[str, str]
) -> k8s.resource.v1.ResourceClaimTemplate | None:
    """GPUs by DRA: the template each pod's own claim of ``gpus`` GPUs is made from (None: the pods
    claim none of their own). Auto-named, so a changed claim rolls the pods onto claims of the new one
    (a template's spec is immutable)."""
    placement = args.placement
    if placement is None or placement.device_class is None or not args.gpus:
        return None
    return k8s.resource.v1.ResourceClaimTemplate(
        f"{name}-gpu",
        metadata=meta.ObjectMetaArgs(namespace=args.namespace, labels=dict(labels)),
        spec=k8s.resource.v1.ResourceClaimTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=dict(labels)),
            spec=dra.claim_spec(args.gpus, device_class=placement.device_class, selector=args.gpu_selector),
        ),
        opts=object_opts(parent, args),
    )


def pod_resource_claims(
    args: WorkloadArgs, template: k8s.resource.v1.ResourceClaimTemplate | None
) -> list[core.PodResourceClaimArgs]:
    """The pod's GPU claim: one made from ``template`` for each pod, or the shared claim."""
    if template is not None:
        return [
            core.PodResourceClaimArgs(
                name=dra.CLAIM_NAME, resource_claim_template_name=template.metadata.name
            )
        ]
    if args.shared_gpu is not None and claims_gpus(args):
        return [
            core.PodResourceClaimArgs(name=dra.CLAIM_NAME, resource_claim_name=args.shared_gpu.claim_name)
        ]
    return []


def pod_fit_requests(args: WorkloadArgs, init_containers: Sequence[tuple[Resources, bool]] = ()) -> Requests:
    """What the scheduler and the quota count for one pod: the main container and the component's
    ``(init container, is a sidecar)`` in the order the pod declares them."""
    return pod_requests(
        [Requests.of_resources(args.resources)],
        [(Requests.of_resources(resources), sidecar) for resources, sidecar in init_containers],
    )


def pod_fit_problems(args: WorkloadArgs, pod: Requests) -> list[Problem]:
    """One pod against where it lands: its placement's nodes and its namespace's quota (``fit``)."""
    problems: list[Problem] = []
    node = args.placement.fit if args.placement else None
    if node is not None:
        selector = args.gpu_selector
        if reason := fit.gpu_count_reason(args.gpus, node):
            problems.append(("gpus", reason))
        elif selector is not None and (reason := fit.gpu_selector_reason(selector, node)):
            problems.append(("gpu_selector", reason))
        elif selector is not None and (reason := fit.selected_gpu_count_reason(args.gpus, selector, node)):
            problems.append(("gpus", reason))
        elif reason := fit.node_fit_reason(pod, node):
            problems.append(("resources", reason))
    namespace = fit.namespace_fit(args.namespace)
    if namespace is not None:
        if reason := fit.pod_quota_reason(pod, namespace):
            problems.append(("resources", reason))
        if reason := fit.pod_gpu_quota_reason(args.gpus, namespace):
            problems.append(("gpus", reason))
    return problems


def replica_ceilings(args: WorkloadArgs, pod: Requests, *, nodes: bool) -> list[fit.Ceiling]:
    """How many of its pods can run at once: the placement's nodes (``nodes``: GPUs, or a CPU pod's
    CPU, memory and pod slots) and the namespace's quota."""
    node = args.placement.fit if args.placement and nodes else None
    return [
        *fit.node_ceilings(args.gpus, node),
        *fit.cpu_node_ceilings(pod, args.gpus, node),
        *fit.quota_ceilings(pod, args.gpus, fit.namespace_fit(args.namespace)),
    ]


# -- resources shared by every workload ----------------------------------------------------------


class ConfigWiring(NamedTuple):
    config_map: k8s.core.v1.ConfigMap | None
    env: list[core.EnvVarArgs]
    volumes: list[core.VolumeArgs]
    mounts: list[core.VolumeMountArgs]
    data: dict[str, str]


CONFIG_VOLUME = "config"


def create_config(
    parent: pulumi.Resource, name: str, args: WorkloadArgs, labels: Mapping[str, str]
) -> ConfigWiring:
    """The workload's ConfigMap (auto-named unless ``config_map_name``), its env refs and its file mount."""
    if args.config_data is None:
        return ConfigWiring(None, [], [], [], {})
    data = dict(args.config_data)
    config_map = k8s_objects.config_map(
        f"{name}-config",
        args.namespace,
        data,
        labels,
        object_opts(parent, args),
        name=args.config_map_name,
    )
    cm_name = config_map.metadata.name
    env = [podspec.env_from_config_map(env, cm_name, key) for env, key in sorted(args.config_env.items())]
    volumes, mounts = [], []
    directories = config_file_directories(args)
    for index, (directory, keys) in enumerate(sorted(directories.items())):
        volume = CONFIG_VOLUME if len(directories) == 1 else f"{CONFIG_VOLUME}-{index}"
        volumes.append(podspec.config_map_volume(volume, cm_name, items={k: k for k in keys}))
        mounts.append(podspec.mount(volume, directory, read_only=True))
    return ConfigWiring(config_map, env, volumes, mounts, data)


def object_opts(
    parent: pulumi.Resource, args: WorkloadArgs, *after: pulumi.Resource | None, **options: Any
) -> pulumi.ResourceOptions:
    """Options of each Kubernetes object of a workload: the cluster's provider, and after everything the
    workload waits for (``depends_on``) and ``after``. Without it an object races its namespace."""
    return pulumi.ResourceOptions(
        parent=parent,
        provider=args.provider,
        depends_on=[*args.depends_on, *(r for r in after if r is not None)],
        **options,
    )


def config_file_directories(args: WorkloadArgs) -> dict[str, list[str]]:
    """Mount directory -> config keys mounted there as files (named after the key)."""
    if args.config_data is None:
        return {}
    files = args.config_files
    if files is None:
        return {args.config_mount_path: sorted(args.config_data)} if args.config_data else {}
    if isinstance(files, Mapping):
        grouped: dict[str, list[str]] = {}
        for key, directory in files.items():
            grouped.setdefault(directory, []).append(key)
        return grouped
    return {args.config_mount_path: list(files)} if files else {}


AWS_ROLE_SUFFIX = "-aws"
# The longest workload name whose AWS role still gets a valid IAM name.
MAX_NAME_WITH_AWS_ROLE = MAX_ROLE_OWNER_NAME - len(AWS_ROLE_SUFFIX)


def create_service_account(
    parent: pulumi.Resource,
    name: str,
    args: WorkloadArgs,
    labels: Mapping[str, str],
    statements: Sequence[Mapping[str, Any]] = (),
) -> tuple[k8s.core.v1.ServiceAccount, ServiceAccountRole | None]:
    """The workload's own ServiceAccount (never ``default``), with an IAM role when it needs AWS."""
    statements = [*statements, *args.aws_policy_statements]
    role = None
    annotations: pulumi.Input[Mapping[str, str]] | None = None
    if statements:
        assert args.identity is not None  # validated before
        role = ServiceAccountRole(
            f"{name}{AWS_ROLE_SUFFIX}",
            ServiceAccountRoleArgs(
                identity=args.identity,
                namespace=args.namespace,
                service_account=name,
                policy=policy_document(statements),
                tags={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF},
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        annotations = role.service_account_annotations
    service_account = core.ServiceAccount(
        f"{name}-sa",
        metadata=meta.ObjectMetaArgs(
            name=name, namespace=args.namespace, labels=dict(labels), annotations=annotations
        ),
        automount_service_account_token=False,
        opts=object_opts(parent, args),
    )
    return service_account, role


TMP_VOLUME = "tmp"


def main_env(args: WorkloadArgs, config: ConfigWiring, extra: Sequence[core.EnvVarArgs] = ()) -> list:
    """Plain env, then config keys, then secrets, then the workload's own (index, model dir...)."""
    secrets = [podspec.env_from_secret(env, secret, key) for env, secret, key in args.secret_env]
    return [*podspec.env_vars(args.env), *config.env, *secrets, *extra]


SECRET_VOLUME = "secret"


def secret_file_volumes(args: WorkloadArgs) -> list[core.VolumeArgs]:
    return [
        podspec.secret_volume(f"{SECRET_VOLUME}-{i}", f.secret, keys=f.keys)
        for i, f in enumerate(args.secret_files)
    ]


def secret_file_mounts(args: WorkloadArgs) -> list[core.VolumeMountArgs]:
    return [
        podspec.mount(f"{SECRET_VOLUME}-{i}", f.mount_path, read_only=True)
        for i, f in enumerate(args.secret_files)
    ]


def pod_volumes(args: WorkloadArgs, config: ConfigWiring) -> list[core.VolumeArgs]:
    """What every workload's pod mounts: /tmp, its config files, its secret files."""
    return [tmp_volume(args), *config.volumes, *secret_file_volumes(args)]


def main_container(
    container_name: str,
    args: WorkloadArgs,
    config: ConfigWiring,
    *,
    command_args: Sequence[str] | None = None,
    extra_env: Sequence[core.EnvVarArgs] = (),
    extra_mounts: Sequence[core.VolumeMountArgs] = (),
    ports: Mapping[str, int] | None = None,
    probes: podspec.Probes | None = None,
    pre_stop_sleep_seconds: int | None = None,
) -> core.ContainerArgs:
    mounts = [*config.mounts, *secret_file_mounts(args), *extra_mounts]
    if args.read_only_root_filesystem:
        mounts.append(podspec.mount(TMP_VOLUME, TMP_PATH))
    return podspec.container(
        container_name,
        args.image,
        resources=args.resources,
        command=args.command,
        args=command_args if command_args is not None else args.args,
        ports=ports,
        env=main_env(args, config, extra_env),
        volume_mounts=mounts,
        gpus=0 if claims_gpus(args) else args.gpus,
        gpu_resource=args.placement.gpu_resource if args.placement else None,
        claims=[dra.CLAIM_NAME] if claims_gpus(args) else [],
        probes=probes,
        read_only_root_filesystem=args.read_only_root_filesystem,
        pre_stop_sleep_seconds=pre_stop_sleep_seconds,
    )


def scanner_annotations(args: WorkloadArgs, pod: core.PodSpecArgs) -> dict[str, str]:
    """Skip annotations for the scanner findings this workload causes on purpose, each with its reason."""
    accepted = dict(args.accepted_findings)
    containers = [*(pod.init_containers or []), *pod.containers]
    if any(c.image_pull_policy == "IfNotPresent" for c in containers):
        accepted[accepted_findings.IMAGE_PULL_POLICY_ALWAYS] = (
            "images are pinned by digest: IfNotPresent runs exactly that image, a pull at every start adds nothing"
        )
    if args.secret_env:
        names = ", ".join(entry[0] for entry in args.secret_env)
        accepted[accepted_findings.SECRETS_AS_FILES] = (
            f"{names} through secret_env, for an application that reads it only from the environment "
            "(secret_files mounts the others as files)"
        )
    if args.run_as_user < podspec.HIGH_ID_FLOOR:
        accepted[accepted_findings.HIGH_UID] = (
            f"runs as UID {args.run_as_user}: the workload's own run_as_user"
        )
    return accepted_findings.skip_annotations(accepted)


def pod_security(args: WorkloadArgs) -> core.PodSecurityContextArgs:
    return podspec.pod_security_context(run_as_user=args.run_as_user, run_as_group=args.run_as_group)


def tmp_volume(args: WorkloadArgs) -> core.VolumeArgs:
    return podspec.empty_dir_volume(TMP_VOLUME, args.tmp_size)


def pod_annotations(config_sources: Mapping[str, Mapping[str, str]]) -> dict[str, str] | None:
    """The config-hash annotation over every config the pod reads (None when it reads none)."""
    present = {k: dict(v) for k, v in config_sources.items() if v}
    return {podspec.CONFIG_HASH_ANNOTATION: podspec.config_checksum(present)} if present else None
