"""Team namespaces: quota, container defaults, Pod Security and a default-deny network baseline.

A ``TeamNamespace`` is one tenant. Everything a tenant's pods may do on the network is an explicit
allow on top of a default-deny policy:

- DNS to CoreDNS in kube-system (UDP/TCP 53);
- ingress from the ingress controller (ALB in IP mode: the VPC CIDR; ingress-nginx: its namespace);
- ingress from the monitoring namespace (Prometheus scrapes);
- traffic between the namespace's own pods;
- egress to HTTPS (443) anywhere except the instance metadata service (AWS APIs, model registries);
- egress to the EKS Pod Identity agent, when pod identity is in use.

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from .dra import quota_key
from .errors import Problem, require, type_problems
from .fit import Namespace, NamespaceFit
from .inputs import checked_fields, field_problems, plain_problems
from .scheduling import GPU_RESOURCE
from .validation import ipv4_cidr, is_dns1123_label, is_dns1123_subdomain, is_port, is_quantity

IngressSource = Literal["alb", "nginx", "none"]
PodSecurityLevel = Literal["restricted", "baseline"]

# Kubernetes resource.Quantity, non-negative: 500m, 2, 1.5, 64Gi, 1e3.

NAME_LABEL = "kubernetes.io/metadata.name"
POD_SECURITY_PREFIX = "pod-security.kubernetes.io/"
TENANT_LABEL = "aiplatform.io/tenant"

# IMDS (IPv4). Excluded from the HTTPS egress allow: a pod that reaches IMDS can take the *node's*
# IAM role credentials and bypass IRSA/Pod Identity scoping. IMDS is plain HTTP on port 80, so the
# 443 rule would not match it anyway; the explicit exception keeps the intent visible and survives
# anyone widening the port list later.
IMDS_CIDR = "169.254.169.254/32"
# The EKS Pod Identity agent (a DaemonSet on the node's link-local address, HTTP port 80). Pods
# using Pod Identity fetch credentials from it; without this allow they silently get no credentials.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"


@dataclass(frozen=True)
class TeamQuota:
    """The namespace's ResourceQuota. ``gpus`` becomes ``requests.nvidia.com/gpu``, or with
    ``gpu_device_class`` (GPUs by DRA) ``<device class>.deviceclass.resource.k8s.io/devices``: the
    devices of that class the namespace's claims may request together."""

    cpu: str = "16"  # the CPU all pods may request together (``requests.cpu``, a quantity)
    memory: str = "64Gi"  # the memory all pods may request together (``requests.memory``, a quantity)
    gpus: int = 0
    pods: int = 50  # the most pods
    persistentvolumeclaims: int = 10  # the most PersistentVolumeClaims
    limits_cpu: str | None = None  # the CPU limits all pods may set together (None: no quota on limits)
    limits_memory: str | None = None  # the memory limits all pods may set together (None: no quota on limits)
    # GPUs by DRA: the DeviceClass whose devices ``gpus`` caps (None: the device plugin's nvidia.com/gpu)
    gpu_device_class: str | None = None

    @property
    def gpu_key(self) -> str:
        """The quota key that caps the namespace's GPUs."""
        if self.gpu_device_class is not None:
            return quota_key(self.gpu_device_class)
        return f"requests.{GPU_RESOURCE}"

    def hard(self) -> dict[str, str]:
        hard = {
            "requests.cpu": self.cpu,
            "requests.memory": self.memory,
            self.gpu_key: str(self.gpus),
            "pods": str(self.pods),
            "persistentvolumeclaims": str(self.persistentvolumeclaims),
        }
        if self.limits_cpu is not None:
            hard["limits.cpu"] = self.limits_cpu
        if self.limits_memory is not None:
            hard["limits.memory"] = self.limits_memory
        return hard


@dataclass(frozen=True)
class ContainerLimits:
    """The LimitRange for containers: defaults for pods that set no resources, and a per-container max.

    The defaults also make pods without ``resources`` admissible under the quota (a quota on
    ``requests.cpu`` rejects pods that request nothing).
    """

    default_request_cpu: str = "100m"  # the CPU request of a container that sets none
    default_request_memory: str = "256Mi"  # the memory request of a container that sets none
    default_limit_cpu: str = "1"  # the CPU limit of a container that sets none
    default_limit_memory: str = "1Gi"  # the memory limit of a container that sets none
    max_cpu: str = "32"  # the most CPU one container may ask for
    max_memory: str = "256Gi"  # the most memory one container may ask for


