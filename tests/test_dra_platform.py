"""The dev-dra stack as the program registers it: the DRA driver, quotas per device class, claims, and
what the capacity and cost reports read of them."""

from __future__ import annotations

import copy

import pytest
import yaml

from aiplatform.catalog.helm import effective_resources
from aiplatform.plan.compute_report import compute_report, device_classes
from aiplatform.plan.model import Plan, manifests
from aiplatform.plan.policy_report import evaluate_stack
from aiplatform.plan.registered import registered_cluster
from aiplatform.scheduling import Taint, toleration_from_dict, untolerated
from tests.program import plan_config, planned
from tests.stacks import stack_config

STACK = "dev-dra"
RELEASE = "kubernetes:helm.sh/v3:Release"


def registrations():
    return planned(STACK).registrations


def releases() -> dict[str, dict]:
    return {str(r.inputs["chart"]).rsplit("/", 1)[-1]: r.inputs for r in registrations() if r.type == RELEASE}


def documents(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests(registrations()) if d["kind"] == kind}


def test_the_dra_driver_replaces_the_device_plugin_on_every_gpu_node():
    charts = releases()
    assert "nvidia-device-plugin" not in charts
    driver = charts["dra-driver-nvidia-gpu"]
    assert (driver["version"], driver["namespace"]) == ("0.4.1", "nvidia-dra-driver")
    assert driver["chart"] == "oci://registry.k8s.io/dra-driver-nvidia/charts/dra-driver-nvidia-gpu"
    values = driver["values"]
    assert values["gpuResourcesEnabledOverride"] is True
    assert values["resources"] == {"gpus": {"enabled": True}, "computeDomains": {"enabled": False}}
    # The two light servers share their GPU by time-slicing: the driver's gate for it is on, MPS's not.
    assert values["featureGates"] == {"TimeSlicingSettings": True}
    plugin = values["kubeletPlugin"]
    assert plugin["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert plugin["priorityClassName"] == "system-node-critical"
    taints = [Taint("nvidia.com/gpu", "true", "NoSchedule")]
    assert untolerated(taints, [toleration_from_dict(t) for t in plugin["tolerations"]]) == ()
    # Exactly what the program states reaches the kubelet plugin's container (the chart has no default).
    assert effective_resources("dra-driver-nvidia-gpu", values) == {
        "kubeletPlugin.containers.gpus.resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        }
    }
    # DCGM still runs on the GPU nodes, after the driver.
    assert "dcgm-exporter" in charts


def test_quotas_cap_devices_of_the_class_and_no_pod_asks_for_nvidia_gpu():
    quotas = {
        d["metadata"]["namespace"]: d["spec"]["hard"]
        for d in manifests(registrations())
        if d["kind"] == "ResourceQuota"
    }
    assert quotas["ml-serving"]["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"] == "4"
    assert quotas["ml-training"]["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"] == "2"
    assert not any("requests.nvidia.com/gpu" in hard for hard in quotas.values())
    for kind in ("Deployment", "Job", "CronJob"):
        for document in documents(kind).values():
            assert "'nvidia.com/gpu': '" not in repr(document), document["metadata"]["name"]


def test_each_gpu_workload_claims_through_its_template_or_the_shared_claim():
    templates = documents("ResourceClaimTemplate")
    (claim_name,) = documents("ResourceClaim")
    pods = {
        name: d["spec"]["template"]["spec"]
        for kind in ("Deployment", "Job")
        for name, d in documents(kind).items()
        if d["spec"]["template"]["spec"].get("resourceClaims")
    }
    refs = {name: pod["resourceClaims"] for name, pod in pods.items()}
    assert refs["text-embedder"] == refs["reranker"] == [{"name": "gpu", "resourceClaimName": claim_name}]
    for name in ("llama-inference", "hyperparameter-sweep"):
        (ref,) = refs[name]
        assert ref["resourceClaimTemplateName"] in templates, name
    llama = templates[refs["llama-inference"][0]["resourceClaimTemplateName"]]
    selectors = llama["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"]
    assert [s["cel"]["expression"] for s in selectors] == [
        "device.attributes['gpu.nvidia.com'].productName == 'NVIDIA A10G'",
        "device.capacity['gpu.nvidia.com'].memory.compareTo(quantity('22Gi')) >= 0",
    ]
    assert sorted(refs) == ["hyperparameter-sweep", "llama-inference", "reranker", "text-embedder"]


def test_the_capacity_model_reads_gpus_from_claims():
    cluster = registered_cluster(registrations())
    pods = {p.name: p for load in cluster.loads for p in load.pods}
    assert (pods["llama-inference"].gpus, pods["llama-inference"].shared_claim) == (1, None)
    assert pods["hyperparameter-sweep"].gpus == 1
    shared = {pods[name].shared_claim for name in ("text-embedder", "reranker")}
    assert len(shared) == 1 and next(iter(shared))[1] == 1
    assert pods["text-embedder"].gpus == 0
    # gpu-inference always runs llama's 2 GPUs and the shared one: 3 nodes of one A10G, whatever the
    # light servers' CPU and memory.
    inference = next(load for load in cluster.loads if load.spec.name == "gpu-inference")
    assert inference.nodes_needed() == 3


def test_the_plan_shows_the_driver_classes_and_claims_with_no_violation(tmp_path):
    assert evaluate_stack(STACK, registrations()) == []
    assert device_classes(registrations()) == {
        name: "chart dra-driver-nvidia-gpu 0.4.1"
        for name in ("gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com")
    }
    lines = compute_report(Plan(stack=STACK, out_dir=tmp_path, run=planned(STACK))).lines
    assert lines[4].startswith("GPUs by DRA (resource.k8s.io/v1): DeviceClasses gpu.nvidia.com (chart")
    assert any(
        line.startswith("ResourceClaim ml-serving/") and "shared by its pods (TimeSlicing)" in line
        for line in lines
    )
    assert sum(line.startswith("ResourceClaimTemplate ") for line in lines) == 2


def test_auto_mode_on_dra_installs_no_driver_and_keeps_dcgm():
    config = copy.deepcopy(stack_config("dev-auto-mode"))
    config["aiplatform:compute"]["gpuAllocation"] = "dra"
    run = plan_config(config, "dev-auto-mode-dra")
    charts = {str(r.inputs["chart"]).rsplit("/", 1)[-1] for r in run.registrations if r.type == RELEASE}
    assert "dra-driver-nvidia-gpu" not in charts and "nvidia-device-plugin" not in charts
    assert "dcgm-exporter" in charts
    assert device_classes(run.registrations) == {"gpu.nvidia.com": "EKS Auto Mode's nodes"}
    assert run.outputs["compute"]["gpuAllocation"] == {"mode": "dra", "deviceClass": "gpu.nvidia.com"}
    assert "NVIDIA DRA driver (its DeviceClass gpu.nvidia.com)" in run.outputs["compute"]["runByEks"]
    assert evaluate_stack("dev-auto-mode-dra", run.registrations) == []


def test_the_example_stack_file_is_the_committed_dev_but_for_gpus():
    dev, dra = stack_config("dev"), stack_config(STACK)
    differing = sorted(k for k in dev.keys() | dra.keys() if dev.get(k) != dra.get(k))
    assert differing == [
        "aiplatform:charts",
        "aiplatform:compute",
        "aiplatform:nodeGroups",
        "aiplatform:workloads",
    ]
    assert yaml.safe_dump(dev["aiplatform:network"]) == yaml.safe_dump(dra["aiplatform:network"])


def test_the_pending_pod_alert_points_at_the_claims():
    (rule,) = [r for r in registrations() if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    scheduling = next(g for g in rule.inputs["spec"]["groups"] if g["name"] == "aiplatform.scheduling")
    pending = next(r for r in scheduling["rules"] if r["alert"] == "PodPendingTooLong")
    assert "no device of its group satisfies its GPU claim" in pending["annotations"]["description"]
    (dev_rule,) = [
        r
        for r in planned("dev").registrations
        if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
    ]
    assert "GPU claim" not in str(dev_rule.inputs)


def test_the_dra_objects_validate_strictly_against_the_1_36_schema():
    """kubernetes-validate knows resource.k8s.io/v1 at 1.36: every claim and template of dev-dra passes
    strictly, and a misspelled field fails (the schema is really applied)."""
    import kubernetes_validate

    objects = [
        d for d in manifests(registrations()) if d["kind"] in ("ResourceClaimTemplate", "ResourceClaim")
    ]
    assert len(objects) == 3
    for document in objects:
        kubernetes_validate.validate(document, "1.36.0", strict=True)
    broken = copy.deepcopy(objects[0])
    broken["spec"]["spec" if broken["kind"] == "ResourceClaimTemplate" else "devices"] = {"device": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.36.0", strict=True)


def test_a_team_places_pods_on_the_dra_platform_by_its_outputs():
    from aiplatform.outputs import PlatformOutputs

    outputs = planned(STACK).outputs
    assert outputs["nodeGroups"]["gpu-inference"]["deviceClass"] == "gpu.nvidia.com"
    assert "deviceClass" not in planned("dev").outputs["nodeGroups"]["gpu-inference"]
    platform = PlatformOutputs.from_values(STACK, outputs, secret_names=["kubeconfig"])
    placement = platform.placement("gpu-inference")
    assert (placement.device_class, placement.gpu_resource) == ("gpu.nvidia.com", None)
    assert platform.placement("system").device_class is None
