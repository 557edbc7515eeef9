import pulumi_kubernetes as k8s
import pytest
import yaml

from aiplatform.addons.gpu import (
    GpuSupport,
    GpuSupportArgs,
    deep_merge,
    device_plugin_values,
    unschedulable_groups,
)
from aiplatform.addons.gpu_metrics import collected_fields, collectors_csv
from aiplatform.catalog.helm import effective_resources
from aiplatform.catalog.registry import DCGM_EXPORTER, NVIDIA_DEVICE_PLUGIN
from aiplatform.compute.node_groups import NodeGroupSpec
from aiplatform.scheduling import Taint, Toleration, is_tolerated
from tests.conftest import resolve

TRAINING_TAINT = Taint(key="aiplatform.io/training", value="true", effect="NoSchedule")
A10G = NodeGroupSpec(
    name="gpu-a10g",
    role="gpu",
    instance_types=("g5.xlarge",),
    capacity_type="SPOT",
    min_size=0,
    desired_size=0,
    accelerator="nvidia-a10g",
    gpus_per_node=1,
)
H100 = NodeGroupSpec(
    name="gpu-h100",
    role="gpu",
    instance_types=("p5.48xlarge",),
    min_size=0,
    desired_size=0,
    accelerator="nvidia-h100",
    gpus_per_node=8,
    taints=(TRAINING_TAINT, Taint(key="aiplatform.io/reserved", value="team-a", effect="NoExecute")),
)
SYSTEM = NodeGroupSpec(name="system")
SPECS = [SYSTEM, A10G, H100]
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def test_device_plugin_tolerates_every_taint_of_every_gpu_group():
    values = device_plugin_values(SPECS)
    tolerations = [Toleration(**t) for t in values["tolerations"]]
    for spec in (A10G, H100):
        for taint in spec.node_taints:
            assert any(t.tolerates(taint) for t in tolerations), (spec.name, taint)
    assert len(tolerations) == 3  # the GPU taint once, plus each extra taint
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    terms = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]}
    ]
    assert values["priorityClassName"] == "system-node-critical"
    assert values["resources"]["requests"] and values["resources"]["limits"]
    assert unschedulable_groups(SPECS, values["tolerations"]) == {}


def test_unschedulable_groups_names_the_missing_taints():
    assert unschedulable_groups(SPECS, [GPU_TOLERATION]) == {
        "gpu-h100": ("aiplatform.io/training=true:NoSchedule", "aiplatform.io/reserved=team-a:NoExecute")
    }
    assert unschedulable_groups(SPECS, []) == {
        "gpu-a10g": ("nvidia.com/gpu=true:NoSchedule",),
        "gpu-h100": (
            "nvidia.com/gpu=true:NoSchedule",
            "aiplatform.io/training=true:NoSchedule",
            "aiplatform.io/reserved=team-a:NoExecute",
        ),
    }
    # Kubernetes' wildcard toleration (empty key, Exists) tolerates everything.
    assert unschedulable_groups(SPECS, [{"operator": "Exists"}]) == {}
    assert is_tolerated(TRAINING_TAINT, [Toleration(key="", operator="Exists")])
    assert not is_tolerated(TRAINING_TAINT, [Toleration(key="", operator="Exists", effect="NoExecute")])


def test_deep_merge_replaces_lists_and_merges_mappings():
    merged = deep_merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "e": 2})
    assert merged == {"a": {"b": 1, "c": [2]}, "d": 1, "e": 2}


def provider() -> k8s.Provider:
    return k8s.Provider("k8s", kubeconfig="{}")


