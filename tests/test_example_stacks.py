"""The example stacks: prod on Karpenter, dev on EKS Auto Mode and dev on ingress-nginx, planned like the
committed ones."""

from __future__ import annotations

import pytest

from aiplatform.cluster import AUTO_MODE_ADDONS
from aiplatform.plan.compute_report import compute_report
from aiplatform.plan.cost import estimate, load_pricing
from aiplatform.plan.critical_path import critical_path, slow_gpu_weights
from aiplatform.plan.model import Plan, manifests
from aiplatform.plan.policy_report import evaluate_stack
from aiplatform.scheduling import Taint, toleration_from_dict, untolerated
from tests.program import planned
from tests.stacks import EXAMPLE_STACKS, POOL_STACKS

KARPENTER, AUTO = "prod-karpenter", "dev-auto-mode"
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"


def of_type(stack, typ):
    return [r for r in planned(stack).registrations if r.type == typ]


def named(stack, name):
    (found,) = [r for r in planned(stack).registrations if r.name == name]
    return found


def charts(stack):
    return sorted(r.inputs["chart"] for r in of_type(stack, RELEASE))


def pools(stack):
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in of_type(stack, NODE_POOL)}


# -- Karpenter ------------------------------------------------------------------------------------


def test_karpenter_replaces_the_gpu_groups_and_the_autoscaler():
    assert charts(KARPENTER) == [
        "aws-load-balancer-controller",
        "dcgm-exporter",
        "external-secrets",
        "kube-prometheus-stack",
        "nvidia-device-plugin",
        "oci://public.ecr.aws/karpenter/karpenter",
        "prometheus-adapter",
    ]
    assert [r.name for r in of_type(KARPENTER, "aws:eks/nodeGroup:NodeGroup")] == ["aiplatform-nodes-system"]
    release = named(KARPENTER, "aiplatform-karpenter-chart").inputs
    assert (release["version"], release["namespace"]) == ("1.14.1", "kube-system")
    assert release["values"]["settings"]["clusterName"] == "ai-prod"


@pytest.mark.parametrize(
    ("stack", "pools"),
    [
        (
            KARPENTER,
            {"llama-inference-deployment": "gpu-inference", "hyperparameter-sweep-job": "gpu-training-spot"},
        ),
        (AUTO, {"llama-inference-deployment": "gpu-inference", "hyperparameter-sweep-job": "gpu-training"}),
    ],
)
def test_gpu_workloads_depend_on_their_node_pool(stack, pools):
    """Created after it and, on destroy, deleted before it: a NodePool deleted first has Karpenter drain
    the workloads' nodes, which their PodDisruptionBudgets refuse while the workloads stay."""
    node_pools = {r.inputs["metadata"]["name"]: r.urn for r in of_type(stack, NODE_POOL)}
    for workload, pool in pools.items():
        assert node_pools[pool] in named(stack, workload).dependencies, workload


