"""The add-on registry: one descriptor per Helm chart, and what reads it."""

import dataclasses
import importlib

import pytest

from aiplatform.catalog.registry import ADD_ONS, BY_CHART, KARPENTER
from aiplatform.compute.capacity import Requests, _component_value
from aiplatform.config.infrastructure import ChartSettings
from aiplatform.scheduling import Toleration
from tests.stacks import EXAMPLE_STACKS, STACKS, stack_config

PINNED_ARGS = {  # the component argument whose default is a chart's pinned version or repository
    "nvidia-device-plugin": ("addons.gpu", "GpuSupportArgs", "device_plugin_chart"),
    "dcgm-exporter": ("addons.gpu", "GpuSupportArgs", "dcgm_exporter_chart"),
    "dra-driver-nvidia-gpu": ("addons.gpu", "GpuSupportArgs", "dra_driver_chart"),
    "external-secrets": ("addons.secrets", "ExternalSecretsArgs", "chart"),
    "aws-load-balancer-controller": ("addons.ingress", "IngressControllerArgs", "alb_chart"),
    "ingress-nginx": ("addons.ingress", "IngressControllerArgs", "nginx_chart"),
    "kube-prometheus-stack": ("addons.observability", "MetricsStackArgs", "prometheus_chart"),
    "prometheus-adapter": ("addons.observability", "MetricsStackArgs", "adapter_chart"),
    "cluster-autoscaler": ("compute.autoscaler", "ClusterAutoscalerArgs", "chart"),
    "karpenter": ("compute.karpenter", "KarpenterArgs", "chart"),
}


def _defaults(module: str, args: str) -> dict:
    cls = getattr(importlib.import_module(f"aiplatform.{module}"), args)
    return {f.name: f.default for f in dataclasses.fields(cls)}


def test_charts_and_config_keys_are_unique():
    assert len(BY_CHART) == len(ADD_ONS)
    assert len({addon.key for addon in ADD_ONS}) == len(ADD_ONS)


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_the_committed_stacks_pin_the_registry_versions(stack):
    pinned = stack_config(stack)["aiplatform:charts"]
    for addon in ADD_ONS:
        if addon.key in pinned:
            assert pinned[addon.key] == addon.version, (stack, addon.key)
        else:
            assert addon.pinned_when is not None or addon.optional_pin, (stack, addon.key)


def test_the_charts_settings_have_a_version_per_add_on_in_the_registry_order():
    keys = [addon.key for addon in ADD_ONS]
    assert list(ChartSettings.model_fields)[: len(keys)] == keys
    required = {name for name, f in ChartSettings.model_fields.items() if f.is_required()}
    assert required == {
        addon.key for addon in ADD_ONS if addon.pinned_when is None and not addon.optional_pin
    }
    assert {addon.key for addon in ADD_ONS if not addon.optional_pin} == {
        "externalSecrets",
        "awsLoadBalancerController",
        "ingressNginx",
        "nvidiaDevicePlugin",
        "dcgmExporter",
        "clusterAutoscaler",
        "kubePrometheusStack",
        "prometheusAdapter",
        "karpenter",
    }


def test_a_mirror_or_a_per_chart_repository_moves_a_chart():
    versions = {addon.key: addon.version for addon in ADD_ONS}
    upstream = ChartSettings(**versions)
    assert upstream.repository(KARPENTER) == "oci://public.ecr.aws/karpenter"
    assert upstream.version(KARPENTER) == KARPENTER.version
    moved = ChartSettings(**versions, mirror="https://m.example.com", repositories={"karpenter": "oci://r/k"})
    assert moved.repository(KARPENTER) == "oci://r/k"
    assert {moved.repository(a) for a in ADD_ONS if a is not KARPENTER} == {"https://m.example.com"}


def test_components_default_to_their_descriptor():
    # An add-on the platform installs from its descriptor gets its chart from the AddOnInstall.
    for addon in (addon for addon in ADD_ONS if addon.install is None):
        module, args, prefix = PINNED_ARGS[addon.chart]
        defaults = _defaults(module, args)
        assert defaults[f"{prefix}_repository"] == addon.repository, addon.chart
        version = defaults[f"{prefix}_version"]
        # Required (no default), or the pinned version; the autoscaler's follows Kubernetes.
        assert version in (dataclasses.MISSING, None, addon.version) or addon.chart == "cluster-autoscaler"


def test_every_pod_names_requests_replicas_and_tolerations_its_component_has():
    for addon in ADD_ONS:
        for pod in addon.pods:
            for name in pod.requests:
                assert Requests.of(_component_value(addon, name)["requests"]) > Requests(), (
                    addon.chart,
                    name,
                )
            if isinstance(pod.replicas, str):
                assert isinstance(_component_value(addon, pod.replicas), int), (addon.chart, pod.name)
            if pod.tolerations:
                tolerations = _component_value(addon, pod.tolerations)
                assert callable(tolerations) or all(isinstance(t, Toleration) for t in tolerations), (
                    addon.chart,
                    pod.name,
                )
            assert pod.daemon or not pod.gpu_only, (addon.chart, pod.name)


def test_owned_custom_resources_are_of_kinds_the_chart_installs():
    for addon in ADD_ONS:
        kinds = {f"kubernetes:{crd.group}/{crd.versions[0]}:{crd.kind}" for crd in addon.crds}
        for owned in addon.owns:
            assert owned in kinds or owned == "kubernetes:networking.k8s.io/v1:Ingress", (addon.chart, owned)


def test_the_provisioners_charts_are_listed_by_the_provisioners_only():
    from aiplatform.catalog.registry import AddonChoices
    from aiplatform.compute.capacity import Nodes, release_pods
    from aiplatform.compute.node_groups import NodeGroupSpec
    from aiplatform.compute.provisioner import provisioner_named

    by_provisioner = {addon.chart for addon in ADD_ONS if addon.provisioner}
    assert by_provisioner == {"cluster-autoscaler", "karpenter"}
    nodes = Nodes(NodeGroupSpec(name="system", role="system", instance_types=("m7i.xlarge",)))
    released = {p.source for p in release_pods(AddonChoices(), nodes)}
    assert not released & {f"release {chart}" for chart in by_provisioner}
    assert {p.source for p in provisioner_named("node-groups").pods()} == {"release cluster-autoscaler"}
    assert {p.source for p in provisioner_named("karpenter").pods()} == {"release karpenter"}
