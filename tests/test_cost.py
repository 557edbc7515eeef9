"""Cost arithmetic on hand-built registrations, against hand-computed values."""

from __future__ import annotations

import json
from datetime import date

import pytest

from aiplatform.plan.cloud import short_hash
from aiplatform.plan.cost import cost_report, estimate, gib, load_pricing
from aiplatform.plan.mock_engine import Registration

PRICING = {
    "as_of": "2025-06-01",
    "region": "us-east-1",
    "hours_per_month": 730,
    "eks_control_plane_hour": 0.10,
    "ec2_on_demand_hour": {"m6i.xlarge": 0.192, "g5.2xlarge": 1.212},
    "spot_discount": 0.65,
    "nat_gateway_hour": 0.045,
    "nat_gateway_per_gb": 0.045,
    "public_ipv4_hour": 0.005,
    "alb_hour": 0.0225,
    "alb_lcu_hour": 0.008,
    "nlb_hour": 0.0225,
    "nlb_lcu_hour": 0.006,
    "ebs_gp3_gb_month": 0.08,
    "kms_key_month": 1.0,
    "secretsmanager_secret_month": 0.40,
    "s3_standard_gb_month": 0.023,
    "efs_standard_gb_month": 0.30,
    "assumptions": {"nat_gb_per_gateway_month": 100, "load_balancer_lcus": 1, "s3_gb": 100, "efs_gb": 100},
}


def reg(typ: str, name: str, **inputs) -> Registration:
    return Registration(
        urn=f"urn:pulumi:t::p::{typ}::{name}",
        type=typ,
        name=name,
        parent="",
        custom=True,
        provider="",
        dependencies=[],
        inputs=inputs,
        protect=False,
        retain_on_delete=False,
        ignore_changes=[],
        delete_before_replace=False,
    )


def ingress(name: str, group: str | None) -> Registration:
    annotations = {"alb.ingress.kubernetes.io/scheme": "internet-facing"}
    if group:
        annotations["alb.ingress.kubernetes.io/group.name"] = group
    return reg(
        "kubernetes:networking.k8s.io/v1:Ingress",
        name,
        metadata={"name": name, "annotations": annotations},
        spec={"ingressClassName": "alb"},
    )


LT = "aws:ec2/launchTemplate:LaunchTemplate"
REGISTRATIONS = [
    reg("aws:eks/cluster:Cluster", "cluster"),
    reg(LT, "sys-lt", blockDeviceMappings=[{"ebs": {"volumeSize": 100, "volumeType": "gp3"}}]),
    reg(
        "aws:eks/nodeGroup:NodeGroup",
        "sys",
        instanceTypes=["m6i.xlarge"],
        capacityType="ON_DEMAND",
        scalingConfig={"minSize": 2, "desiredSize": 2, "maxSize": 3},
        launchTemplate={"id": f"lt-{short_hash(LT, 'sys-lt', length=17)}", "version": "1"},
    ),
    reg(
        "aws:eks/nodeGroup:NodeGroup",
        "gpu",
        instanceTypes=["g5.2xlarge", "g6.2xlarge"],
        capacityType="SPOT",
        amiType="AL2023_x86_64_NVIDIA",
        scalingConfig={"minSize": 0, "desiredSize": 0, "maxSize": 2},
        diskSize=50,
    ),
    reg("aws:ec2/natGateway:NatGateway", "nat"),
    reg("aws:ec2/eip:Eip", "nat-ip"),
    ingress("a", "shared"),
    ingress("b", "shared"),
    ingress("c", None),
    reg("aws:kms/key:Key", "key-1"),
    reg("aws:kms/key:Key", "key-2"),
    reg("aws:secretsmanager/secret:Secret", "secret"),
    reg(
        "kubernetes:core/v1:PersistentVolumeClaim",
        "pvc",
        spec={"storageClassName": "gp3", "resources": {"requests": {"storage": "20Gi"}}},
    ),
    reg("aws:s3/bucket:Bucket", "bucket"),
    reg("aws:efs/fileSystem:FileSystem", "fs"),
]


def by_item(est):
    return {i.item.split(" (")[0]: (i.idle, i.peak) for i in est.items}


