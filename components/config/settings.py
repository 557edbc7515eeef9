"""``PlatformSettings``: every section, and the rules that relate them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .. import fit, validation
from ..addons.observability import MONITORING_NAMESPACE
from ..compute.capacity import Requests
from ..compute.gpu_capacity import GpuCapacity
from ..compute.node_groups import NodeGroupSpec, autoscaler_tags
from ..compute.provisioner import POOL_PROVISIONERS, provisioner_named
from ..dra import DRA, GpuAllocation
from ..fit import NamespaceFit
from ..scheduling import NodeFit
from ..validation import AWS_TAGS_PER_RESOURCE
from ._base import AwsTags, Model, Violation, raise_violations, unique_names
from .capacity import platform_capacity_problems
from .compute import ComputeSettings, gpu_allocation
from .infrastructure import (
    DEFAULT_ADDONS,
    ChartSettings,
    ClusterSettings,
    NetworkSettings,
    NodeGroupsSettings,
)
from .services import (
    MAX_CLUSTER_NAME_FOR_BUCKET,
    IngressSettings,
    NamespaceSettings,
    ObservabilitySettings,
    SecretSettings,
    StorageSettings,
)
from .workloads import InferenceSettings, TrainingSettings, WorkloadsSettings

# -- the whole platform ----------------------------------------------------------------------------


def platform_tags(environment: str, tags: Mapping[str, str]) -> dict[str, str]:
    """The tags of every AWS resource: the platform's own, then the stack's (which win)."""
    return {"platform": "aiplatform", "environment": environment, **tags}


class PlatformSettings(Model):
    environment: Literal["dev", "prod"]
    network: NetworkSettings = NetworkSettings()
    cluster: ClusterSettings
    nodeGroups: NodeGroupsSettings = NodeGroupsSettings()
    compute: ComputeSettings = ComputeSettings()
    charts: ChartSettings
    secrets: list[SecretSettings] = Field(default_factory=list)
    ingress: IngressSettings = IngressSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    storage: StorageSettings = StorageSettings()
    namespaces: list[NamespaceSettings] = Field(default_factory=list)
    workloads: WorkloadsSettings = WorkloadsSettings()
    tags: AwsTags = Field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def resource_tags(self) -> dict[str, str]:
        return platform_tags(self.environment, self.tags)

    @property
    def gpu_allocation(self) -> GpuAllocation:
        """How pods get GPUs here (components/dra.py): decided once, in ``config.compute.gpu_allocation``."""
        return gpu_allocation(self)

    @model_validator(mode="after")
    def _cross_section(self) -> PlatformSettings:
        raise_violations([v for _, check in RULES for v in check(self)])
        return self


# -- rules between sections --------------------------------------------------------------------------
#
# Each rule declares the sections it reads. When some sections have field errors, the loader still
# runs every rule whose sections are valid on their own, so one run reports every problem.

Rule = Callable[[Any], list[Violation]]
RULES: list[tuple[frozenset[str], Rule]] = []


def rule(*sections: str) -> Callable[[Rule], Rule]:
    unknown = set(sections) - set(PlatformSettings.model_fields)
    assert not unknown, f"rule over unknown sections {unknown}"

    def register(check: Rule) -> Rule:
        RULES.append((frozenset(sections), check))
        return check

    return register


class Sections:
    """Some valid sections of a config; reading one that is not there is an undeclared dependency."""

    def __init__(self, sections: Mapping[str, Any]):
        self.__dict__.update(sections)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"section '{name}' is not available to this rule")


def valid_sections(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Each section of ``raw`` that validates on its own (and the defaults of absent ones)."""
    valid: dict[str, Any] = {}
    for name, spec in PlatformSettings.model_fields.items():
        if name not in raw:
            if not spec.is_required():
                valid[name] = spec.get_default(call_default_factory=True)
            continue
        try:
            annotation = Annotated[spec.annotation, *spec.metadata] if spec.metadata else spec.annotation
            valid[name] = TypeAdapter(annotation).validate_python(raw[name])
        except ValidationError:
            continue
    return valid


