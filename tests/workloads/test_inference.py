import json

import pulumi
import pytest

from aiplatform.plan.cloud import auto_name
from aiplatform.podspec import CONFIG_HASH_ANNOTATION, Resources, config_checksum
from aiplatform.routing import IngressRoute
from aiplatform.workloads import (
    Autoscaling,
    InferenceService,
    InferenceServiceArgs,
    LogShipping,
    ModelSource,
    ModelStorage,
    SecretFiles,
)
from tests.conftest import resolve
from tests.workloads.helpers import (
    GPU_PLACEMENT,
    IRSA,
    all_containers,
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

CONFIG = {
    "log-level": "INFO",
    "embedding-model": "all-MiniLM-L6-v2",
    "batch-size": "32",
    "config.json": json.dumps({"max_tokens": 512, "temperature": 0.7}),
}


def args(**overrides) -> InferenceServiceArgs:
    base = dict(
        provider=provider(),
        namespace="ai",
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/llama-inference:1.4.2",
        resources=Resources(cpu="2", memory="8Gi", memory_limit="10Gi"),
        gpus=1,
        placement=GPU_PLACEMENT,
        identity=IRSA,
        model=ModelSource(
            bucket="my-ai-bucket", prefix="models/all-MiniLM-L6-v2", kms_key_arn="arn:aws:kms:k"
        ),
        config_data=CONFIG,
        config_env={"LOG_LEVEL": "log-level", "EMBEDDING_MODEL": "embedding-model"},
        config_files=["config.json"],
        secret_env=[("OPENAI_API_KEY", "openai-secret", "api-key")],
        env={"MODEL_PATH": "/mnt/models/model.bin"},
        log_shipping=LogShipping(),
        autoscaling=Autoscaling(pods_metrics=[("requests_per_second", 100)]),
        startup_seconds=900,
        route=IngressRoute(class_name="nginx", host="llama.example.com", tls_secret_name="llama-tls"),
    )
    base.update(overrides)
    return InferenceServiceArgs(**base)


def pod_of(monitor) -> dict:
    return monitor.named("llama-deployment").inputs["spec"]["template"]["spec"]


def test_full_inference_service(build, monitor):
    svc = build(lambda: InferenceService("llama", args()))
    deployment = monitor.named("llama-deployment").inputs
    spec = deployment["spec"]
    pod = spec["template"]["spec"]

    # Zero-downtime rollout; replicas belong to the HPA.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert "replicas" not in spec
    assert spec["revisionHistoryLimit"] == 5
    assert spec["progressDeadlineSeconds"] >= 900
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "llama",
        "app.kubernetes.io/instance": "llama",
    }
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "aiplatform"
    assert labels["app.kubernetes.io/managed-by"] == "pulumi"

    assert_secure_pod(pod)
    assert_no_static_aws_keys(monitor)
    assert_k8s_children_use_provider(monitor)

    # Containers: sidecar first (native), then model fetch, then the server.
    assert [c["name"] for c in pod["initContainers"]] == ["log-shipper", "fetch-model"]
    server = container(pod, "server")
    assert server["image"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/llama-inference:1.4.2"
    assert server["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]

    # GPU placement: exactly the given placement's tolerations and selector.
    assert pod["nodeSelector"] == {"aiplatform.io/node-pool": "gpu"}
    assert pod["tolerations"] == [t.to_dict() for t in GPU_PLACEMENT.tolerations]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert server["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert server["resources"]["limits"]["memory"] == "10Gi"

    # Probes: the startup budget covers model loading.
    startup = server["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 900
    assert server["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert server["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}

    # Env: plain, from the generated ConfigMap, from the Secret.
    config_name = auto_name("llama-config")
    e = env(server)
    assert e["MODEL_PATH"]["value"] == "/mnt/models/model.bin"
    assert e["LOG_LEVEL"]["valueFrom"] == {"configMapKeyRef": {"name": config_name, "key": "log-level"}}
    assert e["EMBEDDING_MODEL"]["valueFrom"]["configMapKeyRef"]["key"] == "embedding-model"
    assert e["OPENAI_API_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "openai-secret", "key": "api-key"}}

    # Config files and the ConfigMap itself (auto-named).
    cm = monitor.named("llama-config").inputs
    assert "name" not in cm["metadata"] or cm["metadata"]["name"] == config_name
    assert cm["data"] == CONFIG
    vols = volumes(pod)
    assert vols["config"]["configMap"]["name"] == config_name
    assert vols["config"]["configMap"]["items"] == [{"key": "config.json", "path": "config.json"}]
    assert mounts(server)["config"] == {"name": "config", "mountPath": "/app/config", "readOnly": True}
    assert resolve(svc.config_map.metadata.name) == config_name

    # Model: the init container writes into the volume the server reads (read-only).
    fetch = container(pod, "fetch-model")
    assert fetch["image"] == "public.ecr.aws/aws-cli/aws-cli:2.27.0"
    assert fetch["args"][:3] == ["s3", "sync", "s3://my-ai-bucket/models/all-MiniLM-L6-v2"]
    assert "--only-show-errors" in fetch["args"]
    assert mounts(fetch)["model"]["mountPath"] == "/mnt/models"
    assert "readOnly" not in mounts(fetch)["model"]
    assert mounts(server)["model"] == {"name": "model", "mountPath": "/mnt/models", "readOnly": True}
    assert vols["model"] == {"name": "model", "emptyDir": {"sizeLimit": "20Gi"}}
    assert env(fetch)["HOME"]["value"] == "/tmp" and mounts(fetch)["tmp"]["mountPath"] == "/tmp"

    # Logs: the sidecar shares the log emptyDir with the server.
    shipper = container(pod, "log-shipper")
    assert shipper["restartPolicy"] == "Always"
    assert shipper["image"] == "cr.fluentbit.io/fluent/fluent-bit:4.0.3"
    assert mounts(shipper)["logs"]["mountPath"] == mounts(server)["logs"]["mountPath"] == "/var/log/app"
    assert "emptyDir" in vols["logs"]
    flb = monitor.named("llama-log-shipper").inputs
    assert "/var/log/app/*.log" in flb["data"]["fluent-bit.conf"]
    assert vols["log-shipper-config"]["configMap"]["name"] == auto_name("llama-log-shipper")
    assert mounts(shipper)["log-shipper-config"]["subPath"] == "fluent-bit.conf"

    # Config hash on the pod template.
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations[CONFIG_HASH_ANNOTATION] == config_checksum(
        {"config": CONFIG, "log-shipper": {"conf": flb["data"]["fluent-bit.conf"]}}
    )

    # ServiceAccount: its own, IRSA-annotated, no token automount.
    sa = monitor.named("llama-sa").inputs
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == "llama"
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": resolve(svc.role.arn)}
    assert sa["automountServiceAccountToken"] is False

    # Service, HPA, PDB, Ingress.
    service = monitor.named("llama-service").inputs["spec"]
    assert service["type"] == "ClusterIP"
    # The Service is awaited by the provider like every other object (no skipAwait).
    assert "annotations" not in monitor.named("llama-service").inputs["metadata"]
    assert service["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    hpa = monitor.named("llama-hpa").inputs["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
        },
        {
            "type": "Resource",
            "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}},
        },
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "100"},
            },
        },
    ]
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    pdb = monitor.named("llama-pdb").inputs["spec"]
    assert pdb["maxUnavailable"] == 1 and pdb["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    ingress = monitor.named("llama-ingress").inputs["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["rules"] == [
        {
            "host": "llama.example.com",
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": "llama", "port": {"name": "http"}}},
                    }
                ]
            },
        }
    ]
    assert ingress["tls"] == [{"hosts": ["llama.example.com"], "secretName": "llama-tls"}]
    assert resolve(svc.name) == "llama" and resolve(svc.namespace) == "ai"


