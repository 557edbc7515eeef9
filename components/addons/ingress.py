"""The cluster's ingress controller: the AWS Load Balancer Controller (default) or ingress-nginx.

Workloads never write controller-specific annotations themselves: they ask the controller for an
``IngressRoute`` (``controller.route(host)``) and put its class name, annotations and TLS secret on
their Ingress. Swapping controllers is then a config change, not an edit of every workload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as kubernetes

from .. import validation
from ..catalog.helm import helm_release
from ..catalog.registry import AWS_LOAD_BALANCER_CONTROLLER, INGRESS_NGINX
from ..errors import Problem, require, type_problems
from ..iam import ServiceAccountRole, ServiceAccountRoleArgs, WorkloadIdentity
from ..inputs import checked, checked_fields, field_problems, is_known, plain_problems
from ..routing import IngressRoute
from ..validation import is_dns1123_label, is_dns1123_subdomain, is_exact_version
from .alb_iam_policy import alb_controller_policy

ControllerKind = Literal["alb", "nginx"]
Scheme = Literal["internet-facing", "internal"]

ALB_NAMESPACE = "kube-system"
ALB_SERVICE_ACCOUNT = "aws-load-balancer-controller"
ALB_CONTROLLER = "ingress.k8s.aws/alb"
ALB_CLASS = "alb"
# EKS Auto Mode's own load balancing: an IngressClass for its controller, configured by parameters.
AUTO_MODE_ALB_CONTROLLER = "eks.amazonaws.com/alb"
AUTO_MODE_PARAMS_API = "eks.amazonaws.com/v1"

NGINX_NAMESPACE = "ingress-nginx"
NGINX_CONTROLLER = "k8s.io/ingress-nginx"
NGINX_CLASS = "nginx"
NGINX_RETIRED_WARNING = (
    "ingress-nginx was retired in March 2026 and receives no further fixes (security included); "
    "prefer controller='alb' (the AWS Load Balancer Controller)."
)

DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ALB = "alb.ingress.kubernetes.io/"
ALB_HEALTHCHECK_PATH = f"{ALB}healthcheck-path"  # the path the ALB's target group checks
NLB = "service.beta.kubernetes.io/"

ACM_ARN_PATTERN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$")


@dataclass
class IngressControllerArgs:
    """Inputs of ``IngressController``.

    ``alb_chart_version`` is needed in both modes: with ``nginx`` the NLB in front of ingress-nginx
    is provisioned by the AWS Load Balancer Controller (the in-tree cloud provider ignores
    ``aws-load-balancer-type: external``), so the controller is installed there too, without an
    ``alb`` IngressClass. ``certificate_arn``/``tls_secret_name`` may be other resources' outputs (an
    ACM certificate's ``arn``, a Secret's name): plain values are checked at once, ``Output`` values
    when they resolve (see ``components.inputs``). ``ssl_policy`` applies to the ALB only.
    """

    provider: kubernetes.Provider  # the cluster's Kubernetes provider
    # the EKS cluster (the load balancer controller's setting and IAM conditions)
    cluster_name: pulumi.Input[str]
    region: str  # the cluster's AWS region
    vpc_id: pulumi.Input[str]  # the VPC the load balancers go in
    identity: WorkloadIdentity  # how the load balancer controller's pod gets its IAM role
    alb_chart_version: str
    # where the aws-load-balancer-controller chart comes from (or a mirror)
    alb_chart_repository: str = AWS_LOAD_BALANCER_CONTROLLER.repository
    controller: ControllerKind = "alb"  # which controller serves the routes: the ALB or ingress-nginx
    # the ingress-nginx chart's exact version (required with ``nginx``)
    nginx_chart_version: str | None = None
    # where the ingress-nginx chart comes from (or a mirror)
    nginx_chart_repository: str = INGRESS_NGINX.repository
    # an internet-facing load balancer or an internal one (reachable from the VPC only)
    scheme: Scheme = "internal"
    certificate_arn: pulumi.Input[str] | None = None  # the ACM certificate the ALB serves TLS with
    tls_secret_name: pulumi.Input[str] | None = None  # the TLS Secret ingress-nginx serves with
    ssl_policy: str = DEFAULT_SSL_POLICY
    require_tls: bool = True  # routes serve HTTPS only (HTTP redirects); needs a certificate or TLS Secret
    group_name: str = "aiplatform"  # the ALB group: every route of the platform shares one ALB
    replica_count: int = 2  # the controller's replicas
    default_class: bool = False  # make the IngressClass the cluster's default
    # EKS Auto Mode runs the load balancer controller: the platform only adds its IngressClass (and
    # the IngressClassParams that group the routes on one ALB), no chart, no IAM role.
    eks_auto_mode: bool = False
    depends_on: Sequence[pulumi.Resource] = ()  # what the release waits for (schedulable nodes)
    # AWS tags on the controller's IAM role and the load balancers
    tags: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[Problem]:
        """Every bad field (empty when valid)."""
        problems: list[Problem] = []
        if self.controller not in ("alb", "nginx"):
            problems.append(("controller", f"{self.controller!r} must be 'alb' or 'nginx'"))
        if self.scheme not in ("internet-facing", "internal"):
            problems.append(("scheme", f"{self.scheme!r} must be 'internet-facing' or 'internal'"))
        if not is_exact_version(self.alb_chart_version):
            problems.append(
                ("alb_chart_version", f"{self.alb_chart_version!r} must be an exact version such as '3.5.0'")
            )
        if self.controller == "nginx" and not is_exact_version(self.nginx_chart_version):
            problems.append(
                (
                    "nginx_chart_version",
                    f"{self.nginx_chart_version!r} must be an exact version such as '4.15.0'",
                )
            )
        problems += field_problems(self, TLS_INPUTS)
        if self.require_tls and self.controller == "alb" and not self.certificate_arn:
            problems.append(("certificate_arn", "required with controller='alb' and require_tls=True"))
        if self.require_tls and self.controller == "nginx" and not self.tls_secret_name:
            problems.append(("tls_secret_name", "required with controller='nginx' and require_tls=True"))
        if self.eks_auto_mode and self.controller != "alb":
            problems.append(
                ("controller", "EKS Auto Mode serves ALBs itself; 'nginx' needs the controller it replaces")
            )
        if self.replica_count < 1:
            problems.append(("replica_count", f"{self.replica_count} must be >= 1"))
        if not is_dns1123_label(self.group_name or ""):
            problems.append(
                ("group_name", f"{self.group_name!r} must be a lowercase name of at most 63 characters")
            )
        return problems


def certificate_arn_reason(value: object) -> str | None:
    if isinstance(value, str) and ACM_ARN_PATTERN.fullmatch(value):
        return None
    return f"{value!r} is not an ACM certificate ARN"


def tls_secret_name_reason(value: object) -> str | None:
    return None if is_dns1123_subdomain(value) else f"{value!r} is not a DNS-1123 name"


def host_reason(host: object) -> str | None:
    """Why ``host`` is not a route's host name (None: it is one)."""
    if isinstance(host, str) and len(host) <= 253 and validation.hostname(host) is None:
        return None
    return (
        f"{host!r} is not a valid DNS name (lowercase labels of a-z, 0-9, '-', joined by '.', at least two "
        "labels, optional leading '*.'; no IP addresses)"
    )


