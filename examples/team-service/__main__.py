"""The search team's summarizer on the AI platform: a model server, a nightly batch job and a sweep.

What the platform provides (cluster, OIDC provider, model bucket, routes, node groups, metrics) comes
from its stack outputs; this program only says what the team runs.
"""

import pulumi

from aiplatform import workloads as w
from aiplatform.outputs import PlatformOutputs
from aiplatform.podspec import Resources

config = pulumi.Config()
platform = PlatformOutputs.from_stack(config.require("platformStack"))
image, prefix = config.require("image"), config.require("modelPrefix")
provider, identity = platform.kubernetes_provider(), platform.workload_identity
namespace = platform.namespace(config.require("namespace"))

w.InferenceService(
    "summarizer",
    w.InferenceServiceArgs(
        provider=provider,
        identity=identity,
        image=image,
        namespace=namespace,
        port=8000,
        metrics_path="/metrics",
        resources=Resources(cpu="2", memory="12Gi", cpu_limit="4", memory_limit="14Gi"),
        placement=platform.placement("gpu-inference"),
        gpus=1,
        model=platform.model_source(f"{prefix}/model", image=config.require("modelFetchImage")),
        autoscaling=w.Autoscaling(
            min_replicas=2, max_replicas=6, pods_metrics=[(platform.metric("requests_per_second"), "50")]
        ),
        route=platform.route(config.require("host"), health_check_path="/ready"),
    ),
)
w.BatchInferenceJob(
    "summarizer-nightly",
    w.BatchInferenceJobArgs(
        provider=provider,
        identity=identity,
        image=image,
        namespace=namespace,
        schedule="0 3 * * *",
        command=["python", "-m", "summarizer.nightly"],
        resources=Resources(cpu="1", memory="4Gi"),
        aws_policy_statements=platform.bucket_access(prefix, write=True),
    ),
)
sweep_namespace = platform.shared_namespace()  # where the shared claim lives
w.TrainingJob(
    "summarizer-sweep",
    w.TrainingJobArgs(
        provider=provider,
        identity=identity,
        image=image,
        namespace=sweep_namespace,
        command=["python", "-m", "summarizer.sweep"],
        completions=8,
        parallelism=2,
        resources=Resources(cpu="8", memory="48Gi"),
        placement=platform.placement("gpu-training-spot"),
        gpus=1,
        shared_volume=platform.shared_volume(sweep_namespace, "/mnt/shared"),
    ),
)
