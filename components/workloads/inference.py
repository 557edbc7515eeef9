"""InferenceService: a model server behind a Service, autoscaled, optionally exposed through an Ingress."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from .. import fit, k8s_objects, podspec, validation
from ..compute.capacity import Requests
from ..errors import Problem, require, type_problems, under
from ..iam import ServiceAccountRole, allow
from ..inputs import checked, derived, plain_problems
from ..podspec import LOG_SHIPPER_RESOURCES, MODEL_FETCH_RESOURCES, Resources
from ..routing import IngressRoute
from ._common import (
    AWS_CLI_IMAGE,
    FLUENT_BIT_IMAGE,
    TMP_VOLUME,
    WorkloadArgs,
    checked_args,
    common_problems,
    create_config,
    create_gpu_claim_template,
    create_service_account,
    main_container,
    name_problems,
    object_opts,
    pod_annotations,
    pod_fit_problems,
    pod_fit_requests,
    pod_resource_claims,
    pod_security,
    pod_volumes,
    replica_ceilings,
    scanner_annotations,
    selector_labels,
    standard_labels,
)

core = k8s.core.v1
meta = k8s.meta.v1

MODEL_VOLUME = "model"
# Env vars the server gets from the component: where the model and the log directory are mounted.
MODEL_DIR_ENV = "MODEL_DIR"
LOG_DIR_ENV = "LOG_DIR"
LOG_VOLUME = "logs"
LOG_CONFIG_VOLUME = "log-shipper-config"


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where the init container syncs the model from (read-only IAM access to exactly this prefix).

    ``bucket`` may be another resource's output (``ModelBucket.bucket`` of the same program): a plain
    name is checked at once, an ``Output`` when it resolves (see ``components.inputs``).
    """

    bucket: pulumi.Input[str]  # the S3 bucket holding the model (its name)
    prefix: str  # the model's prefix in the bucket; the pod's IAM role can read this prefix only
    kms_key_arn: pulumi.Input[str] | None = None  # the bucket's KMS key (the role may decrypt with it)
    image: str = AWS_CLI_IMAGE  # the init container that syncs the model (the AWS CLI)
    region: str | None = None  # the bucket's region (None: the CLI's default)
    # requests and limits of the init container
    resources: Resources = MODEL_FETCH_RESOURCES


@dataclass(frozen=True, kw_only=True)
class ModelStorage:
    """Where the model lives in the pod. ``pvc`` creates a ReadWriteOnce claim (single replica only)."""

    # ``emptyDir`` (each pod fetches its copy) or ``pvc`` (one ReadWriteOnce claim)
    kind: Literal["emptyDir", "pvc"] = "emptyDir"
    size: str = "20Gi"  # size limit of the emptyDir, or the claim's size
    mount_path: str = "/mnt/models"  # where the model appears in the server container
    storage_class: str = "gp3"  # the claim's StorageClass (``pvc`` only)


@dataclass(frozen=True, kw_only=True)
class LogShipping:
    """A fluent-bit native sidecar tailing ``log_path/*.log`` from a shared emptyDir."""

    image: str = FLUENT_BIT_IMAGE  # the fluent-bit image
    # the folder the server writes ``*.log`` files to (shared with the sidecar)
    log_path: str = "/var/log/app"
    # the fluent-bit ``[OUTPUT]`` section
    output: Mapping[str, str] = field(default_factory=lambda: {"Name": "stdout", "Match": "*"})
    volume_size: str = "1Gi"  # size limit of the shared log emptyDir
    # requests and limits of the sidecar
    resources: Resources = LOG_SHIPPER_RESOURCES


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """autoscaling/v2 targets. ``pods_metrics``: ``(metric_name, averageValue)`` served by the adapter."""

    min_replicas: int = 2  # the HPA's floor
    max_replicas: int = 10  # the HPA's ceiling
    cpu_utilization: int | None = 70  # target average CPU utilization, % of requests (None: no CPU target)
    # target average memory utilization, % of requests (None: no memory target)
    memory_utilization: int | None = 80
    # ``(metric_name, averageValue)`` per-pod custom metrics the adapter serves
    pods_metrics: Sequence[tuple[str, str | int]] = ()
    scale_down_stabilization_seconds: int = 300  # how long the HPA waits before scaling down
    # a ``max_replicas`` above what the placement's GPUs or the namespace's quota hold: the replicas
    # over that ceiling stay Pending (or unadmitted), on purpose
    accepts_lower_ceiling: bool = False


