"""The whole program under mocks, for both committed stacks and what-if variants."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from aiplatform.config import ConfigError
from aiplatform.plan.cli import plan as plan_stack
from aiplatform.plan.mock_engine import PlatformMocks, RecordingMonitor
from aiplatform.scheduling import GPU_TAINT
from tests.program import plan_config, planned
from tests.stacks import STACKS, nginx_config, stack_config

K8S_PROVIDER = "pulumi:providers:kubernetes"


def of_type(run, typ):
    return [r for r in run.registrations if r.type == typ]


def node_groups(stack):
    """Node group inputs keyed by the group name of the config."""
    return {
        r.name.removeprefix("aiplatform-nodes-"): r.inputs
        for r in of_type(planned(stack), "aws:eks/nodeGroup:NodeGroup")
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_urn_is_unique(stack):
    urns = Counter(r.urn for r in planned(stack).registrations)
    assert [urn for urn, n in urns.items() if n > 1] == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_cluster_provider(stack):
    run = planned(stack)
    (provider,) = of_type(run, K8S_PROVIDER)
    assert provider.inputs["kubeconfig"] == "[secret]"
    k8s = [r for r in run.registrations if r.custom and r.type.startswith("kubernetes:")]
    assert len(k8s) > 40
    assert {r.provider_urn for r in k8s} == {provider.urn}


@pytest.mark.parametrize(("stack", "azs", "nats"), [("dev", 2, 1), ("prod", 3, 3)])
def test_network_shape_per_stack(stack, azs, nats):
    run = planned(stack)
    subnets = of_type(run, "aws:ec2/subnet:Subnet")
    public = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"]
    private = [s for s in subnets if s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"]
    assert (len(public), len(private)) == (azs, azs)
    assert len(of_type(run, "aws:ec2/natGateway:NatGateway")) == nats
    assert len(of_type(run, "aws:ec2/flowLog:FlowLog")) == (1 if stack == "prod" else 0)


def test_prod_cluster_is_private_with_encrypted_secrets():
    (cluster,) = of_type(planned("prod"), "aws:eks/cluster:Cluster")
    vpc = cluster.inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["publicAccessCidrs"] == ["198.51.100.0/24"]
    (encryption,) = (
        cluster.inputs["encryptionConfig"]
        if isinstance(cluster.inputs["encryptionConfig"], list)
        else [cluster.inputs["encryptionConfig"]]
    )
    assert encryption["resources"] == ["secrets"]
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"


def test_prod_has_gpu_groups_with_the_nvidia_ami_and_taint_one_of_them_spot():
    groups = node_groups("prod")
    gpu = {name: g for name, g in groups.items() if name.startswith("gpu-")}
    assert len(gpu) >= 2
    assert {g["amiType"] for g in gpu.values()} == {"AL2023_x86_64_NVIDIA"}
    assert "SPOT" in {g["capacityType"] for g in gpu.values()}
    for g in gpu.values():
        assert {"key": GPU_TAINT.key, "value": GPU_TAINT.value, "effect": "NO_SCHEDULE"} in g["taints"]
    assert groups["gpu-inference"]["scalingConfig"]["minSize"] == 2


def test_dev_gpu_groups_scale_from_zero():
    groups = node_groups("dev")
    assert {name: g["scalingConfig"]["minSize"] for name, g in groups.items() if name != "system"} == {
        "gpu-inference": 0,
        "gpu-training": 0,
    }


@pytest.mark.parametrize(
    ("stack", "accelerators"),
    [
        ("dev", {"gpu-inference": "nvidia-a10g", "gpu-training": "nvidia-a10g"}),
        (
            "prod",
            {
                "gpu-inference": "nvidia-a10g",
                "gpu-training": "nvidia-tesla-a100",
                "gpu-training-spot": "nvidia-l40s",
            },
        ),
    ],
)
def test_gpu_groups_tell_the_autoscaler_they_bring_gpus(stack, accelerators):
    """The autoscaler counts a node (and an empty group's template) as GPU capacity by this label."""
    run = planned(stack)
    groups = node_groups(stack)
    label = "k8s.amazonaws.com/accelerator"
    assert {name: g["labels"].get(label) for name, g in groups.items() if name != "system"} == accelerators
    assert label not in groups["system"]["labels"]
    template_key = f"k8s.io/cluster-autoscaler/node-template/label/{label}"
    asg_tags = [
        t.inputs["tag"]
        for t in of_type(run, "aws:autoscaling/tag:Tag")
        if t.inputs["tag"]["key"] == template_key
    ]
    assert sorted(t["value"] for t in asg_tags) == sorted(accelerators.values())
    assert sorted(g["tags"][template_key] for name, g in groups.items() if name != "system") == sorted(
        accelerators.values()
    )


@pytest.mark.parametrize("stack", STACKS)
def test_releases_are_pinned_to_the_stack_versions(stack):
    charts = stack_config(stack)["aiplatform:charts"]
    releases = {
        r.inputs["chart"]: r.inputs["version"]
        for r in of_type(planned(stack), "kubernetes:helm.sh/v3:Release")
    }
    assert releases["external-secrets"] == charts["externalSecrets"]
    assert releases["aws-load-balancer-controller"] == charts["awsLoadBalancerController"]
    assert releases["nvidia-device-plugin"] == charts["nvidiaDevicePlugin"]
    assert releases["cluster-autoscaler"] == charts["clusterAutoscaler"]
    assert releases["prometheus-adapter"] == charts["prometheusAdapter"]


def test_charts_come_from_the_mirror_and_a_per_chart_repository_wins():
    config = stack_config("dev")
    config["aiplatform:charts"] = {
        **config["aiplatform:charts"],
        "mirror": "https://charts.internal.example.com/helm",
        "repositories": {"externalSecrets": "http://127.0.0.1:8879"},
    }
    repos = {
        r.inputs["chart"]: r.inputs["repositoryOpts"]["repo"]
        for r in of_type(plan_config(config), "kubernetes:helm.sh/v3:Release")
    }
    assert repos.pop("external-secrets") == "http://127.0.0.1:8879"
    assert set(repos.values()) == {"https://charts.internal.example.com/helm"}
    assert len(repos) >= 5


def test_without_a_mirror_each_chart_comes_from_its_project():
    repos = {
        r.inputs["chart"]: r.inputs["repositoryOpts"]["repo"]
        for r in of_type(planned("dev"), "kubernetes:helm.sh/v3:Release")
    }
    assert repos["external-secrets"] == "https://charts.external-secrets.io"
    assert repos["aws-load-balancer-controller"] == "https://aws.github.io/eks-charts"
    assert repos["cluster-autoscaler"] == "https://kubernetes.github.io/autoscaler"
    assert repos["kube-prometheus-stack"] == "https://prometheus-community.github.io/helm-charts"


def test_prod_protects_its_stateful_resources():
    run = planned("prod")
    stateful = [
        r
        for r in run.registrations
        if r.type
        in {
            "aws:kms/key:Key",
            "aws:secretsmanager/secret:Secret",
            "aws:s3/bucket:Bucket",
            "aws:efs/fileSystem:FileSystem",
            "aws:eks/cluster:Cluster",
        }
    ]
    assert {r.type for r in stateful} >= {
        "aws:kms/key:Key",
        "aws:secretsmanager/secret:Secret",
        "aws:s3/bucket:Bucket",
    }
    assert [r.name for r in stateful if not r.protect] == []
    storage_classes = [r for r in run.registrations if r.type == "kubernetes:storage.k8s.io/v1:StorageClass"]
    assert {sc.inputs["reclaimPolicy"] for sc in storage_classes} == {"Retain"}


def test_dev_does_not_protect_so_it_can_be_torn_down():
    assert [r.name for r in planned("dev").registrations if r.protect] == []


def test_the_kubeconfig_is_exported_only_as_a_secret():
    outputs = planned("dev").outputs
    assert outputs["kubeconfig"] == "[secret]"
    assert outputs["clusterName"] == "ai-dev"


def test_hpa_custom_metric_is_served_by_the_adapter_rule():
    run = planned("dev")
    (hpa,) = of_type(run, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    pods_metrics = [m["pods"]["metric"]["name"] for m in hpa.inputs["spec"]["metrics"] if m["type"] == "Pods"]
    adapter = next(
        r for r in of_type(run, "kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "prometheus-adapter"
    )
    served = {rule["name"]["as"] for rule in adapter.inputs["values"]["rules"]["custom"]}
    assert pods_metrics == ["requests_per_second"] and set(pods_metrics) <= served
    # ... and Prometheus scrapes the series the rule reads, once the operator's CRDs exist.
    monitor = next(
        r
        for r in of_type(run, "kubernetes:monitoring.coreos.com/v1:PodMonitor")
        if r.name.startswith("llama")
    )
    assert monitor.inputs["spec"]["podMetricsEndpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "15s"}
    ]
    prometheus = next(
        r
        for r in of_type(run, "kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "kube-prometheus-stack"
    )
    assert prometheus.urn in monitor.dependencies


def test_names_at_the_config_limits_plan_the_longest_valid_aws_names():
    """The config's name limits are the components' own: a name at the limit plans, and its AWS name fits."""
    config = stack_config("dev")
    group = "g" * 38
    config["aiplatform:nodeGroups"]["gpu"][1]["name"] = group
    config["aiplatform:workloads"]["training"][0]["gpu"]["nodeGroup"] = group
    server = config["aiplatform:workloads"]["inference"][0]
    server["name"] = "l" * 47
    server["ingress"]["host"] = "llm.dev.example.com"
    config["aiplatform:tags"] = {**config["aiplatform:tags"], **{f"tag-{i}": "x" for i in range(36)}}
    run = plan_config(config)
    (node_group,) = [r for r in of_type(run, "aws:eks/nodeGroup:NodeGroup") if r.name.endswith(group)]
    assert len(node_group.name) + 8 == 63  # "aiplatform-nodes-<38>" and Pulumi's "-<7 random>"
    (role,) = [r for r in of_type(run, "aws:iam/role:Role") if r.name.startswith("l" * 47)]
    assert len(role.name) + 8 == 64
    assert max(len(g.inputs["tags"]) for g in of_type(run, "aws:eks/nodeGroup:NodeGroup")) == 50


def test_the_dcgm_service_monitor_waits_for_the_prometheus_crds():
    run = planned("prod")
    releases = {r.inputs["chart"]: r for r in of_type(run, "kubernetes:helm.sh/v3:Release")}
    assert releases["dcgm-exporter"].inputs["values"]["serviceMonitor"]["enabled"] is True
    assert releases["kube-prometheus-stack"].urn in releases["dcgm-exporter"].dependencies


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_gpu_workloads_depend_on_their_node_group(stack):
    """Created after it and deleted before it: EKS drains a deleted group's nodes under them otherwise."""
    run = planned(stack)
    groups = {r.name: r.urn for r in of_type(run, "aws:eks/nodeGroup:NodeGroup")}
    deployment = next(
        r for r in of_type(run, "kubernetes:apps/v1:Deployment") if r.name == "llama-inference-deployment"
    )
    assert groups["aiplatform-nodes-gpu-inference"] in deployment.dependencies


def test_the_program_tolerates_unknown_values_in_preview():
    run = plan_config(stack_config("dev"), "dev", preview=True)
    assert len(run.registrations) == len(planned("dev").registrations)


def test_an_invalid_config_registers_nothing():
    config = stack_config("prod")
    config["aiplatform:workloads"]["inference"][0]["image"] = "registry.example.com/ai/llama-inference:latest"
    monitor = RecordingMonitor(PlatformMocks())
    with pytest.raises(ConfigError, match=r"inference\[0\]\.image: prod runs images by digest"):
        plan_config(config, "prod", monitor=monitor)
    assert monitor.registrations == []


def test_bring_your_own_cluster_creates_no_aws_cluster_resources():
    config = stack_config("dev")
    config["aiplatform:cluster"] = {
        "mode": "existing",
        "name": "shared-eks",
        "identityMode": "irsa",
        "existing": {
            "kubeconfigSecret": "existingKubeconfig",
            "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "oidcIssuerUrl": "https://oidc.eks.us-east-1.amazonaws.com/id/ABC",
        },
    }
    config["aiplatform:storage"]["sharedFileSystem"] = {"enabled": False}
    config["aiplatform:workloads"]["training"][0].pop("sharedStorageMountPath")
    config["aiplatform:existingKubeconfig"] = {"secure": "v1:ciphertext"}
    run = plan_config(config, "byo")
    types = Counter(r.type for r in run.registrations)
    assert not [t for t in types if t.startswith(("aws:ec2/", "aws:eks/cluster", "aws:eks/nodeGroup"))]
    (provider,) = of_type(run, K8S_PROVIDER)
    assert provider.inputs["kubeconfig"] == "[secret]"
    trust = json.loads(
        next(
            r for r in of_type(run, "aws:iam/role:Role") if "external-secrets" in r.inputs["assumeRolePolicy"]
        ).inputs["assumeRolePolicy"]
    )
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:external-secrets:external-secrets",
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
    }


def test_bring_your_own_cluster_without_its_kubeconfig_names_the_key():
    config = stack_config("dev")
    config["aiplatform:cluster"] = {"mode": "existing", "identityMode": "pod-identity", "existing": {}}
    config["aiplatform:storage"]["sharedFileSystem"] = {"enabled": False}
    config["aiplatform:workloads"]["training"][0].pop("sharedStorageMountPath")
    monitor = RecordingMonitor(PlatformMocks())
    with pytest.raises(ConfigError, match="aiplatform:existingKubeconfig: missing"):
        plan_config(config, "byo", monitor=monitor)
    assert monitor.registrations == []


def test_nginx_ingress_serves_tls_from_a_synced_secret_and_warns_it_is_retired(tmp_path):
    stack_file = tmp_path / "Pulumi.nginx.yaml"
    stack_file.write_text(yaml.safe_dump({"config": nginx_config()}), encoding="utf-8")
    result = plan_stack("nginx", stack_file, tmp_path / "out")
    assert any("retired" in warning for warning in result.warnings)
    run = result.run
    releases = {r.inputs["chart"] for r in of_type(run, "kubernetes:helm.sh/v3:Release")}
    assert "ingress-nginx" in releases
    ingresses = {
        r.inputs["spec"]["rules"][0]["host"]: r.inputs
        for r in of_type(run, "kubernetes:networking.k8s.io/v1:Ingress")
    }
    llm = ingresses["llm.dev.example.com"]
    assert llm["spec"]["ingressClassName"] == "nginx"
    assert llm["spec"]["tls"] == [{"hosts": ["llm.dev.example.com"], "secretName": "ingress-tls"}]
    assert llm["metadata"]["annotations"]["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    external = [
        r.inputs["metadata"]["name"] for r in of_type(run, "kubernetes:external-secrets.io/v1:ExternalSecret")
    ]
    assert "ingress-tls" in external


def test_nginx_without_the_tls_secret_in_the_workload_namespace_is_a_config_error():
    config = nginx_config()
    config["aiplatform:secrets"][-1]["namespace"] = "ml-training"
    with pytest.raises(
        ConfigError,
        match="aiplatform:ingress.tlsSecret: declare secret 'ingress-tls' in namespace 'ml-serving'",
    ):
        plan_config(config, "nginx")


def test_model_servers_drain_before_stopping_and_the_alb_checks_their_readiness_path():
    run = planned("dev")
    deployment = next(
        r for r in of_type(run, "kubernetes:apps/v1:Deployment") if r.name == "llama-inference-deployment"
    )
    spec = deployment.inputs["spec"]["template"]["spec"]
    (server,) = [c for c in spec["containers"] if c["name"] == "server"]
    assert server["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}
    assert spec["terminationGracePeriodSeconds"] > 15
    ingress = next(
        r for r in of_type(run, "kubernetes:networking.k8s.io/v1:Ingress") if r.name.startswith("llama")
    )
    annotations = ingress.inputs["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/health"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"


@pytest.mark.parametrize("stack", STACKS)
def test_the_vpc_cni_has_its_own_role_and_the_node_role_no_cni_policy(stack):
    run = planned(stack)
    attached = sorted(
        r.inputs["policyArn"]
        for r in of_type(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("aiplatform-nodes-")
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]
    cni = {r.name: r for r in run.registrations if r.name.startswith("aiplatform-cluster-vpc-cni-")}
    assert cni["aiplatform-cluster-vpc-cni-managed-0"].inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
    )
    trust = json.loads(cni["aiplatform-cluster-vpc-cni-role"].inputs["assumeRolePolicy"])
    (subject,) = [
        v for k, v in trust["Statement"][0]["Condition"]["StringEquals"].items() if k.endswith(":sub")
    ]
    assert subject == "system:serviceaccount:kube-system:aws-node"
    (addon,) = [r for r in of_type(run, "aws:eks/addon:Addon") if r.inputs["addonName"] == "vpc-cni"]
    assert cni["aiplatform-cluster-vpc-cni-role"].urn in addon.dependencies
    # The nodes boot only once the CNI add-on (and so its role) exists.
    for group in of_type(run, "aws:eks/nodeGroup:NodeGroup"):
        assert addon.urn in group.dependencies


def test_a_workload_may_name_the_user_and_group_its_image_needs():
    config = stack_config("dev")
    config["aiplatform:workloads"]["batch"][0]["securityContext"] = {"runAsUser": 65532, "runAsGroup": 65532}
    (cron,) = of_type(plan_config(config, "dev"), "kubernetes:batch/v1:CronJob")
    sc = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (65532, 65532, 65532)


def test_the_orchestrator_reads_its_hugging_face_token_from_a_file():
    run = planned("dev")
    (deployment,) = [
        r
        for r in of_type(run, "kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == "llm-orchestrator"
    ]
    pod = deployment.inputs["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    env = {e["name"]: e for e in server["env"]}
    assert env["HF_TOKEN_PATH"] == {
        "name": "HF_TOKEN_PATH",
        "value": "/var/run/secrets/huggingface/huggingface-token",
    }
    assert [n for n, e in env.items() if "secretKeyRef" in e.get("valueFrom", {})] == ["OPENAI_API_KEY"]
    assert {"name": "secret-0", "mountPath": "/var/run/secrets/huggingface", "readOnly": True} in server[
        "volumeMounts"
    ]
    assert {
        "name": "secret-0",
        "secret": {
            "secretName": "openai-secret",
            "items": [{"key": "huggingface-token", "path": "huggingface-token"}],
            "defaultMode": 0o440,
        },
    } in pod["volumes"]


def test_a_workload_reading_a_secret_only_as_files_waits_for_its_external_secret():
    config = stack_config("dev")
    del config["aiplatform:workloads"]["inference"][2]["secretEnv"]
    run = plan_config(config, "dev")
    (external,) = of_type(run, "kubernetes:external-secrets.io/v1:ExternalSecret")
    (deployment,) = [
        r
        for r in of_type(run, "kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == "llm-orchestrator"
    ]
    assert external.urn in deployment.dependencies
