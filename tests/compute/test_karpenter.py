"""Karpenter: the controller's IAM, the interruption queue and its rules, the release, node classes
and node pools, as registered."""

from __future__ import annotations

import json

import pulumi_kubernetes as k8s
import pytest

from aiplatform.compute.karpenter import (
    INTERRUPTION_EVENTS,
    Karpenter,
    KarpenterArgs,
    PolicyScope,
    chart_version_problem,
    node_lifecycle_policy,
)
from aiplatform.compute.pools import CapacityReservations, GpuPoolSpec
from aiplatform.errors import ArgumentsError
from tests.compute.test_pools import training_pool
from tests.conftest import resolve

ACCOUNT = "123456789012"
RESERVED = GpuPoolSpec(
    name="reserved",
    instance_types=("p5.48xlarge",),
    max_gpus=16,
    max_cpu=384,
    capacity_types=("reserved",),
    reservations=CapacityReservations(
        ids=("cr-0123456789abcdef0",), capacity_block=True, instances={"p5.48xlarge": 2}
    ),
)


def karpenter(**changes):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        values = dict(
            cluster_name="ai",
            region="us-east-1",
            provider=provider,
            pools=[training_pool(), RESERVED],
            chart_version="1.14.1",
            ami_alias="al2023@v20260714",
            cluster_security_group_id="sg-0123456789abcdef0",
            account_id=ACCOUNT,
            attach_cni_policy=False,
            tags={"team": "ml"},
        )
        values.update(changes)
        return Karpenter("kp", KarpenterArgs(**values))

    return program


def statements(monitor, name: str) -> dict[str, dict]:
    document = json.loads(monitor.named(name).inputs["policy"])
    return {s.get("Sid", str(i)): s for i, s in enumerate(document["Statement"])}


