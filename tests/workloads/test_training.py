import pulumi
import pytest

from aiplatform.plan.cloud import auto_name
from aiplatform.podspec import Resources
from aiplatform.workloads import SharedVolume, TrainingJob, TrainingJobArgs
from tests.workloads.helpers import (
    GPU_PLACEMENT,
    assert_k8s_children_use_provider,
    assert_no_static_aws_keys,
    assert_secure_pod,
    container,
    env,
    k8s_objects_not_after,
    mounts,
    provider,
    volumes,
)

INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def args(**overrides) -> TrainingJobArgs:
    base = dict(
        provider=provider(),
        namespace="ml",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-3",
        command=["python", "train.py"],
        resources=Resources(cpu="4", memory="32Gi"),
        gpus=1,
        placement=GPU_PLACEMENT,
        completions=5,
        parallelism=2,
        backoff_limit=4,
        active_deadline_seconds=86400,
        shared_volume=SharedVolume(claim_name="datasets", mount_path="/data"),
        config_data={"epochs": "10"},
        config_env={"EPOCHS": "epochs"},
        secret_env=[("HF_TOKEN", "huggingface", "token")],
    )
    base.update(overrides)
    return TrainingJobArgs(**base)


def test_every_kubernetes_object_comes_after_what_the_workload_waits_for(build, monitor):
    def program():
        namespace = pulumi.CustomResource("kubernetes:core/v1:Namespace", "ns", {})
        return TrainingJob("sweep", args(depends_on=[namespace]))

    build(program)
    kinds, not_after = k8s_objects_not_after(monitor, "ns")
    assert kinds == {"ConfigMap", "ServiceAccount", "Job"}
    assert not_after == []


def test_indexed_training_job(build, monitor):
    build(lambda: TrainingJob("hyperparameter-sweep", args()))
    reg = monitor.named("hyperparameter-sweep-job")
    job = reg.inputs
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed",
        5,
        2,
        4,
    )
    assert spec["activeDeadlineSeconds"] == 86400
    assert "ttlSecondsAfterFinished" not in spec
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert job["metadata"]["name"] == "hyperparameter-sweep"
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
    # Jobs are immutable: replaced (old one deleted first) on any spec change.
    assert reg.delete_before_replace is True

    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    trainer = container(pod, "trainer")
    assert trainer["command"] == ["python", "train.py"]
    assert trainer["args"] == ["--job-index", "$(JOB_COMPLETION_INDEX)"]
    e = env(trainer)
    assert e["JOB_COMPLETION_INDEX"]["valueFrom"] == {"fieldRef": {"fieldPath": INDEX_FIELD}}
    assert e["EPOCHS"]["valueFrom"]["configMapKeyRef"] == {
        "name": auto_name("hyperparameter-sweep-config"),
        "key": "epochs",
    }
    assert e["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "huggingface", "key": "token"}

    assert trainer["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert trainer["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert pod["tolerations"] == [t.to_dict() for t in GPU_PLACEMENT.tolerations]
    assert pod["nodeSelector"] == dict(GPU_PLACEMENT.node_selector)

    vols = volumes(pod)
    assert vols["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    assert mounts(trainer)["dshm"]["mountPath"] == "/dev/shm"
    assert vols["shared"]["persistentVolumeClaim"] == {"claimName": "datasets"}
    assert mounts(trainer)["shared"]["mountPath"] == "/data"
    assert mounts(trainer)["config"]["mountPath"] == "/app/config"
    assert pod["serviceAccountName"] == "hyperparameter-sweep"

    assert_secure_pod(pod)
    assert_no_static_aws_keys(monitor)
    assert_k8s_children_use_provider(monitor)


def test_user_args_come_first_and_per_index_backoff(build, monitor):
    build(
        lambda: TrainingJob(
            "sweep",
            args(
                args=["--lr", "3e-4"],
                gpus=0,
                placement=None,
                backoff_limit_per_index=1,
                max_failed_indexes=2,
                ttl_seconds_after_finished=3600,
                wait_for_completion=True,
            ),
        )
    )
    job = monitor.named("sweep-job").inputs
    pod = job["spec"]["template"]["spec"]
    assert container(pod, "trainer")["args"] == ["--lr", "3e-4", "--job-index", "$(JOB_COMPLETION_INDEX)"]
    assert (job["spec"]["backoffLimitPerIndex"], job["spec"]["maxFailedIndexes"]) == (1, 2)
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert "pulumi.com/skipAwait" not in job["metadata"]["annotations"]
    assert (
        "tolerations" not in pod and "nvidia.com/gpu" not in container(pod, "trainer")["resources"]["limits"]
    )


def test_training_validation():
    with pytest.raises(ValueError) as info:
        TrainingJob(
            "sweep",
            args(
                completions=2,
                parallelism=3,
                backoff_limit=-1,
                max_failed_indexes=1,
                shm_size="64Gi",
                gpus=1,
                placement=None,
            ),
        )
    message = str(info.value)
    for fragment in (
        "parallelism: must be between 1 and completions (2)",
        "backoff_limit: must be >= 0",
        "max_failed_indexes: needs backoff_limit_per_index",
        "shm_size: 64Gi must be below the memory limit (32Gi)",
        "gpus: > 0 needs a placement",
    ):
        assert fragment in message, fragment


def test_env_and_mounts_the_job_sets_itself_cannot_be_given_again():
    bad = args(
        env={"JOB_COMPLETION_INDEX": "0"},
        secret_env=[("JOB_COMPLETION_INDEX", "huggingface", "token")],
        shared_volume=SharedVolume(claim_name="datasets", mount_path="/dev/shm"),
        config_data={"epochs": "10"},
        config_files={"epochs": "/tmp"},
    )
    with pytest.raises(ValueError) as info:
        TrainingJob("sweep", bad)
    assert str(info.value).splitlines()[1:] == [
        "  - env.JOB_COMPLETION_INDEX: already set by the completion index",
        "  - secret_env.JOB_COMPLETION_INDEX: already set by the completion index",
        "  - config_files: mount path '/tmp' is already used by tmp_size (the writable /tmp)",
        "  - shared_volume.mount_path: mount path '/dev/shm' is already used by shm_size (/dev/shm)",
    ]


def test_the_job_keeps_skip_await_beside_its_scanner_annotations(build, monitor):
    build(lambda: TrainingJob("sweep", args(accepted_findings={"CKV_K8S_43": "dev runs images by tag"})))
    assert monitor.named("sweep-job").inputs["metadata"]["annotations"] == {
        "checkov.io/skip1": "CKV_K8S_35=HF_TOKEN through secret_env, for an application that reads it only "
        "from the environment (secret_files mounts the others as files)",
        "checkov.io/skip2": "CKV_K8S_43=dev runs images by tag",
        "pulumi.com/skipAwait": "true",
    }
