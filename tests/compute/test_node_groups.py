import json

import pytest

from aiplatform.compute.node_groups import (
    NodeGroups,
    NodeGroupsArgs,
    NodeGroupSpec,
    autoscaler_tags,
    is_arm_instance,
    node_labels,
    placement_for,
    specs_problems,
)
from aiplatform.errors import ArgumentsError, require
from aiplatform.scheduling import GPU_RESOURCE, GPU_TAINT, Taint, Toleration
from tests.conftest import resolve

SYSTEM = NodeGroupSpec(name="system", instance_types=("m7i.large",), min_size=2, desired_size=2, max_size=4)
GPU = NodeGroupSpec(
    name="gpu-a10g",
    role="gpu",
    instance_types=("g5.xlarge", "g5.2xlarge"),
    capacity_type="SPOT",
    min_size=0,
    desired_size=0,
    max_size=4,
    disk_size_gib=200,
    accelerator="nvidia-a10g",
    gpus_per_node=1,
)
TRAINING_TAINT = Taint(key="aiplatform.io/training", value="true", effect="NoSchedule")
H100 = NodeGroupSpec(
    name="gpu-h100",
    role="gpu",
    instance_types=("p5.48xlarge",),
    ami_type="BOTTLEROCKET_x86_64_NVIDIA",
    min_size=0,
    desired_size=0,
    max_size=2,
    accelerator="nvidia-h100",
    gpus_per_node=8,
    taints=(TRAINING_TAINT,),
)


def args(*specs: NodeGroupSpec, **extra) -> NodeGroupsArgs:
    return NodeGroupsArgs(
        cluster_name="ai", subnet_ids=["subnet-a", "subnet-b"], specs=list(specs) or [SYSTEM, GPU], **extra
    )


# -- pure derivations ----------------------------------------------------------------------------
def test_system_labels_and_no_taints():
    assert node_labels(SYSTEM) == {
        "aiplatform.io/node-role": "system",
        "aiplatform.io/node-group": "system",
        "aiplatform.io/capacity-type": "on-demand",
    }
    assert SYSTEM.node_taints == ()


def test_gpu_labels_include_accelerator_group_and_capacity():
    assert node_labels(GPU) == {
        "aiplatform.io/node-role": "gpu",
        "aiplatform.io/node-group": "gpu-a10g",
        "aiplatform.io/capacity-type": "spot",
        "nvidia.com/gpu.present": "true",
        "aiplatform.io/accelerator": "nvidia-a10g",
        "k8s.amazonaws.com/accelerator": "nvidia-a10g",
    }


def test_gpu_groups_always_carry_the_gpu_taint_first_without_duplicates():
    assert GPU.node_taints == (GPU_TAINT,)
    assert H100.node_taints == (GPU_TAINT, TRAINING_TAINT)
    twice = NodeGroupSpec(**{**H100.__dict__, "taints": (GPU_TAINT, TRAINING_TAINT)})
    assert twice.node_taints == (GPU_TAINT, TRAINING_TAINT)


def test_placement_selects_the_group_and_tolerates_exactly_its_taints():
    placement = placement_for(H100)
    assert placement.node_selector == {"aiplatform.io/node-group": "gpu-h100"}
    assert placement.gpu_resource == GPU_RESOURCE
    assert placement.tolerations == (
        Toleration(key="nvidia.com/gpu", operator="Equal", value="true", effect="NoSchedule"),
        Toleration(key="aiplatform.io/training", operator="Equal", value="true", effect="NoSchedule"),
    )
    assert all(any(t.tolerates(taint) for t in placement.tolerations) for taint in H100.node_taints)
    assert [a.key for a in placement.toleration_args()] == ["nvidia.com/gpu", "aiplatform.io/training"]
    assert placement_for(SYSTEM).gpu_resource is None
    assert placement_for(SYSTEM).tolerations == ()


