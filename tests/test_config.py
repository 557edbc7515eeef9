"""The stack config model: both stacks validate, and every bad config names its key path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aiplatform.compute.instance_types import gpu_instance_families
from aiplatform.config import ConfigError, PlatformSettings, parse_settings
from tests.stacks import STACKS, sections

Mutation = Callable[[dict[str, Any]], None]


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_validate(stack):
    settings = parse_settings(sections(stack))
    assert isinstance(settings, PlatformSettings)
    assert settings.environment == stack


def test_settings_are_immutable():
    settings = parse_settings(sections("dev"))
    with pytest.raises(Exception, match="frozen"):
        settings.environment = "prod"


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets ``a.b[0].c`` to ``value``."""

    def mutate(config: dict[str, Any]) -> None:
        parts = path.replace("[", ".").replace("]", "").split(".")
        target: Any = config
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(config: dict[str, Any]) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        target: Any = config
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return mutate


INF0 = "workloads.inference[0]"

# (stack, mutation, the exact problem line expected)
INVALID: list[tuple[str, Mutation, str]] = [
    (
        "dev",
        _set("workloads.inference[2].env", {"AWS_SECRET_ACCESS_KEY": "x"}),
        "aiplatform:workloads.inference[2].env.AWS_SECRET_ACCESS_KEY: AWS_SECRET_ACCESS_KEY: no static AWS keys; "
        "pods get AWS access from their IAM role",
    ),
    (
        "dev",
        _set("workloads.inference[2].env", {"OPENAI_API_KEY": "x"}),
        "aiplatform:workloads.inference[2].secretEnv[0].name: OPENAI_API_KEY is already set by env.OPENAI_API_KEY",
    ),
    # Env names and mount paths the platform sets: the API server rejects a container repeating one.
    (
        "dev",
        _set("workloads.inference[1].env", {"MODEL_DIR": "/models"}),
        "aiplatform:workloads.inference[1].env.MODEL_DIR: MODEL_DIR is set by the platform from "
        "modelStorage.mountPath: remove it",
    ),
    (
        "dev",
        _set(f"{INF0}.env", {"LOG_DIR": "/logs"}),
        f"aiplatform:{INF0}.env.LOG_DIR: LOG_DIR is set by the platform from logShipper.logPath: remove it",
    ),
    (
        "dev",
        _set("workloads.training[0].env", {"JOB_COMPLETION_INDEX": "0"}),
        "aiplatform:workloads.training[0].env.JOB_COMPLETION_INDEX: JOB_COMPLETION_INDEX is set by the "
        "platform from the completion index: remove it",
    ),
    (
        "dev",
        _set(f"{INF0}.modelStorage.mountPath", "/var/log/app"),
        f"aiplatform:{INF0}.logShipper.logPath: '/var/log/app' is already mounted for modelStorage.mountPath",
    ),
    (
        "dev",
        _set("workloads.inference[2].config.files[0].mountPath", "/tmp"),
        "aiplatform:workloads.inference[2].config.files[0].mountPath: '/tmp' is already mounted for "
        "the writable /tmp",
    ),
    (
        "dev",
        _set("workloads.training[0].sharedStorageMountPath", "/dev/shm"),
        "aiplatform:workloads.training[0].sharedStorageMountPath: '/dev/shm' is already mounted for "
        "the 2Gi shared memory",
    ),
    (
        "dev",
        _set("workloads.batch[0].configMountPath", "/tmp"),
        "aiplatform:workloads.batch[0].configMountPath: '/tmp' is already mounted for the writable /tmp",
    ),
    (
        "dev",
        _set(f"{INF0}.port", 2020),
        f"aiplatform:{INF0}.port: 2020 is the log shipper's port (a pod's containers share ports)",
    ),
    (
        "dev",
        _set("workloads.batch[0].securityContext", {"runAsUser": 0}),
        "aiplatform:workloads.batch[0].securityContext.runAsUser: Input should be greater than or equal to 1",
    ),
    (
        "dev",
        _set("workloads.inference[2].secretFiles[0].secret", "missing"),
        "aiplatform:workloads.inference[2].secretFiles[0].secret: no secret 'missing' in namespace 'ml-serving'",
    ),
    (
        "dev",
        _set("workloads.inference[2].secretFiles[0].keys", ["api-key", "token"]),
        "aiplatform:workloads.inference[2].secretFiles[0].keys: secret 'openai-secret' has no key 'token'",
    ),
    (
        "dev",
        _set("workloads.inference[2].secretFiles[0].mountPath", "/app/config"),
        "aiplatform:workloads.inference[2].secretFiles[0].mountPath: '/app/config' is already mounted for "
        "config.files[0].mountPath",
    ),
    (
        "dev",
        _drop("workloads.inference[1].modelFetch"),
        "aiplatform:workloads.inference[1].modelFetch: an emptyDir model volume starts empty: set modelFetch to fill it",
    ),
    (
        "dev",
        _set("workloads.training[0].resources", {"requests": {"memory": "1Gi"}, "limits": {"memory": "2Gi"}}),
        "aiplatform:workloads.training[0].resources.limits.memory: must exceed the 2Gi /dev/shm that counts against it",
    ),
    (
        "dev",
        _set("cluster.adminRoleArns", []),
        "aiplatform:cluster.adminRoleArns: list at least one IAM role: the cluster grants its creator no access",
    ),
    (
        "dev",
        _set("workloads.batch[0].name", "n" * 53),
        "aiplatform:workloads.batch[0].name: at most 52 characters: the CronJob controller appends 11 to each Job's name",
    ),
    (
        "dev",
        _set(f"{INF0}.autoscaling.maxReplicas", 1),
        f"aiplatform:{INF0}.autoscaling.maxReplicas: must be >= minReplicas (2)",
    ),
    (
        "dev",
        _set(f"{INF0}.autoscaling.maxReplicas", 10),
        f"aiplatform:{INF0}.autoscaling.maxReplicas: at most 3 of 10 replicas can run: node group 'gpu-inference' "
        "fits 3 (3 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 4 (4 GPUs, 1 per pod); "
        "lower maxReplicas, raise those limits, or set acceptsLowerCeiling: true",
    ),
    (
        "prod",
        _set("namespaces[0].quota.gpus", 8),
        f"aiplatform:{INF0}.autoscaling.maxReplicas: at most 8 of 10 replicas can run: namespace 'ml-serving' "
        "GPU quota fits 8 (8 GPUs, 1 per pod); lower maxReplicas, raise those limits, or set "
        "acceptsLowerCeiling: true",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[0].scaling", {"minSize": 1, "desiredSize": 1, "maxSize": 1}),
        f"aiplatform:{INF0}.autoscaling.minReplicas: 2 replicas never fit: node group 'gpu-inference' fits 1 "
        "(1 node at most x 1 per node)",
    ),
    (
        "dev",
        lambda c: c["workloads"]["inference"][1].update(
            gpu={"nodeGroup": "gpu-inference", "count": 1}, replicas=5
        ),
        "aiplatform:workloads.inference[1].replicas: 5 replicas never fit: node group 'gpu-inference' fits 3 "
        "(3 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 4 (4 GPUs, 1 per pod)",
    ),
    (
        "dev",
        _set(f"{INF0}.replicaCount", 3),
        f"aiplatform:{INF0}.replicaCount: unknown key (did you mean replicas?)",
    ),
    (
        "dev",
        _set("cluster.endpont", {"publicAccess": True}),
        "aiplatform:cluster.endpont: unknown key (did you mean endpoint?)",
    ),
    (
        "dev",
        _set(f"{INF0}.autoscaling.maxReplica", 3),
        f"aiplatform:{INF0}.autoscaling.maxReplica: unknown key (did you mean maxReplicas?)",
    ),
    (
        "dev",
        _set("cluster.xyzzy", 1),
        "aiplatform:cluster.xyzzy: unknown key (check the spelling against Pulumi.yaml)",
    ),
    (
        "dev",
        # An unquoted 1.30 in YAML is the number 1.3.
        _set("cluster.kubernetesVersion", 1.3),
        "aiplatform:cluster.kubernetesVersion: a number (1.3) where text is expected: quote the value in the "
        "stack file",
    ),
    (
        "dev",
        _set("network.vpcCidr", "10.0.0.1/16"),
        "aiplatform:network.vpcCidr: '10.0.0.1/16' is not a CIDR block with its host bits zero (e.g. 10.0.0.0/16)",
    ),
    (
        "dev",
        _set("network.vpcCidr", "10.0.0.0/24"),
        "aiplatform:network.vpcCidr: must be an IPv4 block from /16 to /20 (got /24)",
    ),
    (
        "dev",
        _set("network.azCount", 7),
        "aiplatform:network.azCount: Input should be less than or equal to 6",
    ),
    (
        "dev",
        _set("cluster.kubernetesVersion", "1.29"),
        "aiplatform:cluster.kubernetesVersion: must be one of 1.33, 1.34, 1.35, 1.36",
    ),
    (
        "dev",
        _set("cluster.kubernetesVersion", "1.34"),
        "aiplatform:charts.clusterAutoscaler: chart 9.59.0 ships cluster-autoscaler 1.35 for a Kubernetes 1.34 "
        "cluster: use a 9.52.x-9.53.x chart",
    ),
    (
        "prod",
        _set("charts.clusterAutoscaler", "9.51.0"),
        "aiplatform:charts.clusterAutoscaler: chart 9.51.0 ships cluster-autoscaler 1.33 for a Kubernetes 1.36 "
        "cluster: use a 9.59.x chart with the v1.36.1 autoscaler (no published chart ships 1.36 yet)",
    ),
    (
        "dev",
        _set("charts.clusterAutoscaler", "9.60.0"),
        "aiplatform:charts.clusterAutoscaler: chart 9.60.0 is not in the compatibility table "
        "(components/kubernetes_versions.py): add the Kubernetes minor of its appVersion there, or use a 9.59.x "
        "chart with the v1.36.1 autoscaler (no published chart ships 1.36 yet)",
    ),
    (
        "dev",
        _set("tags", {"aws:team": "ml"}),
        "aiplatform:tags.aws:team: the aws: prefix is reserved for AWS",
    ),
    (
        "dev",
        _set("tags", {"k" * 129: "x"}),
        f"aiplatform:tags.{'k' * 59}…: tag keys are 1 to 128 characters",
    ),
    (
        "dev",
        _set("tags", {"team": "ml#platform"}),
        "aiplatform:tags.team: tag values hold letters, digits, spaces and _ . : / = + - @ only",
    ),
    (
        "dev",
        _set("tags", {"team": "v" * 257}),
        "aiplatform:tags.team: tag values are at most 256 characters",
    ),
    (
        "prod",
        _set("tags", {f"tag-{i}": "x" for i in range(38)}),
        "aiplatform:tags: 38 tags leave node group 'gpu-training-spot' with 51 (the platform adds 13); AWS "
        "allows 50 per resource",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"example.com/" + "x" * 52: "a"}),
        "aiplatform:nodeGroups.gpu[0].labels.example.com/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…: EKS "
        "takes keys of at most 63 characters, prefix included",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"team_": "ml"}),
        "aiplatform:nodeGroups.gpu[0].labels.team_: 'team_' is not a label key: its name is 1 to 63 letters, "
        "digits, '-', '_' or '.', starting and ending alphanumeric",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"Example.com/team": "ml"}),
        "aiplatform:nodeGroups.gpu[0].labels.Example.com/team: 'Example.com/team': the prefix before '/' must "
        "be a DNS subdomain (e.g. example.com/team)",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"team": "ml platform"}),
        "aiplatform:nodeGroups.gpu[0].labels.team: 'ml platform' is not a label value: at most 63 letters, "
        "digits, '-', '_' or '.', starting and ending alphanumeric",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"team": ""}),
        "aiplatform:nodeGroups.gpu[0].labels.team: EKS takes label values of 1 to 63 characters, not an empty one",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[2].taints[0].key", "spot capacity"),
        "aiplatform:nodeGroups.gpu[2].taints[0].key: 'spot capacity' is not a label key: its name is 1 to 63 "
        "letters, digits, '-', '_' or '.', starting and ending alphanumeric",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[2].taints[0].value", "t" * 64),
        f"aiplatform:nodeGroups.gpu[2].taints[0].value: '{'t' * 64}' is not a label value: at most 63 letters, "
        "digits, '-', '_' or '.', starting and ending alphanumeric",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[2].taints", [{"key": f"example.com/t{i}", "value": "x"} for i in range(50)]),
        "aiplatform:nodeGroups.gpu[2].taints: at most 49: EKS allows 50 per node group and the platform adds the "
        "GPU taint",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[1].name", "g" * 39),
        "aiplatform:nodeGroups.gpu[1].name: at most 38 characters: EKS node group names hold 63, and the "
        "platform's is 'aiplatform-nodes-<name>-<7 random>'",
    ),
    (
        "dev",
        _set(f"{INF0}.name", "l" * 48),
        f"aiplatform:{INF0}.name: at most 47 characters with modelFetch: the server's IAM role is named after it, "
        "and IAM role names hold 64",
    ),
    (
        "dev",
        _set("secrets[0].description", "d" * 2049),
        "aiplatform:secrets[0].description: String should have at most 2048 characters",
    ),
    (
        "dev",
        _set("secrets[0].keys", ["k" * 254]),
        "aiplatform:secrets[0].keys[0]: String should have at most 253 characters",
    ),
    (
        "dev",
        _set(f"{INF0}.modelFetch.prefix", "m" * 1025),
        f"aiplatform:{INF0}.modelFetch.prefix: String should have at most 1024 characters",
    ),
    (
        "dev",
        _set("workloads.training[0].ttlSecondsAfterFinished", 2**31),
        "aiplatform:workloads.training[0].ttlSecondsAfterFinished: Input should be less than or equal to 2147483647",
    ),
    (
        "dev",
        _set("nodeGroups.system.instanceTypes", ["t3.medium"]),
        "aiplatform:nodeGroups.system.scaling.minSize: 2 x t3.medium offer 3.86 CPU, 6.34 GiB and 34 pods; what "
        "always runs there requests 2.69 CPU, 6.70 GiB and 33 pods: raise minSize or choose a larger instance type",
    ),
    (
        "dev",
        _set(
            "workloads.inference[1].resources",
            {"requests": {"cpu": "500m", "memory": "7Gi"}, "limits": {"memory": "7Gi"}},
        ),
        "aiplatform:workloads.inference[1].resources.requests: one pod requests 0.5 CPU / 7.00 GiB (with the "
        "platform's sidecar and init containers), more than a t3.large of 'system' offers after its DaemonSets "
        "(1.775 CPU / 6.61 GiB): it would never be scheduled",
    ),
    (
        "prod",
        _set(
            "workloads.inference[0].resources",
            {"requests": {"cpu": "8", "memory": "24Gi"}, "limits": {"memory": "28Gi"}},
        ),
        "aiplatform:workloads.inference[0].resources.requests: one pod requests 8.05 CPU / 24.06 GiB (with the "
        "platform's sidecar and init containers), more than a g5.2xlarge of 'gpu-inference' offers after its "
        "DaemonSets (7.605 CPU / 28.37 GiB): it would never be scheduled",
    ),
    (
        "dev",
        _set("nodeGroups.system.instanceTypes", ["m9.large"]),
        "aiplatform:nodeGroups.system.instanceTypes[0]: 'm9.large' is not in the instance type table: add its vCPUs, memory, ENI limits and GPUs (in a program: "
        "aiplatform.compute.instance_types.add_instance_types(InstanceType(...)) before building; in the "
        "library's repository: components/compute/instance_types.py)",
    ),
    (
        "dev",
        _set("cluster.endpoint.publicAccessCidrs", []),
        "aiplatform:cluster.endpoint.publicAccessCidrs: list the CIDRs allowed to reach the public endpoint",
    ),
    (
        "dev",
        _drop("cluster.addons.coredns"),
        "aiplatform:cluster.addons: pin a version for every add-on: missing coredns",
    ),
    (
        "dev",
        _set("cluster.addons.coredns", "latest"),
        "aiplatform:cluster.addons.coredns: String should match pattern '^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$'",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].instanceTypes", ["m5.large"]),
        "aiplatform:nodeGroups.gpu[0].instanceTypes[0]: 'm5.large' is not a GPU instance type (families: "
        + ", ".join(sorted(gpu_instance_families()))
        + ")",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].amiType", "AL2023_x86_64_STANDARD"),
        "aiplatform:nodeGroups.gpu[0].amiType: GPU groups need an NVIDIA AMI type: AL2023_ARM_64_NVIDIA, AL2023_x86_64_NVIDIA, BOTTLEROCKET_ARM_64_NVIDIA, BOTTLEROCKET_x86_64_NVIDIA",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].scaling.desiredSize", 5),
        "aiplatform:nodeGroups.gpu[0].scaling.maxSize: must be >= minSize (0) and desiredSize (5)",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[1].name", "gpu-inference"),
        "aiplatform:nodeGroups.gpu[1].name: duplicate GPU node group 'gpu-inference'",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[2].instanceTypes", ["g6e.12xlarge", "g5.12xlarge"]),
        "aiplatform:nodeGroups.gpu[2].instanceTypes[1]: 'g5.12xlarge' has 4 x NVIDIA A10G, 'g6e.12xlarge' has "
        "4 x NVIDIA L40S: one GPU model and count per group (split them into groups)",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[1].instanceTypes", ["g5.2xlarge", "g6.2xlarge"]),
        "aiplatform:nodeGroups.gpu[1].instanceTypes[1]: 'g6.2xlarge' has 1 x NVIDIA L4, 'g5.2xlarge' has "
        "1 x NVIDIA A10G: one GPU model and count per group (split them into groups)",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[2].instanceTypes", ["g6e.12xlarge", "g6e.xlarge"]),
        "aiplatform:nodeGroups.gpu[2].instanceTypes[1]: 'g6e.xlarge' has 1 x NVIDIA L40S, 'g6e.12xlarge' has "
        "4 x NVIDIA L40S: one GPU model and count per group (split them into groups)",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].instanceTypes", ["g6f.xlarge"]),
        "aiplatform:nodeGroups.gpu[0].instanceTypes[0]: 'g6f.xlarge' is not in the instance type table: add its vCPUs, memory, ENI limits and GPUs (in a program: "
        "aiplatform.compute.instance_types.add_instance_types(InstanceType(...)) before building; in the "
        "library's repository: components/compute/instance_types.py)",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].labels", {"k8s.amazonaws.com/accelerator": "nvidia-l4"}),
        "aiplatform:nodeGroups.gpu[0].labels.k8s.amazonaws.com/accelerator: is reserved: Kubernetes, EKS and "
        "the platform set these labels",
    ),
    (
        "dev",
        _set("nodeGroups.gpu[0].gpusPerNode", 2),
        "aiplatform:nodeGroups.gpu[0].gpusPerNode: g5.xlarge has 1 GPU, not 2 (or leave it out)",
    ),
    (
        "prod",
        _set("nodeGroups.gpu[1].accelerator", "nvidia-a100"),
        "aiplatform:nodeGroups.gpu[1].accelerator: 'nvidia-a100' does not name the GPU of p4d.24xlarge: "
        "NVIDIA A100 40GB is 'nvidia-tesla-a100' (or leave it out)",
    ),
    (
        "dev",
        _set("nodeGroups.system.instanceTypes", ["g5.xlarge"]),
        "aiplatform:nodeGroups.system.instanceTypes[0]: GPU instances do not belong in the system group",
    ),
    (
        "dev",
        _set(f"{INF0}.name", "Llama_Inference"),
        f"aiplatform:{INF0}.name: 'Llama_Inference' is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric)",
    ),
    (
        "dev",
        _set("workloads.inference[1].name", "llama-inference"),
        "aiplatform:workloads.inference[1].name: duplicate inference workload 'llama-inference'",
    ),
    (
        "dev",
        _set("workloads.batch[0].schedule", "0 25 * * *"),
        "aiplatform:workloads.batch[0].schedule: '0 25 * * *': hour: '25' is outside 0-23",
    ),
    (
        "dev",
        _set("workloads.batch[0].timeZone", "Mars/Olympus"),
        "aiplatform:workloads.batch[0].timeZone: 'Mars/Olympus' is not an IANA time zone (e.g. Etc/UTC, Europe/Paris)",
    ),
    (
        "dev",
        _set(f"{INF0}.resources.requests.memory", "12GB"),
        f"aiplatform:{INF0}.resources.requests.memory: '12GB' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)",
    ),
    (
        "dev",
        _set(f"{INF0}.resources.limits.memory", "1Gi"),
        f"aiplatform:{INF0}.resources.limits.memory: must be >= requests.memory (12Gi)",
    ),
    (
        "dev",
        _set("workloads.training[0].gpu.nodeGroup", "gpu-missing"),
        "aiplatform:workloads.training[0].gpu.nodeGroup: no GPU node group named 'gpu-missing'",
    ),
    (
        "dev",
        _set("workloads.inference[2].secretEnv[0].secret", "anthropic-secret"),
        "aiplatform:workloads.inference[2].secretEnv[0].secret: no secret 'anthropic-secret' in namespace 'ml-serving'",
    ),
    (
        "dev",
        _set("workloads.inference[2].secretEnv[0].key", "token"),
        "aiplatform:workloads.inference[2].secretEnv[0].key: secret 'openai-secret' has no key 'token'",
    ),
    (
        "dev",
        _set(f"{INF0}.autoscaling.customMetrics[0].name", "queue_length"),
        f"aiplatform:{INF0}.autoscaling.customMetrics[0].name: the metrics adapter serves no metric "
        "'queue_length' (it serves: requests_per_second): the HPA would never scale; add an "
        "observability.customMetrics rule for it",
    ),
    (
        "dev",
        _set(f"{INF0}.ingress.host", "llm..example.com"),
        f"aiplatform:{INF0}.ingress.host: 'llm..example.com' is not a valid DNS host name (e.g. llm.example.com)",
    ),
    (
        "dev",
        _set(f"{INF0}.namespace", "ml-other"),
        f"aiplatform:{INF0}.namespace: 'ml-other' is not declared in namespaces",
    ),
    (
        "dev",
        _set("workloads.training[0].parallelism", 6),
        "aiplatform:workloads.training[0].parallelism: must be <= completions (5)",
    ),
    (
        "dev",
        _set(f"{INF0}.image", "registry.example.com/ai/llama-inference"),
        f"aiplatform:{INF0}.image: 'registry.example.com/ai/llama-inference' has no tag: pin one (e.g. registry.example.com/ai/llama-inference:1.2.3) or a digest",
    ),
    ("dev", _drop("charts.externalSecrets"), "aiplatform:charts.externalSecrets: required key is missing"),
    (
        "dev",
        _set("ingress.certificateArn", None),
        "aiplatform:ingress.certificateArn: TLS for 'llm.dev.example.com' needs an ACM certificate ARN",
    ),
    (
        "dev",
        _set(f"{INF0}.modelStorage.type", "pvc"),
        f"aiplatform:{INF0}.modelStorage.type: a ReadWriteOnce PVC cannot serve several replicas: use emptyDir with modelFetch",
    ),
    (
        "prod",
        _set(f"{INF0}.image", "registry.example.com/ai/llama-inference:latest"),
        f"aiplatform:{INF0}.image: prod runs images by digest (a tag can be moved in the registry): pin "
        "'registry.example.com/ai/llama-inference:latest' as <image>@sha256:<digest>",
    ),
    (
        "prod",
        _set("workloads.training[0].image", "registry.example.com/ai/pytorch-training:2.5.1"),
        "aiplatform:workloads.training[0].image: prod runs images by digest (a tag can be moved in the "
        "registry): pin 'registry.example.com/ai/pytorch-training:2.5.1' as <image>@sha256:<digest>",
    ),
    # The helper images of a model server count too: unset, they are the public tags.
    (
        "prod",
        _set(f"{INF0}.modelFetch", {"prefix": "models/llama-3-8b"}),
        f"aiplatform:{INF0}.modelFetch.image: prod runs images by digest (a tag can be moved in the "
        "registry): pin 'public.ecr.aws/aws-cli/aws-cli:2.27.0' as <image>@sha256:<digest>",
    ),
    (
        "prod",
        _set(f"{INF0}.logShipper", {"logPath": "/var/log/app"}),
        f"aiplatform:{INF0}.logShipper.image: prod runs images by digest (a tag can be moved in the "
        "registry): pin 'cr.fluentbit.io/fluent/fluent-bit:4.0.3' as <image>@sha256:<digest>",
    ),
    (
        "prod",
        _set(f"{INF0}.ingress.tls", False),
        f"aiplatform:{INF0}.ingress.tls: a public ingress in prod must use TLS",
    ),
    (
        "prod",
        _set(f"{INF0}.autoscaling.minReplicas", 1),
        f"aiplatform:{INF0}.autoscaling.minReplicas: prod inference needs at least 2 replicas",
    ),
    (
        "prod",
        _set("workloads.inference[2].replicas", 1),
        "aiplatform:workloads.inference[2].replicas: prod inference needs at least 2 replicas",
    ),
    (
        "dev",
        _set("cluster.logRetentionDays", 45),
        "aiplatform:cluster.logRetentionDays: must be one of [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, "
        "545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
    ),
    (
        "prod",
        _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/0"]),
        "aiplatform:cluster.endpoint.publicAccessCidrs: prod must not open the API to 0.0.0.0/0",
    ),
    (
        "dev",
        _set("workloads.training[0].parallelism", 3),
        "aiplatform:workloads.training[0].parallelism: at most 2 of 3 parallel pods are admitted at once: "
        "namespace 'ml-training' GPU quota fits 2 (2 GPUs, 1 per pod); lower parallelism or raise the quota",
    ),
    (
        "dev",
        _set("namespaces[1].quota.gpus", 0),
        "aiplatform:workloads.training[0].gpu.count: a pod asks for 1 GPUs, more than namespace 'ml-training' GPU "
        "quota (0)",
    ),
    (
        "prod",
        _set("charts.mirror", "http://charts.internal.example.com"),
        "aiplatform:charts.mirror: 'http://charts.internal.example.com': use https (plain http only for a "
        "repository on 127.0.0.1)",
    ),
    (
        "dev",
        _set("charts.repositories", {"karpenterr": "https://charts.internal.example.com"}),
        "aiplatform:charts.repositories.karpenterr: not a known key here: Input should be 'externalSecrets', 'awsLoadBalancerController', "
        "'ingressNginx', 'nvidiaDevicePlugin', 'nvidiaDraDriver', 'dcgmExporter', 'clusterAutoscaler', 'kubePrometheusStack', "
        "'prometheusAdapter' or 'karpenter'",
    ),
    (
        "dev",
        _set("charts.mirror", "https://user:token@charts.internal.example.com"),
        "aiplatform:charts.mirror: 'https://user:token@charts.internal.example.com': a chart repository URL has "
        "no query, fragment or credentials",
    ),
]


