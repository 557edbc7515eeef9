"""Monitoring of the whole program, for both committed stacks: what runs where, what it costs, what alerts."""

from __future__ import annotations

import json

import pytest
import yaml

from aiplatform.catalog.helm import effective_resources
from aiplatform.catalog.registry import BY_CHART
from aiplatform.plan import cli as plan_tool
from aiplatform.plan import runner
from aiplatform.scheduling import Taint, Toleration, is_tolerated
from tests.program import planned
from tests.stacks import EXAMPLE_STACKS, STACKS, stack_config

RELEASE = "kubernetes:helm.sh/v3:Release"
EKS_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
    "NO_EXECUTE": "NoExecute",
}


def of_type(stack, typ):
    return [r for r in planned(stack).registrations if r.type == typ]


def releases(stack):
    return {r.inputs["chart"]: r for r in planned(stack).registrations if r.type == RELEASE}


def node_group_taints(stack):
    """The taints each registered EKS node group puts on its nodes, keyed by the group's resource name."""
    return {
        r.name: [Taint(t["key"], t["value"], EKS_EFFECTS[t["effect"]]) for t in r.inputs.get("taints", [])]
        for r in planned(stack).registrations
        if r.type == "aws:eks/nodeGroup:NodeGroup"
    }


@pytest.mark.parametrize("stack", STACKS)
def test_the_node_exporter_runs_on_every_node_group(stack):
    exporter = releases(stack)["kube-prometheus-stack"].inputs["values"]["prometheus-node-exporter"]
    tolerations = [Toleration(**t) for t in exporter["tolerations"]]
    groups = node_group_taints(stack)
    assert len(groups) >= 3
    for group, taints in groups.items():
        assert [t for t in taints if not is_tolerated(t, tolerations)] == [], group


def test_prod_node_exporter_tolerates_every_taint():
    exporter = releases("prod")["kube-prometheus-stack"].inputs["values"]["prometheus-node-exporter"]
    assert exporter["tolerations"] == [{"key": "", "operator": "Exists"}]