def rule_violations(raw: Mapping[str, Any]) -> list[Violation]:
    """The violations of every rule whose sections are valid, for a config that failed as a whole."""
    valid = valid_sections(raw)
    found: list[Violation] = []
    for sections, check in RULES:
        if sections <= valid.keys():
            found += check(Sections({name: valid[name] for name in sections}))
    return found


@rule("charts", "cluster", "compute")
def _provisioner_chart(s: Any) -> list[Violation]:
    """The chart of the provisioner's controller (the autoscaler, Karpenter) fits the cluster."""
    return provisioner_named(s.compute.provisioner).chart_problems(
        dict(s.charts), s.cluster.kubernetesVersion, s.cluster.mode == "managed"
    )


@rule("compute", "cluster", "charts", "nodeGroups")
def _gpu_allocation(s: Any) -> list[Violation]:
    """``dra`` only where AWS supports the NVIDIA DRA driver with the provisioner (and its controller)."""
    return provisioner_named(s.compute.provisioner).gpu_allocation_problems(
        gpu_allocation(s),
        s.cluster.kubernetesVersion,
        dict(s.charts),
        [g.spec() for g in s.nodeGroups.gpu],
    )


def _selector_problems(at: tuple, w: Any, s: Any) -> list[Violation]:
    """A selector no GPU of the source's instance types matches, or a count above what one node of the
    matching types holds: the claim is never allocated."""
    selector, node = w.gpu.gpu_selector(), _placement_fit(w, s)
    if selector is None or node is None:
        return []
    if reason := fit.gpu_selector_reason(selector, node):
        return [((*at, "selector"), reason)]
    if reason := fit.selected_gpu_count_reason(w.gpu.count, selector, node):
        return [((*at, "count"), reason)]
    return []


@rule("compute", "cluster", "workloads", "nodeGroups")
def _dra_requests(s: Any) -> list[Violation]:
    """Selectors and shared claims need DRA; a selector some instance type satisfies; a shared claim used
    from one namespace, with one description."""
    dra = gpu_allocation(s) == DRA
    found: list[Violation] = []
    shared: dict[str, tuple[tuple, Any]] = {}
    for kind, i, w in s.workloads.all():
        if not w.gpu:
            continue
        at = ("workloads", kind, i, "gpu")
        if not dra:
            found += [
                (
                    (*at, key),
                    "needs compute.gpuAllocation dra: the device plugin's nvidia.com/gpu neither selects "
                    "GPUs by their attributes nor shares them between pods",
                )
                for key in ("selector", "shared")
                if getattr(w.gpu, key) is not None
            ]
            continue
        found += _selector_problems(at, w, s)
        if w.gpu.shared is None:
            continue
        first = shared.setdefault(w.gpu.shared, (at, w))
        first_at, other = first
        if other is w:
            continue
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first_at[:-1]).lstrip(".")
        if other.namespace != w.namespace:
            found.append(
                (
                    (*at, "shared"),
                    f"claim '{w.gpu.shared}' is shared in namespace '{other.namespace}' ({where}): a pod "
                    f"can use only claims of its own namespace; name another claim for '{w.namespace}'",
                )
            )
        elif _claim_of(other) != _claim_of(w):
            found.append(
                (
                    (*at, "shared"),
                    f"claim '{w.gpu.shared}' is described differently by {where}: workloads sharing a "
                    "claim name the same nodeGroup or pool, count, selector and sharing",
                )
            )
    return found


def _claim_of(w: Any) -> tuple:
    gpu = w.gpu
    return gpu.nodeGroup, gpu.pool, gpu.count, gpu.gpu_selector(), gpu.sharing_strategy


@rule("environment", "tags", "nodeGroups", "cluster")
def _tags_per_resource(s: Any) -> list[Violation]:
    """A node group carries the stack's tags and the autoscaler's: the most tagged resource."""
    base = platform_tags(s.environment, s.tags)
    counts = {
        spec.name: len({**base, **autoscaler_tags(spec, s.cluster.name)}) for spec in s.nodeGroups.specs()
    }
    group, most = max(counts.items(), key=lambda item: item[1])
    if most <= AWS_TAGS_PER_RESOURCE:
        return []
    return [
        (
            ("tags",),
            f"{len(s.tags)} tags leave node group '{group}' with {most} (the platform adds "
            f"{most - len(s.tags)}); AWS allows {AWS_TAGS_PER_RESOURCE} per resource",
        )
    ]


