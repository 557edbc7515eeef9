"""The pure pod-spec builders, checked without the engine."""

from __future__ import annotations

import pytest

from aiplatform import podspec, validation
from aiplatform.podspec import Resources
from aiplatform.scheduling import GPU_RESOURCE, GPU_TAINT, Placement

SMALL = Resources(cpu="100m", memory="128Mi")
GPU_PLACEMENT = Placement(
    node_selector={"aiplatform.io/pool": "gpu"},
    tolerations=(GPU_TAINT.toleration(),),
    gpu_resource=GPU_RESOURCE,
)


def assert_secure(container) -> None:
    sc = container.security_context
    assert sc.run_as_non_root is True
    assert sc.allow_privilege_escalation is False
    assert sc.capabilities.drop == ["ALL"]
    assert sc.seccomp_profile.type == "RuntimeDefault"


def test_container_is_secure_and_has_requests_and_limits():
    c = podspec.container("app", "repo/app:1.0", resources=SMALL, ports={"http": 8000})
    assert_secure(c)
    assert c.security_context.read_only_root_filesystem is True
    assert c.resources.requests == {"cpu": "100m", "memory": "128Mi"}
    assert c.resources.limits == {"cpu": "100m", "memory": "128Mi"}
    assert [(p.name, p.container_port) for p in c.ports] == [("http", 8000)]
    writable = podspec.container("app", "repo/app:1.0", resources=SMALL, read_only_root_filesystem=False)
    assert writable.security_context.read_only_root_filesystem is False


def test_gpus_are_requested_and_limited_equally_with_the_placement_resource():
    r = podspec.resource_requirements(
        Resources(cpu="4", memory="16Gi", memory_limit="20Gi"), gpus=2, gpu_resource="nvidia.com/gpu"
    )
    assert r.requests == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "2"}
    assert r.limits == {"cpu": "4", "memory": "20Gi", "nvidia.com/gpu": "2"}
    with pytest.raises(ValueError, match="gpu_resource"):
        podspec.resource_requirements(SMALL, gpus=1)


def test_resources_problems_list_every_problem():
    assert SMALL.problems() == []
    problems = Resources(cpu="lots", memory="1Gi", memory_limit="512Mi").problems()
    assert problems == [
        ("cpu", "'lots' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"),
        ("cpu_limit", "'lots' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"),
        ("memory_limit", "must be >= the request (1Gi)"),
    ]
    assert validation.quantity_value("500m") * 2 == validation.quantity_value("1")
    assert validation.quantity_value("1Gi") == 1024 * validation.quantity_value("1Mi")


def test_env_sources():
    env = [
        podspec.env_value("A", "1"),
        podspec.env_from_config_map("LOG_LEVEL", "cfg", "log-level"),
        podspec.env_from_secret("OPENAI_API_KEY", "openai-secret", "api-key"),
        podspec.env_from_field("IDX", podspec.JOB_COMPLETION_INDEX_FIELD),
    ]
    assert env[0].value == "1"
    assert (env[1].value_from.config_map_key_ref.name, env[1].value_from.config_map_key_ref.key) == (
        "cfg",
        "log-level",
    )
    assert env[2].value_from.secret_key_ref.key == "api-key"
    assert env[3].value_from.field_ref.field_path == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert [e.name for e in podspec.env_vars({"B": "2", "A": "1"})] == ["A", "B"]


def test_startup_probe_budget_covers_model_loading():
    p = podspec.probes("http", startup_seconds=905, startup_period_seconds=10)
    assert p.startup.failure_threshold * p.startup.period_seconds >= 905
    assert p.startup.http_get.path == "/health"
    assert (p.readiness.http_get.path, p.liveness.http_get.path) == ("/ready", "/health")
    assert p.readiness.http_get.port == "http"
    with pytest.raises(ValueError):
        podspec.probes(startup_seconds=0)


