"""The platform's stack outputs as a contract: the names it exports and the typed values a team reads.

The platform exports these names (``AiPlatform.exports``); a team's program reads them back with one
line and gets typed values, not loose strings::

    from aiplatform.outputs import PlatformOutputs

    platform = PlatformOutputs.from_stack("org/aiplatform/prod")
    provider = platform.kubernetes_provider()
    route = platform.route("summarizer.example.com")

The field names are snake_case in Python and camelCase in the stack (``cluster_name`` is exported as
``clusterName``). A platform that changes a name or a shape raises ``CONTRACT_VERSION``; new names may
be added without it, and a reader ignores names it does not know.

The values are plain data read from the StackReference while the program runs (placement, routes and
IAM policies are built from them), except the kubeconfig, which stays a secret ``Output``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError
from pydantic.alias_generators import to_camel

from . import k8s_objects, sdk
from .addons.ingress import ControllerKind, RouteSettings, Scheme
from .compute.node_groups import NodeGroupSpec, node_labels, placement_for
from .compute.pools import GpuPoolSpec, placement_for_pool, pool_labels
from .fit import Namespace, NamespaceFit
from .iam import IdentityMode, WorkloadIdentity, allow
from .routing import IngressRoute
from .scheduling import GPU_RESOURCE, NodeFit, Placement, Taint, TaintEffect
from .workloads import ModelSource, SharedVolume, model_reader_statements

CONTRACT_VERSION = 1
KUBECONFIG = "kubeconfig"  # the one secret output: read as an Output, never as plain data


class PlatformOutputsError(ValueError):
    """The referenced stack's outputs do not fulfil the contract (missing, malformed or secret)."""


class _Contract(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore", strict=False
    )

    def export(self) -> dict[str, Any]:
        """The stack-output form (camelCase keys)."""
        return self.model_dump(by_alias=True, mode="json")


class TaintOutput(_Contract):
    key: str  # the taint's key
    value: str  # the taint's value
    effect: TaintEffect = "NoSchedule"  # what the taint does to pods that do not tolerate it

    def taint(self) -> Taint:
        return Taint(key=self.key, value=self.value, effect=self.effect)


class NodeRequestsOutputs(_Contract):
    """Requests on one node, in millicores and MiB."""

    cpu_m: int  # CPU, in millicores
    memory_mib: int  # memory, in MiB


