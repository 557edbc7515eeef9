import json
import logging

import pulumi_kubernetes as kubernetes
import pytest
import yaml

from aiplatform.addons.alb_iam_policy import ALB_CONTROLLER_POLICY, alb_controller_policy
from aiplatform.addons.ingress import (
    NGINX_RETIRED_WARNING,
    IngressController,
    IngressControllerArgs,
    RouteSettings,
)
from aiplatform.iam import WorkloadIdentity
from aiplatform.routing import IngressRoute
from tests.conftest import resolve

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"


def make(controller: str = "alb", **overrides) -> IngressController:
    fields = dict(
        provider=kubernetes.Provider("k8s", kubeconfig="{}"),
        cluster_name="ai-prod",
        region="us-east-1",
        vpc_id="vpc-0123",
        identity=WorkloadIdentity(
            mode="irsa", cluster_name="ai-prod", oidc_provider_arn=PROVIDER_ARN, oidc_issuer_url=ISSUER
        ),
        alb_chart_version="3.5.0",
        controller=controller,
        nginx_chart_version="4.15.0",
        scheme="internet-facing",
        certificate_arn=CERT,
        tls_secret_name="wildcard-tls",
    )
    fields.update(overrides)
    return IngressController("edge", IngressControllerArgs(**fields))


def test_alb_controller_role_release_and_ingress_class(build, monitor):
    controller = build(make)
    provider_urn = monitor.named("k8s").urn

    trust = json.loads(monitor.named("edge-alb-controller-role").inputs["assumeRolePolicy"])
    issuer = ISSUER.removeprefix("https://")
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{issuer}:sub"] == (
        "system:serviceaccount:kube-system:aws-load-balancer-controller"
    )
    policy = json.loads(monitor.named("edge-alb-controller-policy").inputs["policy"])
    assert policy == ALB_CONTROLLER_POLICY

    release = monitor.named("edge-alb")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"], inputs["name"]) == (
        "aws-load-balancer-controller",
        "3.5.0",
        "kube-system",
        "aws-load-balancer-controller",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
    assert inputs["values"] == {
        "clusterName": "ai-prod",
        "region": "us-east-1",
        "vpcId": "vpc-0123",
        "replicaCount": 2,
        "serviceAccount": {
            "create": True,
            "name": "aws-load-balancer-controller",
            "annotations": {"eks.amazonaws.com/role-arn": resolve(controller.role.arn)},
        },
        "createIngressClassResource": False,
        "enableServiceMutatorWebhook": False,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
    }
    # The chart sets no default resources: nothing to unset.
    assert "valueYamlFiles" not in inputs
    assert release.provider_urn == provider_urn

    ingress_class = monitor.named("edge-class")
    assert ingress_class.inputs["metadata"]["name"] == "alb"
    assert ingress_class.inputs["spec"] == {"controller": "ingress.k8s.aws/alb"}
    assert ingress_class.provider_urn == provider_urn
    # Created before the release, so deleted after it (and after every Ingress depending on it).
    assert ingress_class.urn in release.dependencies
    assert monitor.named("edge-alb-controller-policy").urn in release.dependencies

    assert controller.ready is controller.alb_release
    assert controller.class_name == "alb"
    assert not monitor.of_type("kubernetes:helm.sh/v3:Release")[1:]


def test_alb_route_annotations():
    settings = RouteSettings(
        controller="alb", scheme="internet-facing", certificate_arn=CERT, group_name="ai"
    )
    route = settings.route("chat.example.com", "/v1")
    assert route == IngressRoute(
        class_name="alb",
        host="chat.example.com",
        path="/v1",
        tls=True,
        annotations={
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/group.name": "ai",
            "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
            "alb.ingress.kubernetes.io/ssl-redirect": "443",
            "alb.ingress.kubernetes.io/certificate-arn": CERT,
            "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
        },
        tls_secret_name=None,
        health_check_annotation="alb.ingress.kubernetes.io/healthcheck-path",
    )
    plain = RouteSettings(controller="alb", require_tls=False).route("dev.example.com", tls=False)
    assert plain.annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTP": 80}]'
    assert not any(k.endswith(("certificate-arn", "ssl-redirect")) for k in plain.annotations)


def test_route_on_the_component_is_pure(build, monitor):
    controller = build(make)
    before = len(monitor.registrations)
    route = controller.route("api.example.com")
    assert route.class_name == "alb"
    assert route.annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERT
    assert len(monitor.registrations) == before


def test_nginx_release_values_route_and_warning(build, monitor, caplog):
    with caplog.at_level(logging.WARNING):
        controller = build(lambda: make("nginx"))
    assert NGINX_RETIRED_WARNING in caplog.text

    release = monitor.named("edge-nginx")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "ingress-nginx",
        "4.15.0",
        "ingress-nginx",
    )
    assert inputs["repositoryOpts"] == {"repo": "https://kubernetes.github.io/ingress-nginx"}
    assert inputs["values"]["controller"] == {
        "replicaCount": 2,
        "ingressClass": "nginx",
        "ingressClassResource": {
            "name": "nginx",
            "enabled": True,
            "default": False,
            "controllerValue": "k8s.io/ingress-nginx",
        },
        "service": {
            "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
            }
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "admissionWebhooks": {
            "createSecretJob": {
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
            },
            "patchWebhookJob": {
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
            },
        },
    }
    # The chart's default controller requests are unset, so only the program's remain.
    (unset,) = inputs["valueYamlFiles"]
    assert yaml.safe_load(unset["text"]) == {
        "controller": {"resources": {"requests": {"cpu": None, "memory": None}}}
    }
    assert release.provider_urn == monitor.named("k8s").urn
    # The NLB comes from the load balancer controller: nginx is installed after it, removed before it.
    assert monitor.named("edge-alb").urn in release.dependencies
    # Pulumi owns the namespace (Helm never deletes one it creates): made before the release, deleted
    # after it, and the release does not create it.
    namespace = monitor.named("edge-nginx-namespace")
    assert namespace.inputs["metadata"]["name"] == "ingress-nginx"
    assert namespace.urn in release.dependencies
    assert namespace.provider_urn == monitor.named("k8s").urn
    assert "createNamespace" not in inputs
    assert controller.nginx_namespace is not None
    assert not monitor.of_type("kubernetes:networking.k8s.io/v1:IngressClass")
    assert controller.ready is not controller.alb_release

    route = controller.route("chat.example.com")
    assert route == IngressRoute(
        class_name="nginx",
        host="chat.example.com",
        annotations={"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"},
        tls_secret_name="wildcard-tls",
    )


