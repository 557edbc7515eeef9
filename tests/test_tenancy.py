import pulumi_kubernetes as k8s
import pytest

from aiplatform.tenancy import (
    TeamNamespace,
    TeamNamespaceArgs,
    TeamQuota,
    is_dns1123_label,
    is_quantity,
)
from tests.conftest import resolve

ALL_PODS: dict = {}


def build_team(build, **overrides):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        values = dict(
            name="search",
            provider=provider,
            vpc_cidr="10.0.0.0/16",
            labels={"team": "search"},
            quota=TeamQuota(cpu="64", memory="256Gi", gpus=8, limits_memory="512Gi"),
        )
        values.update(overrides)
        return provider, TeamNamespace("search", TeamNamespaceArgs(**values))

    return build(program)


def policies(monitor) -> dict[str, dict]:
    return {
        r.name: r.inputs["spec"] for r in monitor.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }


def test_namespace_quota_and_limits(build, monitor):
    provider, team = build_team(build)
    assert resolve(team.name) == "search"
    ns = monitor.named("search-ns").inputs["metadata"]
    assert ns["name"] == "search"
    assert ns["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["labels"]["team"] == "search"
    assert ns["labels"]["aiplatform.io/tenant"] == "search"

    quota = monitor.named("search-quota").inputs
    assert quota["metadata"]["namespace"] == "search"
    assert quota["spec"]["hard"] == {
        "requests.cpu": "64",
        "requests.memory": "256Gi",
        "requests.nvidia.com/gpu": "8",
        "pods": "50",
        "persistentvolumeclaims": "10",
        "limits.memory": "512Gi",
    }
    (item,) = monitor.named("search-limits").inputs["spec"]["limits"]
    assert item == {
        "type": "Container",
        "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
        "default": {"cpu": "1", "memory": "1Gi"},
        "max": {"cpu": "32", "memory": "256Gi"},
    }

    provider_urn = resolve(provider.urn)
    children = [r for r in monitor.registrations if r.type.startswith("kubernetes:") and r.custom]
    assert len(children) == 10
    for registration in children:
        assert registration.provider_urn == provider_urn, registration.name
        if registration.name != "search-ns":
            assert registration.inputs["metadata"]["namespace"] == "search"
            assert monitor.named("search-ns").urn in registration.dependencies
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


def test_default_deny_dns_same_namespace_and_https_egress(build, monitor):
    build_team(build)
    specs = policies(monitor)
    assert specs["search-default-deny"] == {"podSelector": ALL_PODS, "policyTypes": ["Ingress", "Egress"]}
    assert specs["search-allow-dns"] == {
        "podSelector": ALL_PODS,
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }
        ],
    }
    assert specs["search-allow-same-namespace"]["ingress"] == [{"from": [{"podSelector": ALL_PODS}]}]
    assert specs["search-allow-same-namespace"]["egress"] == [{"to": [{"podSelector": ALL_PODS}]}]
    assert specs["search-allow-monitoring-scrape"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]}
    ]
    assert specs["search-allow-https-egress"]["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
            "ports": [{"protocol": "TCP", "port": 443}],
        }
    ]
    assert specs["search-allow-pod-identity-agent"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}], "ports": [{"protocol": "TCP", "port": 80}]}
    ]
    assert "search-allow-monitoring-egress" not in specs


def test_alb_ingress_allows_the_vpc_cidr_on_service_ports(build, monitor):
    build_team(build, ingress_ports=(8000, 8080))
    specs = policies(monitor)
    assert specs["search-allow-ingress-alb"] == {
        "podSelector": ALL_PODS,
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
                "ports": [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8080}],
            }
        ],
    }
    assert "search-allow-ingress-nginx" not in specs


def test_nginx_ingress_allows_the_controller_namespace(build, monitor):
    build_team(build, ingress_sources="nginx", vpc_cidr=None, egress_to_monitoring=True)
    specs = policies(monitor)
    assert specs["search-allow-ingress-nginx"]["ingress"] == [
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8080}],
        }
    ]
    assert "search-allow-ingress-alb" not in specs
    assert specs["search-allow-monitoring-egress"]["egress"][0]["ports"] == [
        {"protocol": "TCP", "port": 9090}
    ]


def test_invalid_args_list_every_bad_field():
    with pytest.raises(ValueError) as err:
        TeamNamespace(
            "bad",
            TeamNamespaceArgs(
                name="Bad_Team",
                provider=None,
                labels={"pod-security.kubernetes.io/enforce": "privileged"},
                quota=TeamQuota(cpu="lots", memory="1Gb", gpus=-1),
                ingress_sources="alb",
                vpc_cidr=None,
                ingress_ports=(0,),
            ),
        )
    message = str(err.value)
    for field_name in (
        "name:",
        "quota.cpu",
        "quota.memory",
        "quota.gpus",
        "labels.pod-security.kubernetes.io/enforce",
        "vpc_cidr",
        "ingress_ports",
    ):
        assert field_name in message, field_name


def test_validators():
    assert is_dns1123_label("team-a1") and not is_dns1123_label("-a") and not is_dns1123_label("A")
    assert not is_dns1123_label("a" * 64)
    for good in ("500m", "2", "1.5", "64Gi", "1e3", "0"):
        assert is_quantity(good), good
    for bad in ("", "1Gb", "-1", "lots", "1 Gi"):
        assert not is_quantity(bad), bad