def test_model_reader_policy_is_scoped_to_the_prefix(build, monitor):
    build(lambda: InferenceService("llama", args()))
    policy = json.loads(monitor.named("llama-aws-policy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::my-ai-bucket/models/all-MiniLM-L6-v2/*"],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:aws:s3:::my-ai-bucket"],
            "Condition": {
                "StringLike": {"s3:prefix": ["models/all-MiniLM-L6-v2/*", "models/all-MiniLM-L6-v2"]}
            },
        },
        {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": ["arn:aws:kms:k"]},
    ]
    trust = json.loads(monitor.named("llama-aws-role").inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["oidc.eks.us-east-1.amazonaws.com/id/ABC123:sub"] == "system:serviceaccount:ai:llama"
    # The pods wait for the role (Pod Identity associations must exist before pods start).
    # depends_on a component expands to its children: the role and its policy exist first.
    deps = monitor.named("llama-deployment").dependencies
    assert monitor.named("llama-aws-role").urn in deps and monitor.named("llama-aws-policy").urn in deps


def test_depends_on_orders_pods_after_secrets_and_ingress_after_the_controller(build, monitor):
    def program():
        secret = pulumi.CustomResource("test:index:ExternalSecret", "openai-es", {})
        controller = pulumi.CustomResource("test:index:Controller", "nginx", {})
        return InferenceService("llama", args(depends_on=[secret], ingress_depends_on=[controller]))

    build(program)
    assert monitor.named("openai-es").urn in monitor.named("llama-deployment").dependencies
    assert monitor.named("nginx").urn in monitor.named("llama-ingress").dependencies


def test_every_kubernetes_object_comes_after_what_the_workload_waits_for(build, monitor):
    # Found under the real engine: a Service, PDB and ConfigMap created before their namespace fail.
    def program():
        namespace = pulumi.CustomResource("kubernetes:core/v1:Namespace", "ns", {})
        return InferenceService("llama", args(depends_on=[namespace], metrics_path="/metrics"))

    build(program)
    kinds, not_after = k8s_objects_not_after(monitor, "ns")
    assert kinds >= {
        "ConfigMap",
        "ServiceAccount",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "PodMonitor",
        "Ingress",
    }
    assert not_after == []


def test_minimal_service_without_extras(build, monitor):
    svc = build(
        lambda: InferenceService(
            "embedder",
            InferenceServiceArgs(
                provider=provider(),
                namespace="ai",
                image="sentence-transformers-service:2.7.0",
                resources=Resources(cpu="500m", memory="2Gi"),
                autoscaling=None,
                replicas=1,
            ),
        )
    )
    spec = monitor.named("embedder-deployment").inputs["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 1
    assert "initContainers" not in pod and "tolerations" not in pod and "nodeSelector" not in pod
    assert "annotations" not in spec["template"]["metadata"]
    assert "nvidia.com/gpu" not in container(pod, "server")["resources"]["limits"]
    assert svc.hpa is None and svc.pdb is None and svc.ingress is None and svc.config_map is None
    assert svc.role is None and "annotations" not in monitor.named("embedder-sa").inputs["metadata"]
    assert not monitor.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    assert not monitor.of_type("kubernetes:policy/v1:PodDisruptionBudget")
    assert_secure_pod(pod)
    assert_k8s_children_use_provider(monitor)


def test_alb_route_has_tls_hosts_without_secret(build, monitor):
    route = IngressRoute(
        class_name="alb",
        host="api.example.com",
        path="/v1",
        annotations={"alb.ingress.kubernetes.io/scheme": "internet-facing"},
    )
    build(lambda: InferenceService("llama", args(route=route)))
    ingress = monitor.named("llama-ingress").inputs
    assert ingress["spec"]["tls"] == [{"hosts": ["api.example.com"]}]
    assert ingress["metadata"]["annotations"] == {"alb.ingress.kubernetes.io/scheme": "internet-facing"}
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/v1"


def test_single_replica_pvc_model_storage(build, monitor):
    build(
        lambda: InferenceService(
            "llama",
            args(autoscaling=None, replicas=1, model_storage=ModelStorage(kind="pvc", size="50Gi")),
        )
    )
    pvc = monitor.named("llama-model").inputs
    assert pvc["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "gp3",
        "resources": {"requests": {"storage": "50Gi"}},
    }
    vols = volumes(pod_of(monitor))
    assert vols["model"]["persistentVolumeClaim"]["claimName"] == auto_name("llama-model")
    assert not monitor.of_type("kubernetes:policy/v1:PodDisruptionBudget")


def test_config_change_changes_the_hash(build, monitor):
    build(lambda: InferenceService("llama", args()))
    first = monitor.named("llama-deployment").inputs["spec"]["template"]["metadata"]["annotations"]
    monitor.registrations.clear()
    build(lambda: InferenceService("llama", args(config_data={**CONFIG, "batch-size": "64"})))
    second = monitor.named("llama-deployment").inputs["spec"]["template"]["metadata"]["annotations"]
    assert first[CONFIG_HASH_ANNOTATION] != second[CONFIG_HASH_ANNOTATION]


def test_validation_lists_every_bad_field(build):
    bad = args(
        image="llama-inference",
        port=70000,
        gpus=1,
        placement=None,
        autoscaling=Autoscaling(min_replicas=5, max_replicas=2),
        model_storage=ModelStorage(kind="pvc"),
        config_env={"LOG_LEVEL": "missing-key"},
        secret_env=[("AWS_SECRET_ACCESS_KEY", "aws-credentials", "secretKey")],
    )
    with pytest.raises(ValueError) as info:
        InferenceService("Llama_Bad", bad)
    message = str(info.value)
    for fragment in (
        "name: 'Llama_Bad'",
        "image: 'llama-inference'",
        "port: 70000",
        "gpus: > 0 needs a placement with gpu_resource",
        "autoscaling.max_replicas: must be >= min_replicas (5)",
        "model_storage.kind: a ReadWriteOnce PVC",
        "config_env.LOG_LEVEL: key 'missing-key' is not in config_data",
        "secret_env.AWS_SECRET_ACCESS_KEY: static AWS credentials are not allowed",
    ):
        assert fragment in message, fragment
    with pytest.raises(ValueError, match="an emptyDir starts empty"):
        InferenceService("llama", args(model=None, model_storage=ModelStorage()))
    with pytest.raises(ValueError, match="model: fetching from S3 needs identity"):
        InferenceService("llama", args(identity=None))


def test_tolerates_unknowns_in_preview(monitor):
    """With preview=True the generated names are unknown; the component must still build."""
    from pulumi.runtime import settings as pulumi_settings

    from tests.conftest import _sync_await, run_pulumi_func  # type: ignore[attr-defined]

    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project="aiplatform", stack="test", preview=True, monitor=monitor)
    _sync_await(run_pulumi_func(lambda: InferenceService("llama", args())))
    assert monitor.of_type("kubernetes:apps/v1:Deployment")


def test_env_mounts_and_ports_the_service_sets_itself_cannot_be_given_again():
    """MODEL_DIR twice made the API server reject the Deployment: every such repeat is an argument error."""
    bad = args(
        env={"MODEL_DIR": "/models", "LOG_DIR": "/logs"},
        config_files={"config.json": "/mnt/models"},
        port=2020,
        log_shipping=LogShipping(log_path="/tmp"),
    )
    with pytest.raises(ValueError) as info:
        InferenceService("llama", bad)
    assert str(info.value).splitlines() == [
        "InferenceService 'llama':",
        "  - env.MODEL_DIR: already set by model_storage.mount_path",
        "  - env.LOG_DIR: already set by log_shipping.log_path",
        "  - model_storage.mount_path: mount path '/mnt/models' is already used by config_files",
        "  - log_shipping.log_path: mount path '/tmp' is already used by tmp_size (the writable /tmp)",
        "  - port: 2020 is the log shipper's port (a pod's containers share its ports)",
    ]


def test_the_model_dir_reaches_the_server_once(build, monitor):
    build(lambda: InferenceService("llama", args()))
    server = container(pod_of(monitor), "server")
    names = [e["name"] for e in server["env"]]
    assert names.count("MODEL_DIR") == 1 and len(names) == len(set(names))
    assert env(server)["MODEL_DIR"] == {"name": "MODEL_DIR", "value": "/mnt/models"}


def test_pods_run_as_a_high_user_and_group_unless_the_workload_names_its_own(build, monitor):
    build(lambda: InferenceService("llama", args()))
    assert pod_of(monitor)["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    monitor.registrations.clear()
    build(lambda: InferenceService("llama", args(run_as_user=65532, run_as_group=65533)))
    sc = pod_of(monitor)["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (65532, 65533, 65533)
    with pytest.raises(ValueError) as info:
        InferenceService("llama", args(run_as_user=0, run_as_group=2**31))
    assert str(info.value).splitlines()[1:] == [
        "  - run_as_user: 0 must be between 1 and 2147483647 (0 is root)",
        "  - run_as_group: 2147483648 must be between 1 and 2147483647 (0 is root)",
    ]


def test_secrets_mount_as_read_only_files(build, monitor):
    files = SecretFiles("hf-secret", "/var/run/secrets/hf", ("token",))
    build(lambda: InferenceService("llama", args(secret_files=[files])))
    pod = pod_of(monitor)
    assert volumes(pod)["secret-0"] == {
        "name": "secret-0",
        "secret": {
            "secretName": "hf-secret",
            "items": [{"key": "token", "path": "token"}],
            "defaultMode": 0o440,
        },
    }
    assert mounts(container(pod, "server"))["secret-0"] == {
        "name": "secret-0",
        "mountPath": "/var/run/secrets/hf",
        "readOnly": True,
    }
    # Only the server reads it: not the log shipper, not the model fetcher.
    assert [c["name"] for c in all_containers(pod) if "secret-0" in mounts(c)] == ["server"]
    bad = [SecretFiles("Bad_Name", "relative", ("a b",)), SecretFiles("ok", "/tmp")]
    with pytest.raises(ValueError) as info:
        InferenceService("llama", args(secret_files=bad))
    assert str(info.value).splitlines()[1:] == [
        "  - secret_files[0].secret: 'Bad_Name' is not a Secret name",
        "  - secret_files[0].mount_path: 'relative' must be absolute",
        "  - secret_files[0].keys: 'a b' is not a Secret key (letters, digits, '-', '_', '.')",
        "  - secret_files[1].mount_path: mount path '/tmp' is already used by tmp_size (the writable /tmp)",
    ]


DIGEST = "@sha256:" + "0" * 64


def test_findings_the_service_causes_on_purpose_are_explained_on_the_deployment(build, monitor):
    pinned = ModelSource(
        bucket="my-ai-bucket", prefix="models/m", image="registry.example.com/aws-cli:2" + DIGEST
    )
    build(
        lambda: InferenceService(
            "llama",
            args(
                image=args().image + DIGEST,
                model=pinned,
                log_shipping=LogShipping(image="registry.example.com/fluent-bit:4" + DIGEST),
                run_as_user=1000,
                accepted_findings={"CKV_K8S_21": "the team's namespace is chosen by the platform"},
            ),
        )
    )
    assert monitor.named("llama-deployment").inputs["metadata"]["annotations"] == {
        "checkov.io/skip1": "CKV_K8S_15=images are pinned by digest: IfNotPresent runs exactly that image, "
        "a pull at every start adds nothing",
        "checkov.io/skip2": "CKV_K8S_21=the team's namespace is chosen by the platform",
        "checkov.io/skip3": "CKV_K8S_35=OPENAI_API_KEY through secret_env, for an application that reads it "
        "only from the environment (secret_files mounts the others as files)",
        "checkov.io/skip4": "CKV_K8S_40=runs as UID 1000: the workload's own run_as_user",
    }
    # Tagged images (pulled Always), no secret in the environment, a high UID: nothing to explain.
    monitor.registrations.clear()
    build(lambda: InferenceService("llama", args(secret_env=[])))
    assert "annotations" not in monitor.named("llama-deployment").inputs["metadata"]
    with pytest.raises(
        ValueError, match="accepted_findings.CKV_K8S_15: the reason must be given, without '='"
    ):
        InferenceService("llama", args(accepted_findings={"CKV_K8S_15": "a=b"}))


def test_an_auto_named_config_map_is_replaced_on_change_and_a_named_one_updated_in_place(build, monitor):
    build(lambda: InferenceService("llama", args()))
    assert monitor.named("llama-config").replace_on_changes == ["data", "binaryData"]
    assert monitor.named("llama-log-shipper").replace_on_changes == ["data", "binaryData"]
    monitor.registrations.clear()
    build(lambda: InferenceService("named", args(config_map_name="ai-service-config")))
    named = monitor.named("named-config")
    assert named.inputs["metadata"]["name"] == "ai-service-config"
    # Replacing a fixed name deletes first, and the engine then re-creates its readers: update instead.
    assert named.replace_on_changes == []