@pytest.mark.parametrize(("stack", "mutate", "expected"), INVALID, ids=[e for _, _, e in INVALID])
def test_invalid_config_names_the_key_path(stack, mutate, expected):
    config = sections(stack)
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert expected in caught.value.problems, caught.value.problems


def test_every_problem_of_a_config_is_reported_at_once():
    config = sections("dev")
    _set(f"{INF0}.autoscaling.maxReplicas", 1)(config)
    _set("network.azCount", 1)(config)
    _set("workloads.batch[0].schedule", "every night")(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:network.azCount: Input should be greater than or equal to 2",
        f"aiplatform:{INF0}.autoscaling.maxReplicas: must be >= minReplicas (2)",
        "aiplatform:workloads.batch[0].schedule: 'every night' is not a cron schedule: expected 5 fields "
        "(minute hour day-of-month month day-of-week)",
    ]
    assert str(caught.value).startswith("invalid stack configuration:\n  aiplatform:network.azCount")


def test_cross_section_problems_are_reported_together():
    config = sections("dev")
    _set("workloads.training[0].gpu.nodeGroup", "nope")(config)
    _set("workloads.inference[2].secretEnv[0].key", "hf")(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:workloads.training[0].gpu.nodeGroup: no GPU node group named 'nope'",
        "aiplatform:workloads.inference[2].secretEnv[0].key: secret 'openai-secret' has no key 'hf'",
    ]


