"""A program built from components (tests/programs/components_team), planned as a user plans it: as
written it plans with exit 0, a model bucket's output chained into the server; each mistake a user
makes plans with exit 2 and one line naming the component and the argument, no traceback."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from aiplatform.plan import cli as plan_tool
from tests.stacks import PROJECT_ROOT

PROGRAM = PROJECT_ROOT / "tests" / "programs" / "components_team"
SERVER = "InferenceService 'summarizer'"


def plan(tmp_path, capsys, old: str = "", new: str = "") -> tuple[int, str]:
    project = tmp_path / "program"
    shutil.copytree(PROGRAM, project)
    main = project / "__main__.py"
    text = main.read_text(encoding="utf-8")
    assert old in text, old
    main.write_text(text.replace(old, new, 1), encoding="utf-8")
    args = [
        "--stack",
        "dev",
        "--project-dir",
        str(project),
        "--out",
        str(tmp_path / "out"),
        "--today",
        "2026-12-07",
    ]
    code = plan_tool.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_program_plans_and_the_server_fetches_from_the_bucket_of_the_same_program(tmp_path, capsys):
    code, output = plan(tmp_path, capsys)
    assert code == 0, output
    assert "0 mandatory violations, 0 advisory violations" in output  # the prefixed bucket is private
    resources = json.loads((tmp_path / "out" / "resources.json").read_text())
    (bucket,) = [r for r in resources if r["type"] == "aws:s3/bucket:Bucket"]
    assert bucket["inputs"]["bucketPrefix"] == "demo-models"
    (deployment,) = [r for r in resources if r["type"] == "kubernetes:apps/v1:Deployment"]
    (fetch,) = deployment["inputs"]["spec"]["template"]["spec"]["initContainers"]
    assert re.fullmatch(r"s3://demo-models[0-9]{26}/summarizer", fetch["args"][2]), fetch["args"]


MISTAKES = [
    (
        "        gpus=1,\n",
        "        gpus=4,\n",
        f"{SERVER}: gpus: must be <= 1 (GPUs per node of 'gpu-inference')",
    ),
    (
        'resources=Resources(cpu="2", memory="12Gi")',
        'resources=Resources(cpu="30", memory="200Gi")',
        f"{SERVER}: resources: one pod requests 30 CPU / 200.00 GiB (with the platform's sidecar and init "
        "containers), more than a g5.2xlarge of 'gpu-inference' offers (7.91 CPU / 28.63 GiB): it would never "
        "be scheduled",
    ),
    (
        "min_replicas=2, max_replicas=6",
        "min_replicas=2, max_replicas=50",
        f"{SERVER}: autoscaling.max_replicas: at most 10 of 50 replicas can run: node group 'gpu-inference' "
        "fits 10 (10 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 12 (12 GPUs, 1 per "
        "pod), namespace 'ml-serving' CPU quota fits 32 (64 CPU, 2 per pod), namespace 'ml-serving' memory "
        "quota fits 21 (256Gi, 12.00 GiB per pod); lower max_replicas, raise those limits, or set "
        "accepts_lower_ceiling=True",
    ),
    (
        "        port=8000,\n",
        "        port=9000,\n",
        f"{SERVER}: port: 9000 is not a port namespace 'ml-serving' admits ingress traffic to (its network "
        "policies open 8000, 8080): the route would get no traffic; serve on one of them",
    ),
    (
        'resources=Resources(cpu="1", memory="4Gi")',
        'resources=Resources(cpu="80", memory="16Gi")',
        "BatchInferenceJob 'nightly': resources: one pod requests 80 CPU / 16.00 GiB (with the platform's "
        "sidecar and init containers), more than namespace 'ml-serving' admits in all (quota requests.cpu 64, "
        "requests.memory 256Gi): quota admission refuses every pod",
    ),
    (
        'gpus=1,\n        placement=nodes.placements["gpu-inference"],',
        'gpus=0,\n        placement=nodes.placements["system"],',
        f"{SERVER}: autoscaling.max_replicas: at most 4 of 6 replicas can run: node group 'system' fits 4 (4 "
        "nodes at most x 1 per m6i.xlarge by CPU and memory); lower max_replicas, raise those limits, or set "
        "accepts_lower_ceiling=True",
    ),
    (
        "BatchInferenceJob(\n",
        'InferenceService(\n    "ranker",\n    InferenceServiceArgs(\n        provider=cluster.provider,\n'
        '        namespace=serving.workload_namespace,\n        image="registry.example.com/ranker:1.0.0",\n'
        '        resources=Resources(cpu="24", memory="4Gi"),\n'
        "        autoscaling=Autoscaling(min_replicas=2, max_replicas=2),\n    ),\n)\nBatchInferenceJob(\n",
        "InferenceService 'ranker': autoscaling.min_replicas: the model servers here always request 52 CPU "
        "(summarizer 4, ranker 48) and a rollout starts a pod of 24 more: 76 is more than the namespace's CPU "
        "quota (64); lower autoscaling.min_replicas or raise the namespace's quota",
    ),
    (
        'resources=Resources(cpu="2", memory="12Gi")',
        'resources={"cpu": "2", "memory": "12Gi"}',
        f"{SERVER}: resources: got a dict, expected Resources: pass Resources(...)",
    ),
    (
        "        port=8000,\n",
        "        port=8000,\n        replica=3,\n",
        "InferenceServiceArgs.__init__() got an unexpected keyword argument 'replica' (did you mean 'replicas'?)",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    MISTAKES,
    ids=["gpus", "pod-size", "replicas", "port", "quota", "cpu-replicas", "shared-quota", "dict", "keyword"],
)
def test_each_mistake_plans_with_exit_2_naming_the_argument(tmp_path, capsys, old, new, message):
    code, output = plan(tmp_path, capsys, old, new)
    assert code == 2, output
    assert "Traceback" not in output
    assert any(line.startswith("error: ") and message in line for line in output.splitlines()), output
    assert not (tmp_path / "out").exists()
