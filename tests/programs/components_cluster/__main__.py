"""A program built from components, not from the platform's stack file: an EKS cluster, two node
groups (the GPU one may scale to zero) and a model server that always runs two replicas there."""

from aiplatform.cluster import EksCluster, EksClusterArgs
from aiplatform.compute.node_groups import NodeGroups, NodeGroupsArgs, NodeGroupSpec
from aiplatform.podspec import Resources
from aiplatform.workloads import Autoscaling, InferenceService, InferenceServiceArgs

cluster = EksCluster(
    "demo",
    EksClusterArgs(
        name="demo",
        vpc_id="vpc-123",
        subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        admin_role_arns=["arn:aws:iam::123456789012:role/admin"],
    ),
)
system = NodeGroupSpec(name="system", instance_types=("m6i.large",), min_size=2, desired_size=2, max_size=3)
gpu = NodeGroupSpec(
    name="gpu", role="gpu", instance_types=("g5.2xlarge",), min_size=0, desired_size=0, max_size=4
)
nodes = NodeGroups(
    "demo-nodes", NodeGroupsArgs(cluster_name=cluster.name, subnet_ids=["subnet-a"], specs=(system, gpu))
)
InferenceService(
    "summarizer",
    InferenceServiceArgs(
        provider=cluster.provider,
        namespace="ml-serving",
        image="registry.example.com/summarizer:1.4.2",
        resources=Resources(cpu="2", memory="8Gi"),
        gpus=1,
        placement=nodes.placements["gpu"],
        autoscaling=Autoscaling(min_replicas=2, max_replicas=4, cpu_utilization=70),
    ),
)