def test_line_items_match_hand_computed_values():
    items = by_item(estimate(REGISTRATIONS, PRICING))
    assert items["EKS control plane"] == (73.00, 73.00)  # 0.10 x 730
    assert items["EC2 sys"] == (280.32, 420.48)  # 2 x 0.192 x 730, 3 x 0.192 x 730
    assert items["EBS gp3 root disks sys"] == (16.00, 24.00)  # 2 x 100 x 0.08, 3 x 100 x 0.08
    assert items["EC2 gpu"] == (0.00, 619.33)  # SPOT at its first type: 2 x 1.212 x 0.35 x 730 = 619.332
    assert items["EBS gp3 root disks gpu"] == (0.00, 8.00)  # 2 x 50 x 0.08
    assert items["NAT gateways"] == (32.85, 32.85)  # 0.045 x 730
    assert items["NAT data processing"] == (4.50, 4.50)  # 100 GB x 0.045
    assert items["Public IPv4 addresses"] == (3.65, 3.65)  # 0.005 x 730
    assert items["Application Load Balancers"] == (44.53, 44.53)  # 2 x (0.0225 + 0.008) x 730 = 44.53
    assert items["EBS gp3 volumes"] == (1.60, 1.60)  # 20 x 0.08
    assert items["KMS keys"] == (2.00, 2.00)
    assert items["Secrets Manager secrets"] == (0.40, 0.40)
    assert items["S3 Standard"] == (2.30, 2.30)  # 100 GB x 0.023
    assert items["EFS Standard"] == (30.00, 30.00)  # 100 GB x 0.30


def test_totals():
    est = estimate(REGISTRATIONS, PRICING)
    # 73 + 280.32 + 16 + 32.85 + 4.50 + 3.65 + 44.53 + 1.60 + 2 + 0.40 + 2.30 + 30
    assert est.idle == pytest.approx(491.15)
    # 73 + 420.48 + 24 + 619.33 + 8 + 32.85 + 4.50 + 3.65 + 44.53 + 1.60 + 2 + 0.40 + 2.30 + 30
    assert est.peak == pytest.approx(1266.64)


def test_gpus_per_node_come_from_the_instance_table():
    est = estimate(REGISTRATIONS, PRICING)
    (gpu,) = [i for i in est.items if i.item.startswith("EC2 gpu")]
    assert (
        gpu.note
        == "SPOT (on-demand x 0.35, assumed); priced as g5.2xlarge of g5.2xlarge, g6.2xlarge; 1 x NVIDIA A10G per node"
    )
    assert (est.gpus_idle, est.gpus_peak) == (0, 2)  # the system group has none; the GPU group 0..2 x 1
    assert est.as_dict(PRICING)["gpus"] == {"idle": 0, "peak": 2}


def test_unknown_instance_type_warns_and_counts_zero():
    group = reg(
        "aws:eks/nodeGroup:NodeGroup",
        "odd",
        instanceTypes=["x9.huge"],
        scalingConfig={"minSize": 1, "maxSize": 1},
    )
    est = estimate([group], PRICING)
    assert est.idle == pytest.approx(1.60)  # only the default 20 GiB disk: 20 x 0.08
    assert any("x9.huge" in w for w in est.warnings)


def test_quantities():
    assert gib("20Gi") == 20
    assert gib("5Ti") == 5120
    assert gib("512Mi") == 0.5


def test_repo_price_table_is_dated_and_sourced():
    pricing = load_pricing()
    assert pricing["as_of"] and pricing["source"] and pricing["region"] == "us-east-1"
    assert pricing["hours_per_month"] == 730


class FakePlan:
    registrations = REGISTRATIONS
    stack_outputs: dict = {}

    def __init__(self, today: date):
        self.today = today


def test_report_writes_cost_json(tmp_path):
    as_of = date.fromisoformat(load_pricing()["as_of"])
    report = cost_report(FakePlan(as_of))
    data = json.loads(report.files["cost.json"])
    assert data["estimate"] is True and data["prices_as_of"] == as_of.isoformat()
    assert data["idle_monthly"] <= data["peak_monthly"]
    assert data["prices_unverified"] == [
        "spot_discount",
        "eks_auto_mode_fee_fraction",
        "ebs_gp3_gb_month",
        "s3_standard_gb_month",
    ]
    assert "TOTAL" in report.render()
    assert not [w for w in data["warnings"] if "prices are as of" in w]