def test_autoscaler_tags_describe_a_node_for_scale_from_zero():
    tags = autoscaler_tags(H100, "ai")
    prefix = "k8s.io/cluster-autoscaler"
    assert tags[f"{prefix}/enabled"] == "true"
    assert tags[f"{prefix}/ai"] == "owned"
    assert tags[f"{prefix}/node-template/resources/nvidia.com/gpu"] == "8"
    assert tags[f"{prefix}/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert tags[f"{prefix}/node-template/taint/aiplatform.io/training"] == "true:NoSchedule"
    assert tags[f"{prefix}/node-template/label/aiplatform.io/accelerator"] == "nvidia-h100"
    # The autoscaler's AWS provider treats a node (and a template) with this label as GPU capacity.
    assert tags[f"{prefix}/node-template/label/k8s.amazonaws.com/accelerator"] == "nvidia-h100"
    assert tags[f"{prefix}/node-template/label/nvidia.com/gpu.present"] == "true"
    assert not any("resources" in k or "taint" in k for k in autoscaler_tags(SYSTEM, "ai"))


@pytest.mark.parametrize(
    ("instance_type", "arm"),
    [("g5g.xlarge", True), ("m7g.large", True), ("c7gn.large", True), ("t4g.small", True),
     ("p6e-gb200.36xlarge", True), ("g5.xlarge", False), ("g4dn.xlarge", False), ("m7i.large", False),
     ("p6-b200.48xlarge", False)],
)  # fmt: skip
def test_arm_instance_detection(instance_type, arm):
    assert is_arm_instance(instance_type) is arm


# -- validation ----------------------------------------------------------------------------------
def check(specs):
    """Raise what ``NodeGroups`` raises for bad ``specs``."""
    require("NodeGroups", specs_problems(specs))


def test_valid_specs_pass():
    check([SYSTEM, GPU, H100])
    check(
        [
            NodeGroupSpec(name="arm-sys", instance_types=("m7g.large",), ami_type="AL2023_ARM_64_STANDARD"),
            NodeGroupSpec(
                name="gpu-t4g",
                role="gpu",
                instance_types=("g5g.xlarge",),
                ami_type="AL2023_ARM_64_NVIDIA",
                min_size=0,
                desired_size=0,
                accelerator="nvidia-t4g",
                gpus_per_node=1,
            ),
        ]
    )


def test_validation_lists_every_bad_field_of_every_group():
    bad_gpu = NodeGroupSpec(
        name="gpu",
        role="gpu",
        instance_types=("m5.xlarge",),
        ami_type="AL2023_x86_64_STANDARD",
        min_size=0,
        desired_size=5,
        max_size=2,
    )
    bad_system = NodeGroupSpec(
        name="system",
        instance_types=("g5.xlarge",),
        ami_type="AL2023_x86_64_NVIDIA",
        min_size=0,
        desired_size=0,
    )
    with pytest.raises(ValueError) as error:
        check([bad_gpu, bad_system])
    assert str(error.value) == (
        "NodeGroups:\n"
        "  - specs[0].ami_type: AL2023_x86_64_STANDARD is not allowed for gpu groups (use one of "
        "AL2023_ARM_64_NVIDIA, AL2023_x86_64_NVIDIA, BOTTLEROCKET_ARM_64_NVIDIA, BOTTLEROCKET_x86_64_NVIDIA)\n"
        # The GPU families are the instance type table's.
        "  - specs[0].instance_types: m5.xlarge not in a GPU instance family (g4dn, g5, g5g, g6, g6e, p4d, p4de, p5, "
        "p5en)\n"
        "  - specs[0].desired_size: must satisfy min_size (0) <= desired_size (5) <= max_size (2)\n"
        "  - specs[1].ami_type: AL2023_x86_64_NVIDIA is not allowed for system groups (use one of "
        "AL2023_ARM_64_STANDARD, AL2023_x86_64_STANDARD, BOTTLEROCKET_x86_64)\n"
        "  - specs[1].instance_types: GPU instances (g5.xlarge) belong in a gpu group\n"
        "  - specs[1].min_size: must be >= 1 for system groups"
    )


def test_arm_ami_needs_arm_instances_and_names_must_be_unique():
    arm_on_x86 = NodeGroupSpec(
        name="gpu",
        role="gpu",
        instance_types=("g5.xlarge", "g5g.xlarge"),
        ami_type="AL2023_ARM_64_NVIDIA",
        min_size=0,
        desired_size=0,
        accelerator="nvidia-a10g",
        gpus_per_node=1,
    )
    with pytest.raises(ValueError) as error:
        check([arm_on_x86, arm_on_x86])
    assert str(error.value) == (
        "NodeGroups:\n"
        "  - specs: duplicate node group names: gpu\n"
        "  - specs[0].instance_types: g5.xlarge cannot run the arm64 AMI AL2023_ARM_64_NVIDIA\n"
        "  - specs[0].instance_types: 'g5g.xlarge' has 1 x NVIDIA T4G, 'g5.xlarge' has 1 x NVIDIA A10G: one GPU model "
        "and count per group (split them into groups)\n"
        "  - specs[1].instance_types: g5.xlarge cannot run the arm64 AMI AL2023_ARM_64_NVIDIA\n"
        "  - specs[1].instance_types: 'g5g.xlarge' has 1 x NVIDIA T4G, 'g5.xlarge' has 1 x NVIDIA A10G: one GPU model "
        "and count per group (split them into groups)"
    )


def test_gpu_model_and_count_come_from_the_instance_table():
    derived = NodeGroupSpec(
        name="gpu", role="gpu", instance_types=("g6e.12xlarge", "g6e.24xlarge"), min_size=0
    )
    assert (derived.resolved_accelerator, derived.resolved_gpus_per_node) == ("nvidia-l40s", 4)
    assert node_labels(derived)["aiplatform.io/accelerator"] == "nvidia-l40s"
    assert (
        autoscaler_tags(derived, "ai")["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"]
        == "4"
    )
    check([SYSTEM, derived])


def test_a_gpu_group_mixing_models_or_counts_is_refused():
    mixed = NodeGroupSpec(
        name="spot",
        role="gpu",
        instance_types=("g6e.12xlarge", "g5.12xlarge", "g6e.xlarge", "g6f.xlarge"),
        min_size=0,
        accelerator="nvidia-l40s",
        gpus_per_node=4,
    )
    with pytest.raises(ValueError) as error:
        check([SYSTEM, mixed])
    assert str(error.value) == (
        "NodeGroups:\n"
        "  - specs[1].instance_types: 'g5.12xlarge' has 4 x NVIDIA A10G, 'g6e.12xlarge' has 4 x NVIDIA L40S: "
        "one GPU model and count per group (split them into groups)\n"
        "  - specs[1].instance_types: 'g6e.xlarge' has 1 x NVIDIA L40S, 'g6e.12xlarge' has 4 x NVIDIA L40S: "
        "one GPU model and count per group (split them into groups)\n"
        "  - specs[1].instance_types: 'g6f.xlarge' is not in the instance type table: add its vCPUs, memory, ENI limits and GPUs (in a program: "
        "aiplatform.compute.instance_types.add_instance_types(InstanceType(...)) before building; in the "
        "library's repository: components/compute/instance_types.py)"
    )


def test_group_names_must_leave_room_for_the_eks_name_and_its_random_suffix(build, monitor):
    # EKS gets "ng-<name>-<7 random>": 3 + 52 + 8 = 63 characters at most.
    fits = NodeGroupSpec(**{**GPU.__dict__, "name": "g" * 52})
    build(lambda: NodeGroups("ng", args(SYSTEM, fits)))
    assert len(monitor.named("ng-" + "g" * 52).name) + 8 == 63
    too_long = NodeGroupSpec(**{**GPU.__dict__, "name": "g" * 53})
    with pytest.raises(ValueError) as error:
        NodeGroups("ng", args(SYSTEM, too_long))
    assert str(error.value) == (
        f"NodeGroups 'ng':\n  - specs[1].name: longer than 52 characters: EKS names the group 'ng-{'g' * 53}' "
        "and a random suffix, within 63"
    )


def test_at_most_fifty_taints_per_group():
    taints = tuple(Taint(key=f"example.com/t{i}", value="x") for i in range(50))
    with pytest.raises(ValueError, match=r"specs\[1\]\.taints: EKS allows 50 taints per node group"):
        check([SYSTEM, NodeGroupSpec(**{**GPU.__dict__, "taints": taints})])


def test_platform_labels_cannot_be_overridden():
    spec = NodeGroupSpec(name="system", labels={"aiplatform.io/node-role": "gpu", "team": "ml"})
    with pytest.raises(
        ValueError, match=r"specs\[0\]\.labels: aiplatform\.io/node-role are set by the platform"
    ):
        check([spec])
    gpu = NodeGroupSpec(**{**GPU.__dict__, "labels": {"k8s.amazonaws.com/accelerator": "nvidia-l4"}})
    with pytest.raises(
        ValueError, match=r"specs\[0\]\.labels: k8s\.amazonaws\.com/accelerator are set by the platform"
    ):
        check([gpu])


# -- the component -------------------------------------------------------------------------------
def test_node_groups_register_gpu_and_system_groups(build, monitor):
    groups = build(lambda: NodeGroups("ng", args(SYSTEM, GPU, H100)))

    gpu = monitor.named("ng-gpu-a10g")
    assert gpu.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu.inputs["capacityType"] == "SPOT"
    assert gpu.inputs["instanceTypes"] == ["g5.xlarge", "g5.2xlarge"]
    assert gpu.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert gpu.inputs["labels"] == node_labels(GPU)
    assert gpu.inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 4}
    assert gpu.inputs["updateConfig"] == {"maxUnavailable": 1}
    assert gpu.inputs["tags"] == autoscaler_tags(GPU, "ai")
    assert "scalingConfig.desiredSize" in gpu.ignore_changes
    assert "diskSize" not in gpu.inputs  # the launch template owns the disk

    h100 = monitor.named("ng-gpu-h100")
    assert h100.inputs["amiType"] == "BOTTLEROCKET_x86_64_NVIDIA"
    assert h100.inputs["capacityType"] == "ON_DEMAND"
    assert h100.inputs["taints"][1] == {
        "key": "aiplatform.io/training",
        "value": "true",
        "effect": "NO_SCHEDULE",
    }

    system = monitor.named("ng-system")
    assert system.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert system.inputs["taints"] == []
    assert "scalingConfig.desiredSize" in system.ignore_changes

    # Launch template: IMDSv2 only, encrypted gp3 root of the requested size, referenced by id + version.
    lt = monitor.named("ng-gpu-a10g-lt").inputs
    assert lt["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 2,
    }
    (disk,) = lt["blockDeviceMappings"]
    assert disk == {
        "deviceName": "/dev/xvda",
        "ebs": {"volumeSize": 200, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"},
    }
    assert {s["resourceType"] for s in lt["tagSpecifications"]} == {"instance", "volume", "network-interface"}
    assert gpu.inputs["launchTemplate"] == {
        "id": resolve(groups.launch_templates["gpu-a10g"].id),
        "version": "1",
    }
    # Bottlerocket keeps images and containers on its second volume.
    assert monitor.named("ng-gpu-h100-lt").inputs["blockDeviceMappings"][0]["deviceName"] == "/dev/xvdb"

    assert set(groups.groups) == {"system", "gpu-a10g", "gpu-h100"}
    assert set(groups.placements) == {"system", "gpu-a10g", "gpu-h100"}
    assert groups.placements["system"].gpu_resource is None  # a CPU group: no GPUs to ask for
    assert groups.placements["gpu-h100"] == placement_for(H100)
    assert resolve(groups.autoscaling_group_names["gpu-a10g"]).startswith("eks-")
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


def test_node_role_trusts_ec2_and_has_exactly_three_managed_policies(build, monitor):
    groups = build(lambda: NodeGroups("ng", args()))
    trust = json.loads(monitor.named("ng-node-role").inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    attachments = monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    role_name = resolve(groups.node_role.name)
    assert {a.inputs["role"] for a in attachments} == {role_name}
    assert sorted(a.inputs["policyArn"] for a in attachments) == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    # Node groups wait for the policies, or nodes cannot join.
    for group in monitor.of_type("aws:eks/nodeGroup:NodeGroup"):
        assert {a.urn for a in attachments} <= set(group.dependencies)
    assert not monitor.of_type("aws:iam/policy:Policy")


def test_cni_policy_can_move_to_irsa(build, monitor):
    build(lambda: NodeGroups("ng", args(attach_cni_policy=False)))
    arns = [
        a.inputs["policyArn"] for a in monitor.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    ]
    assert len(arns) == 2
    assert not any("CNI" in a for a in arns)


def test_node_template_tags_are_copied_to_the_auto_scaling_group(build, monitor):
    groups = build(lambda: NodeGroups("ng", args(GPU)))
    asg = resolve(groups.autoscaling_group_names["gpu-a10g"])
    copied = {
        t.inputs["tag"]["key"]: t.inputs["tag"]["value"]
        for t in monitor.of_type("aws:autoscaling/tag:Tag")
        if t.inputs["autoscalingGroupName"] == asg
    }
    assert copied["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    assert copied["k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
    assert "k8s.io/cluster-autoscaler/enabled" not in copied  # EKS tags the ASG for discovery itself
    assert all(
        t.inputs["tag"]["propagateAtLaunch"] is False for t in monitor.of_type("aws:autoscaling/tag:Tag")
    )


def test_invalid_specs_create_nothing(build, monitor):
    with pytest.raises(ArgumentsError, match="NodeGroups 'ng'"):
        build(lambda: NodeGroups("ng", args(NodeGroupSpec(name="Bad_Name"))))
    assert not monitor.registrations


def test_every_argument_problem_comes_at_once_with_its_path(build, monitor):
    bad = NodeGroupSpec(name="Bad_Name")
    with pytest.raises(ArgumentsError) as error:
        build(lambda: NodeGroups("ng", args(SYSTEM, bad, imds_hop_limit=3)))
    assert error.value.problems == [
        ("specs[1].name", "must be lowercase letters, digits and '-', at most 63 characters"),
        ("imds_hop_limit", "must be 1 or 2, got 3"),
    ]
    assert not monitor.registrations
