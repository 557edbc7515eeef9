"""Every component refuses what is not its args object, and a dict where an args object is expected at
any depth, with the argument named, before any check reads it (no AttributeError, no TypeError)."""

from __future__ import annotations

import pytest

from aiplatform.addons.alerts import PlatformAlerts, PlatformAlertsArgs
from aiplatform.addons.gpu import GpuSupport, GpuSupportArgs
from aiplatform.addons.ingress import IngressController, IngressControllerArgs
from aiplatform.addons.observability import MetricsStack, MetricsStackArgs
from aiplatform.addons.secrets import ExternalSecrets, ExternalSecretsArgs
from aiplatform.cluster import EksCluster, EksClusterArgs, ExistingCluster, ExistingClusterArgs
from aiplatform.compute.auto_mode import AutoModeCompute, AutoModeComputeArgs
from aiplatform.compute.autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from aiplatform.compute.karpenter import Karpenter, KarpenterArgs
from aiplatform.compute.node_groups import NodeGroups, NodeGroupsArgs, NodeGroupSpec
from aiplatform.errors import ArgumentsError, type_problems
from aiplatform.iam import ServiceAccountRole, ServiceAccountRoleArgs, WorkloadIdentity
from aiplatform.network import Network, NetworkArgs
from aiplatform.storage import ModelBucket, ModelBucketArgs, SharedFileSystem, SharedFileSystemArgs
from aiplatform.tenancy import TeamNamespace, TeamNamespaceArgs, TeamQuota
from aiplatform.workloads import (
    BatchInferenceJob,
    BatchInferenceJobArgs,
    InferenceService,
    InferenceServiceArgs,
    TrainingJob,
    TrainingJobArgs,
)

COMPONENTS = [
    (Network, NetworkArgs),
    (EksCluster, EksClusterArgs),
    (ExistingCluster, ExistingClusterArgs),
    (NodeGroups, NodeGroupsArgs),
    (Karpenter, KarpenterArgs),
    (AutoModeCompute, AutoModeComputeArgs),
    (ClusterAutoscaler, ClusterAutoscalerArgs),
    (GpuSupport, GpuSupportArgs),
    (ExternalSecrets, ExternalSecretsArgs),
    (IngressController, IngressControllerArgs),
    (MetricsStack, MetricsStackArgs),
    (PlatformAlerts, PlatformAlertsArgs),
    (ModelBucket, ModelBucketArgs),
    (SharedFileSystem, SharedFileSystemArgs),
    (TeamNamespace, TeamNamespaceArgs),
    (ServiceAccountRole, ServiceAccountRoleArgs),
    (InferenceService, InferenceServiceArgs),
    (TrainingJob, TrainingJobArgs),
    (BatchInferenceJob, BatchInferenceJobArgs),
]


@pytest.mark.parametrize(("component", "args_type"), COMPONENTS, ids=[c.__name__ for c, _ in COMPONENTS])
def test_a_dict_for_the_args_is_refused_naming_the_args_type(build, monitor, component, args_type):
    with pytest.raises(ArgumentsError) as caught:
        build(lambda: component("team", {"name": "team"}))
    assert caught.value.problems == [
        ("args", f"got a dict, expected {args_type.__name__}: pass {args_type.__name__}(...)")
    ]
    assert not monitor.registrations


def test_a_dict_in_a_list_of_args_objects_is_named_by_its_index(build, monitor):
    system = NodeGroupSpec(name="system", instance_types=("m6i.large",))
    args = NodeGroupsArgs(cluster_name="c", subnet_ids=["subnet-1"], specs=[system, {"name": "gpu"}])
    with pytest.raises(ArgumentsError) as caught:
        build(lambda: NodeGroups("nodes", args))
    assert caught.value.problems == [
        ("specs[1]", "got a dict, expected NodeGroupSpec: pass NodeGroupSpec(...)")
    ]
    assert not monitor.registrations


def test_a_dict_deep_inside_an_args_object_is_named_by_its_path():
    system = NodeGroupSpec(name="system", instance_types=("m6i.large",), taints=({"key": "a"},))
    args = NodeGroupsArgs(cluster_name="c", subnet_ids=["subnet-1"], specs=[system])
    assert type_problems(args, NodeGroupsArgs) == [
        ("specs[0].taints[0]", "got a dict, expected Taint: pass Taint(...)")
    ]
    assert type_problems(NodeGroupsArgs(cluster_name="c", subnet_ids=[], specs=system), NodeGroupsArgs) == [
        ("specs", "got a NodeGroupSpec, expected a list of NodeGroupSpec")
    ]


def test_a_dict_for_a_nested_args_object_is_refused_by_the_component(build, monitor):
    args = TeamNamespaceArgs(
        name="search", provider=None, vpc_cidr="10.0.0.0/16", quota={"cpu": "8"}, limits=TeamQuota()
    )
    with pytest.raises(ArgumentsError) as caught:
        build(lambda: TeamNamespace("search", args))
    assert caught.value.problems == [
        ("quota", "got a dict, expected TeamQuota: pass TeamQuota(...)"),
        ("limits", "got a TeamQuota, expected ContainerLimits: pass ContainerLimits(...)"),
    ]
    identity = WorkloadIdentity(mode="irsa", cluster_name="c", oidc_provider_arn="a", oidc_issuer_url="u")
    role_args = ServiceAccountRoleArgs(identity=identity, namespace="ns", service_account="sa")
    assert type_problems(role_args, ServiceAccountRoleArgs) == []