@dataclass(frozen=True, kw_only=True)
class InferenceServiceArgs(WorkloadArgs):
    """See ``WorkloadArgs`` for the shared inputs.

    ``replicas`` is used only without ``autoscaling``; with it, the Deployment leaves ``replicas`` to the
    HPA (a declared count would reset the HPA's choice on every ``pulumi up``).
    """

    port: int = 8000  # the server's container port (named ``http``)
    service_port: int = 80  # the Service's port
    replicas: int = 2
    autoscaling: Autoscaling | None = field(default_factory=Autoscaling)
    revision_history_limit: int = 5  # old ReplicaSets kept for rollbacks
    # HTTP path of the readiness probe, and of the ALB's health check unless the route names one
    readiness_path: str = "/ready"
    liveness_path: str = "/health"  # HTTP path of the liveness probe
    startup_seconds: int = 600  # how long the server may take to start (model loading) before liveness counts
    # fetch the model from S3 in an init container, with an IAM role for that prefix
    model: ModelSource | None = None
    model_storage: ModelStorage | None = None  # where the model lives in the pod
    log_shipping: LogShipping | None = None  # a fluent-bit sidecar shipping the server's log files
    # an Ingress for this route (from ``IngressController.route`` or ``PlatformOutputs.route``)
    route: IngressRoute | None = None
    # what the Ingress waits for (the ingress controller's release)
    ingress_depends_on: Sequence[pulumi.Resource] = ()
    # Prometheus scrapes the server's metrics (needed for Pods custom metrics): a PodMonitor on the
    # http port; ``metrics_depends_on`` is what brings its CRD (the Prometheus operator release).
    metrics_path: str | None = None
    metrics_depends_on: Sequence[pulumi.Resource] = ()
    termination_grace_period_seconds: int = 60  # seconds a stopping pod gets before it is killed
    # Seconds a stopping server keeps serving while the load balancer deregisters it (zero-downtime
    # rollouts behind an ALB in ip mode); must stay below the grace period.
    drain_seconds: int = 15

    def problems(self) -> list[Problem]:
        if wrong_types := type_problems(self):
            return wrong_types  # the checks below read those objects
        storage = model_storage(self)
        platform_env, mounts = {}, []
        if storage is not None:
            platform_env[MODEL_DIR_ENV] = "model_storage.mount_path"
            mounts.append(("model_storage.mount_path", storage.mount_path))
        if self.log_shipping is not None:
            platform_env[LOG_DIR_ENV] = "log_shipping.log_path"
            mounts.append(("log_shipping.log_path", self.log_shipping.log_path))
        problems = common_problems(self, platform_env=platform_env, mounts=mounts)
        if self.log_shipping is not None and self.port == podspec.FLUENT_BIT_HTTP_PORT:
            problems.append(
                ("port", f"{self.port} is the log shipper's port (a pod's containers share its ports)")
            )
        for field_name in ("port", "service_port"):
            value = getattr(self, field_name)
            if not validation.is_port(value):
                problems.append((field_name, f"{value} is not a port (1-65535)"))
        if self.replicas < 0:
            problems.append(("replicas", "must be >= 0"))
        if self.revision_history_limit < 0:
            problems.append(("revision_history_limit", "must be >= 0"))
        if self.startup_seconds <= 0:
            problems.append(("startup_seconds", "must be > 0"))
        if self.termination_grace_period_seconds < 0:
            problems.append(("termination_grace_period_seconds", "must be >= 0"))
        if not 0 <= self.drain_seconds < max(self.termination_grace_period_seconds, 1):
            problems.append(("drain_seconds", "must be >= 0 and below termination_grace_period_seconds"))
        for field_name in ("readiness_path", "liveness_path"):
            if not getattr(self, field_name).startswith("/"):
                problems.append((field_name, "must start with '/'"))
        if self.metrics_path is not None and not self.metrics_path.startswith("/"):
            problems.append(("metrics_path", "must start with '/'"))

        scaling = self.autoscaling
        max_replicas = self.replicas
        if scaling is not None:
            max_replicas = scaling.max_replicas
            if scaling.min_replicas < 1:
                problems.append(("autoscaling.min_replicas", "must be >= 1"))
            if scaling.max_replicas < scaling.min_replicas:
                problems.append(
                    ("autoscaling.max_replicas", f"must be >= min_replicas ({scaling.min_replicas})")
                )
            for field_name in ("cpu_utilization", "memory_utilization"):
                value = getattr(scaling, field_name)
                if value is not None and value <= 0:
                    problems.append((f"autoscaling.{field_name}", "must be > 0"))
            for index, metric in enumerate(scaling.pods_metrics):
                metric_name, target = metric if len(metric) == 2 else ("", "")
                if not metric_name:
                    problems.append(
                        (f"autoscaling.pods_metrics[{index}]", "must be (metric_name, averageValue)")
                    )
                try:
                    if validation.quantity_value(target) <= 0:
                        raise ValueError
                except ValueError:
                    problems.append(
                        (f"autoscaling.pods_metrics[{index}]", f"{target!r} is not a positive quantity")
                    )
            if not (scaling.cpu_utilization or scaling.memory_utilization or scaling.pods_metrics):
                problems.append(("autoscaling", "needs at least one metric"))
            if scaling.scale_down_stabilization_seconds < 0:
                problems.append(("autoscaling.scale_down_stabilization_seconds", "must be >= 0"))

        if self.model is not None:
            problems += plain_problems("model.bucket", self.model.bucket, bucket_name_reason)
            if not self.model.prefix.strip("/"):
                problems.append(("model.prefix", "must not be empty (the role is scoped to it)"))
            if self.identity is None:
                problems.append(("model", "fetching from S3 needs identity (IRSA or Pod Identity)"))
            problems += under("model.resources", self.model.resources.problems())
        storage = self.model_storage
        if storage is not None:
            if storage.kind not in ("emptyDir", "pvc"):
                problems.append(("model_storage.kind", f"{storage.kind!r} must be 'emptyDir' or 'pvc'"))
            if storage.kind == "emptyDir" and self.model is None:
                problems.append(("model_storage", "an emptyDir starts empty; give a model source to fill it"))
            if storage.kind == "pvc" and max_replicas > 1:
                problems.append(
                    (
                        "model_storage.kind",
                        f"a ReadWriteOnce PVC attaches to one node, but up to {max_replicas} "
                        "replicas may run: use kind='emptyDir' with a model source (each pod fetches its copy)",
                    )
                )
            try:
                validation.quantity_value(storage.size)
            except ValueError as exc:
                problems.append(("model_storage.size", str(exc)))
            if not storage.mount_path.startswith("/"):
                problems.append(("model_storage.mount_path", "must be an absolute path"))
        if self.log_shipping is not None:
            problems += under("log_shipping.resources", self.log_shipping.resources.problems())
            if not self.log_shipping.log_path.startswith("/"):
                problems.append(("log_shipping.log_path", "must be an absolute path"))
        if self.route is not None and not self.route.host:
            problems.append(("route.host", "must not be empty"))
        # Whether it can ever run where it is placed: only once the arguments themselves are sound.
        return problems or self.fit_problems()

    def fit_pod(self) -> Requests:
        """One pod as the scheduler and the quota count it: the server, its log shipper (a sidecar)
        and its model fetcher."""
        init: list[tuple[Resources, bool]] = []
        if self.log_shipping is not None:
            init.append((self.log_shipping.resources, True))
        if self.model is not None:
            init.append((self.model.resources, False))
        return pod_fit_requests(self, init)

    def fit_problems(self) -> list[Problem]:
        """The server against its placement's nodes and its namespace (``components.fit``)."""
        pod = self.fit_pod()
        problems = pod_fit_problems(self, pod)
        if problems:
            return problems  # one pod does not fit: counting replicas says nothing more
        ceilings = replica_ceilings(self, pod, nodes=True)
        scaling = self.autoscaling
        if scaling is None:
            if reason := fit.never_fit_reason(self.replicas, ceilings):
                problems.append(("replicas", reason))
        elif reason := fit.never_fit_reason(scaling.min_replicas, ceilings):
            problems.append(("autoscaling.min_replicas", reason))
        elif not scaling.accepts_lower_ceiling and (
            reason := fit.peak_reason(
                scaling.max_replicas,
                ceilings,
                "lower max_replicas, raise those limits, or set accepts_lower_ceiling=True",
            )
        ):
            problems.append(("autoscaling.max_replicas", reason))
        namespace = fit.namespace_fit(self.namespace)
        if namespace is None:
            return problems
        if self.route is not None and (reason := fit.route_port_reason(self.port, namespace)):
            problems.append(("port", reason))
        if scaling is not None and namespace.served_metrics is not None:
            problems += [
                (f"autoscaling.pods_metrics[{index}]", reason)
                for index, (metric, _) in enumerate(scaling.pods_metrics)
                if (reason := fit.metric_reason(metric, namespace.served_metrics))
            ]
        return problems


