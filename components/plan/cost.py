"""Estimated monthly cost of a planned stack, IDLE and PEAK, by line item.

IDLE: every node group at its ``minSize`` (GPU groups at 0 where the stack allows it), or at the nodes
what always runs there needs when that is more (``GroupLoad.nodes_needed``: a Deployment's minimum
replicas keep a group that may scale to zero from doing so), and the instances a pool's capacity
reservations hold (EC2 bills them whether used: the NodePool's ``aiplatform.io/reserved-instances``). PEAK: every node group at its ``maxSize``. Everything else (control plane, NAT gateways, load balancers, keys,
secrets, storage) costs the same in both.

Prices come from ``aiplatform/plan/pricing.json`` (dated, with its source and assumptions); quantities come
from the registrations: node groups (``scalingConfig``, ``instanceTypes`` -- the first one --,
``capacityType``), their launch templates (root disk size), NAT gateways and their Elastic IPs, ALBs
(one per ``alb.ingress.kubernetes.io/group.name``, one per ungrouped Ingress), NLBs (Services of type
LoadBalancer and the ingress-nginx controller), gp3 PersistentVolumeClaims and Prometheus storage,
KMS keys, Secrets Manager secrets, S3 buckets and EFS file systems (usage assumed).

A team's program on the platform (it registers no nodes; ``--stack-outputs`` describe the platform)
is priced at its pods' share of the platform's nodes (``team_cost``), and an Ingress that joins the
platform's ALB group shares the platform's load balancer: the platform's plan prices both whole.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from ..catalog.registry import BY_CHART, KUBE_PROMETHEUS_STACK
from ..compute.auto_mode import IDLE_NODES_ANNOTATION
from ..compute.capacity import GroupLoad
from ..compute.instance_types import lookup
from ..compute.pools import reserved_instances
from ..kubernetes_versions import lifecycle
from .cloud import short_hash
from .mock_engine import Registration
from .model import Plan, Report, cluster_versions
from .registered import RegisteredCluster, nodes_within, registered_cluster
from .team_cost import TeamShare, shared_albs, team_shares

PRICING_FILE = Path(__file__).with_name("pricing.json")
GPU_AMI_MARKER = "NVIDIA"
ALB_GROUP_ANNOTATION = "alb.ingress.kubernetes.io/group.name"
_GI = {
    "Ki": 2**-20,
    "Mi": 2**-10,
    "Gi": 1.0,
    "Ti": 2**10,
    "K": 1e3 / 2**30,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
}


def load_pricing(path: Path = PRICING_FILE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# -- the table's evidence and age -------------------------------------------------------------------

STALE_AFTER_MONTHS = 6
REFRESH_HINT = "refresh components/plan/pricing.json as README.md, section 'Pricing', describes"
NOT_PRICES = frozenset(
    {"as_of", "region", "currency", "source", "hours_per_month", "evidence", "assumptions"}
)


@dataclass(frozen=True)
class Evidence:
    """Where one price of the table was read: the page, the date that copy shows, and whether it showed
    the price (``unverified``: no dated copy did; the line keeps its earlier value)."""

    status: Literal["verified", "unverified"]
    url: str
    seen: date
    note: str


def price_keys(pricing: Mapping[str, Any]) -> list[str]:
    """The table's prices (a mapping such as ``ec2_on_demand_hour`` counts as one, its evidence covers
    every type in it)."""
    return [key for key in pricing if key not in NOT_PRICES]


def _evidence_entry(key: str, entry: Mapping[str, Any]) -> Evidence:
    status = entry.get("status")
    if status not in ("verified", "unverified"):
        raise ValueError(f"pricing.json evidence.{key}.status is {status!r}: use 'verified' or 'unverified'")
    return Evidence(status, str(entry["url"]), date.fromisoformat(str(entry["seen"])), str(entry["note"]))


def evidence(pricing: Mapping[str, Any]) -> dict[str, Evidence]:
    """The table's ``evidence`` mapping: price key -> where and when its value was seen."""
    return {key: _evidence_entry(key, entry) for key, entry in (pricing.get("evidence") or {}).items()}


def unverified_prices(pricing: Mapping[str, Any]) -> list[str]:
    """Prices without dated evidence of their value, in table order."""
    found = evidence(pricing)
    return [key for key in price_keys(pricing) if key not in found or found[key].status != "verified"]