def _label_reason(value: object) -> str | None:
    return None if is_dns1123_label(value) else f"{value!r} is not a DNS-1123 label"


def _vpc_cidr_reason(value: object) -> str | None:
    return None if isinstance(value, str) and not ipv4_cidr(value) else f"{value!r} must be an IPv4 CIDR"


# The arguments that may name other resources (the VPC, the add-ons' namespaces), and their rules.
ADDON_INPUTS = {
    "ingress_controller_namespace": _label_reason,
    "monitoring_namespace": _label_reason,
    "dns_namespace": _label_reason,
}


@dataclass
class TeamNamespaceArgs:
    """Inputs of ``TeamNamespace``. ``vpc_cidr`` and the add-ons' namespaces may be other resources'
    outputs (a VPC's ``cidr_block``, a Namespace's name): plain values are checked at once,
    ``Output`` values when they resolve (see ``components.inputs``)."""

    name: str  # the namespace's name (a DNS label)
    provider: k8s.Provider  # the cluster's Kubernetes provider
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels on the namespace
    pod_security: PodSecurityLevel = "restricted"  # the Pod Security Standard the namespace enforces
    quota: TeamQuota = field(default_factory=TeamQuota)  # the namespace's ResourceQuota
    # the namespace's LimitRange for containers
    limits: ContainerLimits = field(default_factory=ContainerLimits)
    # Where ingress traffic comes from: the ALB (target-type ip: the load balancer is outside the
    # cluster, so traffic arrives from VPC addresses) or ingress-nginx pods (a namespace).
    ingress_sources: IngressSource = "alb"
    # the VPC's CIDR: where ALB traffic comes from (needed with ``alb``)
    vpc_cidr: pulumi.Input[str] | None = None
    # ingress-nginx's namespace (with ``nginx``)
    ingress_controller_namespace: pulumi.Input[str] = "ingress-nginx"
    # Pod ports the ingress may reach (ALB ip mode targets pod ports directly).
    ingress_ports: Sequence[int] = (8080,)
    # Prometheus' namespace: it may scrape the tenant's pods
    monitoring_namespace: pulumi.Input[str] = "monitoring"
    # Let tenant pods query Prometheus (dashboards, eval jobs). Off by default.
    egress_to_monitoring: bool = False
    allow_pod_identity_agent: bool = True  # let pods reach the EKS Pod Identity agent on their node
    dns_namespace: pulumi.Input[str] = "kube-system"  # CoreDNS' namespace: the pods' DNS egress goes there

    def fit(self) -> NamespaceFit:
        """What the namespace admits, as the fit rules read it (``components.fit``)."""
        return NamespaceFit(
            name=self.name,
            ingress_ports=tuple(self.ingress_ports) if self.ingress_sources != "none" else (),
            cpu=self.quota.cpu,
            memory=self.quota.memory,
            gpus=self.quota.gpus,
        )

    def problems(self) -> list[Problem]:
        """Every problem with the args (empty when valid)."""
        problems: list[Problem] = []
        if not is_dns1123_label(self.name):
            problems.append(
                ("name", f"{self.name!r} is not a DNS-1123 label (lowercase a-z, 0-9, '-', <= 63)")
            )
        for field_name in ("cpu", "memory", "limits_cpu", "limits_memory"):
            value = getattr(self.quota, field_name)
            if value is not None and not is_quantity(value):
                problems.append((f"quota.{field_name}", f"{value!r} is not a Kubernetes quantity"))
        for field_name in ("gpus", "pods", "persistentvolumeclaims"):
            value = getattr(self.quota, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                problems.append((f"quota.{field_name}", f"{value!r} must be a non-negative integer"))
        device_class = self.quota.gpu_device_class
        if device_class is not None and not is_dns1123_subdomain(device_class):
            problems.append(("quota.gpu_device_class", f"{device_class!r} is not a DeviceClass name"))
        for field_name, value in vars(self.limits).items():
            if not is_quantity(value):
                problems.append((f"limits.{field_name}", f"{value!r} is not a Kubernetes quantity"))
        if self.pod_security not in ("restricted", "baseline"):
            problems.append(
                ("pod_security", f"{self.pod_security!r} must be 'restricted' or 'baseline' for tenants")
            )
        for key, value in self.labels.items():
            if key.startswith(POD_SECURITY_PREFIX) or key in (NAME_LABEL, TENANT_LABEL):
                problems.append((f"labels.{key}", "reserved, set by the platform (use pod_security)"))
            elif len(value) > 63:
                problems.append((f"labels.{key}", "value longer than 63 characters"))
        if self.ingress_sources not in ("alb", "nginx", "none"):
            problems.append(("ingress_sources", f"{self.ingress_sources!r} must be 'alb', 'nginx' or 'none'"))
        if self.ingress_sources == "alb" and self.vpc_cidr is None:
            problems.append(("vpc_cidr", "None must be an IPv4 CIDR when ingress_sources is 'alb'"))
        elif self.ingress_sources == "alb":
            problems += [
                (at, f"{reason} when ingress_sources is 'alb'")
                for at, reason in plain_problems("vpc_cidr", self.vpc_cidr, _vpc_cidr_reason)
            ]
        if self.ingress_sources == "nginx":
            problems += field_problems(self, {"ingress_controller_namespace": _label_reason})
        if self.ingress_sources != "none":
            if not self.ingress_ports:
                problems.append(("ingress_ports", "at least one port is needed when ingress is enabled"))
            bad = [p for p in self.ingress_ports if not is_port(p)]
            if bad:
                problems.append(("ingress_ports", f"{bad} are not ports (1-65535)"))
        problems += field_problems(
            self, {"monitoring_namespace": _label_reason, "dns_namespace": _label_reason}
        )
        return problems


def _namespace_selector(namespace: pulumi.Input[str]) -> k8s.meta.v1.LabelSelectorArgs:
    return k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: namespace})