@rule("compute", "cluster", "nodeGroups")
def _provisioner(s: Any) -> list[Violation]:
    """Pools come from a cluster the platform manages, and replace the GPU node groups."""
    compute = s.compute
    if not compute.uses_pools:
        return []
    found: list[Violation] = []
    if s.cluster.mode != "managed":
        found.append(
            (
                ("compute", "provisioner"),
                f"{compute.provisioner} needs a cluster the platform manages (cluster.mode: managed)",
            )
        )
    if s.nodeGroups.gpu:
        found.append(
            (
                ("nodeGroups", "gpu"),
                f"with compute.provisioner {compute.provisioner} GPU capacity comes from compute.pools: "
                "describe these groups as pools",
            )
        )
    return found


@rule("compute", "cluster")
def _addons_pinned(s: Any) -> list[Violation]:
    """Every add-on the platform installs is pinned; Auto Mode runs some of them itself."""
    if s.cluster.mode != "managed":
        return []
    run_by_eks = provisioner_named(s.compute.provisioner).addons_run_by_eks
    needed = [a for a in DEFAULT_ADDONS if a not in run_by_eks]
    missing = [a for a in needed if a not in s.cluster.addons]
    found: list[Violation] = []
    if missing:
        found.append((("cluster", "addons"), f"pin a version for every add-on: missing {', '.join(missing)}"))
    found += [
        (("cluster", "addons", a), "EKS Auto Mode runs it itself: remove the pin")
        for a in s.cluster.addons
        if a in run_by_eks
    ]
    return found


@rule("compute", "nodeGroups")
def _provisioner_instances(s: Any) -> list[Violation]:
    """The provisioner starts instances of the types it supports, and no other (EKS Auto Mode)."""
    problem = provisioner_named(s.compute.provisioner).instance_type_problem
    found: list[Violation] = [
        (("nodeGroups", "system", "instanceTypes", i), reason)
        for i, t in enumerate(s.nodeGroups.system.instanceTypes)
        if (reason := problem(t))
    ]
    for i, pool in enumerate(s.compute.pools):
        found += [
            (("compute", "pools", i, "instanceTypes"), f"'{t}': {reason}")
            for t in pool.allowed_types
            if (reason := problem(t))
        ]
    return found


@rule("compute", "ingress")
def _provisioner_ingress(s: Any) -> list[Violation]:
    problem = provisioner_named(s.compute.provisioner).ingress_problem(s.ingress.controller)
    return [(("ingress", "controller"), problem)] if problem else []


@rule("cluster", "nodeGroups", "compute", "workloads", "observability", "ingress", "storage")
def _capacity(s: Any) -> list[Violation]:
    """Pods that fit no node of their group; a system group too small for what always runs there."""
    return platform_capacity_problems(s)


@rule("secrets")
def _unique_secrets(s: Any) -> list[Violation]:
    return [(("secrets", *p), m) for p, m in unique_names(s.secrets, "secret")]


@rule("namespaces")
def _unique_namespaces(s: Any) -> list[Violation]:
    return [(("namespaces", *p), m) for p, m in unique_names(s.namespaces, "namespace")]


@rule("secrets", "namespaces", "observability")
def _secret_namespaces(s: Any) -> list[Violation]:
    """A secret lives in a declared namespace, or in the metrics namespace (the alert receiver's)."""
    namespaces = {n.name for n in s.namespaces}
    found: list[Violation] = []
    for i, secret in enumerate(s.secrets):
        at = ("secrets", i, "namespace")
        if secret.namespace == MONITORING_NAMESPACE and not s.observability.enabled:
            found.append((at, f"'{MONITORING_NAMESPACE}' exists only with observability.enabled: true"))
        elif secret.namespace not in namespaces and secret.namespace != MONITORING_NAMESPACE:
            found.append((at, f"'{secret.namespace}' is not declared in namespaces"))
    return found


