"""BatchInferenceJob: a batch/v1 CronJob (e.g. nightly predictions) plus a pure cron validator."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components import podspec
from components.workloads._common import (
    WorkloadArgs,
    common_errors,
    create_config,
    create_service_account,
    main_container,
    pod_annotations,
    raise_if_errors,
    standard_labels,
    tmp_volume,
)

core = k8s.core.v1
meta = k8s.meta.v1

# -- cron ----------------------------------------------------------------------------------------

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# (field, lowest, highest, names, "?" allowed) - the ranges of the robfig/cron standard parser Kubernetes uses.
_FIELDS = (
    ("minute", 0, 59, {}, False),
    ("hour", 0, 23, {}, False),
    ("day of month", 1, 31, {}, True),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 6, _DAYS, True),
)
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_NUMBER = re.compile(r"^[0-9]+$")


def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not _NUMBER.match(text):
        raise ValueError(f"{text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range {low}-{high}")
    return value


def _field_errors(
    text: str, label: str, low: int, high: int, names: dict[str, int], question: bool
) -> list[str]:
    errors = []
    for part in text.split(","):
        try:
            if not part:
                raise ValueError("empty list item")
            base, _, step = part.partition("/")
            if _ and (not _NUMBER.match(step) or int(step) == 0):
                raise ValueError(f"step {step!r} must be a positive number")
            if base == "*" or (question and base == "?"):
                continue
            start_text, dash, end_text = base.partition("-")
            start = _value(start_text, low, high, names)
            if dash:
                end = _value(end_text, low, high, names)
                if end < start:
                    raise ValueError(f"range {base!r} ends before it starts")
        except ValueError as exc:
            errors.append(f"{label} {part!r}: {exc}")
    return errors


def cron_schedule_errors(schedule: str) -> list[str]:
    """Every problem with a 5-field cron expression (or macro such as ``@daily``); empty when valid.

    Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT;
    each a comma list of ``*``, ``N``, ``N-M`` with optional ``/step`` (``?`` for the day fields).
    """
    text = (schedule or "").strip()
    if not text:
        return ["schedule is empty"]
    if re.match(r"^(CRON_)?TZ=", text):
        return ["TZ=/CRON_TZ= in the schedule is not supported: use time_zone"]
    if text.startswith("@"):
        return (
            []
            if text.lower() in CRON_MACROS
            else [f"unknown macro {text!r} ({', '.join(sorted(CRON_MACROS))})"]
        )
    fields = text.split()
    if len(fields) != 5:
        return [f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"]
    errors: list[str] = []
    for value, (label, low, high, names, question) in zip(fields, _FIELDS, strict=True):
        errors.extend(_field_errors(value, label, low, high, names, question))
    return errors


def validate_cron_schedule(schedule: str) -> str:
    """The schedule, or ValueError listing every bad field."""
    errors = cron_schedule_errors(schedule)
    if errors:
        raise ValueError(f"invalid cron schedule {schedule!r}: " + "; ".join(errors))
    return schedule


def time_zone_error(time_zone: str) -> str | None:
    """None when ``time_zone`` is an IANA name known to the tz database, else why not."""
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return f"{time_zone!r} is not an IANA time zone (e.g. Etc/UTC, Europe/Paris)"
    return None


# -- component -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class BatchInferenceJobArgs(WorkloadArgs):
    """See ``WorkloadArgs`` for the shared inputs; config files are mounted at ``/config`` here."""

    schedule: str
    time_zone: str | None = "Etc/UTC"
    concurrency_policy: Literal["Forbid", "Replace", "Allow"] = "Forbid"
    starting_deadline_seconds: int | None = 600
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3
    backoff_limit: int = 2
    active_deadline_seconds: int = 4 * 3600
    suspend: bool = False
    config_mount_path: str = "/config"
    termination_grace_period_seconds: int = 60


def validate_batch_args(name: str, args: BatchInferenceJobArgs) -> list[str]:
    # CronJob names are at most 52 characters: the controller appends 11 for each Job.
    errors = common_errors(name, args, max_name_length=52)
    errors.extend(f"schedule: {e}" for e in cron_schedule_errors(args.schedule))
    if args.time_zone is not None and (problem := time_zone_error(args.time_zone)):
        errors.append(f"time_zone: {problem}")
    if args.concurrency_policy not in ("Forbid", "Replace", "Allow"):
        errors.append(f"concurrency_policy: {args.concurrency_policy!r} must be Forbid, Replace or Allow")
    if args.starting_deadline_seconds is not None and args.starting_deadline_seconds < 10:
        errors.append("starting_deadline_seconds: must be >= 10 (the controller checks every 10 s)")
    for field_name in ("successful_jobs_history_limit", "failed_jobs_history_limit", "backoff_limit"):
        if getattr(args, field_name) < 0:
            errors.append(f"{field_name}: must be >= 0")
    if args.active_deadline_seconds < 1:
        errors.append("active_deadline_seconds: must be >= 1")
    return errors


class BatchInferenceJob(pulumi.ComponentResource):
    """A scheduled batch job: ServiceAccount (+ IAM role), ConfigMap mounted at /config, CronJob.

    A CronJob is mutable: a changed job template applies from the next run, no replacement needed.

    Example::

        nightly = BatchInferenceJob("nightly-batch-predict", BatchInferenceJobArgs(
            provider=cluster.provider, namespace="ai", image="123.dkr.ecr.../batch-inference:0.9.0",
            command=["python", "run_predictions.py"], resources=Resources(cpu="2", memory="8Gi"),
            schedule="0 2 * * *", time_zone="Europe/Paris",
            config_data={"batch.yaml": "input: s3://bucket/in\\noutput: s3://bucket/out\\n"},
            identity=cluster.identity, aws_policy_statements=[allow(["s3:GetObject"], [...])],
        ))
    """

    cron_job: k8s.batch.v1.CronJob
    service_account: k8s.core.v1.ServiceAccount
    config_map: k8s.core.v1.ConfigMap | None
    name: pulumi.Output[str]
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: BatchInferenceJobArgs, opts: pulumi.ResourceOptions | None = None):
        raise_if_errors("BatchInferenceJob", name, validate_batch_args(name, args))
        super().__init__("aiplatform:workloads:BatchInferenceJob", name, None, opts)
        labels = standard_labels(name, "batch-inference", args.labels)

        config = create_config(self, name, args, labels)
        self.config_map = config.config_map
        self.service_account, self.role = create_service_account(self, name, args, labels)

        worker = main_container("batch", args, config)
        template = core.PodTemplateSpecArgs(
            metadata=meta.ObjectMetaArgs(labels=labels, annotations=pod_annotations({"config": config.data})),
            spec=podspec.pod_spec(
                [worker],
                volumes=[tmp_volume(args), *config.volumes],
                service_account_name=self.service_account.metadata.name,
                placement=args.placement,
                restart_policy="OnFailure",
                termination_grace_period_seconds=args.termination_grace_period_seconds,
            ),
        )
        batch = k8s.batch.v1
        self.cron_job = batch.CronJob(
            f"{name}-cronjob",
            metadata=meta.ObjectMetaArgs(name=name, namespace=args.namespace, labels=labels),
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
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[*args.depends_on, *([self.role] if self.role else [])],
            ),
        )
        self.name = self.cron_job.metadata.name
        self.namespace = self.cron_job.metadata.namespace
        self.register_outputs({"name": self.name, "namespace": self.namespace})
