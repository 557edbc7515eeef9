"""The platform's extension points, proven with throw-away extensions registered by the tests alone.

A Helm add-on is its descriptor and its component: this module is both (registered as the component
module ``aiplatform.example_addon``), and the platform installs it on the dev settings, whose stack
file does not name it.
"""

from __future__ import annotations

import sys

import pulumi
import pytest
from pydantic import create_model

from aiplatform.addons import registry
from aiplatform.addons.helm import helm_release
from aiplatform.addons.install import AddOnInstall
from aiplatform.addons.registry import AddOn, Pod
from aiplatform.config import parse_settings
from aiplatform.config.capacity import platform_pods
from aiplatform.config.infrastructure import ChartSettings, chart_version_field
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
            values={"replicaCount": REPLICAS, "resources": RESOURCES},
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

    assert list(platform.addons) == ["example-agent"]
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
