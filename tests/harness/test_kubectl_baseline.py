"""The kubectl baseline of the scale figures: which of the plan's objects it applies, where and in which
order, what it waits for, and the program / kubectl ratios."""

from __future__ import annotations

import pytest

from tools.bench import MAX_GROUP_SIZE, bench_config
from tools.e2e.kubectl_baseline import (
    INSTALL_ORDER,
    SUFFIX,
    baseline_manifests,
    is_shared,
    ratios,
    readiness,
    wait_commands,
)
from tools.e2e.scale import KUBECTL_OPERATIONS, OPERATIONS, scale_config, table
from tools.e2e.toolchain import KUBERNETES_RELEASES, kubectl_tool


def _doc(kind: str, name: str, namespace: str | None = None, api: str = "v1", **rest) -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    if "annotations" in rest:
        metadata["annotations"] = rest.pop("annotations")
    return {"apiVersion": api, "kind": kind, "metadata": metadata, **rest}


SELECTOR = {"selector": {"app": "x"}}
PLAN = [
    _doc("Ingress", "web", "serving", "networking.k8s.io/v1", spec={"ingressClassName": "alb"}),
    _doc("Deployment", "web", "serving", "apps/v1", spec={}),
    _doc("Deployment", "fixed", "serving", "apps/v1", spec={"replicas": 3}),
    _doc("Service", "web", "serving", spec=SELECTOR),
    _doc("Service", "headless", "serving", spec={**SELECTOR, "clusterIP": "None"}),
    _doc("Service", "external", "serving", spec={"type": "ExternalName", "externalName": "a.example.com"}),
    _doc("PodMonitor", "web", "serving", "monitoring.coreos.com/v1", spec={}),
    _doc("LimitRange", "limits", "serving", spec={}),
    _doc("ResourceQuota", "quota", "serving", spec={}),
    _doc("Namespace", "serving"),
    _doc("StorageClass", "gp3", api="storage.k8s.io/v1", provisioner="ebs.csi.aws.com"),
    _doc("Job", "train", "training", "batch/v1", annotations={"pulumi.com/skipAwait": "true"}, spec={}),
    _doc("Job", "once", "training", "batch/v1", spec={}),
]


def test_namespaced_objects_move_to_the_suffixed_namespaces_and_undeclared_ones_are_declared():
    docs = baseline_manifests(PLAN)
    namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
    assert sorted(namespaces) == [f"serving{SUFFIX}", f"training{SUFFIX}"]  # training: used, not declared
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        f"serving{SUFFIX}",
        f"training{SUFFIX}",
    }
    assert "StorageClass" not in {d["kind"] for d in docs}  # the program's own: already there
    assert is_shared(PLAN[10]) and not is_shared(PLAN[9]) and not is_shared(PLAN[0])
    assert PLAN[9]["metadata"]["name"] == "serving"  # the plan's documents are not changed


def test_objects_follow_the_install_order_stably_with_custom_resources_last():
    kinds = [d["kind"] for d in baseline_manifests(PLAN)]
    assert kinds[:2] == ["Namespace", "Namespace"]
    assert kinds.index("ResourceQuota") < kinds.index("LimitRange") < kinds.index("Deployment")
    assert kinds.index("Service") < kinds.index("Deployment") < kinds.index("Job") < kinds.index("Ingress")
    assert kinds[-1] == "PodMonitor"  # not in Helm's order: after every kind that is
    services = [d["metadata"]["name"] for d in baseline_manifests(PLAN) if d["kind"] == "Service"]
    assert services == ["web", "headless", "external"]  # the plan's order within a kind
    assert INSTALL_ORDER.index("Namespace") == 1 and INSTALL_ORDER[-1] == "APIService"


def test_readiness_is_what_the_provider_awaits_and_skip_await_is_honoured():
    ready = readiness(baseline_manifests(PLAN))
    ns = f"serving{SUFFIX}"
    assert ready.deployments == {ns: ["fixed"]}
    assert ready.scaled == {ns: ["web"]}  # no replicas in the manifest: an HPA's
    assert ready.services == {ns: ["web"]}  # neither headless nor ExternalName
    assert ready.ingresses == {ns: ["web"]}
    assert ready.jobs == {f"training{SUFFIX}": ["once"]}
    assert ready.count() == 5