class NodeGroupOutputs(_Contract):
    """One node group: how its nodes are labelled and tainted, and what a pod needs to land there."""

    role: Literal["system", "gpu"]  # ``system`` (the platform's controllers) or ``gpu`` (GPU nodes, tainted)
    labels: dict[str, str]  # the Kubernetes labels on the group's nodes
    node_selector: dict[str, str]  # what a pod selects to land on the group
    taints: tuple[TaintOutput, ...] = ()  # the taints on the group's nodes (a pod there tolerates each)
    instance_types: tuple[str, ...] = ()  # the EC2 instance types the group (or pool) may start
    # the GPU model's label value, e.g. nvidia-a10g (None: no GPU, or mixed models)
    accelerator: str | None = None
    gpus_per_node: int = 0  # GPUs on each node (0: a CPU group); a pod asks for at most this many
    # ``node group`` (an Auto Scaling group of any of its types) or ``pool`` (a node of the type a pod needs)
    kind: Literal["node group", "pool"] = "node group"
    max_nodes: int | None = None  # a node group's maximum size (None: a pool, or not exported)
    max_gpus: int | None = None  # a pool's limit on the GPUs of its nodes together (None: a node group)
    # what the platform's DaemonSets request on each node (None: not exported)
    daemon_set_requests: NodeRequestsOutputs | None = None
    # GPUs by DRA: the DeviceClass pods claim the GPUs from (None: the device plugin's nvidia.com/gpu;
    # left out of the outputs then, so a device-plugin platform's outputs stay as they were)
    device_class: str | None = Field(default=None, exclude_if=lambda value: value is None)

    @classmethod
    def from_spec(cls, spec: NodeGroupSpec) -> NodeGroupOutputs:
        placement = placement_for(spec)
        return cls(
            role=spec.role,
            labels=node_labels(spec),
            node_selector=dict(placement.node_selector),
            taints=tuple(TaintOutput(key=t.key, value=t.value, effect=t.effect) for t in spec.node_taints),
            instance_types=spec.instance_types,
            accelerator=spec.accelerator,
            gpus_per_node=spec.gpus_per_node,
            max_nodes=spec.max_size,
            device_class=placement.device_class,
        )

    @classmethod
    def from_pool(cls, pool: GpuPoolSpec) -> NodeGroupOutputs:
        """A GPU pool, placed like a GPU group (its GPUs per node: its largest allowed type's)."""
        placement = placement_for_pool(pool)
        return cls(
            role="gpu",
            labels=pool_labels(pool),
            node_selector=dict(placement.node_selector),
            taints=tuple(TaintOutput(key=t.key, value=t.value, effect=t.effect) for t in pool.node_taints),
            instance_types=pool.instance_types,
            accelerator=pool.accelerator,
            gpus_per_node=pool.max_gpus_per_node,
            kind="pool",
            max_gpus=pool.max_gpus,
            device_class=placement.device_class,
        )

    def placement(self, name: str = "") -> Placement:
        """Node selector and tolerations for this group (the GPU resource too, on GPU groups), with what
        its nodes offer a pod (``fit``: a workload placed here is refused when it could never run)."""
        return Placement(
            node_selector=dict(self.node_selector),
            tolerations=tuple(t.taint().toleration() for t in self.taints),
            gpu_resource=GPU_RESOURCE if self.role == "gpu" and self.device_class is None else None,
            device_class=self.device_class if self.role == "gpu" else None,
            fit=NodeFit(
                name=name or next(iter(self.node_selector.values()), ""),
                kind=self.kind,
                gpus_per_node=self.gpus_per_node,
                instance_types=self.instance_types,
                chooses_type_per_pod=self.kind == "pool",
                max_nodes=self.max_nodes,
                max_gpus=self.max_gpus,
                daemon_set_requests=(self.daemon_set_requests.cpu_m, self.daemon_set_requests.memory_mib)
                if self.daemon_set_requests
                else None,
            ),
        )


class QuotaOutputs(_Contract):
    """A tenant namespace's ResourceQuota on requests: what its pods may ask for together."""

    cpu: str  # ``requests.cpu`` (a quantity)
    memory: str  # ``requests.memory`` (a quantity)
    gpus: int  # ``requests.nvidia.com/gpu``


class NamespaceOutputs(_Contract):
    """A tenant namespace; its network policies admit ingress traffic to ``ingress_ports`` only."""

    ingress_ports: tuple[int, ...] = ()
    quota: QuotaOutputs | None = None  # its quota on requests (None: not exported)


class RouteOutputs(_Contract):
    """What ``IngressController.route`` needs, so a team builds the same Ingress the platform would."""

    controller: ControllerKind  # the ingress controller serving the routes
    scheme: Scheme  # whether the load balancer faces the internet or only the VPC
    certificate_arn: str | None = None  # the ACM certificate the ALB serves TLS with (None: none)
    tls_secret_name: str | None = None  # the TLS Secret ingress-nginx serves with (None: none)
    ssl_policy: str  # the ALB's TLS policy
    group_name: str  # the ALB group every route joins (one shared load balancer)
    require_tls: bool  # routes serve HTTPS only
    group_in_class: bool = False  # EKS Auto Mode: the IngressClass groups the routes, not an annotation

    @classmethod
    def from_settings(cls, settings: RouteSettings) -> RouteOutputs:
        return cls.model_validate(settings.__dict__)

    def settings(self) -> RouteSettings:
        return RouteSettings(**self.model_dump())


class SharedClaimOutputs(_Contract):
    """The shared ReadWriteMany claim (EFS): mountable by pods of ``namespace`` only."""

    namespace: str
    claim_name: str  # the PersistentVolumeClaim's name