def test_the_controller_trusts_pod_identity_for_its_service_account_only(build, monitor):
    build(karpenter())
    trust = json.loads(monitor.named("kp-controller-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
    association = monitor.named("kp-controller-association").inputs
    assert (association["clusterName"], association["namespace"], association["serviceAccount"]) == (
        "ai",
        "kube-system",
        "karpenter",
    )
    attached = sorted(
        r.inputs["policyArn"]
        for r in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("kp-controller-managed")
    )
    policies = sorted(r.name for r in monitor.of_type("aws:iam/policy:Policy"))
    assert policies == [
        "kp-eks-integration",
        "kp-iam-integration",
        "kp-interruption",
        "kp-node-lifecycle",
        "kp-resource-discovery",
    ]
    assert len(attached) == 5 and all(
        arn.startswith(f"arn:aws:iam::{ACCOUNT}:policy/kp-") for arn in attached
    )


def test_every_mutating_ec2_statement_is_scoped_to_this_cluster(build, monitor):
    build(karpenter())
    lifecycle = statements(monitor, "kp-node-lifecycle")
    owned = {"aws:ResourceTag/kubernetes.io/cluster/ai": "owned"}
    assert lifecycle["AllowScopedDeletion"] == {
        "Sid": "AllowScopedDeletion",
        "Effect": "Allow",
        "Resource": ["arn:aws:ec2:us-east-1:*:instance/*", "arn:aws:ec2:us-east-1:*:launch-template/*"],
        "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
        "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
    }
    created = lifecycle["AllowScopedEC2InstanceActionsWithTags"]["Condition"]
    assert created == {
        "StringEquals": {
            "aws:RequestTag/kubernetes.io/cluster/ai": "owned",
            "aws:RequestTag/eks:eks-cluster-name": "ai",
        },
        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
    }
    tagging = lifecycle["AllowScopedResourceTagging"]["Condition"]
    assert tagging["ForAllValues:StringEquals"] == {
        "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
    }
    unscoped = lifecycle["AllowScopedEC2InstanceAccessActions"]
    assert unscoped["Resource"][:2] == ["arn:aws:ec2:us-east-1::image/*", "arn:aws:ec2:us-east-1::snapshot/*"]
    assert all(
        "Condition" in s for sid, s in lifecycle.items() if sid != "AllowScopedEC2InstanceAccessActions"
    )


def test_the_controller_passes_only_its_node_role_and_reads_only_its_queue(build, monitor):
    kp = build(karpenter())
    integration = statements(monitor, "kp-iam-integration")
    node_role_arn = resolve(kp.node_role.arn)
    assert integration["AllowPassingInstanceRole"] == {
        "Sid": "AllowPassingInstanceRole",
        "Effect": "Allow",
        "Resource": node_role_arn,
        "Action": "iam:PassRole",
        "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
    }
    queue_arn = resolve(kp.queue.arn)
    assert queue_arn == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{resolve(kp.queue.name)}"
    assert statements(monitor, "kp-interruption")["AllowInterruptionQueueActions"]["Resource"] == queue_arn
    assert statements(monitor, "kp-eks-integration")["AllowAPIServerEndpointDiscovery"]["Resource"] == (
        f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/ai"
    )
    discovery = statements(monitor, "kp-resource-discovery")["AllowRegionalReadActions"]
    assert discovery["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}


def test_node_lifecycle_policy_fits_an_iam_managed_policy():
    text = json.dumps(
        node_lifecycle_policy(PolicyScope("a" * 100, "ap-southeast-2", ACCOUNT)), separators=(",", ":")
    )
    assert len(text) < 6144


def test_the_interruption_queue_takes_every_event_karpenter_drains_on_over_tls(build, monitor):
    kp = build(karpenter())
    queue, queue_arn = monitor.named("kp-interruptions"), resolve(kp.queue.arn)
    assert (queue.inputs["messageRetentionSeconds"], queue.inputs["sqsManagedSseEnabled"]) == (300, True)
    policy = json.loads(monitor.named("kp-interruptions-policy").inputs["policy"])
    allow, deny = policy["Statement"]
    assert allow["Principal"] == {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]}
    assert (allow["Action"], allow["Resource"]) == ("sqs:SendMessage", queue_arn)
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    patterns = {
        r.name: json.loads(r.inputs["eventPattern"])
        for r in monitor.of_type("aws:cloudwatch/eventRule:EventRule")
    }
    assert patterns == {
        "kp-scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
        "kp-spot-interruption": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Spot Instance Interruption Warning"],
        },
        "kp-rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        "kp-instance-state-change": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
        },
        "kp-capacity-reservation-interruption": {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"],
        },
    }
    targets = monitor.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert len(targets) == len(INTERRUPTION_EVENTS)
    assert {t.inputs["arn"] for t in targets} == {queue_arn}


def test_nodes_join_through_an_ec2_linux_access_entry_with_a_minimal_role(build, monitor):
    build(karpenter())
    entry = monitor.named("kp-nodes").inputs
    assert (entry["clusterName"], entry["type"]) == ("ai", "EC2_LINUX")
    attached = sorted(
        r.inputs["policyArn"]
        for r in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("kp-node-")
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    ]


def test_the_cluster_security_group_carries_the_discovery_tag(build, monitor):
    build(karpenter(subnet_ids_to_tag=["subnet-0a", "subnet-0b"]))
    tags = {r.name: r.inputs for r in monitor.of_type("aws:ec2/tag:Tag")}
    assert tags["kp-discovery-sg"] == {
        "resourceId": "sg-0123456789abcdef0",
        "key": "karpenter.sh/discovery",
        "value": "ai",
    }
    assert [tags[f"kp-discovery-subnet-{i}"]["resourceId"] for i in range(2)] == ["subnet-0a", "subnet-0b"]