@rule("observability", "secrets")
def _alert_receiver_secret(s: Any) -> list[Violation]:
    """The receiver's URL reaches Alertmanager as a secret synced into the metrics namespace."""
    alerting = s.observability.alerting
    receiver = alerting.receiver
    if not alerting.enabled or receiver is None:
        return []
    at = ("observability", "alerting", "receiver")
    secret = next(
        (x for x in s.secrets if (x.namespace, x.name) == (MONITORING_NAMESPACE, receiver.secret)), None
    )
    if secret is None:
        return [
            (
                (*at, "secret"),
                f"no secret '{receiver.secret}' in namespace '{MONITORING_NAMESPACE}': declare it under "
                f"secrets with namespace: {MONITORING_NAMESPACE}",
            )
        ]
    if receiver.key not in secret.keys:
        return [((*at, "key"), f"secret '{receiver.secret}' has no key '{receiver.key}'")]
    return []


@rule("workloads", "namespaces")
def _workload_namespaces(s: Any) -> list[Violation]:
    namespaces = {n.name for n in s.namespaces}
    return [
        (("workloads", kind, i, "namespace"), f"'{w.namespace}' is not declared in namespaces")
        for kind, i, w in s.workloads.all()
        if w.namespace not in namespaces
    ]


@rule("workloads", "nodeGroups", "compute")
def _workload_gpu_groups(s: Any) -> list[Violation]:
    found: list[Violation] = []
    gpu_groups = {g.name: g for g in s.nodeGroups.gpu}
    pools = {p.name: p.spec() for p in s.compute.pools}
    provisioner = s.compute.provisioner
    for kind, i, w in s.workloads.all():
        if not w.gpu:
            continue
        at = ("workloads", kind, i, "gpu")
        if w.gpu.pool is not None:
            pool = pools.get(w.gpu.pool)
            if not s.compute.uses_pools:
                found.append(((*at, "pool"), f"GPU pools need compute.provisioner {POOL_PROVISIONERS}"))
            elif pool is None:
                found.append(((*at, "pool"), f"no GPU pool named '{w.gpu.pool}'"))
            elif reason := fit.gpu_count_reason(w.gpu.count, node_fit(pool)):
                found.append(((*at, "count"), reason))
            continue
        group = gpu_groups.get(w.gpu.nodeGroup)
        if s.compute.uses_pools:
            found.append(
                (
                    (*at, "nodeGroup"),
                    f"with compute.provisioner {provisioner} GPUs come from pools: use gpu.pool",
                )
            )
        elif group is None:
            found.append(((*at, "nodeGroup"), f"no GPU node group named '{w.gpu.nodeGroup}'"))
        elif reason := fit.gpu_count_reason(w.gpu.count, node_fit(group.spec())):
            found.append(((*at, "count"), reason))
    return found


def node_fit(spec: GpuCapacity | NodeGroupSpec) -> NodeFit:
    """What a node group or GPU pool offers a pod: the fit its placement carries."""
    found = spec.placement.fit
    assert found is not None  # every group's and pool's placement carries it
    return found


def _placement_fit(w: Any, s: Any) -> NodeFit | None:
    """The fit of ``w``'s GPU source, when it names one that exists on the stack's provisioner (None:
    other rules name the problem)."""
    if w.gpu is None:
        return None
    if w.gpu.pool is not None:
        pool = next((p for p in s.compute.pools if p.name == w.gpu.pool), None)
        return node_fit(pool.spec()) if pool is not None and s.compute.uses_pools else None
    group = next((g for g in s.nodeGroups.gpu if g.name == w.gpu.nodeGroup), None)
    return node_fit(group.spec()) if group is not None and not s.compute.uses_pools else None


def _pod(w: Any) -> Requests:
    return w.pod_set(()).requests


@rule("workloads", "namespaces")
def _pods_fit_quota(s: Any) -> list[Violation]:
    """A pod asking for more than its namespace's whole quota is refused by quota admission."""
    namespaces = {n.name: n.fit() for n in s.namespaces}
    found: list[Violation] = []
    for kind, i, w in s.workloads.all():
        namespace = namespaces.get(w.namespace)
        if namespace is None:
            continue  # _workload_namespaces names it
        at = ("workloads", kind, i)
        if reason := fit.pod_quota_reason(_pod(w), namespace):
            found.append(((*at, "resources", "requests"), reason))
        if w.gpu and (reason := fit.pod_gpu_quota_reason(w.gpu.count, namespace)):
            found.append(((*at, "gpu", "count"), reason))
    return found