def months_later(day: date, months: int) -> date:
    """``day`` moved ``months`` calendar months on (the 31st becomes the month's last day)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def stale_prices(pricing: Mapping[str, Any], today: date) -> dict[str, date]:
    """Verified prices whose evidence is more than six months before ``today``: key -> the day seen."""
    return {
        key: found.seen
        for key, found in evidence(pricing).items()
        if found.status == "verified" and today > months_later(found.seen, STALE_AFTER_MONTHS)
    }


def staleness_warning(as_of: date, today: date, stale: Mapping[str, date] | None = None) -> str | None:
    """A warning when the table's date is more than six months before ``today`` (exactly six months is
    still current), else None. ``stale`` (from ``stale_prices``) names the lines to refresh first."""
    if today <= months_later(as_of, STALE_AFTER_MONTHS):
        return None
    oldest = ", ".join(
        f"{key} ({seen.isoformat()})" for key, seen in sorted((stale or {}).items(), key=lambda i: i[1])
    )
    return (
        f"prices are as of {as_of.isoformat()}, more than {STALE_AFTER_MONTHS} months before "
        f"{today.isoformat()}{f'; older than that: {oldest}' if oldest else ''}: {REFRESH_HINT}"
    )


def gib(quantity: Any) -> float:
    """A Kubernetes storage quantity in GiB (``20Gi`` -> 20, ``5Ti`` -> 5120)."""
    text = str(quantity)
    match = re.fullmatch(r"([0-9.]+)([KMGT]i?)?", text)
    if not match:
        return 0.0
    number, unit = float(match.group(1)), match.group(2)
    return number * _GI[unit] if unit else number / 2**30


@dataclass
class LineItem:
    item: str
    quantity_idle: float
    quantity_peak: float
    unit: str
    unit_price: float  # USD per unit per month
    note: str = ""

    @property
    def idle(self) -> float:
        return round(self.quantity_idle * self.unit_price, 2)

    @property
    def peak(self) -> float:
        return round(self.quantity_peak * self.unit_price, 2)


@dataclass
class CostEstimate:
    items: list[LineItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # GPUs the node groups bring at their minimum and maximum (the instance type table's counts).
    gpus_idle: int = 0
    gpus_peak: int = 0

    @property
    def idle(self) -> float:
        return round(sum(i.idle for i in self.items), 2)

    @property
    def peak(self) -> float:
        return round(sum(i.peak for i in self.items), 2)

    def as_dict(self, pricing: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "estimate": True,
            "currency": pricing.get("currency", "USD"),
            "region": pricing.get("region"),
            "prices_as_of": pricing.get("as_of"),
            "prices_source": pricing.get("source"),
            "prices_unverified": unverified_prices(pricing),
            "hours_per_month": pricing["hours_per_month"],
            "assumptions": pricing.get("assumptions", {}),
            "idle_monthly": self.idle,
            "peak_monthly": self.peak,
            "gpus": {"idle": self.gpus_idle, "peak": self.gpus_peak},
            "items": [
                {
                    "item": i.item,
                    "unit": i.unit,
                    "unit_price_monthly": round(i.unit_price, 6),
                    "quantity_idle": i.quantity_idle,
                    "quantity_peak": i.quantity_peak,
                    "idle_monthly": i.idle,
                    "peak_monthly": i.peak,
                    "note": i.note,
                }
                for i in self.items
            ],
            "warnings": self.warnings,
        }


def _launch_template_disks(registrations: Sequence[Registration]) -> dict[str, float]:
    """Launch template id (as the mock engine assigns it) and name -> root disk GiB."""
    disks: dict[str, float] = {}
    for r in registrations:
        if r.type != "aws:ec2/launchTemplate:LaunchTemplate":
            continue
        size = sum(
            float((m.get("ebs") or {}).get("volumeSize") or 0)
            for m in r.inputs.get("blockDeviceMappings") or []
        )
        disks[f"lt-{short_hash(r.type, r.name, length=17)}"] = size
        disks[r.name] = size
    return disks


NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASSES = ("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "kubernetes:eks.amazonaws.com/v1:NodeClass")
INSTANCE_TYPE_KEY = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_KEY = "karpenter.sh/capacity-type"
AUTO_MODE_GROUP = "eks.amazonaws.com"


def _node_class_disks(registrations: Sequence[Registration]) -> dict[tuple[str, str], float]:
    """(node class group, name) -> the GiB of disk each node of the class gets."""
    disks: dict[tuple[str, str], float] = {}
    for r in registrations:
        if r.type not in NODE_CLASSES:
            continue
        spec = r.inputs.get("spec") or {}
        group = str(r.inputs.get("apiVersion", "")).split("/")[0]
        root = [(m.get("ebs") or {}).get("volumeSize") for m in spec.get("blockDeviceMappings") or []]
        size = sum(gib(v) for v in root if v) or gib((spec.get("ephemeralStorage") or {}).get("size", 0))
        disks[(group, str((r.inputs.get("metadata") or {}).get("name")))] = size
    return disks


def _requirement(spec: Mapping[str, Any], key: str) -> list[str]:
    for requirement in ((spec.get("template") or {}).get("spec") or {}).get("requirements") or []:
        if requirement.get("key") == key and requirement.get("operator") == "In":
            return [str(v) for v in requirement.get("values") or []]
    return []


def _idle_nodes(load: GroupLoad | None, minimum: int) -> tuple[int, str]:
    """The nodes a group or pool keeps when idle: its minimum, or more where pods always run there (a
    Deployment's minimum replicas need nodes even when the group may scale to zero); and a note."""
    needed = load.nodes_needed() if load is not None else minimum
    if needed <= minimum or load is None:
        return minimum, ""
    names = ", ".join(f"{p.name} x {p.min_replicas}" for p in load.always_running)
    return needed, f"; idle: {needed} nodes for what always runs there ({names}), minimum {minimum}"


def _pool_items(
    registrations: Sequence[Registration],
    pricing: Mapping[str, Any],
    est: CostEstimate,
    cluster: RegisteredCluster,
) -> None:
    """Karpenter / Auto Mode pools: idle at zero nodes (or their stated floor, or what always runs
    there), peak at the most their limits buy of their most expensive allowed type."""
    hours = float(pricing["hours_per_month"])
    disks = _node_class_disks(registrations)
    for pool in (r for r in registrations if r.type == NODE_POOL):
        spec = pool.inputs.get("spec") or {}
        metadata = pool.inputs.get("metadata") or {}
        name = str(metadata.get("name") or pool.name)
        ref = ((spec.get("template") or {}).get("spec") or {}).get("nodeClassRef") or {}
        auto_mode = ref.get("group") == AUTO_MODE_GROUP
        capacity = _requirement(spec, CAPACITY_TYPE_KEY) or ["on-demand"]
        factor = 1 - float(pricing["spot_discount"]) if capacity == ["spot"] else 1.0
        if auto_mode:
            factor += float(pricing.get("eks_auto_mode_fee_fraction", 0))
        idle, always = _idle_nodes(
            cluster.load_of(pool.name), int((metadata.get("annotations") or {}).get(IDLE_NODES_ANNOTATION, 0))
        )
        types = _requirement(spec, INSTANCE_TYPE_KEY)
        options = []
        for itype in types:
            entry, hourly = lookup(itype), pricing["ec2_on_demand_hour"].get(itype)
            if entry is None or hourly is None:
                est.warnings.append(f"no price or table entry for {itype} (pool {name}): not considered")
                continue
            nodes = nodes_within(spec.get("limits") or {}, entry)
            options.append((nodes * hourly, nodes, itype, hourly, entry))
        if not options:
            est.warnings.append(f"pool {name}: no priced instance type, counted as 0")
            continue
        _, nodes, itype, hourly, entry = max(options, key=lambda option: option[:3])
        nodes = max(nodes, idle)
        reserved = reserved_instances(metadata.get("annotations"))
        covered = reserved.get(itype, 0)  # nodes of the priced type that run in the reservations
        note = (
            f"peak: {nodes} x {itype}, the most its limits ({', '.join(f'{k} {v}' for k, v in (spec.get('limits') or {}).items())}) "
            f"buy of {', '.join(types)}; {'/'.join(capacity)}"
        )
        if factor != 1.0:
            note += f" (on-demand x {factor:.2f}{', Auto Mode fee included' if auto_mode else ''})"
        note += always
        if covered:
            note += f"; {covered} of them in the reservations (billed on their own line)"
        if entry.gpu is not None:
            note += f"; {entry.gpus} x {entry.gpu} per node"
            est.gpus_idle += max(idle, covered) * entry.gpus
            est.gpus_peak += max(nodes, covered) * entry.gpus
        label = "Auto Mode" if auto_mode else "Karpenter"
        est.items.append(
            LineItem(
                f"EC2 {label} pool {name} ({itype})",
                max(idle - covered, 0),
                max(nodes - covered, 0),
                "node",
                hourly * factor * hours,
                note,
            )
        )
        _reservation_items(name, reserved, itype, pricing, est)
        disk = disks.get((str(ref.get("group")), str(ref.get("name"))))
        if disk:
            est.items.append(
                LineItem(
                    f"EBS gp3 disks pool {name} ({disk:g} GiB/node)",
                    idle,
                    nodes,
                    "node",
                    disk * pricing["ebs_gp3_gb_month"],
                )
            )


def _reservation_items(
    pool: str, reserved: Mapping[str, int], priced: str, pricing: Mapping[str, Any], est: CostEstimate
) -> None:
    """A pool's capacity reservations: EC2 bills their instances at the on-demand price whether
    instances run in them or not, idle and peak alike."""
    hours = float(pricing["hours_per_month"])
    for itype, count in sorted(reserved.items()):
        entry, hourly = lookup(itype), pricing["ec2_on_demand_hour"].get(itype)
        if hourly is None:
            est.warnings.append(
                f"no price for instance type {itype} (reservations of pool {pool}): counted as 0"
            )
            hourly = 0.0
        if entry is not None and entry.gpu is not None and itype != priced:
            est.gpus_idle += count * entry.gpus
            est.gpus_peak += count * entry.gpus
        est.items.append(
            LineItem(
                f"EC2 capacity reservations pool {pool} ({itype})",
                count,
                count,
                "instance",
                hourly * hours,
                "on-demand price, billed whether instances run in them or not",
            )
        )


def _class_groups(registrations: Sequence[Registration]) -> dict[str, str]:
    """IngressClass name -> the ALB group its IngressClassParams put every Ingress of the class in
    (EKS Auto Mode groups routes there, not with an annotation)."""
    params = {
        str((r.inputs.get("metadata") or {}).get("name")): (
            (r.inputs.get("spec") or {}).get("group") or {}
        ).get("name")
        for r in registrations
        if r.type.endswith(":IngressClassParams")
    }
    found: dict[str, str] = {}
    for r in registrations:
        if r.type != "kubernetes:networking.k8s.io/v1:IngressClass":
            continue
        ref = (r.inputs.get("spec") or {}).get("parameters") or {}
        group = params.get(str(ref.get("name"))) if ref.get("kind") == "IngressClassParams" else None
        if group:
            found[str((r.inputs.get("metadata") or {}).get("name"))] = group
    return found


def extended_support_fee(pricing: Mapping[str, Any]) -> float:
    """What a cluster in EKS extended support costs on top of standard, USD per month."""
    extra = float(pricing["eks_extended_support_hour"]) - float(pricing["eks_control_plane_hour"])
    return extra * float(pricing["hours_per_month"])


def estimate(
    registrations: Sequence[Registration],
    pricing: Mapping[str, Any],
    today: date | None = None,
    team: Sequence[TeamShare] = (),
    shared_albs: tuple[set[str], set[str]] = (set(), set()),
) -> CostEstimate:
    """The estimate; with ``today``, clusters whose Kubernetes minor is in extended support that day
    also pay the extended-support fee (its own line item). A team's program on the platform adds its
    pods' share of the platform's nodes (``team``), and its Ingresses in the platform's ALB groups or
    classes (``shared_albs``) share the platform's load balancer instead of adding one."""
    hours = float(pricing["hours_per_month"])
    assume = pricing.get("assumptions", {})
    est = CostEstimate()
    items = est.items
    of = lambda typ: [r for r in registrations if r.type == typ]  # noqa: E731

    clusters = of("aws:eks/cluster:Cluster")
    if clusters:
        n = len(clusters)
        items.append(
            LineItem("EKS control plane", n, n, "cluster", pricing["eks_control_plane_hour"] * hours)
        )
        extended = [
            version
            for _, version in cluster_versions(clusters)
            if today is not None and version is not None and lifecycle(version, today).billed_extended
        ]
        if extended:
            items.append(
                LineItem(
                    "EKS extended support",
                    len(extended),
                    len(extended),
                    "cluster",
                    extended_support_fee(pricing),
                    f"Kubernetes {', '.join(sorted(set(extended)))} past standard support on {today} "
                    f"(${pricing['eks_extended_support_hour']:.2f} instead of "
                    f"${pricing['eks_control_plane_hour']:.2f} per cluster hour)",
                )
            )

    disks = _launch_template_disks(registrations)
    ebs_gb = pricing["ebs_gp3_gb_month"]
    cluster = registered_cluster(registrations)
    for group in of("aws:eks/nodeGroup:NodeGroup"):
        inputs = group.inputs
        scaling = inputs.get("scalingConfig") or {}
        minimum, high = int(scaling.get("minSize") or 0), int(scaling.get("maxSize") or 0)
        low, always = _idle_nodes(cluster.load_of(group.name), minimum)
        types = inputs.get("instanceTypes") or []
        itype = types[0] if types else "unknown"
        capacity = inputs.get("capacityType") or "ON_DEMAND"
        hourly = pricing["ec2_on_demand_hour"].get(itype)
        if hourly is None:
            est.warnings.append(f"no price for instance type {itype} (node group {group.name}): counted as 0")
            hourly = 0.0
        note = f"{capacity}"
        if capacity == "SPOT":
            hourly *= 1 - float(pricing["spot_discount"])
            note += f" (on-demand x {1 - float(pricing['spot_discount']):.2f}, assumed)"
        if len(types) > 1:
            note += f"; priced as {itype} of {', '.join(types)}"
        note += always
        entry = lookup(itype)
        if entry is not None and entry.gpu is not None:
            note += f"; {entry.gpus} x {entry.gpu} per node"
            est.gpus_idle += low * entry.gpus
            est.gpus_peak += high * entry.gpus
        items.append(LineItem(f"EC2 {group.name} ({itype})", low, high, "node", hourly * hours, note))
        template = (inputs.get("launchTemplate") or {}).get("id") or ""
        disk = disks.get(template) or disks.get(f"{group.name}-lt") or inputs.get("diskSize")
        if not disk:
            disk = float(assume.get("default_node_disk_gb", 20))
        items.append(
            LineItem(
                f"EBS gp3 root disks {group.name} ({disk:g} GiB/node)",
                low,
                high,
                "node",
                float(disk) * ebs_gb,
            )
        )

    _pool_items(registrations, pricing, est, cluster)
    for share in team:
        est.items.append(
            LineItem(
                f"EC2 share of {share.group} ({share.instance})",
                share.nodes_idle,
                share.nodes_peak,
                "node",
                share.hourly * hours,
                share.note,
            )
        )
        est.gpus_idle += share.gpus_idle
        est.gpus_peak += share.gpus_peak

    nats = of("aws:ec2/natGateway:NatGateway")
    if nats:
        n = len(nats)
        items.append(LineItem("NAT gateways (hourly)", n, n, "gateway", pricing["nat_gateway_hour"] * hours))
        gb = float(assume.get("nat_gb_per_gateway_month", 0))
        items.append(
            LineItem(
                "NAT data processing (assumed)",
                n * gb,
                n * gb,
                "GB",
                pricing["nat_gateway_per_gb"],
                f"{gb:g} GB/gateway",
            )
        )
    eips = of("aws:ec2/eip:Eip")
    if eips:
        n = len(eips)
        items.append(
            LineItem("Public IPv4 addresses (EIPs)", n, n, "address", pricing["public_ipv4_hour"] * hours)
        )

    lcus = float(assume.get("load_balancer_lcus", 1))
    groups: set[str] = set()
    ungrouped = 0
    shared: set[str] = set()
    class_groups = _class_groups(registrations)
    for ing in of("kubernetes:networking.k8s.io/v1:Ingress"):
        annotations = ((ing.inputs.get("metadata") or {}).get("annotations")) or {}
        spec = ing.inputs.get("spec") or {}
        is_alb = spec.get("ingressClassName") in (None, "alb") or any(
            k.startswith("alb.") for k in annotations
        )
        if not is_alb:
            continue
        group = annotations.get(ALB_GROUP_ANNOTATION) or class_groups.get(spec.get("ingressClassName") or "")
        shared_groups, shared_classes = shared_albs
        if group in shared_groups or (not group and spec.get("ingressClassName") in shared_classes):
            shared.add(group or str(spec.get("ingressClassName")))
        elif group:
            groups.add(group)
        else:
            ungrouped += 1
    albs = len(groups) + ungrouped
    if albs:
        price = (pricing["alb_hour"] + lcus * pricing["alb_lcu_hour"]) * hours
        items.append(
            LineItem("Application Load Balancers", albs, albs, "ALB", price, f"{lcus:g} LCU assumed")
        )
    if shared:
        items.append(
            LineItem(
                "Application Load Balancers: the platform's, shared",
                0,
                0,
                "ALB",
                0.0,
                f"routes join the platform's ALB ({', '.join(sorted(shared))}), which its own plan prices",
            )
        )
    nlbs = sum(
        1
        for s in of("kubernetes:core/v1:Service")
        if (s.inputs.get("spec") or {}).get("type") == "LoadBalancer"
    )
    nlbs += sum(
        chart.network_load_balancers
        for chart in (BY_CHART.get(str(r.inputs.get("chart"))) for r in of("kubernetes:helm.sh/v3:Release"))
        if chart is not None
    )
    if nlbs:
        price = (pricing["nlb_hour"] + lcus * pricing["nlb_lcu_hour"]) * hours
        items.append(LineItem("Network Load Balancers", nlbs, nlbs, "NLB", price, f"{lcus:g} LCU assumed"))

    pvc_gb = 0.0
    for pvc in of("kubernetes:core/v1:PersistentVolumeClaim"):
        spec = pvc.inputs.get("spec") or {}
        if spec.get("storageClassName", "gp3") in ("gp3", None):
            pvc_gb += gib(((spec.get("resources") or {}).get("requests") or {}).get("storage", 0))
    for release in of("kubernetes:helm.sh/v3:Release"):
        if release.inputs.get("chart") != KUBE_PROMETHEUS_STACK.chart:
            continue
        spec = (((release.inputs.get("values") or {}).get("prometheus") or {}).get("prometheusSpec")) or {}
        claim = ((spec.get("storageSpec") or {}).get("volumeClaimTemplate") or {}).get("spec") or {}
        pvc_gb += gib(((claim.get("resources") or {}).get("requests") or {}).get("storage", 0))
    if pvc_gb:
        items.append(LineItem("EBS gp3 volumes (PVCs, Prometheus)", pvc_gb, pvc_gb, "GiB", ebs_gb))

    keys = of("aws:kms/key:Key")
    if keys:
        items.append(LineItem("KMS keys", len(keys), len(keys), "key", pricing["kms_key_month"]))
    secrets = of("aws:secretsmanager/secret:Secret")
    if secrets:
        n = len(secrets)
        items.append(
            LineItem("Secrets Manager secrets", n, n, "secret", pricing["secretsmanager_secret_month"])
        )
    buckets = of("aws:s3/bucket:Bucket") + of("aws:s3/bucketV2:BucketV2")
    if buckets:
        gb = len(buckets) * float(assume.get("s3_gb", 0))
        items.append(LineItem("S3 Standard (assumed usage)", gb, gb, "GB", pricing["s3_standard_gb_month"]))
    filesystems = of("aws:efs/fileSystem:FileSystem")
    if filesystems:
        gb = len(filesystems) * float(assume.get("efs_gb", 0))
        items.append(
            LineItem(
                "EFS Standard (assumed usage)",
                gb,
                gb,
                "GB",
                pricing["efs_standard_gb_month"],
                "metered, not the claim size",
            )
        )
    return est


def cost_report(plan: Plan) -> Report:
    pricing = load_pricing()
    team: list[TeamShare] = []
    team_warnings: list[str] = []
    if not registered_cluster(plan.registrations).sources:
        # A team's program on the platform: its pods' share of the platform's nodes.
        team, team_warnings = team_shares(plan, pricing)
    est = estimate(plan.registrations, pricing, plan.today, team, shared_albs(plan))
    est.warnings += team_warnings
    stale = staleness_warning(
        date.fromisoformat(str(pricing["as_of"])), plan.today, stale_prices(pricing, plan.today)
    )
    if stale:
        est.warnings.insert(0, stale)
    width = max((len(i.item) for i in est.items), default=10)
    lines = [
        f"ESTIMATE, USD/month, {pricing['region']} prices as of {pricing['as_of']} "
        f"({pricing['hours_per_month']} h/month; aiplatform/plan/pricing.json)",
        f"{'item':<{width}}  {'idle':>10}  {'peak':>10}",
    ]
    for i in est.items:
        lines.append(f"{i.item:<{width}}  {i.idle:>10,.2f}  {i.peak:>10,.2f}")
    lines.append(f"{'TOTAL':<{width}}  {est.idle:>10,.2f}  {est.peak:>10,.2f}")
    lines.append(f"{'GPUs (count, not USD)':<{width}}  {est.gpus_idle:>10}  {est.gpus_peak:>10}")
    unverified = unverified_prices(pricing)
    if unverified:
        lines.append(
            f"not verified against a dated price page (earlier values kept): {', '.join(unverified)}"
        )
    lines += [f"warning: {w}" for w in est.warnings]
    return Report(
        title="Monthly cost (estimate)",
        lines=lines,
        files={"cost.json": json.dumps(est.as_dict(pricing), indent=2) + "\n"},
    )