def test_model_fetch_uses_the_role_not_keys_and_a_writable_tmp():
    c = podspec.model_fetch_init_container(
        "public.ecr.aws/aws-cli/aws-cli:2.27.0",
        bucket="my-ai-bucket",
        prefix="/models/all-MiniLM-L6-v2/",
        model_volume="model",
        mount_path="/mnt/models",
        tmp_volume="tmp",
    )
    assert c.command == ["aws"]
    assert c.args == [
        "s3",
        "sync",
        "s3://my-ai-bucket/models/all-MiniLM-L6-v2",
        "/mnt/models",
        "--only-show-errors",
    ]
    env = {e.name: e.value for e in c.env}
    assert env["HOME"] == "/tmp"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert all(e.value_from is None for e in c.env)
    assert {(m.name, m.mount_path, m.read_only) for m in c.volume_mounts} == {
        ("model", "/mnt/models", None),
        ("tmp", "/tmp", None),
    }
    assert_secure(c)
    assert c.resources.limits and c.resources.requests


def test_log_shipper_is_a_native_sidecar_reading_the_shared_logs():
    c = podspec.log_shipper_sidecar(
        "cr.fluentbit.io/fluent/fluent-bit:4.0.3",
        log_volume="logs",
        log_path="/var/log/app",
        config_volume="flb",
    )
    assert c.restart_policy == "Always"
    assert c.image == "cr.fluentbit.io/fluent/fluent-bit:4.0.3"
    mounts = {m.name: m for m in c.volume_mounts}
    assert (mounts["logs"].mount_path, mounts["logs"].read_only) == ("/var/log/app", True)
    assert (mounts["flb"].sub_path, mounts["flb"].mount_path) == (
        "fluent-bit.conf",
        podspec.FLUENT_BIT_CONFIG_PATH,
    )
    assert c.args == ["-c", podspec.FLUENT_BIT_CONFIG_PATH]
    assert c.resources.requests == {"cpu": "50m", "memory": "64Mi"}
    assert c.resources.limits == {"cpu": "200m", "memory": "128Mi"}
    assert_secure(c)
    assert (
        podspec.log_shipper_sidecar(
            "i:1", log_volume="l", log_path="/l", config_volume="c", native=False
        ).restart_policy
        is None
    )


def test_fluent_bit_config_tails_the_log_path_and_outputs_where_asked():
    conf = podspec.fluent_bit_config("/var/log/app/")
    assert "Path             /var/log/app/*.log" in conf
    assert "[OUTPUT]\n    Name             stdout\n    Match            *" in conf
    custom = podspec.fluent_bit_config("/logs", output={"Name": "cloudwatch_logs", "region": "us-east-1"})
    assert "Name             cloudwatch_logs" in custom and "Match            *" in custom


def test_volumes():
    assert podspec.empty_dir_volume("m", "20Gi").empty_dir.size_limit == "20Gi"
    assert podspec.empty_dir_volume("shm", "1Gi", medium="Memory").empty_dir.medium == "Memory"
    assert podspec.pvc_volume("d", "datasets").persistent_volume_claim.claim_name == "datasets"
    cm = podspec.config_map_volume("c", "cfg", items={"config.json": "config.json"})
    assert [(i.key, i.path) for i in cm.config_map.items] == [("config.json", "config.json")]


def test_pod_spec_takes_placement_and_keeps_the_api_token_out():
    c = podspec.container("app", "repo/app:1.0", resources=SMALL)
    spec = podspec.pod_spec([c], service_account_name="app", placement=GPU_PLACEMENT, restart_policy="Never")
    assert spec.automount_service_account_token is False
    assert spec.node_selector == {"aiplatform.io/pool": "gpu"}
    assert [(t.key, t.operator, t.value, t.effect) for t in spec.tolerations] == [
        ("nvidia.com/gpu", "Equal", "true", "NoSchedule")
    ]
    sc = spec.security_context
    assert (sc.run_as_non_root, sc.run_as_user, sc.run_as_group, sc.fs_group) == (True, 10001, 10001, 10001)
    assert sc.seccomp_profile.type == "RuntimeDefault"
    bare = podspec.pod_spec([c], service_account_name="app")
    assert bare.tolerations is None and bare.node_selector is None


def test_config_checksum_is_order_independent_and_changes_with_data():
    a = podspec.config_checksum({"a": "1", "b": "2"})
    assert a == podspec.config_checksum({"b": "2", "a": "1"})
    assert a != podspec.config_checksum({"a": "1", "b": "3"})
    assert len(a) == 64


# -- keyed lists: what server-side apply would reject --------------------------------------------


