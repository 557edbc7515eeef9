"""Critical path of a first deploy: the longest chain of waits, weighted by typical provisioning times.

THE DURATIONS ARE ESTIMATES: typical wall-clock minutes for creating one resource of a type on AWS /
EKS, as commonly observed (EKS control plane ~10 min, managed node group ~4 min, NAT gateway ~2 min,
Helm release ~1-3 min, EKS add-on ~1 min, IAM/KMS/S3 objects seconds). They are not measured for
this account; they serve to compare orderings, not to promise a deploy time.

The model of what waits for what (Pulumi's, on create):

- a resource starts once every URN in its ``dependencies`` has finished. Pulumi already puts both
  explicit ``depends_on`` and the resources whose outputs feed its inputs there, and a component
  named in ``depends_on`` is expanded to the component's custom descendants (so "waits for the
  NodeGroups component" appears as "waits for every node group, launch template and ASG tag");
- a resource also waits for its explicit provider (the Kubernetes provider waits for the cluster and
  its access entries, so every Kubernetes object waits for those too);
- the parent relation orders nothing: a child of a component does not wait for its siblings or its
  parent. Component resources and providers take ~0 minutes; unknown custom types take
  ``DEFAULT_MINUTES``.

The finish time of a resource is ``max(finish of what it waits for) + its own minutes``; the estimated
first deploy is the largest finish time, and the critical path is the chain that produces it.

A *component wait* is a resource that waits for every custom descendant (2 or more) of a component:
that is ``depends_on=[component]``. When only one resource of the component is needed (for example
the system node group, where the platform's charts are scheduled -- GPU groups are tainted), the rest
of the component serialises the deploy for nothing. ``component_waits`` lists them, each with the
deploy estimate before and after narrowing the wait to that one resource.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..catalog.registry import ADD_ONS
from .mock_engine import Registration
from .model import Plan, Report

# Typical minutes to create one resource of a type (ESTIMATES; see the module docstring).
MINUTES: dict[str, float] = {
    # EKS
    "aws:eks/cluster:Cluster": 10.0,
    "aws:eks/nodeGroup:NodeGroup": 4.0,
    "aws:eks/addon:Addon": 1.0,
    "aws:eks/accessEntry:AccessEntry": 0.1,
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": 0.1,
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": 0.1,
    # network
    "aws:ec2/vpc:Vpc": 0.2,
    "aws:ec2/subnet:Subnet": 0.1,
    "aws:ec2/internetGateway:InternetGateway": 0.1,
    "aws:ec2/eip:Eip": 0.1,
    "aws:ec2/natGateway:NatGateway": 2.0,
    "aws:ec2/routeTable:RouteTable": 0.05,
    "aws:ec2/route:Route": 0.05,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": 0.05,
    "aws:ec2/securityGroup:SecurityGroup": 0.1,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": 0.05,
    "aws:ec2/launchTemplate:LaunchTemplate": 0.05,
    "aws:ec2/flowLog:FlowLog": 0.1,
    "aws:autoscaling/tag:Tag": 0.05,
    "aws:ec2/tag:Tag": 0.05,
    # Karpenter's interruption queue and its EventBridge rules
    "aws:sqs/queue:Queue": 0.5,
    "aws:sqs/queuePolicy:QueuePolicy": 0.1,
    "aws:cloudwatch/eventRule:EventRule": 0.05,
    "aws:cloudwatch/eventTarget:EventTarget": 0.05,
    # identity, keys, secrets, logs
    "aws:iam/role:Role": 0.1,
    "aws:iam/policy:Policy": 0.05,
    "aws:iam/rolePolicy:RolePolicy": 0.05,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 0.05,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": 0.1,
    "aws:kms/key:Key": 0.1,
    "aws:kms/alias:Alias": 0.05,
    "aws:secretsmanager/secret:Secret": 0.05,
    "aws:secretsmanager/secretVersion:SecretVersion": 0.05,
    "aws:cloudwatch/logGroup:LogGroup": 0.05,
    # storage
    "aws:s3/bucket:Bucket": 0.1,
    "aws:s3/bucketV2:BucketV2": 0.1,
    "aws:efs/fileSystem:FileSystem": 0.5,
    "aws:efs/mountTarget:MountTarget": 1.5,
    "aws:efs/accessPoint:AccessPoint": 0.1,
    # Kubernetes: Pulumi waits for readiness (rollouts, load balancer addresses, job completion)
    "kubernetes:helm.sh/v3:Release": 2.0,
    "kubernetes:apps/v1:Deployment": 2.0,
    "kubernetes:apps/v1:StatefulSet": 3.0,
    "kubernetes:apps/v1:DaemonSet": 1.0,
    "kubernetes:batch/v1:Job": 1.0,
    "kubernetes:networking.k8s.io/v1:Ingress": 2.0,  # the ALB is provisioned before it has an address
    "kubernetes:core/v1:Service": 0.05,
    "kubernetes:core/v1:PersistentVolumeClaim": 0.5,
}
# Prefix defaults, checked after exact types.
PREFIX_MINUTES: dict[str, float] = {
    "aws:s3/": 0.05,
    "kubernetes:": 0.02,  # plain API objects: ConfigMaps, RBAC, policies, CRs
    "pulumi:providers:": 0.0,
}
# Helm charts known to be slower or faster than a typical release (their descriptors say).
CHART_MINUTES: dict[str, float] = {
    addon.chart: addon.install_minutes for addon in ADD_ONS if addon.install_minutes is not None
}
DEFAULT_MINUTES = 0.5  # an unknown custom resource type


def minutes(registration: Registration) -> float:
    """The estimated minutes to create this resource (0 for component resources)."""
    if not registration.custom:
        return 0.0
    if registration.type == "kubernetes:helm.sh/v3:Release":
        # A chart from an OCI registry is named by its reference (oci://host/path/<chart>).
        chart = str(registration.inputs.get("chart", "")).rsplit("/", 1)[-1]
        if chart in CHART_MINUTES:
            return CHART_MINUTES[chart]
    if registration.type in MINUTES:
        return MINUTES[registration.type]
    for prefix, value in PREFIX_MINUTES.items():
        if registration.type.startswith(prefix):
            return value
    return DEFAULT_MINUTES


def _provider_urn(registration: Registration) -> str:
    return "::".join(registration.provider.split("::")[:-1]) if registration.provider else ""


def waits_for(registrations: Sequence[Registration]) -> dict[str, list[str]]:
    """URN -> the URNs it waits for: its dependencies plus its explicit provider (known URNs only)."""
    known = {r.urn for r in registrations}
    graph: dict[str, list[str]] = {}
    for r in registrations:
        deps = [d for d in r.dependencies if d in known and d != r.urn]
        provider = _provider_urn(r)
        if provider in known and provider not in deps:
            deps.append(provider)
        graph[r.urn] = list(dict.fromkeys(deps))
    return graph


@dataclass
class Step:
    urn: str
    name: str
    type: str
    minutes: float
    finish: float


@dataclass
class CriticalPath:
    total_minutes: float
    chain: list[Step]
    finish: dict[str, float] = field(repr=False, default_factory=dict)


def critical_path(
    registrations: Sequence[Registration],
    graph: Mapping[str, Iterable[str]] | None = None,
    weights: Mapping[str, float] | None = None,
) -> CriticalPath:
    """The longest weighted chain through ``graph`` (default: ``waits_for``); cycles are an error."""
    by_urn = {r.urn: r for r in registrations}
    graph = graph if graph is not None else waits_for(registrations)
    weight = dict(weights) if weights is not None else {r.urn: minutes(r) for r in registrations}
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    state: dict[str, int] = {}

    def visit(start: str) -> None:  # iterative DFS: graphs of thousands of resources are deep
        stack = [(start, iter(graph.get(start, ())))]
        state[start] = 1
        while stack:
            urn, children = stack[-1]
            advanced = False
            for dep in children:
                if state.get(dep) == 1:
                    raise ValueError(f"dependency cycle through {dep}")
                if dep not in state:
                    state[dep] = 1
                    stack.append((dep, iter(graph.get(dep, ()))))
                    advanced = True
                    break
            if advanced:
                continue
            stack.pop()
            state[urn] = 2
            best, best_dep = 0.0, None
            for dep in graph.get(urn, ()):
                if finish[dep] > best or best_dep is None and finish[dep] >= best:
                    best, best_dep = finish[dep], dep
            finish[urn] = best + weight.get(urn, 0.0)
            via[urn] = best_dep

    for urn in by_urn:
        if urn not in state:
            visit(urn)
    if not finish:
        return CriticalPath(0.0, [], {})
    end = max(finish, key=lambda u: (finish[u], u))
    chain: list[Step] = []
    node: str | None = end
    while node is not None:
        r = by_urn[node]
        chain.append(Step(node, r.name, r.type, weight.get(node, 0.0), finish[node]))
        node = via[node]
    chain.reverse()
    return CriticalPath(round(finish[end], 3), chain, finish)


# -- component waits ----------------------------------------------------------------------------


def _descendants(registrations: Sequence[Registration]) -> dict[str, set[str]]:
    """Component URN -> URNs of its custom descendants."""
    parent = {r.urn: r.parent for r in registrations}
    custom = {r.urn for r in registrations if r.custom}
    out: dict[str, set[str]] = defaultdict(set)
    for urn in custom:
        p = parent.get(urn)
        while p and p in parent:
            out[p].add(urn)
            p = parent.get(p)
    return out


def representative(registrations: Sequence[Registration], members: set[str]) -> str:
    """The one resource a waiter needs from a component it waits for as a whole.

    The system node group for node groups (charts run there; GPU groups are tainted); otherwise the
    component's slowest resource (its main one: the release, the cluster, the file system).
    """
    group = [r for r in registrations if r.urn in members]
    systems = [r for r in group if r.type == "aws:eks/nodeGroup:NodeGroup" and r.name.endswith("-system")]
    if systems:
        return systems[0].urn
    return max(group, key=lambda r: (minutes(r), r.name)).urn


@dataclass
class ComponentWait:
    component: str  # name (type)
    component_urn: str
    waiters: list[str]  # names of the resources that wait for the whole component
    keep: str  # name of the one resource they need
    before: float
    after: float


def component_waits(registrations: Sequence[Registration]) -> list[ComponentWait]:
    """Resources that wait for a whole component, grouped by component, with before/after estimates.

    Only outermost components are reported (a wait on NodeGroups is not also reported as a wait on
    each of its sub-components).
    """
    by_urn = {r.urn: r for r in registrations}
    graph = waits_for(registrations)
    before = critical_path(registrations, graph).total_minutes
    members = {c: m for c, m in _descendants(registrations).items() if len(m) >= 2}
    found: dict[str, set[str]] = defaultdict(set)  # component -> waiters
    for r in registrations:
        deps = set(graph[r.urn])
        whole = [c for c, m in members.items() if m <= deps and r.urn not in m]
        # keep the outermost: drop a component whose members are inside another reported one
        for c in whole:
            if not any(c != o and members[c] < members[o] for o in whole):
                found[c].add(r.urn)
    results = []
    for component, waiters in found.items():
        keep = representative(registrations, members[component])
        drop = members[component] - {keep}
        narrowed = {u: [d for d in deps if not (u in waiters and d in drop)] for u, deps in graph.items()}
        after = critical_path(registrations, narrowed).total_minutes
        c = by_urn[component]
        results.append(
            ComponentWait(
                component=f"{c.name} ({c.type})",
                component_urn=component,
                waiters=sorted(by_urn[w].name for w in waiters),
                keep=by_urn[keep].name,
                before=before,
                after=after,
            )
        )
    return sorted(results, key=lambda w: (w.after - w.before, w.component))


def link_gains(
    registrations: Sequence[Registration], graph: Mapping[str, list[str]] | None = None
) -> list[tuple[str, str, float, float]]:
    """For each link of the critical path: (waiter, waited-for, estimate before, estimate without it).

    Many links are real requirements (a cluster needs its subnets); the list says where an unneeded
    one would pay off.
    """
    graph = dict(graph) if graph is not None else waits_for(registrations)
    path = critical_path(registrations, graph)
    out = []
    for dep, waiter in zip(path.chain, path.chain[1:], strict=False):
        cut = {**graph, waiter.urn: [d for d in graph[waiter.urn] if d != dep.urn]}
        out.append(
            (waiter.name, dep.name, path.total_minutes, critical_path(registrations, cut).total_minutes)
        )
    return out


GPU_AMI_MARKER = "NVIDIA"
SLOW_GPU_GROUP_MINUTES = 12.0  # a GPU group waiting for scarce capacity (what-if)


def slow_gpu_weights(registrations: Sequence[Registration], slow: float = SLOW_GPU_GROUP_MINUTES) -> dict:
    """Estimated minutes with every GPU node group that must start nodes (desiredSize > 0) slow."""
    weights = {r.urn: minutes(r) for r in registrations}
    for r in registrations:
        scaling = r.inputs.get("scalingConfig") or {}
        if (
            r.type == "aws:eks/nodeGroup:NodeGroup"
            and GPU_AMI_MARKER in str(r.inputs.get("amiType", ""))
            and (scaling.get("desiredSize") or 0) > 0
        ):
            weights[r.urn] = slow
    return weights


def narrowed_graph(registrations: Sequence[Registration]) -> dict[str, list[str]]:
    """Every component wait narrowed to its representative at once: the 'after' of all proposals."""
    graph = waits_for(registrations)
    members = _descendants(registrations)
    for w in component_waits(registrations):
        drop = members[w.component_urn] - {representative(registrations, members[w.component_urn])}
        waiters = {r.urn for r in registrations if r.name in set(w.waiters)}
        graph = {u: [d for d in deps if not (u in waiters and d in drop)] for u, deps in graph.items()}
    return graph


# -- the report ---------------------------------------------------------------------------------


def _fmt(m: float) -> str:
    return f"{m:5.1f} min"


def critical_path_report(plan: Plan) -> Report:
    registrations = plan.registrations
    path = critical_path(registrations)
    waits = component_waits(registrations)
    narrowed = narrowed_graph(registrations)
    all_after = critical_path(registrations, narrowed).total_minutes
    slow = slow_gpu_weights(registrations)
    slow_before = critical_path(registrations, weights=slow).total_minutes
    slow_after = critical_path(registrations, narrowed, weights=slow).total_minutes
    links = link_gains(registrations)
    lines = [
        f"Estimated first deploy: {path.total_minutes:.1f} min (ESTIMATE: typical provisioning times per type)",
        "Critical path (finish time, own minutes, resource, type):",
    ]
    for step in path.chain:
        if step.minutes == 0 and step is not path.chain[0]:
            continue
        lines.append(f"  {_fmt(step.finish)}  +{step.minutes:4.2f}  {step.name}  ({step.type})")
    useful = [w for w in waits if w.after < w.before - 1e-6]
    if useful:
        lines.append("Waits on a whole component where one resource would do:")
        for w in useful:
            shown = ", ".join(w.waiters[:4]) + (f", +{len(w.waiters) - 4} more" if len(w.waiters) > 4 else "")
            lines.append(
                f"  {w.component}: {len(w.waiters)} waiter(s) [{shown}] need only {w.keep}: "
                f"{w.before:.1f} -> {w.after:.1f} min"
            )
        lines.append(f"  all narrowed together: {path.total_minutes:.1f} -> {all_after:.1f} min")
        lines.append(
            f"  if GPU node groups with desired nodes take {SLOW_GPU_GROUP_MINUTES:.0f} min (scarce capacity): "
            f"{slow_before:.1f} -> {slow_after:.1f} min"
        )
    lines.append("Critical-path links: estimate without each (many are real requirements):")
    for waiter, dep, before, after in links:
        if after < before - 0.05:
            lines.append(f"  {waiter} waits for {dep}: {before:.1f} -> {after:.1f} min")
    data = {
        "estimate": True,
        "model": "a resource waits for its dependencies and its explicit provider; parents order nothing",
        "total_minutes": path.total_minutes,
        "chain": [
            {"name": s.name, "type": s.type, "minutes": s.minutes, "finish_minutes": round(s.finish, 3)}
            for s in path.chain
        ],
        "component_waits": [
            {
                "component": w.component,
                "waiters": w.waiters,
                "needs_only": w.keep,
                "before_minutes": w.before,
                "after_minutes": w.after,
            }
            for w in waits
        ],
        "all_narrowed_minutes": all_after,
        "slow_gpu_groups": {
            "group_minutes": SLOW_GPU_GROUP_MINUTES,
            "before_minutes": slow_before,
            "after_narrowing_minutes": slow_after,
        },
        "critical_links": [
            {"waiter": w, "waits_for": d, "before_minutes": b, "without_minutes": a} for w, d, b, a in links
        ],
        "minutes_by_type": MINUTES,
        "default_minutes": DEFAULT_MINUTES,
    }
    return Report(
        title="Critical path (estimate)",
        lines=lines,
        files={"critical_path.json": json.dumps(data, indent=2) + "\n"},
    )