def test_alb_emits_no_retirement_warning(build, caplog):
    with caplog.at_level(logging.WARNING):
        build(make)
    assert NGINX_RETIRED_WARNING not in caplog.text


@pytest.mark.parametrize(
    "host",
    [
        "",
        "localhost",
        "Chat.example.com",
        "-a.example.com",
        "a_b.example.com",
        "1.2.3.4",
        "a..b",
        "x" * 64 + ".com",
    ],
)
def test_invalid_hosts_are_rejected(host):
    with pytest.raises(ValueError, match="is not a valid DNS name"):
        RouteSettings(controller="alb", certificate_arn=CERT).route(host)


def test_wildcard_host_is_accepted():
    assert (
        RouteSettings(controller="alb", certificate_arn=CERT).route("*.example.com").host == "*.example.com"
    )


def test_route_tls_rules():
    with pytest.raises(ValueError, match="must use TLS"):
        RouteSettings(controller="alb", certificate_arn=CERT).route("a.example.com", tls=False)
    with pytest.raises(ValueError, match="set certificate_arn"):
        RouteSettings(controller="alb", require_tls=False).route("a.example.com")
    with pytest.raises(ValueError, match="set tls_secret_name"):
        RouteSettings(controller="nginx", require_tls=False).route("a.example.com")
    with pytest.raises(ValueError, match="must start with '/'"):
        RouteSettings(controller="nginx", tls_secret_name="t").route("a.example.com", "v1")


def test_args_validation_lists_every_bad_field(build, monitor):
    with pytest.raises(ValueError) as info:
        build(
            lambda: make(
                "nginx", certificate_arn="not-an-arn", tls_secret_name=None, nginx_chart_version="latest"
            )
        )
    message = str(info.value)
    assert "certificate_arn: 'not-an-arn' is not an ACM certificate ARN" in message
    assert "nginx_chart_version: 'latest' must be an exact version" in message
    assert "tls_secret_name: required with controller='nginx' and require_tls=True" in message
    assert [r.name for r in monitor.registrations] == ["k8s"]  # only the test's own provider

    with pytest.raises(ValueError, match="certificate_arn: required with controller='alb'"):
        build(lambda: make(certificate_arn=None))
    with pytest.raises(ValueError, match="controller: 'traefik'"):
        build(lambda: make("traefik"))


def test_partition_rewrite():
    gov = json.dumps(alb_controller_policy("aws-us-gov"))
    assert "arn:aws:" not in gov and "arn:aws-us-gov:elasticloadbalancing" in gov
    assert alb_controller_policy() == ALB_CONTROLLER_POLICY


def test_alb_routes_carry_the_health_check_path_and_nginx_routes_ignore_it():
    alb = RouteSettings(controller="alb", certificate_arn=CERT).route(
        "llm.example.com", health_check_path="/ready"
    )
    assert alb.annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/ready"
    nginx = RouteSettings(controller="nginx", tls_secret_name="tls").route(
        "llm.example.com", health_check_path="/ready"
    )
    assert not [k for k in nginx.annotations if "healthcheck" in k]
    with pytest.raises(ValueError, match="health_check_path: 'ready' must start with '/'"):
        RouteSettings(controller="alb", certificate_arn=CERT).route(
            "llm.example.com", health_check_path="ready"
        )


def test_on_eks_auto_mode_the_platform_adds_only_the_class_for_auto_mode_s_albs(build, monitor):
    controller = build(lambda: make(eks_auto_mode=True))
    params = monitor.named("edge-class-params").inputs
    assert (params["apiVersion"], params["kind"], params["metadata"]) == (
        "eks.amazonaws.com/v1",
        "IngressClassParams",
        {"name": "alb"},
    )
    assert params["spec"] == {
        "scheme": "internet-facing",
        "group": {"name": "aiplatform"},
        "certificateARNs": [CERT],
    }
    ingress_class = monitor.named("edge-class")
    assert ingress_class.inputs["spec"] == {
        "controller": "eks.amazonaws.com/alb",
        "parameters": {"apiGroup": "eks.amazonaws.com", "kind": "IngressClassParams", "name": "alb"},
    }
    assert monitor.named("edge-class-params").urn in ingress_class.dependencies
    # No chart and no IAM role: EKS runs the controller.
    assert monitor.of_type("kubernetes:helm.sh/v3:Release") == []
    assert monitor.of_type("aws:iam/role:Role") == []
    assert controller.ready is controller.ingress_class
    # The class groups the routes: Auto Mode does not read the group annotation.
    route = controller.route("llm.example.com", health_check_path="/health")
    assert "alb.ingress.kubernetes.io/group.name" not in route.annotations
    assert route.annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERT


def test_auto_mode_serves_no_ingress_nginx():
    with pytest.raises(ValueError, match="EKS Auto Mode serves ALBs itself"):
        make("nginx", eks_auto_mode=True)