def shared_quota_problems(name: str, args: InferenceServiceArgs) -> list[Problem]:
    """The server ``name``'s always-running pods and a rollout's pod, with those of the model servers
    already built in its namespace, against the namespace's quota (``fit.shared_quota_reasons``; a
    plain namespace name carries no quota: nothing to check)."""
    if not isinstance(args.namespace, fit.Namespace):
        return []
    at = "autoscaling.min_replicas" if args.autoscaling is not None else "replicas"
    reasons = args.namespace.shared_quota_reasons(server_share(name, args))
    return [(at, f"{reason}; lower {at} or raise the namespace's quota") for reason in reasons.values()]


def server_share(name: str, args: InferenceServiceArgs) -> fit.Share:
    """What the server ``name`` always takes of its namespace's quota."""
    always = args.autoscaling.min_replicas if args.autoscaling is not None else args.replicas
    shared = args.shared_gpu
    claim = (id(shared), shared.devices) if shared is not None else None
    return fit.Share(name, always, args.fit_pod(), args.gpus, claim)


def bucket_name_reason(bucket: object) -> str | None:
    """Why ``bucket`` is not a bucket name the model can come from (None: it is one)."""
    return None if validation.is_s3_bucket_name(bucket) else f"{bucket!r} is not an S3 bucket name"