class PlatformOutputs(_Contract):
    """The outputs a team needs to deploy onto the platform, typed. Read them with ``from_stack``."""

    contract_version: int  # the contract's version; this library reads ``CONTRACT_VERSION`` only
    cluster_name: str  # the EKS cluster's name
    region: str  # the cluster's AWS region
    identity_mode: IdentityMode  # how pods get AWS credentials: IRSA or EKS Pod Identity
    oidc_provider_arn: str | None = None  # the cluster's IAM OIDC provider ARN (with ``irsa``)
    oidc_issuer_url: str | None = None  # the cluster's OIDC issuer URL (with ``irsa``)
    # the tenant namespaces by name (``namespace(name)`` checks a name against them)
    namespaces: dict[str, NamespaceOutputs]
    model_bucket: str  # the S3 bucket holding the models (``model_source``, ``bucket_access``)
    model_bucket_kms_key_arn: str  # the KMS key encrypting that bucket
    ingress_class: str  # the IngressClass a team's Ingresses use
    ingress_routes: RouteOutputs  # what an Ingress needs on the platform's controller (``route(host)``)
    # the shared ReadWriteMany claim (None: the platform has none)
    shared_claim: SharedClaimOutputs | None = None
    node_groups: dict[str, NodeGroupOutputs]  # node groups and GPU pools by name (``placement(name)``)
    custom_metrics: tuple[str, ...] = ()  # the custom metrics the adapter serves to HPAs (``metric(name)``)
    # Not part of the exported document: the kubeconfig is read separately, as a secret Output.
    kubeconfig: Any = Field(default=None, exclude=True)
    # The namespaces handed out, by name (the model servers built in each, for the shared quota).
    _namespaces: dict[str, Namespace] = PrivateAttr(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def from_stack(cls, stack_name: str, opts: pulumi.ResourceOptions | None = None) -> PlatformOutputs:
        """Read the outputs of the platform stack ``stack_name`` (``org/project/stack``).

        The StackReference is read while the program runs (the SDK's own synchronous wait, as for
        its invokes): node selectors, routes and IAM policies need the plain values.
        """
        reference = pulumi.StackReference(stack_name, opts=opts)
        values = sdk.wait(reference.outputs.future()) or {}
        secret = set(sdk.wait(reference.secret_output_names.future()) or ())
        kubeconfig = pulumi.Output.secret(reference.get_output(KUBECONFIG))
        return cls.from_values(stack_name, values, secret_names=secret, kubeconfig=kubeconfig)

    @classmethod
    def from_values(
        cls,
        stack_name: str,
        values: Mapping[str, Any],
        secret_names: Sequence[str] = (),
        kubeconfig: pulumi.Input[str] | None = None,
    ) -> PlatformOutputs:
        """Check and type a stack's outputs; ``PlatformOutputsError`` lists every problem at once."""
        problems = []
        if not values:
            problems.append("the stack has no outputs (is it deployed, or planned with --stack-outputs?)")
        if KUBECONFIG not in values:
            problems.append(f"{KUBECONFIG}: missing")
        plain = {name for name in cls.exported_names() if name != KUBECONFIG}
        problems += [
            f"{name}: is a secret; the contract reads it as plain data"
            for name in sorted(plain & set(secret_names))
        ]
        version = values.get("contractVersion")
        if values and version != CONTRACT_VERSION:
            problems.append(
                f"contractVersion: {version!r}, but this library (aiplatform) reads version {CONTRACT_VERSION}; "
                "use the library release that matches the platform"
            )
        if not problems:
            try:
                parsed = cls.model_validate({k: v for k, v in values.items() if k != KUBECONFIG})
            except ValidationError as exc:
                problems += [_problem(error) for error in exc.errors()]
            else:
                return parsed.model_copy(update={"kubeconfig": pulumi.Output.secret(kubeconfig)})
        raise PlatformOutputsError(f"stack {stack_name}:\n  " + "\n  ".join(problems))

    @classmethod
    def exported_names(cls) -> set[str]:
        """Every name of the contract, as the platform exports it."""
        return {f.alias or name for name, f in cls.model_fields.items() if not f.exclude} | {KUBECONFIG}

    # -- typed values for components -------------------------------------------------------------
    def kubernetes_provider(
        self, name: str = "platform", opts: pulumi.ResourceOptions | None = None
    ) -> k8s.Provider:
        """The provider every Kubernetes resource of the team's program takes (``provider=``)."""
        return k8s_objects.provider(name, self.kubeconfig, opts)

    @property
    def workload_identity(self) -> WorkloadIdentity:
        """IAM roles for the team's pods trust the platform's OIDC provider (or Pod Identity)."""
        return WorkloadIdentity(
            mode=self.identity_mode,
            cluster_name=self.cluster_name,
            oidc_provider_arn=self.oidc_provider_arn,
            oidc_issuer_url=self.oidc_issuer_url,
        )

    def namespace(self, name: str) -> Namespace:
        """``name``, checked to be one of the platform's tenant namespaces; it also carries what the
        namespace admits (quota, ingress ports, the served metrics), which a workload there is checked
        against. The same object for the same name: the model servers of a program share its quota."""
        outputs = self.namespaces[_known("namespace", name, self.namespaces)]
        if name in self._namespaces:
            return self._namespaces[name]
        quota = outputs.quota
        self._namespaces[name] = Namespace(
            NamespaceFit(
                name=name,
                ingress_ports=outputs.ingress_ports or None,
                cpu=quota.cpu if quota else None,
                memory=quota.memory if quota else None,
                gpus=quota.gpus if quota else None,
                served_metrics=self.custom_metrics,
            )
        )
        return self._namespaces[name]

    def placement(self, node_group: str) -> Placement:
        """Node selector and tolerations that land a pod on ``node_group`` (and only there), with what
        its nodes offer (a workload placed there is refused when it could never run)."""
        return self.node_groups[_known("node group", node_group, self.node_groups)].placement(node_group)

    def route(
        self,
        host: pulumi.Input[str],
        path: str = "/",
        tls: bool = True,
        health_check_path: str | None = None,
    ) -> IngressRoute:
        """What an Ingress for ``host`` needs on the platform's controller (class, annotations, TLS);
        ``host`` may be another resource's output, checked when it resolves."""
        return self.ingress_routes.settings().route(host, path, tls, health_check_path)

    def model_source(self, prefix: str, **kwargs: Any) -> ModelSource:
        """Models under ``prefix`` of the platform's bucket (read-only access to that prefix only)."""
        return ModelSource(
            bucket=self.model_bucket,
            prefix=prefix,
            kms_key_arn=self.model_bucket_kms_key_arn,
            region=self.region,
            **kwargs,
        )

    def bucket_access(self, prefix: str, write: bool = False) -> list[dict[str, Any]]:
        """IAM statements for ``prefix`` of the platform's bucket: read, and with ``write`` also put objects
        (encrypted with the bucket's key). Nothing outside the prefix."""
        statements = model_reader_statements(self.model_bucket, prefix, self.model_bucket_kms_key_arn)
        if write:
            statements += [
                allow(["s3:PutObject"], [f"arn:aws:s3:::{self.model_bucket}/{prefix.strip('/')}/*"]),
                allow(["kms:GenerateDataKey"], [self.model_bucket_kms_key_arn]),
            ]
        return statements

    def shared_namespace(self) -> Namespace:
        """The tenant namespace the shared claim lives in, as ``namespace(name)`` gives it: a workload
        that mounts the claim (``shared_volume``) runs there."""
        claim = self.shared_claim
        if claim is None:
            raise PlatformOutputsError("shared_claim: the platform has no shared file system")
        return self.namespace(claim.namespace)

    def shared_volume(
        self, namespace: str, mount_path: str = "/mnt/shared", read_only: bool = False
    ) -> SharedVolume:
        """The shared claim, for a pod in ``namespace`` (a claim is only mountable in its own namespace)."""
        claim = self.shared_claim
        if claim is None:
            raise PlatformOutputsError("shared_claim: the platform has no shared file system")
        if namespace != claim.namespace:
            raise PlatformOutputsError(
                f"shared_claim: {claim.claim_name} lives in namespace {claim.namespace!r}, not {namespace!r}"
            )
        return SharedVolume(claim_name=claim.claim_name, mount_path=mount_path, read_only=read_only)

    def metric(self, name: str) -> str:
        """``name``, checked to be a custom metric the platform's adapter serves to HPAs."""
        return _known("custom metric", name, self.custom_metrics)


def _known(kind: str, name: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    if name not in known:
        raise PlatformOutputsError(
            f"{kind} {name!r} is not on the platform; it has: {', '.join(sorted(known)) or 'none'}"
        )
    return name


def _problem(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    return f"{path}: {error['msg']}"