def test_the_controller_release_is_pinned_from_the_oci_registry_onto_the_system_nodes(build, monitor):
    kp = build(karpenter())
    release = monitor.named("kp-chart")
    queue = resolve(kp.queue.name)
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == (
        "oci://public.ecr.aws/karpenter/karpenter",
        "1.14.1",
        "kube-system",
    )
    assert "repositoryOpts" not in release.inputs
    assert release.inputs["values"] == {
        "settings": {"clusterName": "ai", "interruptionQueue": queue},
        "serviceAccount": {"create": True, "name": "karpenter"},
        "replicas": 2,
        "controller": {
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
        },
        "nodeSelector": {"aiplatform.io/node-role": "system"},
    }
    # Its credentials exist before it starts.
    assert monitor.named("kp-controller-association").urn in release.dependencies


def test_a_mirror_serves_the_chart_by_name(build, monitor):
    build(karpenter(chart_repository="https://charts.internal.example.com"))
    release = monitor.named("kp-chart").inputs
    assert (release["chart"], release["repositoryOpts"]) == (
        "karpenter",
        {"repo": "https://charts.internal.example.com"},
    )


def test_one_node_class_per_ami_need_and_one_node_pool_per_pool(build, monitor):
    kp = build(karpenter())
    classes = {
        r.inputs["metadata"]["name"]: r
        for r in monitor.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass")
    }
    pools = {r.inputs["metadata"]["name"]: r for r in monitor.of_type("kubernetes:karpenter.sh/v1:NodePool")}
    assert sorted(classes) == ["gpu", "reserved"]
    assert sorted(pools) == ["reserved", "training"]
    assert classes["reserved"].inputs["spec"]["capacityReservationSelectorTerms"] == [
        {"id": "cr-0123456789abcdef0"}
    ]
    assert "capacityReservationSelectorTerms" not in classes["gpu"].inputs["spec"]
    role = resolve(kp.node_role.name)
    assert {c.inputs["spec"]["role"] for c in classes.values()} == {role}
    release = monitor.named("kp-chart").urn
    assert release in pools["training"].dependencies and classes["gpu"].urn in pools["training"].dependencies
    assert pools["reserved"].inputs["spec"]["template"]["spec"]["nodeClassRef"]["name"] == "reserved"
    # What the reservation holds rides on its pool, for the idle cost; a pool without one says nothing.
    assert pools["reserved"].inputs["metadata"]["annotations"] == {
        "aiplatform.io/reserved-instances": "p5.48xlarge=2"
    }
    assert "annotations" not in pools["training"].inputs["metadata"]


@pytest.mark.parametrize(
    ("version", "kubernetes", "problem"),
    [
        ("1.14.1", "1.36", None),
        ("1.12.1", "1.36", "Karpenter 1.12.1 does not support Kubernetes 1.36: use 1.13 or later"),
        ("1.8.7", "1.35", "Karpenter 1.8.7 does not support Kubernetes 1.35: use 1.9 or later"),
        ("1.6.0", "1.34", None),
    ],
)
def test_the_chart_follows_the_cluster_kubernetes_minor(version, kubernetes, problem):
    found = chart_version_problem(version, kubernetes)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_bad_arguments_are_refused_before_anything_is_registered(build, monitor):
    with pytest.raises(ValueError) as error:
        build(karpenter(ami_alias="al2023@latest", chart_version="1.14"))
    assert "ami_alias: 'al2023@latest' must pin an AL2023 release" in str(error.value)
    assert "chart_version: '1.14' must be an exact version" in str(error.value)
    assert monitor.of_type("aws:iam/role:Role") == []


def test_a_bad_pool_is_named_by_its_place_in_the_arguments(build, monitor):
    with pytest.raises(ArgumentsError) as error:
        build(karpenter(pools=[training_pool(), training_pool(name="big", max_gpus=2)]))
    assert error.value.subject == "Karpenter 'kp'"
    assert error.value.problems == [("pools[1].max_gpus", "2 cannot hold one g5.12xlarge (4)")]
    assert monitor.of_type("aws:iam/role:Role") == []