def test_rules_between_sections_run_when_another_section_has_field_errors():
    config = sections("prod")
    _set("network.azCount", 7)(config)  # a field error in network
    _set("workloads.training[0].gpu.nodeGroup", "nope")(config)  # workloads x nodeGroups
    _set("secrets[0].namespace", "ml-other")(config)  # secrets x namespaces
    _set("cluster.endpoint.publicAccessCidrs", ["0.0.0.0/0"])(config)  # environment x cluster (prod)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:network.azCount: Input should be less than or equal to 6",
        "aiplatform:secrets[0].namespace: 'ml-other' is not declared in namespaces",
        "aiplatform:workloads.training[0].gpu.nodeGroup: no GPU node group named 'nope'",
        "aiplatform:workloads.inference[2].secretEnv[0].secret: no secret 'openai-secret' in namespace 'ml-serving'",
        "aiplatform:workloads.inference[2].secretFiles[0].secret: no secret 'openai-secret' in namespace 'ml-serving'",
        "aiplatform:cluster.endpoint.publicAccessCidrs: prod must not open the API to 0.0.0.0/0",
    ]


def test_a_rule_over_a_section_with_field_errors_is_skipped_not_guessed():
    """A broken namespaces list must not make every workload's namespace look undeclared."""
    config = sections("dev")
    _set("namespaces[0].quota.gpus", -1)(config)
    _set("workloads.training[0].gpu.nodeGroup", "nope")(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:namespaces[0].quota.gpus: Input should be greater than or equal to 0",
        "aiplatform:workloads.training[0].gpu.nodeGroup: no GPU node group named 'nope'",
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_every_rule_reads_only_the_sections_it_declares(stack):
    from aiplatform.config.settings import RULES, Sections, valid_sections

    valid = valid_sections(sections(stack))
    assert set(valid) == set(PlatformSettings.model_fields)
    for declared, check in RULES:
        assert check(Sections({name: valid[name] for name in declared})) == [], check.__name__


def test_missing_required_sections_are_named():
    with pytest.raises(ConfigError) as caught:
        parse_settings({})
    assert caught.value.problems == [
        "aiplatform:environment: required key is missing",
        "aiplatform:cluster: required key is missing",
        "aiplatform:charts: required key is missing",
    ]


def test_gpu_model_and_count_default_to_the_instance_table():
    config = sections("prod")
    spot = config["nodeGroups"]["gpu"][2]
    del spot["accelerator"], spot["gpusPerNode"]
    group = parse_settings(config).nodeGroups.gpu[2]
    assert (group.accelerator_label, group.gpu_count) == ("nvidia-l40s", 4)


def test_a_workload_may_accept_a_gpu_ceiling_below_its_maximum():
    config = sections("dev")
    scaling = config["workloads"]["inference"][0]["autoscaling"]
    scaling.update(maxReplicas=10, acceptsLowerCeiling=True)
    assert parse_settings(config).workloads.inference[0].autoscaling.maxReplicas == 10


def test_gpu_replicas_fit_counts_whole_pods_per_node():
    """A 3-GPU replica takes a 4-GPU node alone: the spare GPU holds no replica."""
    config = sections("prod")
    config["workloads"]["inference"][0]["gpu"] = {"nodeGroup": "gpu-training-spot", "count": 3}
    config["workloads"]["inference"][0]["autoscaling"]["maxReplicas"] = 5
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        f"aiplatform:{INF0}.autoscaling.maxReplicas: at most 4 of 5 replicas can run: node group "
        "'gpu-training-spot' fits 4 (4 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 4 "
        "(12 GPUs, 3 per pod); lower maxReplicas, raise those limits, or set acceptsLowerCeiling: true"
    ]


