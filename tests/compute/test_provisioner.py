"""The provisioners: one object per compute option, chosen once by name, and what each answers."""

from __future__ import annotations

from typing import get_args

import pytest

from aiplatform.cluster import AUTO_MODE_ADDONS
from aiplatform.compute import autoscaler, karpenter
from aiplatform.compute.auto_mode import RUN_BY_EKS
from aiplatform.compute.capacity import Nodes
from aiplatform.compute.karpenter import DISCOVERY_TAG
from aiplatform.compute.provisioner import (
    POOL_PROVISIONERS,
    PROVISIONERS,
    AutoModeProvisioner,
    KarpenterProvisioner,
    NodeGroupsProvisioner,
    provisioner_named,
)
from aiplatform.config.compute import ProvisionerName
from tests.compute.test_node_groups import GPU, SYSTEM
from tests.compute.test_pools import training_pool

NODE_GROUPS, KARPENTER, AUTO_MODE = NodeGroupsProvisioner(), KarpenterProvisioner(), AutoModeProvisioner()


def test_every_name_the_config_allows_has_one_provisioner():
    assert sorted(PROVISIONERS) == sorted(get_args(ProvisionerName))
    for name in get_args(ProvisionerName):
        assert provisioner_named(name).name == name
    assert POOL_PROVISIONERS == "karpenter or auto-mode"


@pytest.mark.parametrize(
    ("provisioner", "pools", "autoscaler_installed", "device_plugin", "alb_controller", "auto_mode"),
    [
        (NODE_GROUPS, False, True, True, True, False),
        (KARPENTER, True, False, True, True, False),
        (AUTO_MODE, True, False, False, False, True),
    ],
)
def test_what_each_provisioner_leaves_to_the_platform(
    provisioner, pools, autoscaler_installed, device_plugin, alb_controller, auto_mode
):
    assert provisioner.uses_pools is pools
    assert provisioner.installs_autoscaler is autoscaler_installed
    assert provisioner.installs_device_plugin is device_plugin
    assert provisioner.runs_alb_controller is alb_controller
    assert provisioner.eks_auto_mode is auto_mode


def test_only_auto_mode_runs_add_ons_and_controllers_itself():
    assert AUTO_MODE.addons_run_by_eks == AUTO_MODE_ADDONS and AUTO_MODE.run_by_eks == RUN_BY_EKS
    assert NODE_GROUPS.addons_run_by_eks == KARPENTER.addons_run_by_eks == ()
    assert NODE_GROUPS.run_by_eks == KARPENTER.run_by_eks == ()


def test_only_karpenter_tags_the_subnets_it_starts_nodes_in():
    assert KARPENTER.subnet_tags("ai") == {DISCOVERY_TAG: "ai"}
    assert NODE_GROUPS.subnet_tags("ai") == AUTO_MODE.subnet_tags("ai") == {}


def test_each_provisioner_lists_its_own_controllers_on_the_system_nodes():
    (scaler,) = NODE_GROUPS.pods()
    assert (scaler.name, scaler.node_group, scaler.min_replicas) == (
        "cluster-autoscaler",
        "system",
        autoscaler.REPLICAS,
    )
    (controller,) = KARPENTER.pods()
    assert (controller.name, controller.node_group, controller.max_replicas) == (
        "karpenter",
        "system",
        karpenter.REPLICAS,
    )
    assert AUTO_MODE.pods() == []


def test_pods_land_on_the_gpu_groups_or_on_the_pools():
    pool = training_pool()
    assert NODE_GROUPS.nodes(SYSTEM, [GPU], [pool]) == Nodes(SYSTEM, (GPU,))
    for provisioner in (KARPENTER, AUTO_MODE):
        assert provisioner.nodes(SYSTEM, [GPU], [pool]) == Nodes(SYSTEM, (pool,))


def test_each_provisioner_names_the_compute_settings_it_needs_or_refuses():
    assert NODE_GROUPS.options_problems(True, {"karpenter", "autoMode"}) == [
        (("pools",), "pools need provisioner karpenter or auto-mode (node-groups use nodeGroups.gpu)"),
        (("karpenter",), "only with provisioner karpenter"),
        (("autoMode",), "only with provisioner auto-mode"),
    ]
    assert KARPENTER.options_problems(True, set()) == [
        (("karpenter",), "provisioner karpenter needs karpenter.amiAlias (al2023@vYYYYMMDD)")
    ]
    assert KARPENTER.options_problems(True, {"karpenter"}) == []
    assert AUTO_MODE.options_problems(True, {"autoMode"}) == []


def test_each_provisioner_checks_its_own_chart():
    versions = {"clusterAutoscaler": "9.60.0", "karpenter": None}
    assert NODE_GROUPS.chart_problems(versions, "1.35", managed=False) == []
    ((at, _),) = NODE_GROUPS.chart_problems(versions, "1.35", managed=True)
    assert at == ("charts", "clusterAutoscaler")
    assert KARPENTER.chart_problems(versions, "1.35", managed=True) == [
        (("charts", "karpenter"), "pin the karpenter chart version (compute.provisioner is karpenter)")
    ]
    assert AUTO_MODE.chart_problems(versions, "1.35", managed=True) == []


def test_auto_mode_starts_only_its_families_and_serves_load_balancers_itself():
    assert AUTO_MODE.instance_type_problem("c7i.xlarge") is None
    assert (
        AUTO_MODE.instance_type_problem("p5en.48xlarge")
        == "'p5en' is not an instance family EKS Auto Mode runs"
    )
    assert AUTO_MODE.ingress_problem("alb") is None
    assert "use alb" in (AUTO_MODE.ingress_problem("nginx") or "")
    for provisioner in (NODE_GROUPS, KARPENTER):
        assert provisioner.instance_type_problem("p5en.48xlarge") is None
        assert provisioner.ingress_problem("nginx") is None
