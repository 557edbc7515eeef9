"""BatchInferenceJob: a batch/v1 CronJob (e.g. nightly predictions); cron rules are in ``components.validation``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from .. import podspec, validation
from ..errors import ArgumentsError, Problem, require, type_problems
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
    scanner_annotations,
    standard_labels,
)

core = k8s.core.v1
meta = k8s.meta.v1

# -- cron ----------------------------------------------------------------------------------------


def validate_cron_schedule(schedule: str) -> str:
    """The schedule, or ArgumentsError listing every bad field (the rules: ``validation.cron_schedule_errors``)."""
    if problem := validation.cron_schedule(schedule):
        raise ArgumentsError("validate_cron_schedule", [("schedule", problem)])
    return schedule


# -- component -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BatchInferenceJobArgs(WorkloadArgs):
    """See ``WorkloadArgs`` for the shared inputs; config files are mounted at ``/config`` here."""

    schedule: str  # 5-field cron schedule
    time_zone: str | None = "Etc/UTC"  # IANA time zone of the schedule
    # what happens when a run is due while the last one still runs
    concurrency_policy: Literal["Forbid", "Replace", "Allow"] = "Forbid"
    # a run that cannot start within this many seconds of its time is skipped
    starting_deadline_seconds: int | None = 600
    successful_jobs_history_limit: int = 3  # finished Jobs kept
    failed_jobs_history_limit: int = 3  # failed Jobs kept
    backoff_limit: int = 2  # failed pods before a run fails
    active_deadline_seconds: int = 4 * 3600  # a run's time limit
    suspend: bool = False  # pause the schedule
    config_mount_path: str = "/config"  # where config files are mounted
    termination_grace_period_seconds: int = 60  # seconds a stopping pod gets before it is killed

    def problems(self) -> list[Problem]:
        if wrong_types := type_problems(self):
            return wrong_types  # the checks below read those objects
        problems = common_problems(self)
        problems += [("schedule", e) for e in validation.cron_schedule_errors(self.schedule)]
        if self.time_zone is not None and (problem := validation.time_zone(self.time_zone)):
            problems.append(("time_zone", problem))
        if self.concurrency_policy not in ("Forbid", "Replace", "Allow"):
            problems.append(
                ("concurrency_policy", f"{self.concurrency_policy!r} must be Forbid, Replace or Allow")
            )
        if self.starting_deadline_seconds is not None and self.starting_deadline_seconds < 10:
            problems.append(("starting_deadline_seconds", "must be >= 10 (the controller checks every 10 s)"))
        for field_name in ("successful_jobs_history_limit", "failed_jobs_history_limit", "backoff_limit"):
            if getattr(self, field_name) < 0:
                problems.append((field_name, "must be >= 0"))
        if self.active_deadline_seconds < 1:
            problems.append(("active_deadline_seconds", "must be >= 1"))
        # Whether a run's pod can ever start where it is placed (``components.fit``).
        return problems or pod_fit_problems(self, pod_fit_requests(self))


class BatchInferenceJob(pulumi.ComponentResource):
    """A scheduled batch job: ServiceAccount (+ IAM role), ConfigMap mounted at /config, CronJob.

    A CronJob is mutable: a changed job template applies from the next run, no replacement needed.

    Example::

        from aiplatform.iam import allow
        from aiplatform.podspec import Resources
        from aiplatform.workloads import BatchInferenceJob, BatchInferenceJobArgs

        nightly = BatchInferenceJob("nightly-batch-predict", BatchInferenceJobArgs(
            provider=cluster.provider, namespace="ai",
            image="123456789012.dkr.ecr.us-east-1.amazonaws.com/batch-inference:0.9.0",
            command=["python", "run_predictions.py"], resources=Resources(cpu="2", memory="8Gi"),
            schedule="0 2 * * *", time_zone="Europe/Paris",
            config_data={"batch.yaml": "input: s3://my-ai-bucket/in\\noutput: s3://my-ai-bucket/out\\n"},
            identity=cluster.identity,
            aws_policy_statements=[allow(["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::my-ai-bucket/batch/*"])],
        ))
    """

    cron_job: k8s.batch.v1.CronJob  # the CronJob
    service_account: k8s.core.v1.ServiceAccount  # its ServiceAccount
    config_map: k8s.core.v1.ConfigMap | None  # its ConfigMap (None: no ``config_data``)
    # GPUs by DRA: the template of each pod's own GPU claim (None: no claim of its own)
    gpu_claim_template: k8s.resource.v1.ResourceClaimTemplate | None
    name: pulumi.Output[str]  # the CronJob's name
    namespace: pulumi.Output[str]  # its namespace

    def __init__(self, name: str, args: BatchInferenceJobArgs, opts: pulumi.ResourceOptions | None = None):
        # CronJob names are at most 52 characters: the controller appends 11 for each Job.
        subject = f"BatchInferenceJob {name!r}"
        require(
            subject,
            [*name_problems(name, 52), *(type_problems(args, BatchInferenceJobArgs) or args.problems())],
        )
        args = checked_args(subject, args)
        super().__init__("aiplatform:workloads:BatchInferenceJob", name, None, opts)
        labels = standard_labels(name, "batch-inference", args.labels)

        config = create_config(self, name, args, labels)
        self.config_map = config.config_map
        self.service_account, self.role = create_service_account(self, name, args, labels)
        self.gpu_claim_template = create_gpu_claim_template(self, name, args, labels)

        worker = main_container("batch", args, config)
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations({"config": config.data})),
            spec=podspec.pod_spec(
                [worker],
                volumes=pod_volumes(args, config),
                service_account_name=self.service_account.metadata.name,
                placement=args.placement,
                resource_claims=pod_resource_claims(args, self.gpu_claim_template),
                security_context=pod_security(args),
                restart_policy="OnFailure",
                termination_grace_period_seconds=args.termination_grace_period_seconds,
            ),
        )
        batch = k8s.batch.v1
        self.cron_job = batch.CronJob(
            f"{name}-cronjob",
            metadata=meta.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=labels,
                annotations=scanner_annotations(args, template.spec) or None,
            ),
            spec=batch.CronJobSpecArgs(
                schedule=args.schedule,
                time_zone=args.time_zone,
                concurrency_policy=args.concurrency_policy,
                starting_deadline_seconds=args.starting_deadline_seconds,
                successful_jobs_history_limit=args.successful_jobs_history_limit,
                failed_jobs_history_limit=args.failed_jobs_history_limit,
                suspend=args.suspend,
                job_template=batch.JobTemplateSpecArgs(
                    metadata=meta.ObjectMetaArgs(labels=labels),
                    spec=batch.JobSpecArgs(
                        backoff_limit=args.backoff_limit,
                        active_deadline_seconds=args.active_deadline_seconds,
                        template=template,
                    ),
                ),
            ),
            opts=object_opts(self, args, self.role),
        )
        self.name = self.cron_job.metadata.name
        self.namespace = self.cron_job.metadata.namespace
        self.register_outputs({"name": self.name, "namespace": self.namespace})