def test_an_existing_cluster_brings_its_own_autoscaler_so_the_chart_is_not_judged():
    config = sections("dev")
    config["cluster"] = {
        "mode": "existing",
        "name": "ai-dev",
        "kubernetesVersion": "1.34",
        "identityMode": "pod-identity",
        "existing": {"kubeconfigSecret": "existingKubeconfig"},
    }
    assert parse_settings(config).cluster.kubernetesVersion == "1.34"
    managed = sections("dev")
    managed["cluster"]["kubernetesVersion"] = "1.34"
    with pytest.raises(ConfigError) as caught:
        parse_settings(managed)
    assert (
        "aiplatform:charts.clusterAutoscaler: chart 9.59.0 ships cluster-autoscaler 1.35 for a Kubernetes 1.34 "
        "cluster: use a 9.52.x-9.53.x chart"
    ) in caught.value.problems


def test_secret_values_never_enter_the_settings():
    settings = parse_settings(sections("dev"))
    (secret,) = settings.secrets
    assert secret.valueFrom == "openaiSecret"
    assert "valueFrom" in repr(secret) and "planned-secret" not in repr(settings)


def test_a_huge_bad_value_is_quoted_shortly():
    config = sections("dev")
    _set(f"{INF0}.ingress.host", "x" * 5000)(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    (problem,) = caught.value.problems
    assert problem == (
        f"aiplatform:{INF0}.ingress.host: '{'x' * 99}…' is not a valid DNS host name (e.g. llm.example.com)"
    )


def test_a_long_reason_is_whole():
    """A reason listing every limit that binds is not cut, however long; only quoted values are."""
    config = sections("dev")
    _set(f"{INF0}.autoscaling.maxReplicas", 50)(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        f"aiplatform:{INF0}.autoscaling.maxReplicas: at most 3 of 50 replicas can run: node group "
        "'gpu-inference' fits 3 (3 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 4 (4 "
        "GPUs, 1 per pod), namespace 'ml-serving' CPU quota fits 15 (32 CPU, 2.05 per pod), namespace "
        "'ml-serving' memory quota fits 10 (128Gi, 12.06 GiB per pod); lower maxReplicas, raise those "
        "limits, or set acceptsLowerCeiling: true"
    ]


def test_the_project_file_describes_every_section():
    import yaml

    from aiplatform.config import SECTIONS
    from tests.stacks import PROJECT_ROOT

    project = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == "aiplatform"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    described = {key for key, spec in project["config"].items() if spec.get("description")}
    assert described == {f"aiplatform:{section}" for section in SECTIONS}


def test_the_project_file_gives_each_optional_section_a_default_and_the_required_none():
    """The Pulumi CLI refuses a stack that lacks a declared key without a default, before the program
    runs: only what the settings require may go without one, and each default is a valid section."""
    import yaml

    from aiplatform.config import PlatformSettings
    from tests.stacks import PROJECT_ROOT

    declared = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))["config"]
    required = {name for name, f in PlatformSettings.model_fields.items() if f.is_required()}
    without_default = {
        key.removeprefix("aiplatform:") for key, spec in declared.items() if "default" not in spec
    }
    assert without_default == required == {"environment", "cluster", "charts"}
    minimal = {key: value for key, value in sections("dev").items() if key in required}
    defaults = {
        key.removeprefix("aiplatform:"): spec["default"]
        for key, spec in declared.items()
        if "default" in spec
    }
    assert parse_settings({**minimal, **defaults}) == parse_settings(minimal)


