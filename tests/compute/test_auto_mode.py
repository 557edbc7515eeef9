"""EKS Auto Mode: the cluster's compute config, roles and access entry, and the node classes and
pools of the platform, as registered."""

from __future__ import annotations

import json

import pulumi_kubernetes as k8s

from aiplatform.cluster import EksCluster
from aiplatform.compute.auto_mode import (
    AutoModeCompute,
    AutoModeComputeArgs,
    SystemPoolSpec,
    system_node_pool_spec,
)
from tests.compute.test_karpenter import RESERVED
from tests.compute.test_pools import training_pool
from tests.conftest import resolve
from tests.test_cluster import VERSIONS, make_args

AUTO_ADDONS = {"metrics-server": VERSIONS["metrics-server"]}


def auto_cluster(**changes):
    return lambda: EksCluster("ai", make_args(auto_mode=True, addon_versions=AUTO_ADDONS, **changes))


def test_the_cluster_enables_compute_storage_and_load_balancing_together(build, monitor):
    build(auto_cluster())
    inputs = monitor.named("ai-cluster").inputs
    assert inputs["computeConfig"] == {"enabled": True, "nodePools": []}
    assert inputs["kubernetesNetworkConfig"] == {"elasticLoadBalancing": {"enabled": True}}
    assert inputs["storageConfig"] == {"blockStorage": {"enabled": True}}
    assert inputs["bootstrapSelfManagedAddons"] is False


