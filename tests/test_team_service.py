"""The team project in examples/team-service, planned on top of the prod platform's planned outputs."""

from __future__ import annotations

import json
import re
import shutil
from functools import cache

import pytest
import yaml

from aiplatform.plan import cli as plan_tool
from aiplatform.plan.capacity_report import capacity_report
from aiplatform.plan.cost import cost_report, load_pricing
from aiplatform.plan.model import Plan
from aiplatform.plan.policy_report import policy_report
from aiplatform.validation import is_digest_pinned
from tests.program import planned
from tests.stacks import PROJECT_ROOT

TEAM = PROJECT_ROOT / "examples" / "team-service"


@cache
def team_plan() -> Plan:
    outputs = planned("prod").outputs
    return plan_tool.plan("prod", project_dir=TEAM, stack_outputs={"acme/aiplatform/prod": outputs})


def registered(typ: str) -> list:
    return [r for r in team_plan().registrations if r.type == typ]


def test_the_team_deploys_a_server_a_nightly_job_and_a_sweep_onto_the_platform():
    kinds = sorted(m["kind"] for m in team_plan_manifests())
    for kind in (
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "CronJob",
        "Service",
        "PodMonitor",
    ):
        assert kind in kinds
    # Nothing of the platform itself: no cluster, network, node group or chart.
    assert not [
        r for r in team_plan().registrations if r.type.startswith(("aws:eks", "aws:ec2", "kubernetes:helm"))
    ]


def team_plan_manifests() -> list[dict]:
    from aiplatform.plan.model import manifests

    return manifests(team_plan().registrations)