def _fits_alone(w: Any, s: Any, namespace: NamespaceFit) -> bool:
    """One pod fits its node and its quota (else those rules speak, and counting replicas adds nothing)."""
    node = _placement_fit(w, s)
    gpus = w.gpu.count if w.gpu else 0
    if node is not None and (fit.gpu_count_reason(gpus, node) or fit.node_fit_reason(_pod(w), node)):
        return False
    return not (fit.pod_quota_reason(_pod(w), namespace) or fit.pod_gpu_quota_reason(gpus, namespace))


@rule("workloads", "nodeGroups", "compute", "namespaces")
def _replicas_fit(s: Any) -> list[Violation]:
    """Model server replicas beyond what their group or pool holds (GPU servers: their GPU group or pool;
    CPU servers: the system nodes, where untainted pods land) and their namespace's quota never run; a
    Job's parallel pods beyond the quota are refused until others finish."""
    namespaces = {n.name: n.fit() for n in s.namespaces}
    found: list[Violation] = []
    for kind, i, w in s.workloads.all():
        namespace = namespaces.get(w.namespace)
        if namespace is None or not _fits_alone(w, s, namespace):
            continue
        at, gpus = ("workloads", kind, i), w.gpu.per_pod if w.gpu else 0
        quota = fit.quota_ceilings(_pod(w), gpus, namespace)
        if isinstance(w, TrainingSettings):
            fix = "lower parallelism or raise the quota"
            if reason := fit.parallel_reason(w.parallelism, quota, fix):
                found.append(((*at, "parallelism"), reason))
            continue
        if not isinstance(w, InferenceSettings):
            continue  # a CronJob runs one pod at a time: the pod rules cover it
        ceilings = [
            *fit.node_ceilings(gpus, _placement_fit(w, s)),
            *fit.cpu_node_ceilings(_pod(w), gpus, node_fit(s.nodeGroups.system.spec())),
            *quota,
        ]
        scaling = w.autoscaling
        if scaling is None:
            if reason := fit.never_fit_reason(w.replicas, ceilings):
                found.append(((*at, "replicas"), reason))
        elif reason := fit.never_fit_reason(scaling.minReplicas, ceilings):
            found.append(((*at, "autoscaling", "minReplicas"), reason))
        elif not scaling.acceptsLowerCeiling and (
            reason := fit.peak_reason(
                scaling.maxReplicas,
                ceilings,
                "lower maxReplicas, raise those limits, or set acceptsLowerCeiling: true",
            )
        ):
            found.append(((*at, "autoscaling", "maxReplicas"), reason))
    return found


def _always_running(w: Any) -> int:
    return w.autoscaling.minReplicas if w.autoscaling else w.replicas


def _share(w: Any) -> fit.Share:
    if w.gpu is None:
        return fit.Share(w.name, _always_running(w), _pod(w))
    claim = (w.namespace, w.gpu.shared) if w.gpu.shared is not None else None
    return fit.Share(
        w.name, _always_running(w), _pod(w), w.gpu.per_pod, (claim, w.gpu.count) if claim else None
    )