def test_the_cluster_role_may_tag_sessions_and_runs_the_auto_mode_capabilities(build, monitor):
    build(auto_cluster())
    trust = json.loads(monitor.named("ai-cluster-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    attached = sorted(
        r.inputs["policyArn"]
        for r in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("ai-cluster-")
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEKSBlockStoragePolicy",
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
        "arn:aws:iam::aws:policy/AmazonEKSComputePolicy",
        "arn:aws:iam::aws:policy/AmazonEKSLoadBalancingPolicy",
        "arn:aws:iam::aws:policy/AmazonEKSNetworkingPolicy",
    ]
    # Auto Mode's block storage encrypts volumes with the platform's key, through the cluster role.
    volumes = json.loads(monitor.named("ai-cluster-volumes-key").inputs["policy"])
    assert "kms:CreateGrant" in volumes["Statement"][1]["Action"]


def test_without_the_built_in_pool_the_program_gives_the_nodes_their_access_entry(build, monitor):
    cluster = build(auto_cluster())
    node_role = resolve(cluster.auto_node_role.arn)
    entry = monitor.named("ai-auto-nodes").inputs
    assert (entry["principalArn"], entry["type"]) == (node_role, "EC2")
    association = monitor.named("ai-auto-nodes-policy").inputs
    assert association["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAutoNodePolicy"
    assert association["accessScope"] == {"type": "cluster"}
    attached = sorted(
        r.inputs["policyArn"]
        for r in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("ai-auto-node-")
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodeMinimalPolicy",
    ]


def test_with_the_built_in_system_pool_eks_makes_the_access_entry(build, monitor):
    cluster = build(auto_cluster(auto_mode_system_pool=True))
    assert monitor.named("ai-cluster").inputs["computeConfig"] == {
        "enabled": True,
        "nodePools": ["system"],
        "nodeRoleArn": resolve(cluster.auto_node_role.arn),
    }
    assert [r.name for r in monitor.of_type("aws:eks/accessEntry:AccessEntry")] == ["ai-admin-platformadmin"]


def test_no_add_on_auto_mode_runs_itself_and_volumes_come_from_its_storage(build, monitor):
    build(auto_cluster())
    assert [r.inputs["addonName"] for r in monitor.of_type("aws:eks/addon:Addon")] == []
    # No add-on role either (the VPC CNI's, the EBS CSI driver's): only the cluster's and the nodes'.
    assert sorted(r.name for r in monitor.of_type("aws:iam/role:Role")) == [
        "ai-auto-node-role",
        "ai-cluster-role",
    ]
    (storage_class,) = monitor.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    assert storage_class.inputs["provisioner"] == "ebs.csi.eks.amazonaws.com"


def test_pinning_an_add_on_auto_mode_runs_is_refused():
    args = make_args(
        auto_mode=True, addon_versions={"vpc-cni": VERSIONS["vpc-cni"], "coredns": VERSIONS["coredns"]}
    )
    assert (
        "addon_versions",
        "EKS Auto Mode runs vpc-cni, coredns itself: do not pin them",
    ) in args.problems()


SYSTEM = SystemPoolSpec(instance_types=("m6i.xlarge", "m6i.2xlarge"), max_nodes=4, disk_size_gib=80)


def test_the_system_pool_runs_the_platform_s_cpu_pods_within_max_nodes_of_its_largest_type():
    assert system_node_pool_spec(SYSTEM) == {
        "template": {
            "metadata": {
                "labels": {"aiplatform.io/node-role": "system", "aiplatform.io/node-group": "system"}
            },
            "spec": {
                "nodeClassRef": {"group": "eks.amazonaws.com", "kind": "NodeClass", "name": "system"},
                "requirements": [
                    {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    {
                        "key": "node.kubernetes.io/instance-type",
                        "operator": "In",
                        "values": ["m6i.xlarge", "m6i.2xlarge"],
                    },
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
            },
        },
        "limits": {"cpu": "32", "memory": "128Gi"},
        "disruption": {
            "consolidationPolicy": "WhenEmptyOrUnderutilized",
            "consolidateAfter": "10m",
            "budgets": [{"nodes": "1"}],
        },
    }


def test_node_classes_and_pools_of_an_auto_mode_cluster(build, monitor):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        return AutoModeCompute(
            "auto",
            AutoModeComputeArgs(
                provider=provider,
                node_role_name="ai-auto-node",
                subnet_ids=["subnet-0a", "subnet-0b"],
                security_group_id="sg-0c",
                system=SYSTEM,
                pools=[training_pool(), RESERVED],
                gpu_disk_size_gib=300,
            ),
        )

    build(program)
    classes = {
        r.inputs["metadata"]["name"]: r.inputs
        for r in monitor.of_type("kubernetes:eks.amazonaws.com/v1:NodeClass")
    }
    assert sorted(classes) == ["gpu", "reserved", "system"]
    assert classes["system"]["spec"] == {
        "role": "ai-auto-node",
        "subnetSelectorTerms": [{"id": "subnet-0a"}, {"id": "subnet-0b"}],
        "securityGroupSelectorTerms": [{"id": "sg-0c"}],
        "ephemeralStorage": {"size": "80Gi"},
    }
    assert classes["gpu"]["spec"]["ephemeralStorage"] == {"size": "300Gi"}
    assert classes["reserved"]["spec"]["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    pools = {
        r.inputs["metadata"]["name"]: r.inputs for r in monitor.of_type("kubernetes:karpenter.sh/v1:NodePool")
    }
    assert sorted(pools) == ["reserved", "system", "training"]
    assert pools["training"]["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "eks.amazonaws.com",
        "kind": "NodeClass",
        "name": "gpu",
    }
    assert pools["training"]["spec"]["limits"] == {"cpu": "192", "nvidia.com/gpu": "16"}


def test_bad_pools_and_system_pool_are_refused_with_their_paths():
    args = AutoModeComputeArgs(
        provider=None,  # type: ignore[arg-type]
        node_role_name="ai-auto-node",
        subnet_ids=["subnet-0a"],
        security_group_id="sg-0c",
        system=SystemPoolSpec(instance_types=("m9.large",), max_nodes=0),
        pools=[training_pool(), training_pool()],
    )
    assert args.problems() == [
        ("pools", "duplicate names: training"),
        ("system.instance_types[0]", "'m9.large' is not in the instance type table"),
        ("system.max_nodes", "0 must be at least 1"),
    ]