# The TLS arguments that may come from other resources, and their rules.
TLS_INPUTS = {"certificate_arn": certificate_arn_reason, "tls_secret_name": tls_secret_name_reason}


@dataclass(frozen=True)
class RouteSettings:
    """What ``route()`` needs; build it without the engine (``RouteSettings.from_args``)."""

    controller: ControllerKind
    scheme: Scheme = "internal"
    certificate_arn: pulumi.Input[str] | None = None
    tls_secret_name: pulumi.Input[str] | None = None
    ssl_policy: str = DEFAULT_SSL_POLICY
    group_name: str = "aiplatform"
    require_tls: bool = True
    # EKS Auto Mode groups routes in the IngressClassParams; it does not read the group annotation.
    group_in_class: bool = False

    @classmethod
    def from_args(cls, args: IngressControllerArgs) -> RouteSettings:
        return cls(
            controller=args.controller,
            scheme=args.scheme,
            certificate_arn=args.certificate_arn,
            tls_secret_name=args.tls_secret_name,
            ssl_policy=args.ssl_policy,
            group_name=args.group_name,
            require_tls=args.require_tls,
            group_in_class=args.eks_auto_mode,
        )

    def route(
        self,
        host: pulumi.Input[str],
        path: str = "/",
        tls: bool = True,
        health_check_path: str | None = None,
    ) -> IngressRoute:
        """Class name and annotations for ``host``/``path`` on this controller (pure: no resources).

        ``host`` may be another resource's output (a DNS record's name): a plain host is checked at
        once, an ``Output`` when it resolves. ``health_check_path``: where the ALB checks its targets;
        the ALB would otherwise probe ``/`` and mark servers without a root page unhealthy. None: an
        ``InferenceService`` on the route checks its ``readiness_path``. ingress-nginx has no such
        check (it serves the ready pods).
        """
        subject = "IngressController.route"
        problems = plain_problems("host", host, host_reason)
        host = checked(subject, "host", host, host_reason)
        if not path.startswith("/"):
            problems.append(("path", f"{path!r} must start with '/'"))
        if health_check_path is not None and not health_check_path.startswith("/"):
            problems.append(("health_check_path", f"{health_check_path!r} must start with '/'"))
        if not tls and self.require_tls:
            named = f" for {host!r}" if is_known(host) else ""
            problems.append(("tls", f"a route{named} must use TLS (require_tls is set for this stack)"))
        if tls and self.controller == "alb" and not self.certificate_arn:
            problems.append(("tls", "the ALB terminates TLS with an ACM certificate; set certificate_arn"))
        if tls and self.controller == "nginx" and not self.tls_secret_name:
            problems.append(("tls", "ingress-nginx terminates TLS with a Secret; set tls_secret_name"))
        require(subject, problems)

        if self.controller == "alb":
            listen = [{"HTTP": 80}, {"HTTPS": 443}] if tls else [{"HTTP": 80}]
            annotations = {f"{ALB}scheme": self.scheme, f"{ALB}target-type": "ip"}
            if not self.group_in_class:
                annotations[f"{ALB}group.name"] = self.group_name
            annotations[f"{ALB}listen-ports"] = json.dumps(listen)
            if health_check_path:
                annotations[ALB_HEALTHCHECK_PATH] = health_check_path
            if tls:
                annotations |= {
                    f"{ALB}ssl-redirect": "443",
                    f"{ALB}certificate-arn": self.certificate_arn,
                    f"{ALB}ssl-policy": self.ssl_policy,
                }
            return IngressRoute(
                class_name=ALB_CLASS,
                host=host,
                path=path,
                tls=tls,
                annotations=annotations,
                health_check_annotation=ALB_HEALTHCHECK_PATH,
            )

        annotations = {"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"} if tls else {}
        return IngressRoute(
            class_name=NGINX_CLASS,
            host=host,
            path=path,
            tls=tls,
            annotations=annotations,
            tls_secret_name=self.tls_secret_name if tls else None,
        )