def test_every_kubernetes_object_goes_to_the_platform_cluster_through_its_secret_kubeconfig():
    (provider,) = registered("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "[secret]"
    k8s = [r for r in team_plan().registrations if r.custom and r.type.startswith("kubernetes:")]
    assert k8s and all(r.provider_urn == provider.urn for r in k8s)


def test_the_team_roles_trust_the_platform_oidc_provider_for_exactly_their_service_accounts():
    outputs = planned("prod").outputs
    issuer = outputs["oidcIssuerUrl"].removeprefix("https://")
    subjects = set()
    for role in registered("aws:iam/role:Role"):
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Federated": outputs["oidcProviderArn"]}
        assert statement["Condition"]["StringEquals"][f"{issuer}:aud"] == "sts.amazonaws.com"
        subjects.add(statement["Condition"]["StringEquals"][f"{issuer}:sub"])
    assert subjects == {
        "system:serviceaccount:ml-serving:summarizer",
        "system:serviceaccount:ml-serving:summarizer-nightly",
    }


def test_the_model_comes_from_the_team_prefix_of_the_platform_bucket():
    bucket = planned("prod").outputs["modelBucket"]
    (deployment,) = [m for m in team_plan_manifests() if m["kind"] == "Deployment"]
    (fetch,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert f"s3://{bucket}/teams/search/summarizer/model" in fetch["args"]
    for policy in registered("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            for resource in statement["Resource"]:
                assert resource.startswith(
                    (f"arn:aws:s3:::{bucket}/teams/search/summarizer/", "arn:aws:kms:")
                ) or (
                    resource == f"arn:aws:s3:::{bucket}"
                    and statement["Condition"]["StringLike"]["s3:prefix"][0].startswith(
                        "teams/search/summarizer/"
                    )
                )


def test_the_server_scales_on_a_metric_the_platform_serves_and_lands_on_its_gpu_group():
    platform = planned("prod").outputs
    manifests = {m["kind"]: m for m in team_plan_manifests()}
    metrics = manifests["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"] == ["requests_per_second"]
    assert "requests_per_second" in platform["customMetrics"]
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == platform["nodeGroups"]["gpu-inference"]["nodeSelector"]
    assert [t["key"] for t in pod["tolerations"]] == ["nvidia.com/gpu"]
    (server,) = [c for c in pod["containers"] if c["name"] == "server"]
    port = server["ports"][0]["containerPort"]
    assert (
        port in platform["namespaces"]["ml-serving"]["ingressPorts"]
    )  # the namespace admits the ALB's traffic


def test_the_route_is_the_platform_controller_with_tls_at_its_load_balancer():
    platform = planned("prod").outputs
    (ingress,) = [m for m in team_plan_manifests() if m["kind"] == "Ingress"]
    assert ingress["spec"]["ingressClassName"] == platform["ingressClass"]
    assert ingress["spec"]["rules"][0]["host"] == "summarizer.example.com"
    annotations = ingress["metadata"]["annotations"]
    assert (
        annotations["alb.ingress.kubernetes.io/certificate-arn"]
        == platform["ingressRoutes"]["certificateArn"]
    )
    assert annotations["alb.ingress.kubernetes.io/group.name"] == platform["ingressRoutes"]["groupName"]


def test_the_sweep_mounts_the_shared_claim_in_its_namespace_on_the_spot_gpu_group():
    (job,) = [m for m in team_plan_manifests() if m["kind"] == "Job"]
    assert job["metadata"]["namespace"] == "ml-training"
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["completionMode"]) == (
        8,
        2,
        "Indexed",
    )
    pod = job["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["training-shared"]
    assert {t["key"] for t in pod["tolerations"]} == {"nvidia.com/gpu", "aiplatform.io/spot"}


def test_the_team_runs_every_image_by_digest_as_the_platform_requires_in_prod():
    images = [
        container["image"]
        for manifest in team_plan_manifests()
        if manifest["kind"] in ("Deployment", "Job", "CronJob")
        for pod in [pod_template(manifest)]
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    ]
    assert len(images) == 4  # the server, its model fetcher, the nightly job, the sweep
    assert [image for image in images if not is_digest_pinned(image)] == []


def pod_template(manifest: dict) -> dict:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def test_the_team_plan_passes_the_policy_pack_in_prod():
    report = policy_report(team_plan())
    document = json.loads(report.files["policy.json"])
    assert document["environment"] == "prod"
    assert [v for v in document["violations"] if v["level"] == "mandatory"] == []
    assert not report.blocking


def test_the_team_capacity_is_reported_against_the_platform_groups_and_quotas_it_was_given():
    # The team's pods land on the platform's node groups, which the prod outputs describe.
    report = capacity_report(team_plan())
    assert (report.files, report.blocking) == ({}, False)
    lines = report.lines
    assert (
        lines[0]
        == "the team's pods on the groups of stack acme/aiplatform/prod (its outputs nodeGroups and namespaces)"
    )
    inference = lines.index(
        "gpu-inference (node group; g5.2xlarge: 7.91 CPU / 28.63 GiB, 58 pods, 1 GPU per node; the platform's "
        "DaemonSets take 0.305 CPU / 0.26 GiB of each; at most 10 nodes)"
    )
    assert lines[inference + 1] == "  summarizer x 2-6: 2 CPU / 12.00 GiB, 1 GPU (ml-serving)"
    # 10 nodes x (7.91 CPU - 0.305 of DaemonSets); 6 of the 10 GPUs at the HPA's maximum.
    assert lines[inference + 2].startswith(
        "  the team at its peak: 12 CPU / 72.00 GiB, 6 GPU, 6 pods of 10 nodes' 76.05 CPU / 283.72 GiB, 10 GPU"
    )
    assert "  summarizer-sweep x 0-2: 8 CPU / 48.00 GiB, 1 GPU (ml-training)" in lines
    assert "no node group selected (the untainted nodes take them): summarizer-nightly" in lines
    # The server (6 x 2 CPU) and the nightly job (1 CPU) against ml-serving's quota of 128 CPU / 12 GPUs.
    assert (
        "namespace ml-serving: the team at its peak requests 13 CPU / 76.00 GiB, 6 GPU of its quota "
        "128 CPU / 512Gi / 12 GPU (10% CPU, 15% memory, 50% GPU)"
    ) in lines
    assert not [line for line in lines if line.lstrip().startswith("warning:")]


def test_the_team_cost_is_its_pods_share_of_the_platform_nodes_and_not_the_shared_alb():
    pricing = load_pricing()
    document = json.loads(cost_report(team_plan()).files["cost.json"])
    items = {i["item"]: i for i in document["items"]}
    hours, on_demand = pricing["hours_per_month"], pricing["ec2_on_demand_hour"]
    # summarizer: one GPU of a 1-GPU g5.2xlarge per pod, 2 replicas always, 6 at most.
    server = items["EC2 share of gpu-inference (g5.2xlarge)"]
    assert (server["quantity_idle"], server["quantity_peak"]) == (2, 6)
    assert server["idle_monthly"] == round(2 * on_demand["g5.2xlarge"] * hours, 2)
    # The sweep: 2 parallel pods of one of a g6e.12xlarge's 4 GPUs, on a spot group; none idle.
    sweep = items["EC2 share of gpu-training-spot (g6e.12xlarge)"]
    assert (sweep["quantity_idle"], sweep["quantity_peak"]) == (0, 0.5)
    assert sweep["peak_monthly"] == round(
        0.5 * on_demand["g6e.12xlarge"] * (1 - pricing["spot_discount"]) * hours, 2
    )
    # The nightly job selects no group: the untainted system nodes, by its memory (4Gi of 13.76 GiB).
    nightly = items["EC2 share of system (m6i.xlarge)"]
    assert nightly["quantity_idle"] == 0 and 0.29 < nightly["quantity_peak"] < 0.30
    # The route joins the platform's ALB group: nothing billed for it here.
    alb = items["Application Load Balancers: the platform's, shared"]
    assert (alb["quantity_idle"], alb["idle_monthly"]) == (0, 0)
    assert "Application Load Balancers" not in items
    assert document["gpus"] == {"idle": 2, "peak": 6 + 2}


def test_a_team_plan_without_platform_outputs_says_why_it_reports_no_capacity():
    plan = team_plan()
    bare = Plan(stack=plan.stack, out_dir=plan.out_dir, run=plan.run, today=plan.today)
    assert capacity_report(bare).lines == [
        "not reported: the program registers no node group or node pool, and no platform outputs "
        "(--stack-outputs) describe the nodes its pods land on"
    ]


def test_the_cli_plans_the_team_project_and_without_the_platform_outputs_exits_2(tmp_path, capsys):
    outputs = tmp_path / "platform.json"
    outputs.write_text(json.dumps(planned("prod").outputs), encoding="utf-8")
    args = ["--stack", "prod", "--project-dir", str(TEAM), "--out", str(tmp_path / "team")]
    assert plan_tool.main([*args, "--stack-outputs", str(outputs)]) == 0
    written = (tmp_path / "team" / "resources.json").read_text()
    assert '"kubeconfig": "[secret]"' in written
    capsys.readouterr()
    assert plan_tool.main(args) == 2
    err = capsys.readouterr().err
    assert "stack acme/aiplatform/prod:" in err and "--stack-outputs" in err and "Traceback" not in err


def test_the_team_project_is_a_small_program_that_pins_what_the_platform_pins():
    program = (TEAM / "__main__.py").read_text(encoding="utf-8")
    code = [line for line in program.split('"""', 2)[2].splitlines() if line.strip()]
    assert len(code) <= 60
    assert (
        "aiplatform"
        in yaml.safe_load((TEAM / "Pulumi.prod.yaml").read_text())["config"]["team-service:platformStack"]
    )

    def pins(path):
        lines = path.read_text(encoding="utf-8").splitlines()
        return {
            m[1]: m[2] for line in lines if (m := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()))
        }

    team, platform = pins(TEAM / "requirements.txt"), pins(PROJECT_ROOT / "requirements.txt")
    assert team and all(platform[name] == version for name, version in team.items())
    assert "../.." in (TEAM / "requirements.txt").read_text().splitlines()


def test_the_kubeconfig_read_from_the_platform_stays_a_secret_in_every_file(tmp_path):
    outputs = dict(planned("prod").outputs, kubeconfig="apiVersion: v1\nclusters: [kubeconfig-canary-7d1f]")
    plan = plan_tool.plan("prod", out_dir=tmp_path, project_dir=TEAM, stack_outputs={"*": outputs})
    plan.write()
    (provider,) = [r for r in plan.registrations if r.type == "pulumi:providers:kubernetes"]
    assert provider.inputs["kubeconfig"] == "[secret]"
    for path in tmp_path.iterdir():
        assert "kubeconfig-canary-7d1f" not in path.read_text(encoding="utf-8")


# -- fit: what could never run on the platform is refused with the argument named ---------------------

SERVER = "InferenceService 'summarizer'"
SWEEP = "TrainingJob 'summarizer-sweep'"
FIT_CASES = [
    (
        "        gpus=1,\n        model=",
        "        gpus=4,\n        model=",
        f"{SERVER}: gpus: must be <= 1 (GPUs per node of 'gpu-inference')",
    ),
    (
        'resources=Resources(cpu="2", memory="12Gi", cpu_limit="4", memory_limit="14Gi")',
        'resources=Resources(cpu="30", memory="200Gi")',
        f"{SERVER}: resources: one pod requests 30 CPU / 200.00 GiB (with the platform's sidecar and init "
        "containers), more than a g5.2xlarge of 'gpu-inference' offers after its DaemonSets (7.605 CPU / 28.37 "
        "GiB): it would never be scheduled",
    ),
    (
        "min_replicas=2, max_replicas=6",
        "min_replicas=2, max_replicas=50",
        f"{SERVER}: autoscaling.max_replicas: at most 10 of 50 replicas can run: node group 'gpu-inference' "
        "fits 10 (10 nodes at most x 1 per node), namespace 'ml-serving' GPU quota fits 12 (12 GPUs, 1 per pod), "
        "namespace 'ml-serving' memory quota fits 42 (512Gi, 12.00 GiB per pod); lower max_replicas, raise "
        "those limits, or set accepts_lower_ceiling=True",
    ),
    (
        "port=8000,",
        "port=9000,",
        f"{SERVER}: port: 9000 is not a port namespace 'ml-serving' admits ingress traffic to (its network "
        "policies open 8000, 8080): the route would get no traffic; serve on one of them",
    ),
    (
        'placement=platform.placement("gpu-inference"),\n        gpus=1,\n        model=platform.model_source(f"{prefix}/model", image=config.require("modelFetchImage")),\n        autoscaling=w.Autoscaling(\n            min_replicas=2, max_replicas=6,',
        'placement=platform.placement("system"),\n        gpus=0,\n        model=platform.model_source(f"{prefix}/model", image=config.require("modelFetchImage")),\n        autoscaling=w.Autoscaling(\n            min_replicas=2, max_replicas=8,',
        f"{SERVER}: autoscaling.max_replicas: at most 6 of 8 replicas can run: node group 'system' fits 6 (6 "
        "nodes at most x 1 per m6i.xlarge by CPU and memory); lower max_replicas, raise those limits, or set "
        "accepts_lower_ceiling=True",
    ),
    (
        "w.BatchInferenceJob(",
        'w.InferenceService("ranker", w.InferenceServiceArgs(provider=provider, identity=identity, image=image, '
        'namespace=namespace, resources=Resources(cpu="2", memory="12Gi"), '
        'placement=platform.placement("gpu-inference"), gpus=1, '
        "autoscaling=w.Autoscaling(min_replicas=10, max_replicas=10)))\nw.BatchInferenceJob(",
        "InferenceService 'ranker': autoscaling.min_replicas: the model servers here always run 12 GPUs "
        "(summarizer 2, ranker 10) and a rollout starts 1 more: 13 is more than the namespace's GPU quota (12); "
        "lower autoscaling.min_replicas or raise the namespace's quota",
    ),
    (
        'pods_metrics=[(platform.metric("requests_per_second"), "50")]',
        'pods_metrics=[("queue_depth", "50")]',
        f"{SERVER}: autoscaling.pods_metrics[0]: the metrics adapter serves no metric 'queue_depth' (it "
        "serves: requests_per_second): the HPA would never scale",
    ),
]


def team_variant(tmp_path, old: str, new: str):
    project = tmp_path / "team"
    shutil.copytree(TEAM, project)
    program = (project / "__main__.py").read_text(encoding="utf-8")
    assert old in program
    (project / "__main__.py").write_text(program.replace(old, new), encoding="utf-8")
    return project


def plan_exit(tmp_path, project, outputs: dict) -> int:
    path = tmp_path / "platform.json"
    path.write_text(json.dumps(outputs), encoding="utf-8")
    return plan_tool.main(
        [
            "--stack",
            "prod",
            "--project-dir",
            str(project),
            "--stack-outputs",
            str(path),
            "--out",
            str(tmp_path / "o"),
        ]
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    FIT_CASES,
    ids=["gpus", "size", "replicas", "cpu-replicas", "shared-gpu-quota", "port", "metric"],
)
def test_a_team_workload_that_could_never_run_on_the_platform_exits_2_naming_the_argument(
    tmp_path, capsys, old, new, message
):
    project = team_variant(tmp_path, old, new)
    assert plan_exit(tmp_path, project, planned("prod").outputs) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_team_job_pod_larger_than_its_namespace_quota_exits_2(tmp_path, capsys):
    outputs = json.loads(json.dumps(planned("prod").outputs))
    outputs["namespaces"]["ml-training"]["quota"] = {"cpu": "2", "memory": "8Gi", "gpus": 32}
    project = team_variant(
        tmp_path,
        'resources=Resources(cpu="8", memory="48Gi"),',
        'resources=Resources(cpu="4", memory="16Gi"),',
    )
    assert plan_exit(tmp_path, project, outputs) == 2
    assert (
        f"{SWEEP}: resources: one pod requests 4 CPU / 16.00 GiB (with the platform's sidecar and init "
        "containers), more than namespace 'ml-training' admits in all (quota requests.cpu 2, requests.memory "
        "8Gi): quota admission refuses every pod"
    ) in capsys.readouterr().err


def test_the_platform_exports_what_the_fit_rules_read():
    outputs = planned("prod").outputs
    assert outputs["namespaces"]["ml-serving"]["quota"] == {"cpu": "128", "memory": "512Gi", "gpus": 12}
    group = outputs["nodeGroups"]["gpu-inference"]
    assert (group["kind"], group["maxNodes"], group["gpusPerNode"]) == ("node group", 10, 1)
    assert group["daemonSetRequests"] == {"cpuM": 305, "memoryMib": 264}