def test_the_report_warns_when_the_table_is_older_than_six_months():
    as_of = load_pricing()["as_of"]
    report = cost_report(FakePlan(date(2027, 12, 1)))
    stale = [line for line in report.lines if line.startswith("warning: prices are as of")]
    assert len(stale) == 1
    assert stale[0].startswith(f"warning: prices are as of {as_of}, more than 6 months before 2027-12-01; ")
    # A year on, every verified line's evidence is too old, the oldest named first.
    assert f"older than that: public_ipv4_hour ({as_of})" in stale[0]
    assert stale[0].endswith(
        "refresh components/plan/pricing.json as README.md, section 'Pricing', describes"
    )
    assert json.loads(report.files["cost.json"])["warnings"][0] == stale[0].removeprefix("warning: ")


# -- node pools -----------------------------------------------------------------------------------

POOL_PRICING = {
    **PRICING,
    "ec2_on_demand_hour": {"g6e.12xlarge": 10.4926, "g5.12xlarge": 5.672, "m6i.large": 0.096},
    "eks_auto_mode_fee_fraction": 0.12,
}


def node_pool(name: str, types: list[str], capacity: list[str], limits: dict, group: str, annotations=None):
    metadata = {"name": name, **({"annotations": annotations} if annotations else {})}
    kind = "EC2NodeClass" if group == "karpenter.k8s.aws" else "NodeClass"
    return reg(
        "kubernetes:karpenter.sh/v1:NodePool",
        name,
        apiVersion="karpenter.sh/v1",
        kind="NodePool",
        metadata=metadata,
        spec={
            "template": {
                "spec": {
                    "nodeClassRef": {"group": group, "kind": kind, "name": "gpu"},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity},
                    ],
                }
            },
            "limits": limits,
        },
    )


def test_a_pool_is_idle_at_zero_and_peaks_at_what_its_limits_buy_of_its_dearest_type():
    node_class = reg(
        "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
        "gpu",
        apiVersion="karpenter.k8s.aws/v1",
        metadata={"name": "gpu"},
        spec={"blockDeviceMappings": [{"ebs": {"volumeSize": "500Gi"}}]},
    )
    # 16 GPUs and 192 vCPUs: 4 x g6e.12xlarge (4 GPUs, 48 vCPUs each) costs more than 4 x g5.12xlarge.
    pool = node_pool(
        "training",
        ["g5.12xlarge", "g6e.12xlarge"],
        ["spot", "on-demand"],
        {"cpu": "192", "nvidia.com/gpu": "16"},
        "karpenter.k8s.aws",
    )
    est = estimate([node_class, pool], POOL_PRICING)
    ec2, disks = est.items
    assert (ec2.item, ec2.quantity_idle, ec2.quantity_peak) == (
        "EC2 Karpenter pool training (g6e.12xlarge)",
        0,
        4,
    )
    assert ec2.unit_price == pytest.approx(10.4926 * 730)  # on-demand: the fallback may run
    assert ec2.peak == round(4 * 10.4926 * 730, 2) and ec2.idle == 0
    assert (disks.quantity_peak, disks.unit_price) == (4, 500 * 0.08)


def test_the_tighter_limit_decides_and_spot_only_pools_get_the_spot_discount():
    # 100 GPUs would buy 25 nodes, 96 vCPUs only 2.
    pool = node_pool(
        "spot", ["g6e.12xlarge"], ["spot"], {"cpu": "96", "nvidia.com/gpu": "100"}, "karpenter.k8s.aws"
    )
    (ec2,) = estimate([pool], POOL_PRICING).items
    assert ec2.quantity_peak == 2
    assert ec2.unit_price == pytest.approx(10.4926 * 0.35 * 730)


