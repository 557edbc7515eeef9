"""TrainingJob: an Indexed batch/v1 Job, one pod per completion index (sweeps, sharded training)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .. import fit, k8s_objects, podspec, validation
from ..errors import Problem, require, type_problems
from ..inputs import checked, is_known, plain_problems
from ._common import (
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
    standard_labels,
)

core = k8s.core.v1
meta = k8s.meta.v1

INDEX_ENV = "JOB_COMPLETION_INDEX"
SHARED_VOLUME = "shared"
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"


@dataclass(frozen=True, kw_only=True)
class SharedVolume:
    """An existing ReadWriteMany claim (EFS/FSx: datasets, checkpoints) mounted into every pod."""

    # the PersistentVolumeClaim (in the job's namespace; may be ``SharedFileSystem.claim_name``)
    claim_name: pulumi.Input[str]
    mount_path: str = "/mnt/shared"  # where it is mounted
    read_only: bool = False  # mount it read-only


def claim_name_reason(claim_name: object) -> str | None:
    return None if claim_name else "must not be empty"


@dataclass(frozen=True, kw_only=True)
class TrainingJobArgs(WorkloadArgs):
    """See ``WorkloadArgs`` for the shared inputs.

    ``index_arg`` (default ``--job-index``) is appended to ``args`` with ``$(JOB_COMPLETION_INDEX)``;
    None to pass the index only as the env var. ``ttl_seconds_after_finished`` is off by default: when the
    TTL controller deletes the finished Job, ``pulumi refresh`` sees it gone and the next ``up`` creates it
    again, i.e. re-runs the training. ``shm_size`` is a memory-backed /dev/shm for PyTorch dataloaders: it
    counts against the container's memory limit.
    """

    completions: int = 1  # pods to run to completion, one per index (0..completions-1)
    parallelism: int = 1  # pods running at once
    backoff_limit: int = 4  # failed pods before the whole Job fails
    # failed pods per index before that index fails (None: only ``backoff_limit``)
    backoff_limit_per_index: int | None = None
    # failed indexes before the Job fails (needs ``backoff_limit_per_index``)
    max_failed_indexes: int | None = None
    ttl_seconds_after_finished: int | None = None
    active_deadline_seconds: int | None = None  # the Job's time limit (None: none)
    index_arg: str | None = "--job-index"
    shared_volume: SharedVolume | None = None  # a ReadWriteMany claim mounted into every pod
    shm_size: str | None = "2Gi"
    # node drains, spot interruptions and preemption retry the index without counting as failures
    ignore_disruptions: bool = True
    wait_for_completion: bool = False  # ``pulumi up`` waits for the training to finish
    termination_grace_period_seconds: int = 120  # seconds a stopping pod gets to checkpoint

    def problems(self) -> list[Problem]:
        if wrong_types := type_problems(self):
            return wrong_types  # the checks below read those objects
        mounts = [("shm_size (/dev/shm)", SHM_PATH)] if self.shm_size is not None else []
        if self.shared_volume is not None:
            mounts.append(("shared_volume.mount_path", self.shared_volume.mount_path))
        problems = common_problems(self, platform_env={INDEX_ENV: "the completion index"}, mounts=mounts)
        if self.completions < 1:
            problems.append(("completions", "must be >= 1"))
        if not 1 <= self.parallelism <= max(self.completions, 1):
            problems.append(("parallelism", f"must be between 1 and completions ({self.completions})"))
        if self.backoff_limit < 0:
            problems.append(("backoff_limit", "must be >= 0"))
        if self.backoff_limit_per_index is not None and self.backoff_limit_per_index < 0:
            problems.append(("backoff_limit_per_index", "must be >= 0"))
        if self.max_failed_indexes is not None:
            if self.backoff_limit_per_index is None:
                problems.append(("max_failed_indexes", "needs backoff_limit_per_index"))
            elif not 0 <= self.max_failed_indexes <= self.completions:
                problems.append(
                    ("max_failed_indexes", f"must be between 0 and completions ({self.completions})")
                )
        for field_name in ("ttl_seconds_after_finished", "active_deadline_seconds"):
            value = getattr(self, field_name)
            if value is not None and value < (1 if field_name == "active_deadline_seconds" else 0):
                problems.append((field_name, "must be positive"))
        if self.termination_grace_period_seconds < 0:
            problems.append(("termination_grace_period_seconds", "must be >= 0"))
        if self.shared_volume is not None:
            problems += plain_problems(
                "shared_volume.claim_name", self.shared_volume.claim_name, claim_name_reason
            )
            if not self.shared_volume.mount_path.startswith("/"):
                problems.append(("shared_volume.mount_path", "must be an absolute path"))
        if self.shm_size is not None:
            try:
                shm = validation.quantity_value(self.shm_size)
                limit = validation.quantity_value(self.resources.limits["memory"])
                if shm >= limit:
                    problems.append(
                        (
                            "shm_size",
                            f"{self.shm_size} must be below the memory limit "
                            f"({self.resources.limits['memory']}): /dev/shm counts against it",
                        )
                    )
            except ValueError as exc:
                problems.append(("shm_size", str(exc)))
        # Whether it can ever run where it is placed: only once the arguments themselves are sound.
        return problems or self.fit_problems()

    def fit_problems(self) -> list[Problem]:
        """Its pods against their placement's nodes and the namespace's quota (``components.fit``).

        Parallel pods beyond the node group's maximum only wait their turn; beyond the quota, they are
        refused until others finish: the quota caps ``parallelism``.
        """
        pod = pod_fit_requests(self)
        problems = pod_fit_problems(self, pod)
        ceilings = replica_ceilings(self, pod, nodes=False)
        if not problems and (
            reason := fit.parallel_reason(self.parallelism, ceilings, "lower parallelism or raise the quota")
        ):
            problems.append(("parallelism", reason))
        return problems


def index_env() -> core.EnvVarArgs:
    """The completion index from the pod's annotation (Downward API)."""
    return podspec.env_from_field(INDEX_ENV, podspec.JOB_COMPLETION_INDEX_FIELD)