# Requests to schedule by and a memory ceiling; no CPU limit (throttling a controller only slows it).
ALB_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}
NGINX_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}
# The admission webhook's certificate jobs run once per install or upgrade.
NGINX_JOB_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"memory": "64Mi"},
}


def alb_values(args: IngressControllerArgs, annotations: pulumi.Input[Mapping[str, str]]) -> dict:
    """aws-load-balancer-controller chart values (region/vpcId given, so no IMDS lookups)."""
    values: dict = {
        "clusterName": args.cluster_name,
        "region": args.region,
        "vpcId": args.vpc_id,
        "replicaCount": args.replica_count,
        "serviceAccount": {"create": True, "name": ALB_SERVICE_ACCOUNT, "annotations": annotations},
        # Pulumi owns the IngressClass (see IngressController); Helm must not create a second one.
        "createIngressClassResource": False,
        "enableServiceMutatorWebhook": False,
        "resources": dict(ALB_RESOURCES),
    }
    if args.tags:
        values["defaultTags"] = dict(args.tags)
    return values


def nginx_values(args: IngressControllerArgs) -> dict:
    """ingress-nginx chart values: an NLB (ip targets) in front, IngressClass ``nginx`` from the chart."""
    return {
        "controller": {
            "replicaCount": args.replica_count,
            "ingressClass": NGINX_CLASS,
            "ingressClassResource": {
                "name": NGINX_CLASS,
                "enabled": True,
                "default": args.default_class,
                "controllerValue": NGINX_CONTROLLER,
            },
            "service": {
                "annotations": {
                    f"{NLB}aws-load-balancer-type": "external",
                    f"{NLB}aws-load-balancer-nlb-target-type": "ip",
                    f"{NLB}aws-load-balancer-scheme": args.scheme,
                }
            },
            "resources": dict(NGINX_RESOURCES),
            "admissionWebhooks": {
                "createSecretJob": {"resources": dict(NGINX_JOB_RESOURCES)},
                "patchWebhookJob": {"resources": dict(NGINX_JOB_RESOURCES)},
            },
        }
    }