def test_karpenter_has_its_role_queue_rules_node_classes_and_one_pool_per_configured_pool():
    association = named(KARPENTER, "aiplatform-karpenter-controller-association").inputs
    assert (association["namespace"], association["serviceAccount"]) == ("kube-system", "karpenter")
    assert len(of_type(KARPENTER, "aws:sqs/queue:Queue")) == 1
    assert sorted(r.name for r in of_type(KARPENTER, "aws:cloudwatch/eventRule:EventRule")) == [
        "aiplatform-karpenter-capacity-reservation-interruption",
        "aiplatform-karpenter-instance-state-change",
        "aiplatform-karpenter-rebalance",
        "aiplatform-karpenter-scheduled-change",
        "aiplatform-karpenter-spot-interruption",
    ]
    classes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in of_type(KARPENTER, "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    }
    assert sorted(classes) == ["gpu", "gpu-reserved"]
    assert {c["amiSelectorTerms"][0]["alias"] for c in classes.values()} == {"al2023@v20260714"}
    assert classes["gpu-reserved"]["capacityReservationSelectorTerms"] == [
        {"tags": {"purpose": "llm-finetune"}}
    ]
    assert classes["gpu"]["blockDeviceMappings"][0]["ebs"]["volumeSize"] == "300Gi"
    assert sorted(pools(KARPENTER)) == ["gpu-inference", "gpu-reserved", "gpu-training-spot"]


def test_the_pools_are_written_as_configured():
    found = pools(KARPENTER)
    inference = found["gpu-inference"]
    assert inference["limits"] == {"cpu": "80", "nvidia.com/gpu": "10"}
    assert inference["disruption"] == {
        "consolidationPolicy": "WhenEmpty",
        "consolidateAfter": "30m",
        "budgets": [{"nodes": "1"}, {"nodes": "0", "schedule": "0 13 * * 1-5", "duration": "10h"}],
    }
    training = found["gpu-training-spot"]["template"]["spec"]
    assert training["requirements"][-2:] == [
        {
            "key": "node.kubernetes.io/instance-type",
            "operator": "In",
            "values": [
                "g6e.xlarge",
                "g6e.2xlarge",
                "g6e.4xlarge",
                "g6e.12xlarge",
                "g6e.24xlarge",
                "g6e.48xlarge",
            ],
        },
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
    ]
    assert training["taints"] == [
        {"key": "nvidia.com/gpu", "effect": "NoSchedule", "value": "true"},
        {"key": "aiplatform.io/spot", "effect": "NoSchedule", "value": "true"},
    ]
    reserved = found["gpu-reserved"]
    assert reserved["template"]["spec"]["requirements"][-1]["values"] == ["reserved", "on-demand"]
    assert reserved["disruption"]["budgets"] == [{"nodes": "0"}]


def test_the_nodes_find_their_subnets_and_security_group_by_the_discovery_tag():
    private = [
        s.inputs["tags"]
        for s in of_type(KARPENTER, "aws:ec2/subnet:Subnet")
        if s.inputs["tags"].get("kubernetes.io/role/internal-elb") == "1"
    ]
    assert len(private) == 3 and all(t["karpenter.sh/discovery"] == "ai-prod" for t in private)
    public = [
        s
        for s in of_type(KARPENTER, "aws:ec2/subnet:Subnet")
        if "karpenter.sh/discovery" not in s.inputs["tags"]
    ]
    assert len(public) == 3
    tag = named(KARPENTER, "aiplatform-karpenter-discovery-sg").inputs
    assert (tag["key"], tag["value"]) == ("karpenter.sh/discovery", "ai-prod")


# -- EKS Auto Mode --------------------------------------------------------------------------------


def test_auto_mode_enables_the_compute_config_and_installs_nothing_it_runs_itself():
    cluster = named(AUTO, "aiplatform-cluster-cluster").inputs
    assert cluster["computeConfig"] == {"enabled": True, "nodePools": []}
    assert cluster["storageConfig"] == {"blockStorage": {"enabled": True}}
    addons = {r.inputs["addonName"] for r in of_type(AUTO, "aws:eks/addon:Addon")}
    assert addons == {"metrics-server", "aws-efs-csi-driver"}
    assert not addons & set(AUTO_MODE_ADDONS)
    assert charts(AUTO) == [
        "dcgm-exporter",
        "external-secrets",
        "kube-prometheus-stack",
        "prometheus-adapter",
    ]
    assert of_type(AUTO, "aws:eks/nodeGroup:NodeGroup") == []
    ingress_class = named(AUTO, "aiplatform-ingress-class").inputs
    assert ingress_class["spec"]["controller"] == "eks.amazonaws.com/alb"


def test_auto_mode_has_its_node_classes_and_pools():
    classes = {
        r.inputs["metadata"]["name"]: r.inputs["spec"]
        for r in of_type(AUTO, "kubernetes:eks.amazonaws.com/v1:NodeClass")
    }
    assert sorted(classes) == ["gpu", "system"]
    assert classes["gpu"]["ephemeralStorage"] == {"size": "200Gi"}
    assert sorted(pools(AUTO)) == ["gpu-inference", "gpu-training", "system"]
    system = pools(AUTO)["system"]
    assert system["limits"] == {"cpu": "6", "memory": "24Gi"}
    assert system["template"]["metadata"]["labels"] == {
        "aiplatform.io/node-role": "system",
        "aiplatform.io/node-group": "system",
        "aiplatform.io/capacity-type": "on-demand",
    }


def test_the_plan_shows_the_compute_config_and_says_what_auto_mode_runs_itself(tmp_path):
    plan = Plan(stack=AUTO, out_dir=tmp_path, run=planned(AUTO))
    lines = compute_report(plan).lines
    assert lines[:2] == [
        "provisioner: auto-mode",
        "EKS Auto Mode compute config: enabled True; built-in pools: none",
    ]
    assert (
        "NodePool gpu-training -> gpu: g5.2xlarge, g6.2xlarge; spot/on-demand; limits cpu 16, nvidia.com/gpu 2"
        in lines
    )
    at = lines.index("run by EKS Auto Mode itself, so not installed by the program:")
    assert lines[at + 1 :] == [
        "  VPC CNI (vpc-cni add-on)",
        "  kube-proxy (add-on)",
        "  CoreDNS (add-on)",
        "  EBS CSI driver (aws-ebs-csi-driver add-on)",
        "  EKS Pod Identity agent (add-on)",
        "  NVIDIA device plugin (chart nvidia-device-plugin)",
        "  AWS Load Balancer Controller (chart aws-load-balancer-controller)",
        "  node autoscaling (chart cluster-autoscaler; Karpenter)",
    ]


# -- both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "workload", "pool", "taints"),
    [
        (KARPENTER, "llama-inference", "gpu-inference", []),
        (KARPENTER, "hyperparameter-sweep", "gpu-training-spot", ["aiplatform.io/spot"]),
        (AUTO, "llama-inference", "gpu-inference", []),
        (AUTO, "hyperparameter-sweep", "gpu-training", []),
    ],
)
def test_gpu_workloads_land_on_their_pool_and_tolerate_its_taints(stack, workload, pool, taints):
    documents = {(d["kind"], d["metadata"]["name"]): d for d in manifests(planned(stack).registrations)}
    kind = "Deployment" if workload == "llama-inference" else "Job"
    spec = documents[(kind, workload)]["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"aiplatform.io/gpu-pool": pool}
    assert sorted(t["key"] for t in spec["tolerations"]) == sorted(["nvidia.com/gpu", *taints])
    pool_taints = {t["key"] for t in pools(stack)[pool]["template"]["spec"]["taints"]}
    assert pool_taints == {"nvidia.com/gpu", *taints}


@pytest.mark.parametrize("stack", POOL_STACKS)
def test_the_gpu_daemons_tolerate_every_pool_taint(stack):
    taints = {
        (t["key"], t.get("value"), t["effect"])
        for spec in pools(stack).values()
        for t in spec["template"]["spec"].get("taints", [])
    }
    for release in of_type(stack, RELEASE):
        if release.inputs["chart"] in ("nvidia-device-plugin", "dcgm-exporter"):
            tolerated = {
                (t["key"], t.get("value"), t["effect"]) for t in release.inputs["values"]["tolerations"]
            }
            assert taints <= tolerated, release.inputs["chart"]
    exporter = next(r for r in of_type(stack, RELEASE) if r.inputs["chart"] == "kube-prometheus-stack")
    node_exporter = [
        toleration_from_dict(t) for t in exporter.inputs["values"]["prometheus-node-exporter"]["tolerations"]
    ]
    assert untolerated([Taint(*t) for t in taints], node_exporter) == ()


@pytest.mark.parametrize("stack", EXAMPLE_STACKS)
def test_the_example_stacks_pass_every_policy(stack):
    violations = evaluate_stack(stack, planned(stack).registrations)
    assert violations == []


def test_the_cost_of_the_karpenter_stack_idles_at_what_always_runs_and_peaks_at_the_pool_limits():
    est = estimate(planned(KARPENTER).registrations, load_pricing())
    pools_cost = {i.item: (i.idle, i.peak, i.quantity_peak) for i in est.items if "pool" in i.item}
    # llama-inference always runs 2 replicas of one GPU each: 2 nodes of the inference pool; the
    # training pools run Jobs only, so they idle at zero, but the reserved pool's one reserved
    # p4d.24xlarge is billed whether used (its pool's own line starts beyond it).
    assert pools_cost == {
        "EC2 Karpenter pool gpu-inference (g5.2xlarge)": (
            round(2 * 1.212 * 730, 2),
            round(10 * 1.212 * 730, 2),
            10,
        ),
        "EBS gp3 disks pool gpu-inference (300 GiB/node)": (2 * 300 * 0.08, 10 * 300 * 0.08, 10),
        "EC2 Karpenter pool gpu-training-spot (g6e.12xlarge)": (0, round(4 * 10.49264 * 730, 2), 4),
        "EBS gp3 disks pool gpu-training-spot (300 GiB/node)": (0, 4 * 300 * 0.08, 4),
        "EC2 Karpenter pool gpu-reserved (p4d.24xlarge)": (0, round(21.957642 * 730, 2), 1),
        "EC2 capacity reservations pool gpu-reserved (p4d.24xlarge)": (
            round(21.957642 * 730, 2),
            round(21.957642 * 730, 2),
            1,
        ),
        "EBS gp3 disks pool gpu-reserved (300 GiB/node)": (0, 2 * 300 * 0.08, 2),
    }
    assert (est.gpus_idle, est.gpus_peak) == (2 + 8, 10 + 16 + 16)
    assert est.warnings == []


def test_outputs_place_team_workloads_on_the_pools():
    groups = planned(KARPENTER).outputs["nodeGroups"]
    assert sorted(groups) == ["gpu-inference", "gpu-reserved", "gpu-training-spot", "system"]
    assert groups["gpu-training-spot"]["nodeSelector"] == {"aiplatform.io/gpu-pool": "gpu-training-spot"}
    assert groups["gpu-training-spot"]["gpusPerNode"] == 8
    compute = planned(KARPENTER).outputs["compute"]
    assert compute["provisioner"] == "karpenter"
    assert compute["pools"]["gpu-reserved"] == {
        "instanceTypes": ["p4d.24xlarge"],
        "capacityTypes": ["reserved", "on-demand"],
        "limits": {"gpus": 16, "cpu": 192},
    }


@pytest.mark.parametrize("stack", POOL_STACKS)
def test_no_gpu_node_group_to_wait_for_on_the_first_deploy(stack):
    """Slow GPU capacity delays prod's first deploy (its inference group starts 2 nodes); pools start
    nodes only for pending pods, so nothing in the deploy waits for them."""
    registrations = planned(stack).registrations
    groups = of_type(stack, "aws:eks/nodeGroup:NodeGroup")
    assert all("NVIDIA" not in g.inputs["amiType"] for g in groups)
    slow = critical_path(registrations, weights=slow_gpu_weights(registrations)).total_minutes
    assert slow == critical_path(registrations).total_minutes
    prod = planned("prod").registrations
    assert (
        critical_path(prod, weights=slow_gpu_weights(prod)).total_minutes > critical_path(prod).total_minutes
    )


def test_the_karpenter_plan_lists_its_node_classes_and_pools(tmp_path):
    lines = compute_report(Plan(stack=KARPENTER, out_dir=tmp_path, run=planned(KARPENTER))).lines
    assert lines == [
        "provisioner: karpenter",
        "NodeGroup system (system): m6i.xlarge; ON_DEMAND; 3-6 nodes (desired 3)",
        "EC2NodeClass gpu",
        "EC2NodeClass gpu-reserved",
        "NodePool gpu-inference -> gpu: g5.2xlarge, g6.2xlarge; on-demand; limits cpu 80, nvidia.com/gpu 10",
        "NodePool gpu-reserved -> gpu-reserved: p4d.24xlarge; reserved/on-demand; limits cpu 192, nvidia.com/gpu "
        "16; reserved p4d.24xlarge x 1",
        "NodePool gpu-training-spot -> gpu: g6e.xlarge, g6e.2xlarge, g6e.4xlarge, g6e.12xlarge, g6e.24xlarge, "
        "g6e.48xlarge; spot/on-demand; limits cpu 192, nvidia.com/gpu 16",
    ]