def test_auto_mode_pools_add_the_management_fee_and_the_system_pool_idles_at_its_floor():
    pool = node_pool(
        "system",
        ["m6i.large"],
        ["on-demand"],
        {"cpu": "8", "memory": "32Gi"},
        "eks.amazonaws.com",
        {"aiplatform.io/idle-nodes": "2"},
    )
    (ec2,) = estimate([pool], POOL_PRICING).items
    assert (ec2.quantity_idle, ec2.quantity_peak) == (2, 4)
    assert ec2.unit_price == pytest.approx(0.096 * 1.12 * 730)


def test_capacity_reservations_are_billed_whether_instances_run_in_them_or_not():
    """One g6e.12xlarge reserved: billed idle and peak on its own line; the pool's own line starts
    at the nodes beyond it; the GPUs count it."""
    pool = node_pool(
        "reserved",
        ["g6e.12xlarge"],
        ["reserved", "on-demand"],
        {"cpu": "96", "nvidia.com/gpu": "8"},
        "karpenter.k8s.aws",
        {"aiplatform.io/reserved-instances": "g6e.12xlarge=1"},
    )
    est = estimate([pool], POOL_PRICING)
    ec2, reservation = est.items
    assert (ec2.item, ec2.quantity_idle, ec2.quantity_peak) == (
        "EC2 Karpenter pool reserved (g6e.12xlarge)",
        0,
        1,
    )
    assert "1 of them in the reservations" in ec2.note
    assert (reservation.item, reservation.quantity_idle, reservation.quantity_peak) == (
        "EC2 capacity reservations pool reserved (g6e.12xlarge)",
        1,
        1,
    )
    assert reservation.idle == round(10.4926 * 730, 2)
    assert est.idle == reservation.idle and est.peak == round(2 * 10.4926 * 730, 2)
    assert (est.gpus_idle, est.gpus_peak) == (4, 8)


def test_the_karpenter_example_pays_its_reservation_when_idle():
    from tests.program import planned

    pricing = load_pricing()
    est = estimate(planned("prod-karpenter").registrations, pricing)
    items = {i.item: i for i in est.items}
    reservation = items["EC2 capacity reservations pool gpu-reserved (p4d.24xlarge)"]
    assert (reservation.quantity_idle, reservation.quantity_peak) == (1, 1)
    assert reservation.idle == round(pricing["ec2_on_demand_hour"]["p4d.24xlarge"] * 730, 2)
    pool = items["EC2 Karpenter pool gpu-reserved (p4d.24xlarge)"]
    assert (pool.quantity_idle, pool.quantity_peak) == (0, 1)  # its limits buy 2: one is the reservation


# -- idle: what always runs there -------------------------------------------------------------------
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}


def deployment(name: str, replicas: int, selector: dict, gpus: int = 1) -> Registration:
    resources = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"nvidia.com/gpu": str(gpus)}}
    return reg(
        "kubernetes:apps/v1:Deployment",
        name,
        metadata={"name": name, "namespace": "ml"},
        spec={
            "replicas": replicas,
            "template": {
                "spec": {
                    "nodeSelector": selector,
                    "tolerations": [GPU_TOLERATION],
                    "containers": [{"name": "server", "resources": resources}],
                }
            },
        },
    )


def gpu_group(min_size: int) -> Registration:
    return reg(
        "aws:eks/nodeGroup:NodeGroup",
        "gpu",
        instanceTypes=["g5.2xlarge"],
        capacityType="ON_DEMAND",
        labels={"aiplatform.io/node-group": "gpu", "aiplatform.io/node-role": "gpu"},
        taints=[GPU_TAINT],
        scalingConfig={"minSize": min_size, "desiredSize": min_size, "maxSize": 4},
        diskSize=50,
    )


def test_a_group_that_may_scale_to_zero_idles_at_the_nodes_its_always_running_pods_need():
    # 2 replicas of 1 CPU / 2 GiB fit one g5.2xlarge, but each takes its one GPU: 2 nodes.
    server = deployment("server", 2, {"aiplatform.io/node-group": "gpu"})
    est = estimate([REGISTRATIONS[2], gpu_group(0), server], PRICING)
    ec2 = next(i for i in est.items if i.item == "EC2 gpu (g5.2xlarge)")
    disks = next(i for i in est.items if i.item.startswith("EBS gp3 root disks gpu "))
    assert (ec2.quantity_idle, ec2.quantity_peak) == (2, 4)
    assert ec2.idle == round(2 * 1.212 * 730, 2)
    assert "idle: 2 nodes for what always runs there (server x 2), minimum 0" in ec2.note
    assert (disks.quantity_idle, disks.idle) == (2, 2 * 50 * 0.08)
    assert (est.gpus_idle, est.gpus_peak) == (2, 4)


