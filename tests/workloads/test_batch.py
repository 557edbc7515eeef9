import json

import pulumi
import pytest

from aiplatform.iam import allow
from aiplatform.plan.cloud import auto_name
from aiplatform.podspec import Resources
from aiplatform.validation import cron_schedule_errors
from aiplatform.validation import time_zone as time_zone_error
from aiplatform.workloads import BatchInferenceJob, BatchInferenceJobArgs, validate_cron_schedule
from tests.workloads.helpers import (
    GPU_PLACEMENT,
    IRSA,
    assert_k8s_children_use_provider,
    assert_no_static_aws_keys,
    assert_secure_pod,
    container,
    k8s_objects_not_after,
    mounts,
    provider,
    volumes,
)


def args(**overrides) -> BatchInferenceJobArgs:
    base = dict(
        provider=provider(),
        namespace="ai",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/batch-inference:0.9.0",
        command=["python", "run_predictions.py"],
        resources=Resources(cpu="2", memory="8Gi"),
        schedule="0 2 * * *",
        time_zone="Europe/Paris",
        config_data={"batch.yaml": "input: s3://in\n", "model": "all-MiniLM-L6-v2"},
    )
    base.update(overrides)
    return BatchInferenceJobArgs(**base)


def test_every_kubernetes_object_comes_after_what_the_workload_waits_for(build, monitor):
    def program():
        namespace = pulumi.CustomResource("kubernetes:core/v1:Namespace", "ns", {})
        return BatchInferenceJob("nightly", args(depends_on=[namespace]))

    build(program)
    kinds, not_after = k8s_objects_not_after(monitor, "ns")
    assert kinds == {"ConfigMap", "ServiceAccount", "CronJob"}
    assert not_after == []


def test_nightly_cron_job(build, monitor):
    build(lambda: BatchInferenceJob("nightly-batch-predict", args()))
    cron = monitor.named("nightly-batch-predict-cronjob").inputs["spec"]
    assert cron["schedule"] == "0 2 * * *"
    assert cron["timeZone"] == "Europe/Paris"
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["startingDeadlineSeconds"] == 600
    assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (3, 3)
    job = cron["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"]) == (2, 14400)
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure"
    worker = container(pod, "batch")
    assert worker["command"] == ["python", "run_predictions.py"]
    config = volumes(pod)["config"]["configMap"]
    assert config["name"] == auto_name("nightly-batch-predict-config")
    assert [i["key"] for i in config["items"]] == ["batch.yaml", "model"]
    assert mounts(worker)["config"] == {"name": "config", "mountPath": "/config", "readOnly": True}
    assert monitor.named("nightly-batch-predict-config").inputs["data"]["model"] == "all-MiniLM-L6-v2"
    assert "aiplatform.io/config-hash" in job["template"]["metadata"]["annotations"]
    assert "tolerations" not in pod
    assert_secure_pod(pod)
    assert_no_static_aws_keys(monitor)
    assert_k8s_children_use_provider(monitor)


def test_config_files_in_several_directories(build, monitor):
    build(
        lambda: BatchInferenceJob(
            "nightly", args(config_files={"batch.yaml": "/etc/batch", "model": "/config"})
        )
    )
    pod = monitor.named("nightly-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    vols = volumes(pod)
    assert [i["key"] for i in vols["config-0"]["configMap"]["items"]] == ["model"]
    assert [i["key"] for i in vols["config-1"]["configMap"]["items"]] == ["batch.yaml"]
    assert {m["mountPath"] for m in container(pod, "batch")["volumeMounts"]} >= {"/config", "/etc/batch"}
    assert_no_static_aws_keys(monitor)
    assert_k8s_children_use_provider(monitor)


def test_gpu_batch_with_aws_role(build, monitor):
    build(
        lambda: BatchInferenceJob(
            "scorer",
            args(
                gpus=1,
                placement=GPU_PLACEMENT,
                identity=IRSA,
                aws_policy_statements=[allow(["s3:PutObject"], ["arn:aws:s3:::out/*"])],
            ),
        )
    )
    pod = monitor.named("scorer-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["tolerations"] == [t.to_dict() for t in GPU_PLACEMENT.tolerations]
    assert container(pod, "batch")["resources"]["limits"]["nvidia.com/gpu"] == "1"
    policy = json.loads(monitor.named("scorer-aws-policy").inputs["policy"])
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": ["arn:aws:s3:::out/*"]}
    ]
    assert "eks.amazonaws.com/role-arn" in monitor.named("scorer-sa").inputs["metadata"]["annotations"]


@pytest.mark.parametrize(
    "schedule",
    [
        "0 2 * * *",
        "*/15 * * * *",
        "0 9-17/2 * * MON-FRI",
        "5,35 0 1,15 JAN,jul *",
        "0 0 ? * SUN",
        "@daily",
        "0 0 1-31/10 */3 0-6",
    ],
)
def test_valid_cron(schedule):
    assert cron_schedule_errors(schedule) == []
    assert validate_cron_schedule(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "error"),
    [
        ("", "schedule is empty"),
        ("0 2 * *", "expected 5 fields"),
        ("60 2 * * *", "minute: '60' is outside 0-59"),
        ("0 24 * * *", "hour: '24' is outside 0-23"),
        ("0 0 0 * *", "day of month: '0' is outside 1-31"),
        ("0 0 * 13 *", "month: '13'"),
        ("0 0 * * 7", "day of week: '7' is outside 0-6"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("0 5-1 * * *", "range '5-1' ends before it starts"),
        ("0 0 * * FUNDAY", "is not a number or a name"),
        ("0,,5 * * * *", "empty list item"),
        ("? * * * *", "minute: '?'"),
        ("@every 1h", "unknown macro"),
        ("CRON_TZ=UTC 0 2 * * *", "use time_zone"),
    ],
)
def test_invalid_cron(schedule, error):
    errors = cron_schedule_errors(schedule)
    assert any(error in e for e in errors), errors
    with pytest.raises(ValueError):
        validate_cron_schedule(schedule)


def test_time_zone_validation():
    assert time_zone_error("Europe/Paris") is None
    assert time_zone_error("Etc/UTC") is None
    assert "not an IANA time zone" in time_zone_error("Mars/Olympus")


def test_batch_validation_lists_every_field():
    with pytest.raises(ValueError) as info:
        BatchInferenceJob(
            "nightly",
            args(
                schedule="0 25 * * *",
                time_zone="Nowhere/City",
                concurrency_policy="Sometimes",
                config_files=["nope"],
            ),
        )
    message = str(info.value)
    for fragment in (
        "schedule: hour: '25'",
        "time_zone: 'Nowhere/City'",
        "concurrency_policy: 'Sometimes'",
        "config_files: key 'nope' is not in config_data",
    ):
        assert fragment in message, fragment
    with pytest.raises(ValueError, match="at most 52 characters"):
        BatchInferenceJob("a" * 53, args())