def model_reader_statements(
    bucket: pulumi.Input[str], prefix: str, kms_key_arn: pulumi.Input[str] | None = None
) -> list[dict[str, Any]]:
    """Read-only access to ``s3://bucket/prefix`` and nothing else (plus decrypting with the bucket key).

    ``bucket`` may be an ``Output``: the statements then hold ``Output`` ARNs (a policy document's
    values may, see ``ServiceAccountRoleArgs.policy``).
    """
    prefix = prefix.strip("/")
    statements: list[dict[str, Any]] = [
        allow(["s3:GetObject"], [derived(lambda b: f"arn:aws:s3:::{b}/{prefix}/*", bucket)]),
        allow(
            ["s3:ListBucket"],
            [derived(lambda b: f"arn:aws:s3:::{b}", bucket)],
            Condition={"StringLike": {"s3:prefix": [f"{prefix}/*", prefix]}},
        ),
    ]
    if kms_key_arn is not None:
        statements.append(allow(["kms:Decrypt"], [kms_key_arn]))
    return statements


def model_storage(args: InferenceServiceArgs) -> ModelStorage | None:
    """The model volume: as given, or the default emptyDir when only a model source is."""
    return args.model_storage or (ModelStorage() if args.model else None)


class InferenceService(pulumi.ComponentResource):
    """A model server: ServiceAccount (+ IAM role), ConfigMaps, Deployment, Service, HPA, PDB, Ingress.

    Example::

        import pulumi

        from aiplatform.podspec import Resources
        from aiplatform.workloads import Autoscaling, InferenceService, InferenceServiceArgs, LogShipping, ModelSource

        svc = InferenceService("llama", InferenceServiceArgs(
            provider=cluster.provider, namespace="ai",
            image="123456789012.dkr.ecr.us-east-1.amazonaws.com/llama-inference:1.4.2",
            resources=Resources(cpu="2", memory="8Gi"),
            gpus=1, placement=gpu_nodes.placements["gpu-inference"],
            identity=cluster.identity,
            model=ModelSource(bucket="my-ai-bucket", prefix="models/llama-3-8b"),
            config_data={"log-level": "INFO", "config.json": '{"max_tokens": 512}'},
            config_env={"LOG_LEVEL": "log-level"}, config_files=["config.json"],
            secret_env=[("HF_TOKEN", "hf-secret", "token")], depends_on=[secrets.external_secrets["hf-secret"]],
            log_shipping=LogShipping(),
            autoscaling=Autoscaling(max_replicas=4, pods_metrics=[("requests_per_second", "100")]),
            route=ingress.route("llama.ai.example.com"), ingress_depends_on=[ingress.ready],
        ))
        pulumi.export("service", svc.service.metadata.name)
    """

    deployment: k8s.apps.v1.Deployment  # the model server's Deployment
    service: k8s.core.v1.Service  # its Service
    service_account: k8s.core.v1.ServiceAccount  # its ServiceAccount
    role: ServiceAccountRole | None  # its IAM role (None: no AWS access)
    # its HorizontalPodAutoscaler (None: fixed replicas)
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler | None
    pdb: k8s.policy.v1.PodDisruptionBudget | None  # its PodDisruptionBudget (None: a single replica)
    ingress: k8s.networking.v1.Ingress | None  # its Ingress (None: no route)
    pod_monitor: k8s.apiextensions.CustomResource | None  # its PodMonitor (None: no ``metrics_path``)
    config_map: k8s.core.v1.ConfigMap | None  # its ConfigMap (None: no ``config_data``)
    log_config_map: k8s.core.v1.ConfigMap | None  # the log shipper's ConfigMap (None: no ``log_shipping``)
    model_pvc: k8s.core.v1.PersistentVolumeClaim | None  # the model's claim (None: not ``pvc`` storage)
    # GPUs by DRA: the template of each pod's own GPU claim (None: no claim of its own)
    gpu_claim_template: k8s.resource.v1.ResourceClaimTemplate | None
    name: pulumi.Output[str]  # the Deployment's name
    namespace: pulumi.Output[str]  # its namespace

    def __init__(self, name: str, args: InferenceServiceArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"InferenceService {name!r}"
        problems = type_problems(args, InferenceServiceArgs) or args.problems()
        require(subject, [*name_problems(name), *(problems or shared_quota_problems(name, args))])
        if isinstance(args.namespace, fit.Namespace):
            args.namespace.shares.append(server_share(name, args))  # what the next server there has left
        args = checked_args(subject, args)
        super().__init__("aiplatform:workloads:InferenceService", name, None, opts)
        k8s_opts = object_opts(self, args)
        labels = standard_labels(name, "inference", args.labels)
        selector = selector_labels(name)

        config = create_config(self, name, args, labels)
        self.config_map = config.config_map
        # An Output bucket is checked when it resolves: the role's policy and the pods take the checked one.
        bucket = (
            checked(subject, "model.bucket", args.model.bucket, bucket_name_reason) if args.model else None
        )
        statements = (
            model_reader_statements(bucket, args.model.prefix, args.model.kms_key_arn) if args.model else []
        )
        self.service_account, self.role = create_service_account(self, name, args, labels, statements)
        self.gpu_claim_template = create_gpu_claim_template(self, name, args, labels)

        volumes = pod_volumes(args, config)
        init_containers: list[core.ContainerArgs] = []
        extra_mounts: list[core.VolumeMountArgs] = []
        extra_env: list[core.EnvVarArgs] = []

        # Logs: the server writes to a shared emptyDir, the native sidecar ships it.
        self.log_config_map = None
        log_config = ""
        if args.log_shipping is not None:
            shipping = args.log_shipping
            log_config = podspec.fluent_bit_config(shipping.log_path, output=shipping.output)
            self.log_config_map = k8s_objects.config_map(
                f"{name}-log-shipper",
                args.namespace,
                {podspec.FLUENT_BIT_CONFIG_KEY: log_config},
                labels,
                k8s_opts,
            )
            volumes += [
                podspec.empty_dir_volume(LOG_VOLUME, shipping.volume_size),
                podspec.config_map_volume(LOG_CONFIG_VOLUME, self.log_config_map.metadata.name),
            ]
            init_containers.append(
                podspec.log_shipper_sidecar(
                    shipping.image,
                    log_volume=LOG_VOLUME,
                    log_path=shipping.log_path,
                    config_volume=LOG_CONFIG_VOLUME,
                    resources=shipping.resources,
                )
            )
            extra_mounts.append(podspec.mount(LOG_VOLUME, shipping.log_path))
            extra_env.append(podspec.env_value(LOG_DIR_ENV, shipping.log_path))

        # Model: fetched by an init container into a volume the server mounts read-only.
        self.model_pvc = None
        storage = model_storage(args)
        if storage is not None:
            if storage.kind == "pvc":
                self.model_pvc = core.PersistentVolumeClaim(
                    f"{name}-model",
                    # gp3 binds WaitForFirstConsumer: the claim stays Pending until a pod uses it, so
                    # don't let Pulumi wait for "Bound" before creating the Deployment that uses it.
                    metadata=meta.ObjectMetaArgs(
                        namespace=args.namespace, labels=labels, annotations={k8s_objects.SKIP_AWAIT: "true"}
                    ),
                    spec=core.PersistentVolumeClaimSpecArgs(
                        access_modes=["ReadWriteOnce"],
                        storage_class_name=storage.storage_class,
                        resources=core.VolumeResourceRequirementsArgs(requests={"storage": storage.size}),
                    ),
                    opts=k8s_opts,
                )
                volumes.append(podspec.pvc_volume(MODEL_VOLUME, self.model_pvc.metadata.name))
            else:
                volumes.append(podspec.empty_dir_volume(MODEL_VOLUME, storage.size))
            if args.model is not None:
                init_containers.append(
                    podspec.model_fetch_init_container(
                        args.model.image,
                        bucket=bucket,
                        prefix=args.model.prefix,
                        model_volume=MODEL_VOLUME,
                        mount_path=storage.mount_path,
                        tmp_volume=TMP_VOLUME,
                        resources=args.model.resources,
                        region=args.model.region,
                    )
                )
            extra_mounts.append(podspec.mount(MODEL_VOLUME, storage.mount_path, read_only=True))
            extra_env.append(podspec.env_value(MODEL_DIR_ENV, storage.mount_path))

        server = main_container(
            "server",
            args,
            config,
            extra_env=extra_env,
            extra_mounts=extra_mounts,
            ports={"http": args.port},
            probes=podspec.probes(
                "http",
                readiness_path=args.readiness_path,
                liveness_path=args.liveness_path,
                startup_seconds=args.startup_seconds,
            ),
            pre_stop_sleep_seconds=args.drain_seconds or None,
        )
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(
                labels=labels,
                annotations=pod_annotations(
                    {"config": config.data, "log-shipper": {"conf": log_config} if log_config else {}}
                ),
            ),
            spec=podspec.pod_spec(
                [server],
                init_containers=init_containers,
                volumes=volumes,
                service_account_name=self.service_account.metadata.name,
                placement=args.placement,
                resource_claims=pod_resource_claims(args, self.gpu_claim_template),
                security_context=pod_security(args),
                termination_grace_period_seconds=args.termination_grace_period_seconds,
                topology_spread_constraints=podspec.spread_across_zones(selector),
            ),
        )

        scaling = args.autoscaling
        # Rollouts must outlast model loading: Kubernetes' progress deadline and Pulumi's await both.
        rollout_seconds = args.startup_seconds + 300
        timeout = f"{max(10, -(-rollout_seconds // 60) + 5)}m"
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=labels,
                annotations=scanner_annotations(args, template.spec) or None,
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=None if scaling else args.replicas,
                revision_history_limit=args.revision_history_limit,
                progress_deadline_seconds=max(600, rollout_seconds),
                selector=meta.LabelSelectorArgs(match_labels=selector),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=template,
            ),
            opts=object_opts(
                self, args, self.role, custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)
            ),
        )

        self.service = core.Service(
            f"{name}-service",
            metadata=meta.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
            spec=core.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[
                    core.ServicePortArgs(
                        name="http", port=args.service_port, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=k8s_opts,
        )

        self.hpa = self._hpa(name, args, labels) if scaling else None

        min_replicas = scaling.min_replicas if scaling else args.replicas
        self.pdb = None
        if min_replicas > 1:
            # No PDB for a single replica: minAvailable 1 there would block every node drain.
            self.pdb = k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=meta.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=meta.LabelSelectorArgs(match_labels=selector),
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=k8s_opts,
            )

        self.ingress = self._ingress(name, args, labels) if args.route else None
        self.pod_monitor = self._pod_monitor(name, args, labels, selector) if args.metrics_path else None
        self.name = self.deployment.metadata.name
        self.namespace = self.deployment.metadata.namespace
        self.register_outputs(
            {
                "name": self.name,
                "namespace": self.namespace,
                "service_name": self.service.metadata.name,
                "service_account_name": self.service_account.metadata.name,
            }
        )

    def _pod_monitor(
        self, name: str, args: InferenceServiceArgs, labels: dict, selector: dict
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata=meta.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
            spec={
                "selector": {"matchLabels": selector},
                "podMetricsEndpoints": [{"port": "http", "path": args.metrics_path, "interval": "15s"}],
            },
            opts=object_opts(self, args, *args.metrics_depends_on),
        )

    def _hpa(
        self, name: str, args: InferenceServiceArgs, labels: dict
    ) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        scaling = args.autoscaling
        assert scaling is not None
        v2 = k8s.autoscaling.v2
        metrics = [
            v2.MetricSpecArgs(
                type="Resource",
                resource=v2.ResourceMetricSourceArgs(
                    name=resource, target=v2.MetricTargetArgs(type="Utilization", average_utilization=value)
                ),
            )
            for resource, value in (("cpu", scaling.cpu_utilization), ("memory", scaling.memory_utilization))
            if value
        ]
        metrics += [
            v2.MetricSpecArgs(
                type="Pods",
                pods=v2.PodsMetricSourceArgs(
                    metric=v2.MetricIdentifierArgs(name=metric),
                    target=v2.MetricTargetArgs(type="AverageValue", average_value=str(target)),
                ),
            )
            for metric, target in scaling.pods_metrics
        ]
        return v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
            spec=v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=self.deployment.metadata.name
                ),
                min_replicas=scaling.min_replicas,
                max_replicas=scaling.max_replicas,
                metrics=metrics,
                behavior=v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=scaling.scale_down_stabilization_seconds,
                        policies=[v2.HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=60)],
                    )
                ),
            ),
            opts=object_opts(self, args),
        )

    def _ingress(self, name: str, args: InferenceServiceArgs, labels: dict) -> k8s.networking.v1.Ingress:
        route = args.route
        assert route is not None
        net = k8s.networking.v1
        backend = net.IngressBackendArgs(
            service=net.IngressServiceBackendArgs(
                name=self.service.metadata.name, port=net.ServiceBackendPortArgs(name="http")
            )
        )
        tls = (
            [net.IngressTLSArgs(hosts=[route.host], secret_name=route.tls_secret_name)] if route.tls else None
        )
        return net.Ingress(
            f"{name}-ingress",
            metadata=meta.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=labels,
                annotations=route.annotations_checking(args.readiness_path) or None,
            ),
            spec=net.IngressSpecArgs(
                ingress_class_name=route.class_name,
                rules=[
                    net.IngressRuleArgs(
                        host=route.host,
                        http=net.HTTPIngressRuleValueArgs(
                            paths=[
                                net.HTTPIngressPathArgs(path=route.path, path_type="Prefix", backend=backend)
                            ]
                        ),
                    )
                ],
                tls=tls,
            ),
            opts=object_opts(self, args, *args.ingress_depends_on),
        )