class TrainingJob(pulumi.ComponentResource):
    """An Indexed Job: ``completions`` pods, ``parallelism`` at a time, each told its index.

    Jobs are immutable (their pod template cannot change), so any spec change replaces the Job:
    ``replace_on_changes=["spec"]`` with ``delete_before_replace=True`` - the Job keeps its stable name, the
    old run is stopped before the new one starts (never two runs competing for the same GPUs and
    checkpoints). Resume from checkpoints on the shared volume. ``pulumi up`` does not wait for the
    training to finish (``pulumi.com/skipAwait``) unless ``wait_for_completion``.

    Example::

        from aiplatform.podspec import Resources
        from aiplatform.workloads import SharedVolume, TrainingJob, TrainingJobArgs

        sweep = TrainingJob("hyperparameter-sweep", TrainingJobArgs(
            provider=cluster.provider, namespace="ai",
            image="123456789012.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-3",
            command=["python", "train.py"], resources=Resources(cpu="3", memory="24Gi"),
            gpus=1, placement=gpu_nodes.placements["gpu-training"],
            completions=5, parallelism=2, backoff_limit=4,
            shared_volume=SharedVolume(claim_name="datasets"),
            config_data={"epochs": "10"}, config_env={"EPOCHS": "epochs"},
        ))
    """

    job: k8s.batch.v1.Job  # the Job
    service_account: k8s.core.v1.ServiceAccount  # its ServiceAccount
    config_map: k8s.core.v1.ConfigMap | None  # its ConfigMap (None: no ``config_data``)
    # GPUs by DRA: the template of each pod's own GPU claim (None: no claim of its own)
    gpu_claim_template: k8s.resource.v1.ResourceClaimTemplate | None
    name: pulumi.Output[str]  # the Job's name
    namespace: pulumi.Output[str]  # its namespace

    def __init__(self, name: str, args: TrainingJobArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"TrainingJob {name!r}"
        require(subject, [*name_problems(name), *(type_problems(args, TrainingJobArgs) or args.problems())])
        args = checked_args(subject, args)
        shared = args.shared_volume
        if shared is not None and not is_known(shared.claim_name):
            claim = checked(subject, "shared_volume.claim_name", shared.claim_name, claim_name_reason)
            args = dataclasses.replace(args, shared_volume=dataclasses.replace(shared, claim_name=claim))
        super().__init__("aiplatform:workloads:TrainingJob", name, None, opts)
        labels = standard_labels(name, "training", args.labels)

        config = create_config(self, name, args, labels)
        self.config_map = config.config_map
        self.service_account, self.role = create_service_account(self, name, args, labels)
        self.gpu_claim_template = create_gpu_claim_template(self, name, args, labels)

        volumes = pod_volumes(args, config)
        mounts: list[core.VolumeMountArgs] = []
        if args.shm_size is not None:
            volumes.append(podspec.empty_dir_volume(SHM_VOLUME, args.shm_size, medium="Memory"))
            mounts.append(podspec.mount(SHM_VOLUME, SHM_PATH))
        if args.shared_volume is not None:
            shared = args.shared_volume
            volumes.append(podspec.pvc_volume(SHARED_VOLUME, shared.claim_name, read_only=shared.read_only))
            mounts.append(podspec.mount(SHARED_VOLUME, shared.mount_path, read_only=shared.read_only))

        command_args = list(args.args or [])
        if args.index_arg:
            command_args += [args.index_arg, f"$({INDEX_ENV})"]
        trainer = main_container(
            "trainer",
            args,
            config,
            command_args=command_args or None,
            extra_env=[index_env()],
            extra_mounts=mounts,
        )
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations({"config": config.data})),
            spec=podspec.pod_spec(
                [trainer],
                volumes=volumes,
                service_account_name=self.service_account.metadata.name,
                placement=args.placement,
                resource_claims=pod_resource_claims(args, self.gpu_claim_template),
                security_context=pod_security(args),
                restart_policy="Never",
                termination_grace_period_seconds=args.termination_grace_period_seconds,
            ),
        )
        batch = k8s.batch.v1
        pod_failure_policy = None
        if args.ignore_disruptions:
            # Node drains, spot interruptions, preemption: retry the index without spending backoffLimit.
            pod_failure_policy = batch.PodFailurePolicyArgs(
                rules=[
                    batch.PodFailurePolicyRuleArgs(
                        action="Ignore",
                        on_pod_conditions=[
                            batch.PodFailurePolicyOnPodConditionsPatternArgs(
                                type="DisruptionTarget", status="True"
                            )
                        ],
                    )
                ]
            )
        annotations = scanner_annotations(args, template.spec)
        if not args.wait_for_completion:
            annotations[k8s_objects.SKIP_AWAIT] = "true"
        self.job = batch.Job(
            f"{name}-job",
            metadata=meta.ObjectMetaArgs(
                name=name, namespace=args.namespace, labels=labels, annotations=annotations or None
            ),
            spec=batch.JobSpecArgs(
                completion_mode="Indexed",
                completions=args.completions,
                parallelism=args.parallelism,
                backoff_limit=args.backoff_limit,
                backoff_limit_per_index=args.backoff_limit_per_index,
                max_failed_indexes=args.max_failed_indexes,
                pod_failure_policy=pod_failure_policy,
                ttl_seconds_after_finished=args.ttl_seconds_after_finished,
                active_deadline_seconds=args.active_deadline_seconds,
                template=template,
            ),
            opts=object_opts(self, args, self.role, replace_on_changes=["spec"], delete_before_replace=True),
        )
        self.name = self.job.metadata.name
        self.namespace = self.job.metadata.namespace
        self.register_outputs({"name": self.name, "namespace": self.namespace})