@rule("workloads", "nodeGroups", "compute", "namespaces")
def _server_minimums_fit(s: Any) -> list[Violation]:
    """The model servers' replicas that always run, together, fit the GPUs of the group (or pool) they
    share and their namespace's CPU, memory and GPU quota, with room for a rollout's surge pod
    (``fit.shared_gpus_reason``, ``fit.shared_quota_reasons``): each may fit alone while their sum
    does not."""
    found: list[Violation] = []
    by_source: dict[tuple[str, str], list[fit.Share]] = {}
    for w in s.workloads.inference:
        if w.gpu is not None:
            source = ("pool", w.gpu.pool) if w.gpu.pool is not None else ("group", w.gpu.nodeGroup)
            by_source.setdefault(source, []).append(_share(w))
    if not s.compute.uses_pools:
        for i, group in enumerate(s.nodeGroups.gpu):
            capacity = group.scaling.maxSize * group.gpu_count
            what = f"{capacity} ({group.scaling.maxSize} nodes x {group.gpu_count} GPUs): raise maxSize"
            if reason := fit.shared_gpus_reason(by_source.get(("group", group.name), []), capacity, what):
                found.append((("nodeGroups", "gpu", i, "scaling", "maxSize"), reason))
    else:
        for i, pool in enumerate(s.compute.pools):
            what = f"the pool's limit ({pool.limits.gpus}): raise limits.gpus"
            if reason := fit.shared_gpus_reason(
                by_source.get(("pool", pool.name), []), pool.limits.gpus, what
            ):
                found.append((("compute", "pools", i, "limits", "gpus"), reason))
    for i, namespace in enumerate(s.namespaces):
        shares = [_share(w) for w in s.workloads.inference if w.namespace == namespace.name]
        for key, reason in fit.shared_quota_reasons(shares, namespace.fit()).items():
            found.append((("namespaces", i, "quota", key), f"{reason}: raise quota.{key}"))
    return found


@rule("workloads", "secrets")
def _workload_secret_refs(s: Any) -> list[Violation]:
    found: list[Violation] = []
    secrets = {(secret.namespace, secret.name): secret for secret in s.secrets}
    for kind, i, w in s.workloads.all():
        for j, ref in enumerate(w.secretEnv):
            at = ("workloads", kind, i, "secretEnv", j)
            secret = secrets.get((w.namespace, ref.secret))
            if secret is None:
                found.append(((*at, "secret"), f"no secret '{ref.secret}' in namespace '{w.namespace}'"))
            elif ref.key not in secret.keys:
                found.append(((*at, "key"), f"secret '{ref.secret}' has no key '{ref.key}'"))
        for j, files in enumerate(w.secretFiles):
            at = ("workloads", kind, i, "secretFiles", j)
            secret = secrets.get((w.namespace, files.secret))
            if secret is None:
                found.append(((*at, "secret"), f"no secret '{files.secret}' in namespace '{w.namespace}'"))
                continue
            found += [
                ((*at, "keys"), f"secret '{files.secret}' has no key '{key}'")
                for key in files.keys
                if key not in secret.keys
            ]
    return found


@rule("workloads", "storage")
def _training_shared_storage(s: Any) -> list[Violation]:
    found: list[Violation] = []
    shared = s.storage.sharedFileSystem
    for i, w in enumerate(s.workloads.training):
        at = ("workloads", "training", i)
        if not w.sharedStorageMountPath:
            continue
        if not shared.enabled:
            found.append(((*at, "sharedStorageMountPath"), "enable storage.sharedFileSystem first"))
        elif shared.namespace != w.namespace:
            found.append(((*at, "namespace"), f"the shared volume lives in '{shared.namespace}'"))
    return found


@rule("workloads", "observability")
def _custom_metrics_served(s: Any) -> list[Violation]:
    served = {m.name for m in s.observability.customMetrics} if s.observability.enabled else set()
    return [
        (
            ("workloads", "inference", i, "autoscaling", "customMetrics", j, "name"),
            f"{reason}; add an observability.customMetrics rule for it",
        )
        for i, w in enumerate(s.workloads.inference)
        if w.autoscaling
        for j, metric in enumerate(w.autoscaling.customMetrics)
        if (reason := fit.metric_reason(metric.name, served))
    ]


@rule("storage", "cluster")
def _bucket_name(s: Any) -> list[Violation]:
    # The generated bucket name <cluster>-models-<12-digit account>-<region> must fit in 63.
    if s.storage.modelBucket.name is None and len(s.cluster.name) > MAX_CLUSTER_NAME_FOR_BUCKET:
        return [
            (
                ("storage", "modelBucket", "name"),
                "name the bucket: the cluster name is too long to derive one",
            )
        ]
    return []


@rule("storage", "namespaces")
def _shared_storage_namespace(s: Any) -> list[Violation]:
    shared = s.storage.sharedFileSystem
    if shared.enabled and shared.namespace not in {n.name for n in s.namespaces}:
        return [(("storage", "sharedFileSystem", "namespace"), "is not declared in namespaces")]
    return []