@pytest.mark.parametrize("stack", STACKS)
def test_no_scrape_job_targets_what_the_eks_control_plane_never_exposes(stack):
    values = releases(stack)["kube-prometheus-stack"].inputs["values"]
    assert {k: values[k] for k in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")} == {
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_runs_its_containers_with_exactly_the_resources_the_program_states(stack):
    installed = releases(stack)
    assert set(installed) == {
        "external-secrets",
        "aws-load-balancer-controller",
        "nvidia-device-plugin",
        "dcgm-exporter",
        "cluster-autoscaler",
        "kube-prometheus-stack",
        "prometheus-adapter",
    }
    for chart, release in installed.items():
        values = release.inputs["values"]
        files = [yaml.safe_load(f["text"]) for f in release.inputs.get("valueYamlFiles", [])]
        effective = effective_resources(chart, values, files)
        assert set(effective) == {".".join(p) for p in BY_CHART[chart].resources}
        for path, resources in effective.items():
            stated = values
            for key in path.split("."):
                stated = stated[key]
            assert resources == stated, (chart, path)
            # Requests to schedule by and a memory ceiling, on every container.
            assert set(resources["requests"]) == {"cpu", "memory"}, (chart, path)
            assert "memory" in resources["limits"], (chart, path)


@pytest.mark.parametrize("stack", STACKS)
def test_gpu_metrics_follow_the_gpu_groups_dev_included(stack):
    dcgm = releases(stack)["dcgm-exporter"]
    assert dcgm.inputs["version"] == "4.8.3"
    # Scraped by the Prometheus of the stack, on the nodes the device plugin runs on.
    assert dcgm.inputs["values"]["serviceMonitor"]["enabled"] is True
    plugin = releases(stack)["nvidia-device-plugin"]
    assert dcgm.inputs["values"]["tolerations"] == plugin.inputs["values"]["tolerations"]
    assert releases(stack)["kube-prometheus-stack"].urn in dcgm.dependencies


# -- alerting --------------------------------------------------------------------------------------
def test_prod_alertmanager_reads_the_receiver_url_from_the_secret_the_external_secret_chain_syncs():
    alertmanager = releases("prod")["kube-prometheus-stack"].inputs["values"]["alertmanager"]
    assert alertmanager["enabled"] is True
    (mounted,) = alertmanager["alertmanagerSpec"]["secrets"]
    (receiver,) = [r for r in alertmanager["config"]["receivers"] if r["name"] != "null"]
    assert alertmanager["config"]["route"]["receiver"] == receiver["name"] == "slack"
    (slack,) = receiver["slack_configs"]
    assert slack["channel"] == "#ml-platform-alerts"
    assert "api_url" not in slack  # the URL itself is nowhere in the values

    # The file Alertmanager reads is a key of the Secret the operator keeps in sync in its namespace ...
    (external,) = [
        r
        for r in of_type("prod", "kubernetes:external-secrets.io/v1:ExternalSecret")
        if r.inputs["metadata"]["namespace"] == "monitoring"
    ]
    spec = external.inputs["spec"]
    (item,) = spec["data"]
    assert slack["api_url_file"] == f"/etc/alertmanager/secrets/{spec['target']['name']}/{item['secretKey']}"
    assert mounted == spec["target"]["name"] == "alertmanager-receiver"
    # ... from a Secrets Manager secret under the stack's key, which the operator's role may read.
    (secret,) = [
        r
        for r in of_type("prod", "aws:secretsmanager/secret:Secret")
        if r.inputs["name"] == item["remoteRef"]["key"]
    ]
    assert secret.inputs["name"] == "aiplatform-prod/alertmanager-receiver"
    (namespace,) = [
        r for r in of_type("prod", "kubernetes:core/v1:Namespace") if r.name == "aiplatform-metrics-ns"
    ]
    assert namespace.urn in external.dependencies
    policies = [
        json.loads(r.inputs["policy"])
        for r in of_type("prod", "aws:iam/rolePolicy:RolePolicy")
        if r.name.startswith("aiplatform-secrets-")
    ]
    readable = [
        resource
        for policy in policies
        for statement in policy["Statement"]
        if "secretsmanager:GetSecretValue" in statement["Action"]
        for resource in statement["Resource"]
    ]
    assert [arn.rsplit(":secret:", 1)[1][:-7] for arn in readable] == [
        "aiplatform-prod/alertmanager-receiver",
        "aiplatform-prod/openai-secret",
    ]


def test_dev_runs_no_alertmanager():
    alertmanager = releases("dev")["kube-prometheus-stack"].inputs["values"]["alertmanager"]
    assert alertmanager["enabled"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_the_platform_alerts_are_one_prometheus_rule_installed_after_its_crd(stack):
    (rule,) = of_type(stack, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    assert rule.inputs["metadata"]["namespace"] == "monitoring"
    assert releases(stack)["kube-prometheus-stack"].urn in rule.dependencies
    alerts = [r["alert"] for g in rule.inputs["spec"]["groups"] for r in g["rules"]]
    assert sorted(set(alerts)) == [
        "BatchJobFailed",
        "BatchJobMissedSchedule",
        "GpuMemoryNearFull",
        "GpuXidError",
        "InferenceAtMaxReplicas",
        "NodeGroupAtMaximum",
        "PodPendingTooLong",
        "TrainingJobFailed",
    ]
    # kube-state-metrics exposes the node-group label the node-group rule counts by.
    ksm = releases(stack)["kube-prometheus-stack"].inputs["values"]["kube-state-metrics"]
    assert ksm["metricLabelsAllowlist"] == ["nodes=[aiplatform.io/node-group]"]


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_no_two_alert_rules_share_their_name_and_static_labels(stack):
    """promtool check rules --lint-fatal (make test-rules) refuses such duplicates."""
    (rule,) = of_type(stack, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    keys = [
        (r["alert"], tuple(sorted(r["labels"].items())))
        for g in rule.inputs["spec"]["groups"]
        for r in g["rules"]
    ]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_dev_alert_rules_name_its_services_jobs_and_groups_exactly():
    (rule,) = of_type("dev", "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    rules = {}
    for group in rule.inputs["spec"]["groups"]:
        for r in group["rules"]:
            rules.setdefault(r["alert"], []).append(r["expr"])
    assert rules["NodeGroupAtMaximum"] == [
        'count by (label_aiplatform_io_node_group) (kube_node_labels{label_aiplatform_io_node_group="system"}) >= 3',
        'count by (label_aiplatform_io_node_group) (kube_node_labels{label_aiplatform_io_node_group="gpu-inference"})'
        " >= 3",
        'count by (label_aiplatform_io_node_group) (kube_node_labels{label_aiplatform_io_node_group="gpu-training"})'
        " >= 2",
    ]
    # Only llama-inference autoscales in dev.
    assert rules["InferenceAtMaxReplicas"] == [
        "max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas"
        '{namespace="ml-serving",horizontalpodautoscaler="llama-inference"}) >= max by (namespace, '
        "horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas"
        '{namespace="ml-serving",horizontalpodautoscaler="llama-inference"})'
    ]
    assert rules["BatchJobMissedSchedule"] == [
        'time() - max by (namespace, cronjob) (kube_cronjob_next_schedule_time{namespace="ml-serving",'
        'cronjob="nightly-batch-predict"}) > 600'
    ]


def test_the_gpu_alerts_name_the_node_the_dcgm_service_monitor_labels():
    dcgm = releases("prod")["dcgm-exporter"].inputs["values"]["serviceMonitor"]
    assert dcgm["relabelings"] == [
        {"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}
    ]


def test_the_receiver_url_appears_nowhere_in_the_plan(tmp_path, monkeypatch):
    leak = "https://hooks.slack.example/services/DO-NOT-LEAK-7c1e"
    monkeypatch.setattr(runner, "SECURE_PLACEHOLDER", json.dumps({"webhook-url": leak}))
    config = stack_config("prod")
    config["aiplatform:alertingWebhook"] = {"secure": "v1:ciphertext"}
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump({"config": config}), encoding="utf-8")
    out = tmp_path / "out"
    assert plan_tool.main(["--stack", "prod", "--config-file", str(path), "--out", str(out)]) == 0
    written = {f.name: f.read_text() for f in out.iterdir()}
    assert all(leak not in text for text in written.values())
    resources = json.loads(written["resources.json"])
    (seed,) = [
        r
        for r in resources
        if r["type"] == "aws:secretsmanager/secretVersion:SecretVersion"
        and "alertmanager-receiver" in r["name"]
    ]
    assert seed["inputs"]["secretString"] == "[secret]"