def test_one_wait_per_namespace_and_check_naming_every_object():
    commands = wait_commands(readiness(baseline_manifests(PLAN)), 600)
    assert ["wait", "-n", f"serving{SUFFIX}", "--for=condition=Available", "--timeout=600s"] == commands[0][
        :5
    ]
    assert commands[0][5:] == ["deployment/fixed"]
    by_resource = {c[5]: c[3] for c in commands}
    assert {k.split("/")[0] for k in by_resource} == {"deployment", "endpoints", "ingress", "job"}
    assert {by_resource["deployment/fixed"], by_resource["deployment/web"]} == {
        "--for=condition=Available",
        "--for=jsonpath={.status.availableReplicas}",
    }
    assert by_resource["deployment/web"] == "--for=jsonpath={.status.availableReplicas}"
    by_resource = {k.split("/")[0]: v for k, v in by_resource.items() if k != "deployment/web"}
    assert by_resource == {
        "deployment": "--for=condition=Available",
        "endpoints": "--for=jsonpath={.subsets[0].addresses[0].ip}",
        "ingress": "--for=jsonpath={.status.loadBalancer.ingress}",
        "job": "--for=condition=Complete",
    }


def test_ratios_are_program_over_kubectl_for_the_operations_both_timed():
    program = {"preview": 4.0, "up": 30.0, "destroy": 20.0}
    assert ratios(program, {"up": 12.0, "destroy": 0.0}) == {"up": 2.5, "destroy": None}


def test_the_scale_stack_doubles_each_node_group_limit_within_eks_maximum():
    base, scaled = bench_config(10), scale_config(10)
    for group in [scaled["aiplatform:nodeGroups"]["system"], *scaled["aiplatform:nodeGroups"]["gpu"]]:
        before = next(
            g
            for g in [base["aiplatform:nodeGroups"]["system"], *base["aiplatform:nodeGroups"]["gpu"]]
            if g.get("name") == group.get("name")
        )
        assert group["scaling"]["maxSize"] == min(MAX_GROUP_SIZE, 2 * before["scaling"]["maxSize"])
        assert group["scaling"]["minSize"] == before["scaling"]["minSize"]


def test_the_table_shows_program_over_kubectl():
    row = {
        "services": 10,
        "resources": 311,
        "parallel": 8,
        "program_seconds": dict.fromkeys(OPERATIONS, 30.0),
        "floor_seconds": dict.fromkeys(OPERATIONS, 10.0),
        "ratio": dict.fromkeys(OPERATIONS, 3.0),
        "kubectl_seconds": dict.fromkeys(KUBECTL_OPERATIONS, 12.0),
        "kubectl_ratio": dict.fromkeys(KUBECTL_OPERATIONS, 2.5),
        "floor_up_with_checkpoints_seconds": None,
        "peak_memory_mib": {},
    }
    assert "up 30.0/12.0=2.50   destroy 30.0/12.0=2.50" in table([row])


@pytest.mark.parametrize("minor", sorted(KUBERNETES_RELEASES))
def test_kubectl_is_built_at_the_control_plane_release_of_its_minor(minor):
    tool = kubectl_tool(minor)
    assert tool.version == KUBERNETES_RELEASES[minor] and tool.key == f"kubectl-{tool.version}"
    assert tool.accepts_path_version(KUBERNETES_RELEASES[minor])
    assert not tool.accepts_path_version("v1.32.4")


def test_a_failed_baseline_is_named_and_the_program_figures_stay():
    row = {
        "services": 50,
        "resources": 791,
        "parallel": 8,
        "program_seconds": dict.fromkeys(OPERATIONS, 30.0),
        "floor_seconds": dict.fromkeys(OPERATIONS, 10.0),
        "ratio": dict.fromkeys(OPERATIONS, 3.0),
        "kubectl_seconds": {"error": "kubectl wait: timed out"},
        "kubectl_ratio": None,
        "floor_up_with_checkpoints_seconds": None,
        "peak_memory_mib": {},
    }
    text = table([row])
    assert "50  kubectl baseline failed: kubectl wait: timed out" in text
    assert "30.0/ 10.0= 3.00" in text