@rule("workloads")
def _routes_unique(s: Any) -> list[Violation]:
    routed = [(i, w) for i, w in enumerate(s.workloads.inference) if w.ingress]
    hosts = Counter((w.ingress.host, w.ingress.path) for _, w in routed)
    return [
        (
            ("workloads", "inference", i, "ingress", "host"),
            f"'{w.ingress.host}{w.ingress.path}' is routed twice",
        )
        for i, w in routed
        if hosts[(w.ingress.host, w.ingress.path)] > 1
    ]


@rule("workloads", "ingress", "secrets")
def _tls_sources(s: Any) -> list[Violation]:
    found: list[Violation] = []
    for w in s.workloads.inference:
        if not (w.ingress and w.ingress.tls):
            continue
        if s.ingress.controller == "alb" and not s.ingress.certificateArn:
            found.append(
                (("ingress", "certificateArn"), f"TLS for '{w.ingress.host}' needs an ACM certificate ARN")
            )
        if s.ingress.controller == "nginx":
            found += _nginx_tls_secret(s.ingress, s.secrets, w)
    return list(dict.fromkeys(found))


def _nginx_tls_secret(
    ingress: IngressSettings, secrets: list[SecretSettings], w: InferenceSettings
) -> list[Violation]:
    """ingress-nginx reads the certificate from a Secret in the Ingress's own namespace."""
    name = ingress.tlsSecret
    assert w.ingress is not None
    if not name:
        return [(("ingress", "tlsSecret"), f"TLS for '{w.ingress.host}' needs tlsSecret")]
    secret = next((x for x in secrets if x.name == name and x.namespace == w.namespace), None)
    if secret is None:
        return [
            (("ingress", "tlsSecret"), f"declare secret '{name}' in namespace '{w.namespace}' under secrets")
        ]
    missing = [k for k in ("tls.crt", "tls.key") if k not in secret.keys]
    if missing:
        return [(("ingress", "tlsSecret"), f"secret '{name}' needs the keys {', '.join(missing)}")]
    return []


# -- prod --------------------------------------------------------------------------------------------


@rule("environment", "workloads")
def _prod_images_and_replicas(s: Any) -> list[Violation]:
    if s.environment != "prod":
        return []
    found: list[Violation] = [
        (
            ("workloads", kind, i, *path),
            f"prod runs images by digest (a tag can be moved in the registry): pin "
            f"'{image}' as <image>@sha256:<digest>",
        )
        for kind, i, w in s.workloads.all()
        for path, image in w.images()
        if not validation.is_digest_pinned(image)
    ]
    for i, w in enumerate(s.workloads.inference):
        floor = w.autoscaling.minReplicas if w.autoscaling else w.replicas
        if floor < 2:
            key = ("autoscaling", "minReplicas") if w.autoscaling else ("replicas",)
            found.append((("workloads", "inference", i, *key), "prod inference needs at least 2 replicas"))
    return found


@rule("environment", "workloads", "ingress")
def _prod_public_tls(s: Any) -> list[Violation]:
    if s.environment != "prod" or s.ingress.scheme != "internet-facing":
        return []
    return [
        (("workloads", "inference", i, "ingress", "tls"), "a public ingress in prod must use TLS")
        for i, w in enumerate(s.workloads.inference)
        if w.ingress and not w.ingress.tls
    ]


@rule("environment", "observability")
def _prod_alerting(s: Any) -> list[Violation]:
    if s.environment == "prod" and not s.observability.alerting.enabled:
        return [
            (
                ("observability", "alerting", "enabled"),
                "prod must deliver its alerts: enable alerting with a receiver (Slack or PagerDuty)",
            )
        ]
    return []


@rule("environment", "cluster")
def _prod_endpoint(s: Any) -> list[Violation]:
    if s.environment == "prod" and "0.0.0.0/0" in s.cluster.endpoint.publicAccessCidrs:
        return [(("cluster", "endpoint", "publicAccessCidrs"), "prod must not open the API to 0.0.0.0/0")]
    return []
