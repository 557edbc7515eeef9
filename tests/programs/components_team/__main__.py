"""A program built from components: an EKS cluster, node groups, a tenant namespace with a quota, a model
bucket, a model server fetching its model from that bucket (an output of the same program) and a
nightly job. tests/test_plan_component_fit.py plans it as is (exit 0) and with one mistake at a time."""

from aiplatform.cluster import EksCluster, EksClusterArgs
from aiplatform.compute.node_groups import NodeGroups, NodeGroupsArgs, NodeGroupSpec
from aiplatform.podspec import Resources
from aiplatform.routing import IngressRoute
from aiplatform.storage import ModelBucket, ModelBucketArgs
from aiplatform.tenancy import TeamNamespace, TeamNamespaceArgs, TeamQuota
from aiplatform.workloads import (
    Autoscaling,
    BatchInferenceJob,
    BatchInferenceJobArgs,
    InferenceService,
    InferenceServiceArgs,
    ModelSource,
)

cluster = EksCluster(
    "demo",
    EksClusterArgs(
        name="demo",
        vpc_id="vpc-123",
        subnet_ids=["subnet-a", "subnet-b", "subnet-c"],
        admin_role_arns=["arn:aws:iam::123456789012:role/admin"],
    ),
)
system = NodeGroupSpec(name="system", instance_types=("m6i.xlarge",), min_size=2, desired_size=2, max_size=4)
gpu = NodeGroupSpec(name="gpu-inference", role="gpu", instance_types=("g5.2xlarge",), min_size=0, max_size=10)
nodes = NodeGroups(
    "demo-nodes", NodeGroupsArgs(cluster_name=cluster.name, subnet_ids=["subnet-a"], specs=(system, gpu))
)
serving = TeamNamespace(
    "serving",
    TeamNamespaceArgs(
        name="ml-serving",
        provider=cluster.provider,
        vpc_cidr="10.0.0.0/16",
        ingress_ports=(8000, 8080),
        quota=TeamQuota(cpu="64", memory="256Gi", gpus=12),
    ),
)
models = ModelBucket("models", ModelBucketArgs(bucket_prefix="demo-models"))
InferenceService(
    "summarizer",
    InferenceServiceArgs(
        provider=cluster.provider,
        namespace=serving.workload_namespace,
        depends_on=[serving.namespace],
        image="registry.example.com/summarizer:1.4.2",
        port=8000,
        resources=Resources(cpu="2", memory="12Gi"),
        gpus=1,
        placement=nodes.placements["gpu-inference"],
        identity=cluster.identity,
        model=ModelSource(bucket=models.bucket, prefix="summarizer", kms_key_arn=models.kms_key_arn),
        autoscaling=Autoscaling(min_replicas=2, max_replicas=6),
        route=IngressRoute(class_name="alb", host="summarizer.example.com"),
    ),
)
BatchInferenceJob(
    "nightly",
    BatchInferenceJobArgs(
        provider=cluster.provider,
        namespace=serving.workload_namespace,
        depends_on=[serving.namespace],
        image="registry.example.com/nightly:1.0.0",
        schedule="0 3 * * *",
        resources=Resources(cpu="1", memory="4Gi"),
    ),
)