def test_gpu_support_installs_the_pinned_device_plugin_with_the_derived_values(build, monitor):
    def program():
        p = provider()
        return p, GpuSupport(
            "gpu",
            GpuSupportArgs(
                provider=p,
                gpu_specs=SPECS,
                device_plugin_chart_version="0.18.0",
                dcgm_exporter=True,
                dcgm_exporter_chart_version="4.1.1",
            ),
        )

    p, gpu = build(program)
    plugin = monitor.named("gpu-device-plugin").inputs
    assert (plugin["chart"], plugin["version"], plugin["namespace"]) == (
        "nvidia-device-plugin",
        "0.18.0",
        "nvidia-device-plugin",
    )
    assert plugin["repositoryOpts"] == {"repo": NVIDIA_DEVICE_PLUGIN.repository}
    assert plugin["values"] == device_plugin_values(SPECS)

    dcgm = monitor.named("gpu-dcgm-exporter").inputs
    assert (dcgm["chart"], dcgm["version"], dcgm["repositoryOpts"]) == (
        "dcgm-exporter",
        "4.1.1",
        {"repo": DCGM_EXPORTER.repository},
    )
    assert dcgm["values"]["tolerations"] == plugin["values"]["tolerations"]
    assert dcgm["values"]["nodeSelector"] == plugin["values"]["nodeSelector"]
    # The chart's 200m CPU limit (and every other default) is unset; the program's resources remain.
    assert dcgm["values"]["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    (unset,) = dcgm["valueYamlFiles"]
    assert yaml.safe_load(unset["text"]) == {
        "resources": {"limits": {"cpu": None, "memory": None}, "requests": {"cpu": None, "memory": None}}
    }
    assert effective_resources("dcgm-exporter", dcgm["values"], [yaml.safe_load(unset["text"])]) == {
        "resources": dcgm["values"]["resources"]
    }
    assert "valueYamlFiles" not in plugin  # the device plugin chart has no default resources
    # The chart's collectors list plus the XID counter, counted over the window the XID alert states.
    assert dcgm["values"]["customMetrics"] == collectors_csv()
    assert "DCGM_EXP_XID_ERRORS_COUNT" in collected_fields(dcgm["values"]["customMetrics"])
    assert dcgm["values"]["extraEnv"] == [{"name": "DCGM_EXPORTER_XID_COUNT_WINDOW_SIZE", "value": "300000"}]

    namespace = monitor.named("gpu-ns")
    assert namespace.inputs["metadata"]["name"] == "nvidia-device-plugin"
    assert namespace.urn in monitor.named("gpu-device-plugin").dependencies

    provider_urn = resolve(p.urn)
    kube = [r for r in monitor.registrations if r.type.startswith("kubernetes:")]
    assert len(kube) == 3
    assert all(r.provider_urn == provider_urn for r in kube)


def test_override_that_misses_a_custom_taint_raises_before_creating_anything(build, monitor):
    def program():
        p = provider()
        return GpuSupport(
            "gpu",
            GpuSupportArgs(
                provider=p,
                gpu_specs=SPECS,
                device_plugin_values_override={"tolerations": [GPU_TOLERATION]},
            ),
        )

    with pytest.raises(ValueError) as error:
        build(program)
    assert str(error.value) == (
        "GpuSupport 'gpu':\n"
        "  - device_plugin_values_override.tolerations: nvidia-device-plugin: tolerations do not cover the "
        "taints of GPU node groups: gpu-h100 "
        "(aiplatform.io/training=true:NoSchedule, aiplatform.io/reserved=team-a:NoExecute)"
    )
    assert [r.type for r in monitor.registrations] == ["pulumi:providers:kubernetes"]


def test_a_dcgm_collectors_list_without_what_the_gpu_alerts_read_is_refused():
    override = {"customMetrics": "DCGM_FI_DEV_GPU_UTIL, gauge, GPU utilization (in %).\n"}
    with pytest.raises(ValueError) as error:
        GpuSupport(
            "gpu",
            GpuSupportArgs(
                provider=None,  # type: ignore[arg-type]
                gpu_specs=[A10G],
                dcgm_exporter=True,
                dcgm_exporter_chart_version="4.8.3",
                dcgm_exporter_values_override=override,
            ),
        )
    assert str(error.value) == (
        "GpuSupport 'gpu':\n"
        "  - dcgm_exporter_values_override.customMetrics: the GPU alerts read DCGM_EXP_XID_ERRORS_COUNT, "
        "DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE: keep them in the collectors list"
    )


def test_dcgm_needs_a_pinned_version_and_gpu_groups():
    with pytest.raises(ValueError) as error:
        GpuSupport("gpu", GpuSupportArgs(provider=None, gpu_specs=[SYSTEM], dcgm_exporter=True))  # type: ignore[arg-type]
    assert str(error.value) == (
        "GpuSupport 'gpu':\n"
        "  - gpu_specs: at least one gpu node group is required\n"
        "  - dcgm_exporter_chart_version: pin a chart version when dcgm_exporter is on"
    )


def test_a_group_that_disagrees_with_the_instance_table_is_refused():
    """The plugin advertises the table's GPU count: a group claiming another would mislead the autoscaler."""
    wrong = NodeGroupSpec(**{**H100.__dict__, "gpus_per_node": 4, "accelerator": "nvidia-a100"})
    mixed = NodeGroupSpec(**{**A10G.__dict__, "instance_types": ("g5.xlarge", "g6.xlarge")})
    with pytest.raises(ValueError) as error:
        GpuSupport("gpu", GpuSupportArgs(provider=None, gpu_specs=[wrong, mixed]))  # type: ignore[arg-type]
    assert str(error.value) == (
        "GpuSupport 'gpu':\n"
        "  - gpu_specs[0].accelerator: gpu-h100: 'nvidia-a100' does not name the GPU of p5.48xlarge: NVIDIA H100 "
        "is 'nvidia-h100' (or leave it out)\n"
        "  - gpu_specs[0].gpus_per_node: gpu-h100: p5.48xlarge has 8 GPUs, not 4 (or leave it out)\n"
        "  - gpu_specs[1].instance_types: gpu-a10g: 'g6.xlarge' has 1 x NVIDIA L4, 'g5.xlarge' has 1 x NVIDIA A10G: "
        "one GPU model and count per group (split them into groups)"
    )


def test_override_with_extra_values_is_merged(build, monitor):
    def program():
        p = provider()
        return GpuSupport(
            "gpu",
            GpuSupportArgs(
                provider=p,
                gpu_specs=[A10G],
                create_namespace=False,
                namespace="kube-system",
                device_plugin_values_override={"resources": {"limits": {"memory": "512Mi"}}},
            ),
        )

    build(program)
    values = monitor.named("gpu-device-plugin").inputs["values"]
    assert values["resources"] == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert values["tolerations"] == [GPU_TOLERATION]
    assert not monitor.of_type("kubernetes:core/v1:Namespace")
    assert not monitor.of_type("kubernetes:helm.sh/v3:Release")[1:]


def test_on_pools_without_a_device_plugin_dcgm_alone_tolerates_the_pool_taints(build, monitor):
    """EKS Auto Mode's GPU nodes run NVIDIA's device plugin themselves; pools may mix GPU models."""
    from aiplatform.compute.pools import GpuPoolSpec
    from aiplatform.scheduling import Taint

    pool = GpuPoolSpec(
        name="mixed",
        instance_types=("g5.xlarge", "g6e.12xlarge"),
        max_gpus=8,
        max_cpu=96,
        taints=(Taint("aiplatform.io/spot", "true"),),
    )

    def program():
        p = provider()
        return GpuSupport(
            "gpu",
            GpuSupportArgs(
                provider=p,
                gpu_specs=[pool],
                device_plugin=False,
                dcgm_exporter=True,
                dcgm_exporter_chart_version="4.1.1",
            ),
        )

    gpu = build(program)
    assert gpu.device_plugin is None
    assert [r.inputs["chart"] for r in monitor.of_type("kubernetes:helm.sh/v3:Release")] == ["dcgm-exporter"]
    dcgm = monitor.named("gpu-dcgm-exporter").inputs["values"]
    assert dcgm["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "aiplatform.io/spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    ]