def test_a_group_whose_minimum_holds_what_always_runs_idles_at_its_minimum():
    server = deployment("server", 2, {"aiplatform.io/node-group": "gpu"})
    est = estimate([REGISTRATIONS[2], gpu_group(3), server], PRICING)
    ec2 = next(i for i in est.items if i.item == "EC2 gpu (g5.2xlarge)")
    assert ec2.quantity_idle == 3 and "idle:" not in ec2.note
    # A Deployment scaled to zero keeps nothing running.
    est = estimate(
        [REGISTRATIONS[2], gpu_group(0), deployment("server", 0, {"aiplatform.io/node-group": "gpu"})],
        PRICING,
    )
    assert next(i for i in est.items if i.item == "EC2 gpu (g5.2xlarge)").quantity_idle == 0


def test_a_pool_idles_at_the_nodes_its_always_running_pods_need():
    pool = node_pool(
        "inference", ["g5.12xlarge"], ["on-demand"], {"nvidia.com/gpu": "16"}, "karpenter.k8s.aws"
    )
    template = pool.inputs["spec"]["template"]
    template["metadata"] = {
        "labels": {"aiplatform.io/gpu-pool": "inference", "aiplatform.io/node-role": "gpu"}
    }
    template["spec"]["taints"] = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    # 6 replicas of one GPU each on 4-GPU g5.12xlarge nodes: 2 nodes.
    server = deployment("server", 6, {"aiplatform.io/gpu-pool": "inference"})
    est = estimate([REGISTRATIONS[2], pool, server], POOL_PRICING)
    ec2 = next(i for i in est.items if i.item.startswith("EC2 Karpenter pool inference"))
    assert (ec2.quantity_idle, ec2.quantity_peak) == (2, 4)
    assert ec2.idle == round(2 * 5.672 * 730, 2)
    assert "idle: 2 nodes for what always runs there (server x 6), minimum 0" in ec2.note


def test_the_dev_stack_idles_with_its_inference_nodes():
    from tests.program import planned

    est = estimate(planned("dev").registrations, load_pricing())
    inference = next(i for i in est.items if i.item.startswith("EC2 aiplatform-nodes-gpu-inference"))
    # llama-inference keeps 2 replicas (the HPA's minReplicas), one GPU each, on 1-GPU g5.xlarge nodes.
    assert (inference.quantity_idle, inference.quantity_peak) == (2, 3)
    assert "llama-inference x 2" in inference.note
    assert est.gpus_idle == 2


def test_ingresses_in_the_platform_alb_group_share_its_load_balancer_and_others_add_one():
    def ingress(name: str, group: str | None) -> Registration:
        annotations = {"alb.ingress.kubernetes.io/group.name": group} if group else {}
        return reg(
            "kubernetes:networking.k8s.io/v1:Ingress",
            name,
            metadata={"name": name, "annotations": annotations},
            spec={"ingressClassName": "alb"},
        )

    registrations = [ingress("joins", "aiplatform"), ingress("own-group", "team-a"), ingress("alone", None)]
    est = estimate(registrations, PRICING, shared_albs=({"aiplatform"}, set()))
    items = {i.item: i for i in est.items}
    assert items["Application Load Balancers"].quantity_idle == 2  # team-a's group and the ungrouped one
    shared = items["Application Load Balancers: the platform's, shared"]
    assert (shared.quantity_idle, shared.idle) == (0, 0) and "(aiplatform)" in shared.note
    assert "Application Load Balancers: the platform's, shared" not in {
        i.item for i in estimate(registrations, PRICING).items
    }
    # EKS Auto Mode groups the platform's routes by IngressClass: an Ingress of that class shares it.
    auto = estimate([ingress("joins", None)], PRICING, shared_albs=(set(), {"alb"}))
    assert [i.item for i in auto.items] == ["Application Load Balancers: the platform's, shared"]