def test_model_servers_that_each_fit_their_group_may_not_fit_it_together():
    config = sections("dev")
    _set("workloads.inference[2].gpu", {"nodeGroup": "gpu-inference", "count": 1})(config)
    _set("workloads.inference[2].replicas", 2)(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:nodeGroups.gpu[0].scaling.maxSize: the model servers here always run 4 GPUs "
        "(llama-inference 2, llm-orchestrator 2) and a rollout starts 1 more: 5 is more than 3 (3 nodes x 1 GPUs): "
        "raise maxSize",
        "aiplatform:namespaces[0].quota.gpus: the model servers here always run 4 GPUs (llama-inference 2, "
        "llm-orchestrator 2) and a rollout starts 1 more: 5 is more than the namespace's GPU quota (4): raise "
        "quota.gpus",
    ]
    _set("nodeGroups.gpu[0].scaling.maxSize", 5)(config)
    _set("namespaces[0].quota.gpus", 4)(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    expected = (
        "aiplatform:namespaces[0].quota.gpus: the model servers here always run 4 GPUs (llama-inference 2, "
        "llm-orchestrator 2) and a rollout starts 1 more: 5 is more than the namespace's GPU quota (4): raise "
        "quota.gpus"
    )
    assert expected in caught.value.problems, caught.value.problems


def test_a_pod_larger_than_its_namespace_quota_is_a_config_error():
    """A quota of 2 CPU / 8Gi admits no pod asking for 4 CPU / 16Gi: quota admission refuses every one."""
    config = sections("dev")
    config["namespaces"][0]["quota"].update(cpu="2", memory="8Gi")
    config["workloads"]["batch"][0]["resources"] = {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"cpu": "4", "memory": "16Gi"},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert (
        "aiplatform:workloads.batch[0].resources.requests: one pod requests 4 CPU / 16.00 GiB (with the "
        "platform's sidecar and init containers), more than namespace 'ml-serving' admits in all (quota "
        "requests.cpu 2, requests.memory 8Gi): quota admission refuses every pod"
    ) in caught.value.problems


def test_replicas_beyond_the_cpu_quota_are_a_config_error_unless_accepted():
    config = sections("dev")
    config["namespaces"][0]["quota"].update(cpu="3")
    server = config["workloads"]["inference"][0]
    server["resources"]["requests"]["cpu"] = "1"
    server["autoscaling"].update(minReplicas=2, maxReplicas=3)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert [p for p in caught.value.problems if "maxReplicas" in p] == [
        f"aiplatform:{INF0}.autoscaling.maxReplicas: at most 2 of 3 replicas can run: namespace 'ml-serving' "
        "CPU quota fits 2 (3 CPU, 1.05 per pod); lower maxReplicas, raise those limits, or set "
        "acceptsLowerCeiling: true"
    ]


def test_cpu_server_replicas_beyond_what_the_system_nodes_hold_are_a_config_error():
    """A server without GPUs lands on the system nodes: its replicas are counted against them."""
    config = sections("dev")
    scaling = {"minReplicas": 1, "maxReplicas": 20, "cpuUtilization": 70}
    _set("workloads.inference[1].autoscaling", scaling)(config)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        "aiplatform:workloads.inference[1].autoscaling.maxReplicas: at most 9 of 20 replicas can run: node "
        "group 'system' fits 9 (3 nodes at most x 3 per t3.large by CPU and memory); lower maxReplicas, "
        "raise those limits, or set acceptsLowerCeiling: true"
    ]
    _set("workloads.inference[1].autoscaling", {**scaling, "acceptsLowerCeiling": True})(config)
    assert parse_settings(config)


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        (
            {"cpu": "6.5"},
            "aiplatform:namespaces[0].quota.cpu: the model servers here always request 4.85 CPU (llama-inference "
            "4.1, text-embedder 0.5, llm-orchestrator 0.25) and a rollout starts a pod of 2.05 more: 6.9 is more "
            "than the namespace's CPU quota (6.5): raise quota.cpu",
        ),
        (
            {"memory": "37Gi"},
            "aiplatform:namespaces[0].quota.memory: the model servers here always request 26.62 GiB memory "
            "(llama-inference 24.12 GiB, text-embedder 2.00 GiB, llm-orchestrator 0.50 GiB) and a rollout "
            "starts a pod of 12.06 GiB more: 38.69 GiB is more than the namespace's memory quota (37Gi): raise "
            "quota.memory",
        ),
    ],
    ids=["cpu", "memory"],
)
def test_model_servers_that_each_fit_their_namespace_cpu_or_memory_quota_may_not_fit_it_together(
    quota, expected
):
    config = sections("dev")
    config["namespaces"][0]["quota"].update(quota)
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [expected]
