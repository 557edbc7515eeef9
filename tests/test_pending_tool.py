"""python -m tools.pending: the pending creates of an exported state, listed and settled."""

from __future__ import annotations

import json

import pytest

from tools import pending

STACK = "urn:pulumi:dev::aiplatform::aiplatform:index:AiPlatform"
ROLE = f"{STACK}$aws:iam/role:Role::eso-role"
RELEASE = f"{STACK}$kubernetes:helm.sh/v3:Release::autoscaler"
DEPLOYMENT = f"{STACK}$kubernetes:apps/v1:Deployment::llama"


def _op(kind: str, urn: str, typ: str, inputs: dict) -> dict:
    return {
        "type": kind,
        "resource": {"urn": urn, "type": typ, "custom": True, "inputs": inputs, "parent": STACK},
    }


def state() -> dict:
    return {
        "version": 3,
        "deployment": {
            "resources": [{"urn": STACK, "type": "aiplatform:index:AiPlatform"}],
            "pending_operations": [
                _op("creating", ROLE, "aws:iam/role:Role", {"name": "eso-1a2b3c4", "tags": {"team": "ml"}}),
                _op(
                    "creating",
                    RELEASE,
                    "kubernetes:helm.sh/v3:Release",
                    {"name": "cluster-autoscaler", "namespace": "kube-system", "chart": "cluster-autoscaler"},
                ),
                _op(
                    "updating",
                    DEPLOYMENT,
                    "kubernetes:apps/v1:Deployment",
                    {"kind": "Deployment", "metadata": {"name": "llama", "namespace": "ml-serving"}},
                ),
            ],
        },
    }


def test_pending_operations_are_listed_with_what_names_each():
    listed = pending.pending(state())
    assert [(p["operation"], p["type"]) for p in listed] == [
        ("creating", "aws:iam/role:Role"),
        ("creating", "kubernetes:helm.sh/v3:Release"),
        ("updating", "kubernetes:apps/v1:Deployment"),
    ]
    assert listed[0]["names"] == {"name": "eso-1a2b3c4", "tags": {"team": "ml"}}
    assert listed[2]["names"] == {"namespace": "ml-serving", "name": "llama", "kind": "Deployment"}


def test_an_imported_create_becomes_a_resource_and_the_other_creates_go():
    settled = pending.settle(state(), {RELEASE: "kube-system/cluster-autoscaler"})
    deployment = settled["deployment"]
    imported = deployment["resources"][-1]
    assert imported["urn"] == RELEASE and imported["id"] == "kube-system/cluster-autoscaler"
    assert imported["outputs"]["name"] == "cluster-autoscaler" and imported["parent"] == STACK
    # The role's create is dropped; the Deployment's update stays for the refresh.
    assert [op["resource"]["urn"] for op in deployment["pending_operations"]] == [DEPLOYMENT]
    assert len(state()["deployment"]["resources"]) == 1  # the input is not changed


def test_an_import_of_something_not_pending_is_refused_naming_it():
    with pytest.raises(pending.PendingError, match="not a pending create of this state: .*llama"):
        pending.settle(state(), {DEPLOYMENT: "ml-serving/llama"})
    with pytest.raises(pending.PendingError, match="needs the resource's id"):
        pending.settle(state(), {ROLE: ""})


def test_the_command_lists_and_writes_the_settled_state(tmp_path, capsys):
    exported, out = tmp_path / "state.json", tmp_path / "repaired.json"
    exported.write_text(json.dumps(state()))
    assert pending.main([str(exported)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["urn"] == ROLE
    assert pending.main([str(exported), "--import", ROLE, "eso-1a2b3c4", "--out", str(out)]) == 0
    assert "1 pending creates imported, 1 dropped" in capsys.readouterr().err
    assert json.loads(out.read_text())["deployment"]["resources"][-1]["id"] == "eso-1a2b3c4"
    assert pending.main([str(exported), "--import", DEPLOYMENT, "x", "--out", str(out)]) == 2
    assert "not a pending create" in capsys.readouterr().err


SERVICE = f"{STACK}$kubernetes:core/v1:Service::llama-service"


def _with_object_create() -> dict:
    exported = state()
    exported["deployment"]["pending_operations"].append(
        _op(
            "creating",
            SERVICE,
            "kubernetes:core/v1:Service",
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "llama", "namespace": "ml-serving"}},
        )
    )
    return exported


def test_an_imported_kubernetes_object_keeps_the_field_manager_that_applied_it():
    exported = _with_object_create()
    settled = pending.settle(exported, {SERVICE: "ml-serving/llama"}, {SERVICE: "pulumi-kubernetes-1f2e3d4c"})
    imported = next(r for r in settled["deployment"]["resources"] if r["urn"] == SERVICE)
    assert imported["outputs"][pending.FIELD_MANAGER_KEY] == "pulumi-kubernetes-1f2e3d4c"
    assert pending.FIELD_MANAGER_KEY not in imported["inputs"]  # what was sent stays as it was
    assert imported["outputs"]["metadata"] == {"name": "llama", "namespace": "ml-serving"}


def test_a_field_manager_only_for_an_imported_kubernetes_object():
    exported = _with_object_create()
    with pytest.raises(pending.PendingError, match="not imported"):
        pending.settle(exported, {}, {SERVICE: "pulumi-kubernetes-1f2e3d4c"})
    with pytest.raises(pending.PendingError, match="is not a Kubernetes object"):
        pending.settle(exported, {RELEASE: "kube-system/cluster-autoscaler"}, {RELEASE: "helm"})
    with pytest.raises(pending.PendingError, match="is not a Kubernetes object"):
        pending.settle(exported, {ROLE: "eso-1a2b3c4"}, {ROLE: "pulumi-kubernetes-1f2e3d4c"})


def test_the_command_takes_field_managers(tmp_path):
    exported, out = tmp_path / "state.json", tmp_path / "repaired.json"
    exported.write_text(json.dumps(_with_object_create()))
    argv = [str(exported), "--import", SERVICE, "ml-serving/llama"]
    argv += ["--field-manager", SERVICE, "pulumi-kubernetes-1f2e3d4c", "--out", str(out)]
    assert pending.main(argv) == 0
    resources = json.loads(out.read_text())["deployment"]["resources"]
    imported = next(r for r in resources if r["urn"] == SERVICE)
    assert imported["outputs"][pending.FIELD_MANAGER_KEY] == "pulumi-kubernetes-1f2e3d4c"
