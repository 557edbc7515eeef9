"""The platform's extension points, proven with throw-away extensions registered by the tests alone.

A Helm add-on is its descriptor and its component: this module is both (registered as the component
module ``aiplatform.example_addon``), and the platform installs it on the dev settings, whose stack
file does not name it. A workload kind is its component, its settings and one mapping in the
platform: here an evaluation run, which the capacity model, the alerts and the platform pick up.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import Field, ValidationError, create_model

from aiplatform.addons.install import AddOnInstall
from aiplatform.catalog import registry
from aiplatform.catalog.helm import helm_release
from aiplatform.catalog.registry import AddOn, Pod
from aiplatform.compute.node_groups import SYSTEM_SELECTOR
from aiplatform.config import parse_settings
from aiplatform.config.capacity import platform_pods
from aiplatform.config.infrastructure import ChartSettings, chart_version_field
from aiplatform.config.workloads import WorkloadBase, WorkloadsSettings
from aiplatform.platform import AiPlatform
from tests.stacks import sections

# -- a throw-away add-on: its descriptor ... --------------------------------------------------------
EXAMPLE_AGENT = AddOn(
    chart="example-agent",
    repository="https://charts.example.com",
    key="exampleAgent",
    version="1.2.3",
    component="example_addon",
    resources={("resources",): {}},
    pods=(Pod("example-agent", ("RESOURCES",), replicas="REPLICAS", system=True),),
    optional_pin=True,
    install="install",
)


# -- ... and its component --------------------------------------------------------------------------
RESOURCES = {"requests": {"cpu": "150m", "memory": "96Mi"}, "limits": {"memory": "96Mi"}}
REPLICAS = 2


class ExampleAgent(pulumi.ComponentResource):
    def __init__(self, install: AddOnInstall):
        super().__init__("aiplatform:example:ExampleAgent", install.name, None, install.opts)
        self.release = helm_release(
            install.name,
            chart=EXAMPLE_AGENT.chart,
            version=install.chart_version,
            repository=install.chart_repository,
            namespace="kube-system",
            values={"replicaCount": REPLICAS, "resources": RESOURCES, "nodeSelector": dict(SYSTEM_SELECTOR)},
            opts=pulumi.ResourceOptions(
                parent=self, provider=install.provider, depends_on=list(install.depends_on)
            ),
        )
        self.register_outputs({})


def install(context: AddOnInstall) -> ExampleAgent:
    return ExampleAgent(context)


@pytest.fixture
def example_agent(monkeypatch: pytest.MonkeyPatch) -> AddOn:
    """The add-on in the registry, as if its descriptor were written there."""
    monkeypatch.setattr(registry, "ADD_ONS", (*registry.ADD_ONS, EXAMPLE_AGENT))
    monkeypatch.setattr(registry, "BY_CHART", {**registry.BY_CHART, EXAMPLE_AGENT.chart: EXAMPLE_AGENT})
    monkeypatch.setitem(sys.modules, f"aiplatform.{EXAMPLE_AGENT.component}", sys.modules[__name__])
    return EXAMPLE_AGENT


def dev_settings(addon: AddOn, **charts: str):
    """dev's settings read with ``addon``'s ``charts:`` field (made when the settings are imported)."""
    settings = parse_settings(sections("dev"))
    charts_type = create_model("Charts", __base__=ChartSettings, **{addon.key: chart_version_field(addon)})
    pinned = charts_type.model_validate({**sections("dev")["charts"], **charts})
    return settings.model_copy(update={"charts": pinned})


def of_type(monitor, typ):
    return [r for r in monitor.registrations if r.type == typ]


def test_a_new_add_on_needs_no_pin_in_the_stack_file(example_agent):
    settings = dev_settings(example_agent)
    assert example_agent.key not in sections("dev")["charts"]
    assert settings.charts.version(example_agent) == "1.2.3"


@pytest.mark.parametrize(
    ("charts", "repository"),
    [
        ({}, "https://charts.example.com"),
        ({"mirror": "https://charts.mirror.example"}, "https://charts.mirror.example"),
    ],
)
def test_the_platform_installs_a_new_add_on_from_its_descriptor(
    example_agent, build, monitor, charts, repository
):
    platform = build(
        lambda: AiPlatform("aiplatform", dev_settings(example_agent, **charts), region="us-east-1")
    )

    assert list(platform.addons)[-1] == "example-agent"  # the registry's order: it was added last
    assert isinstance(platform.addons["example-agent"], ExampleAgent)
    (release,) = [
        r for r in of_type(monitor, "kubernetes:helm.sh/v3:Release") if r.inputs["name"] == "example-agent"
    ]
    assert (release.inputs["chart"], release.inputs["version"]) == ("example-agent", "1.2.3")
    assert release.inputs["repositoryOpts"]["repo"] == repository
    # It waits for the system nodes its pods run on.
    (system,) = [r.urn for r in of_type(monitor, "aws:eks/nodeGroup:NodeGroup") if r.name.endswith("-system")]
    assert system in release.dependencies


def test_the_capacity_model_counts_a_new_add_ons_pods(example_agent):
    pods = [p for p in platform_pods(dev_settings(example_agent)) if p.source == "release example-agent"]
    assert [
        (p.name, p.requests.cpu_m, p.requests.memory_mib, p.max_replicas, p.node_group) for p in pods
    ] == [("example-agent", 150, 96, 2, "system")]


# -- a throw-away workload kind: its component ... ----------------------------------------------------
@dataclass(frozen=True)
class EvaluationRun:
    namespace: str
    name: str

    def rules(self) -> list[dict]:
        return [{"alert": "EvaluationFailed", "expr": f'kube_job_failed{{job_name="{self.name}"}} == 1'}]


class Evaluation(pulumi.ComponentResource):
    def __init__(
        self, name: str, provider: k8s.Provider, namespace: str, suite: str, opts: pulumi.ResourceOptions
    ):
        super().__init__("aiplatform:workloads:Evaluation", name, None, opts)
        self.suite = k8s.core.v1.ConfigMap(
            f"{name}-suite",
            metadata={"namespace": namespace},
            data={"suite": suite},
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        self.register_outputs({})


# -- ... its settings ---------------------------------------------------------------------------------
class EvaluationSettings(WorkloadBase):
    suite: str = "regression"

    def alert_target(self) -> EvaluationRun:
        return EvaluationRun(self.namespace, self.name)


Workloads = create_model(
    "Workloads",
    __base__=WorkloadsSettings,
    evaluation=(list[EvaluationSettings], Field(default_factory=list)),
)


# -- ... and its mapping in the platform ------------------------------------------------------------
class PlatformWithEvaluations(AiPlatform):
    def _workload_components(self):
        return {**super()._workload_components(), EvaluationSettings: self._evaluation}

    def _evaluation(self, w: EvaluationSettings) -> Evaluation:
        return Evaluation(w.name, self.cluster.provider, w.namespace, w.suite, self._child)


EVALUATION = {
    "name": "nightly-eval",
    "namespace": "ml-training",
    "image": "registry.example.com/eval:1.0",
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
}


def with_evaluations(*evaluations: dict):
    settings = parse_settings(sections("dev"))
    workloads = Workloads.model_validate({**sections("dev")["workloads"], "evaluation": list(evaluations)})
    return settings.model_copy(update={"workloads": workloads})


def test_a_new_kind_is_a_key_of_the_workloads_section_with_its_names_checked():
    assert Workloads.kinds() == ["inference", "training", "batch", "evaluation"]
    with pytest.raises(ValidationError, match="duplicate evaluation workload 'nightly-eval'"):
        with_evaluations(EVALUATION, EVALUATION)


def test_the_platform_builds_a_new_kinds_components_and_alerts(build, monitor):
    platform = build(
        lambda: PlatformWithEvaluations("aiplatform", with_evaluations(EVALUATION), region="us-east-1")
    )

    assert isinstance(platform.workloads["evaluation"]["nightly-eval"], Evaluation)
    assert {"llama-inference", "text-embedder"} <= set(platform.workloads["inference"])
    (suite,) = [r for r in of_type(monitor, "kubernetes:core/v1:ConfigMap") if r.name == "nightly-eval-suite"]
    assert suite.inputs["data"] == {"suite": "regression"}
    (workloads,) = [g for g in platform.alerts.groups if g["name"] == "aiplatform.workloads"]
    assert workloads["rules"][-1]["alert"] == "EvaluationFailed"


def test_the_capacity_model_counts_a_new_kinds_pods():
    pods = [
        p for p in platform_pods(with_evaluations(EVALUATION)) if p.path[:2] == ("workloads", "evaluation")
    ]
    assert [(p.name, p.requests.cpu_m, p.requests.memory_mib, p.path) for p in pods] == [
        ("nightly-eval", 500, 1024, ("workloads", "evaluation", 0, "resources", "requests"))
    ]