def test_container_refuses_repeated_env_names_ports_and_mount_paths():
    with pytest.raises(ValueError) as info:
        podspec.container(
            "server",
            "repo/app:1.0",
            resources=SMALL,
            ports={"http": 8000, "metrics": 8000},
            env=[podspec.env_value("MODEL_DIR", "/models"), podspec.env_value("MODEL_DIR", "/models")],
            volume_mounts=[podspec.mount("model", "/models"), podspec.mount("cache", "/models")],
        )
    assert str(info.value) == (
        "container 'server':\n"
        "  - env: container 'server': duplicate env name 'MODEL_DIR'\n"
        "  - ports: container 'server': duplicate port '8000/TCP'\n"
        "  - volume_mounts: container 'server': duplicate mount path '/models'"
    )


def test_container_problems_read_any_container_args():
    hand_made = podspec.core.ContainerArgs(
        name="app",
        ports=[
            podspec.core.ContainerPortArgs(name="http", container_port=80),
            podspec.core.ContainerPortArgs(name="http", container_port=81),
            podspec.core.ContainerPortArgs(container_port=81, protocol="UDP"),
        ],
    )
    assert podspec.container_problems(hand_made) == [("ports", "container 'app': duplicate port name 'http'")]


def _pod(containers, init=(), volumes=()):
    return podspec.pod_spec(containers, init_containers=init, volumes=volumes, service_account_name="sa")


def test_pod_refuses_repeated_container_and_volume_names_and_mounts_without_a_volume():
    app = podspec.container(
        "app", "repo/app:1.0", resources=SMALL, volume_mounts=[podspec.mount("tmp", "/tmp")]
    )
    init = podspec.container(
        "app", "repo/init:1.0", resources=SMALL, volume_mounts=[podspec.mount("cache", "/c")]
    )
    tmp = podspec.empty_dir_volume("tmp", "1Gi")
    with pytest.raises(ValueError) as info:
        _pod([app], init=[init], volumes=[tmp, tmp])
    assert str(info.value) == (
        "pod_spec:\n"
        "  - containers: duplicate container name 'app'\n"
        "  - volumes: duplicate volume name 'tmp'\n"
        "  - init_containers[0].volume_mounts: container 'app': mount '/c' names no volume of the pod ('cache')"
    )
    assert _pod([app], volumes=[tmp]).containers == [app]


def test_containers_running_together_cannot_share_a_port():
    server = podspec.container("server", "repo/app:1.0", resources=SMALL, ports={"http": 2020})
    sidecar = podspec.container(
        "shipper", "repo/flb:1.0", resources=SMALL, ports={"http": 2020}, restart_policy="Always"
    )
    with pytest.raises(ValueError) as info:
        _pod([server], init=[sidecar])
    assert str(info.value) == (
        "pod_spec:\n"
        "  - containers: port name 'http' is declared by two containers\n"
        "  - containers: port '2020/TCP' is declared by two containers"
    )
    # A plain init container has finished before the server starts: its port is not shared.
    one_shot = podspec.container("warmup", "repo/app:1.0", resources=SMALL, ports={"http": 2020})
    assert len(_pod([server], init=[one_shot]).init_containers) == 1


def test_a_digest_is_pulled_once_a_tag_at_every_start():
    digest = "registry.example.com/ai/llm:1.4.0@sha256:" + "0" * 64
    assert validation.is_digest_pinned(digest)
    assert not validation.is_digest_pinned("registry.example.com/ai/llm:1.4.0")
    assert not validation.is_digest_pinned("registry.example.com/ai/llm@sha256:abc")
    assert podspec.container("app", digest, resources=SMALL).image_pull_policy == "IfNotPresent"
    tagged = podspec.container("app", "registry.example.com/ai/llm:1.4.0", resources=SMALL)
    assert tagged.image_pull_policy == "Always"


def test_a_secret_as_files_readable_by_the_pod_group_only():
    volume = podspec.secret_volume("secret-0", "openai-secret", keys=["huggingface-token"])
    assert volume.secret.secret_name == "openai-secret"
    assert [(i.key, i.path) for i in volume.secret.items] == [("huggingface-token", "huggingface-token")]
    assert volume.secret.default_mode == 0o440
    assert podspec.secret_volume("s", "every-key").secret.items is None