class IngressController(pulumi.ComponentResource):
    """The active ingress controller and the ``route()`` workloads use to be reachable.

    ``alb``: the AWS Load Balancer Controller (role with the upstream IAM policy, Helm release) and
    the IngressClass ``alb``. Pulumi owns that IngressClass (the chart's is turned off): it is
    created *before* the release and deleted *after* it, so an Ingress never outlives its class while
    the controller still has a load balancer to clean up, and the plan shows it.
    ``nginx``: ingress-nginx behind an NLB; its IngressClass ``nginx`` comes from the chart, because
    the chart wires the same values into the controller's ``--controller-class`` flag. The AWS Load
    Balancer Controller is installed as well, to provision that NLB. Pulumi owns the ``ingress-nginx``
    namespace, created before the release and deleted after it: Helm never deletes a namespace it
    created itself, so ``destroy`` would leave it behind.

    Teardown order: every Ingress must be deleted while the controller still runs (it removes the
    load balancer and the finalizer), otherwise ``destroy`` hangs and the VPC can't be deleted.
    Create Ingresses with ``opts=ResourceOptions(depends_on=[controller.ready])``: Pulumi deletes
    dependents first. ``controller.ready`` is what Ingresses wait for and must outlive: the release
    serving the routes (ingress-nginx depends on the load balancer controller, so that chain is ordered
    too), or under EKS Auto Mode the IngressClass.
    """

    # what Ingresses wait for and must outlive (the controller's release or IngressClass)
    ready: pulumi.Resource
    # the load balancer controller's release (None: EKS Auto Mode runs it)
    alb_release: kubernetes.helm.v3.Release | None
    ingress_class: kubernetes.networking.v1.IngressClass | None  # the IngressClass
    # the ingress-nginx namespace (None: the ALB controller serves the routes)
    nginx_namespace: kubernetes.core.v1.Namespace | None
    role: ServiceAccountRole | None  # the load balancer controller's IAM role (None: Auto Mode)
    class_name: str  # the IngressClass's name
    settings: RouteSettings  # what ``route`` builds an Ingress from

    def __init__(self, name: str, args: IngressControllerArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"IngressController {name!r}"
        require(subject, type_problems(args, IngressControllerArgs) or args.problems())
        super().__init__("aiplatform:ingress:IngressController", name, None, opts)
        args = checked_fields(subject, args, TLS_INPUTS)
        self.settings = RouteSettings.from_args(args)
        self.class_name = ALB_CLASS if args.controller == "alb" else NGINX_CLASS
        self.ingress_class = None
        self.nginx_namespace = None
        k8s = pulumi.ResourceOptions(parent=self, provider=args.provider)
        if args.eks_auto_mode:
            self._auto_mode_class(name, args, k8s)
            return

        partition = "aws-us-gov" if args.region.startswith("us-gov-") else "aws"
        partition = "aws-cn" if args.region.startswith("cn-") else partition
        self.role = ServiceAccountRole(
            f"{name}-alb-controller",
            ServiceAccountRoleArgs(
                identity=args.identity,
                namespace=ALB_NAMESPACE,
                service_account=ALB_SERVICE_ACCOUNT,
                policy=alb_controller_policy(partition),
                tags=dict(args.tags),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )

        alb_depends: list[pulumi.Resource] = [self.role, *args.depends_on]
        if args.controller == "alb":
            annotations = (
                {"ingressclass.kubernetes.io/is-default-class": "true"} if args.default_class else {}
            )
            self.ingress_class = kubernetes.networking.v1.IngressClass(
                f"{name}-class",
                metadata={"name": ALB_CLASS, "annotations": annotations},
                spec={"controller": ALB_CONTROLLER},
                opts=k8s,
            )
            alb_depends.append(self.ingress_class)

        self.alb_release = helm_release(
            f"{name}-alb",
            chart=AWS_LOAD_BALANCER_CONTROLLER.chart,
            version=args.alb_chart_version,
            repository=args.alb_chart_repository,
            namespace=ALB_NAMESPACE,
            values=alb_values(args, self.role.service_account_annotations),
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=alb_depends)),
        )
        self.ready = self.alb_release

        if args.controller == "nginx":
            pulumi.log.warn(NGINX_RETIRED_WARNING, resource=self)
            self.nginx_namespace = kubernetes.core.v1.Namespace(
                f"{name}-nginx-namespace",
                metadata={"name": NGINX_NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
                opts=k8s,
            )
            self.ready = helm_release(
                f"{name}-nginx",
                chart=INGRESS_NGINX.chart,
                version=args.nginx_chart_version,
                repository=args.nginx_chart_repository,
                namespace=NGINX_NAMESPACE,
                values=nginx_values(args),
                opts=pulumi.ResourceOptions.merge(
                    k8s, pulumi.ResourceOptions(depends_on=[self.alb_release, self.nginx_namespace])
                ),
            )

        # The output keeps the name deployed stacks hold; here ``ready`` is always a Helm release.
        self.register_outputs({"class_name": self.class_name, "release": self.ready.name})

    def _auto_mode_class(self, name: str, args: IngressControllerArgs, k8s: pulumi.ResourceOptions) -> None:
        """EKS Auto Mode's ALBs: the class names its controller and parameters; routes share one ALB."""
        params_spec: dict = {"scheme": args.scheme, "group": {"name": args.group_name}}
        if args.certificate_arn:
            params_spec["certificateARNs"] = [args.certificate_arn]
        params = kubernetes.apiextensions.CustomResource(
            f"{name}-class-params",
            api_version=AUTO_MODE_PARAMS_API,
            kind="IngressClassParams",
            metadata={"name": ALB_CLASS},
            spec=params_spec,
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=list(args.depends_on))),
        )
        annotations = {"ingressclass.kubernetes.io/is-default-class": "true"} if args.default_class else {}
        self.ingress_class = kubernetes.networking.v1.IngressClass(
            f"{name}-class",
            metadata={"name": ALB_CLASS, "annotations": annotations},
            spec={
                "controller": AUTO_MODE_ALB_CONTROLLER,
                "parameters": {
                    "apiGroup": "eks.amazonaws.com",
                    "kind": "IngressClassParams",
                    "name": ALB_CLASS,
                },
            },
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=[params])),
        )
        self.role, self.alb_release = None, None
        # Ingresses go before their class, while Auto Mode still removes their load balancers.
        self.ready = self.ingress_class
        self.register_outputs({"class_name": self.class_name})

    def route(
        self,
        host: pulumi.Input[str],
        path: str = "/",
        tls: bool = True,
        health_check_path: str | None = None,
    ) -> IngressRoute:
        """What an Ingress for ``host``/``path`` needs on this controller; pure, creates nothing."""
        return self.settings.route(host, path, tls, health_check_path)