def _tcp(port: int) -> k8s.networking.v1.NetworkPolicyPortArgs:
    return k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)


def _namespace_peer(namespace: pulumi.Input[str]) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(namespace_selector=_namespace_selector(namespace))


def _cidr_peer(
    cidr: pulumi.Input[str], except_: list[str] | None = None
) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        ip_block=k8s.networking.v1.IPBlockArgs(cidr=cidr, except_=except_)
    )


def _ingress_from(
    peer: k8s.networking.v1.NetworkPolicyPeerArgs,
    ports: list[k8s.networking.v1.NetworkPolicyPortArgs] | None = None,
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Every pod of the namespace accepts traffic from ``peer`` (on ``ports``; None: all ports)."""
    np = k8s.networking.v1
    return np.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Ingress"],
        ingress=[np.NetworkPolicyIngressRuleArgs(from_=[peer], ports=ports)],
    )


def _egress_to(
    peer: k8s.networking.v1.NetworkPolicyPeerArgs, ports: list[k8s.networking.v1.NetworkPolicyPortArgs]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Every pod of the namespace may reach ``peer`` on ``ports``."""
    np = k8s.networking.v1
    return np.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[np.NetworkPolicyEgressRuleArgs(to=[peer], ports=ports)],
    )


class TeamNamespace(pulumi.ComponentResource):
    """One tenant namespace with quota, container defaults, Pod Security and network isolation.

    Example::

        from aiplatform.tenancy import TeamNamespace, TeamNamespaceArgs, TeamQuota

        team = TeamNamespace("search", TeamNamespaceArgs(
            name="search", provider=cluster.provider, vpc_cidr="10.0.0.0/16",
            quota=TeamQuota(cpu="64", memory="256Gi", gpus=8),
        ))
        team.name  # Output[str], the namespace's name once it exists
        team.workload_namespace  # the name for a workload's ``namespace``: checked against the quota and ports
    """

    namespace: k8s.core.v1.Namespace  # the Namespace
    name: pulumi.Output[str]  # its name
    # its name with what it admits (quota, ingress ports): a workload given it is refused when it
    # could never be admitted (pass the namespace in the workload's ``depends_on``)
    workload_namespace: Namespace
    network_policies: list[k8s.networking.v1.NetworkPolicy]  # its NetworkPolicies

    def __init__(self, name: str, args: TeamNamespaceArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"TeamNamespace {name!r}"
        require(subject, type_problems(args, TeamNamespaceArgs) or args.problems())
        super().__init__("aiplatform:tenancy:TeamNamespace", name, None, opts)
        args = checked_fields(subject, args, {"vpc_cidr": _vpc_cidr_reason, **ADDON_INPUTS})
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)

        labels = {
            **args.labels,
            TENANT_LABEL: args.name,
            f"{POD_SECURITY_PREFIX}enforce": args.pod_security,
            f"{POD_SECURITY_PREFIX}enforce-version": "latest",
            f"{POD_SECURITY_PREFIX}warn": args.pod_security,
            f"{POD_SECURITY_PREFIX}audit": args.pod_security,
        }
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=args.name, labels=labels),
            opts=child,
        )
        self.name = self.namespace.metadata.apply(lambda m: m.name)
        self.workload_namespace = Namespace(args.fit())
        in_ns = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[self.namespace])

        def meta(suffix: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=suffix, namespace=self.name)

        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("team-quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=args.quota.hard()),
            opts=in_ns,
        )
        lim = args.limits
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("container-defaults"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default_request={
                            "cpu": lim.default_request_cpu,
                            "memory": lim.default_request_memory,
                        },
                        default={"cpu": lim.default_limit_cpu, "memory": lim.default_limit_memory},
                        max={"cpu": lim.max_cpu, "memory": lim.max_memory},
                    )
                ]
            ),
            opts=in_ns,
        )

        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(f"{name}-{suffix}", metadata=meta(suffix), spec=spec, opts=in_ns)
            for suffix, spec in self._policies(args).items()
        ]
        self.register_outputs({"name": self.name})

    @staticmethod
    def _policies(args: TeamNamespaceArgs) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
        np = k8s.networking.v1
        all_pods = k8s.meta.v1.LabelSelectorArgs()
        policies: dict[str, np.NetworkPolicySpecArgs] = {
            "default-deny": np.NetworkPolicySpecArgs(
                pod_selector=all_pods, policy_types=["Ingress", "Egress"]
            ),
            "allow-dns": _egress_to(
                np.NetworkPolicyPeerArgs(
                    namespace_selector=_namespace_selector(args.dns_namespace),
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                ),
                [np.NetworkPolicyPortArgs(protocol="UDP", port=53), _tcp(53)],
            ),
            "allow-same-namespace": np.NetworkPolicySpecArgs(
                pod_selector=all_pods,
                policy_types=["Ingress", "Egress"],
                ingress=[
                    np.NetworkPolicyIngressRuleArgs(from_=[np.NetworkPolicyPeerArgs(pod_selector=all_pods)])
                ],
                egress=[np.NetworkPolicyEgressRuleArgs(to=[np.NetworkPolicyPeerArgs(pod_selector=all_pods)])],
            ),
            # Prometheus scrapes whatever port a ServiceMonitor/PodMonitor names: allow all ports
            # from the monitoring namespace only.
            "allow-monitoring-scrape": _ingress_from(_namespace_peer(args.monitoring_namespace)),
            "allow-https-egress": _egress_to(_cidr_peer("0.0.0.0/0", except_=[IMDS_CIDR]), [_tcp(443)]),
        }
        ingress_ports = [_tcp(p) for p in args.ingress_ports]
        if args.ingress_sources == "alb":
            policies["allow-ingress-alb"] = _ingress_from(_cidr_peer(args.vpc_cidr), ingress_ports)
        elif args.ingress_sources == "nginx":
            policies["allow-ingress-nginx"] = _ingress_from(
                _namespace_peer(args.ingress_controller_namespace), ingress_ports
            )
        if args.allow_pod_identity_agent:
            policies["allow-pod-identity-agent"] = _egress_to(_cidr_peer(POD_IDENTITY_AGENT_CIDR), [_tcp(80)])
        if args.egress_to_monitoring:
            policies["allow-monitoring-egress"] = _egress_to(
                _namespace_peer(args.monitoring_namespace), [_tcp(9090)]
            )
        return policies
