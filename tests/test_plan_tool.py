"""The offline plan: its files, its exit codes and its redaction of secrets."""

from __future__ import annotations

import json

import pytest
import yaml

from aiplatform.plan import cli as plan_tool
from aiplatform.plan import runner
from tests.stacks import stack_config

RESOURCE_KEYS = {"urn", "type", "name", "parent", "custom", "provider", "dependencies", "inputs"}


def write_config(path, config):
    path.write_text(yaml.safe_dump({"config": config}), encoding="utf-8")
    return path


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_plan_writes_resources_manifests_and_outputs(stack, tmp_path, capsys):
    assert plan_tool.main(["--stack", stack, "--out", str(tmp_path)]) == 0
    resources = json.loads((tmp_path / "resources.json").read_text())
    assert resources and all(set(r) == RESOURCE_KEYS for r in resources)
    assert len({r["urn"] for r in resources}) == len(resources)
    documents = list(yaml.safe_load_all((tmp_path / "manifests.yaml").read_text()))
    assert documents and all(d["apiVersion"] and d["kind"] and d["metadata"]["name"] for d in documents)
    kinds = {d["kind"] for d in documents}
    assert {"Namespace", "ClusterSecretStore", "ExternalSecret", "StorageClass"} <= kinds
    assert not kinds & {"Release"}
    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert outputs["kubeconfig"] == "[secret]"
    capacity = json.loads((tmp_path / "capacity.json").read_text())
    system = next(g for g in capacity["groups"] if g["group"] == "system")
    assert system["at_min"]["fits"] and system["instance"] == {"dev": "t3.large", "prod": "m6i.xlarge"}[stack]
    printed = capsys.readouterr().out
    assert f"Plan for stack '{stack}'" in printed and "external-secrets 2.10.0" in printed
    assert "Capacity:" in printed


def test_a_broken_config_exits_2_with_the_key_path_and_no_traceback(tmp_path, capsys):
    config = stack_config("dev")
    config["aiplatform:workloads"]["inference"][0]["autoscaling"]["maxReplicas"] = 1
    config["aiplatform:monitoring"] = {"enabled": True}
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--stack", "dev", "--config-file", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "aiplatform:workloads.inference[0].autoscaling.maxReplicas: must be >= minReplicas (2)" in err
    assert "aiplatform:monitoring: unknown key" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read the stack file"),
        ("config: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "a stack file is a mapping"),
        ("config: 42\n", "'config:' must be a mapping"),
    ],
)
def test_unusable_stack_files_exit_2(tmp_path, capsys, content, expected):
    path = tmp_path / "Pulumi.broken.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert plan_tool.main(["--stack", "broken", "--config-file", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_a_section_given_as_a_secret_is_rejected(tmp_path, capsys):
    config = stack_config("dev")
    config["aiplatform:network"] = {"secure": "v1:AAAA"}
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--config-file", str(path), "--out", str(tmp_path)]) == 2
    assert "aiplatform:network: must not be a secret" in capsys.readouterr().err


def test_secret_values_appear_nowhere_in_the_plan(tmp_path, monkeypatch):
    leak = "sk-test-DO-NOT-LEAK-4f9a"
    monkeypatch.setattr(
        runner, "SECURE_PLACEHOLDER", json.dumps({"api-key": leak, "huggingface-token": leak})
    )
    config = stack_config("prod")
    config["aiplatform:openaiSecret"] = {"secure": "v1:ciphertext"}
    path = write_config(tmp_path / "Pulumi.prod.yaml", config)
    out = tmp_path / "out"
    assert plan_tool.main(["--stack", "prod", "--config-file", str(path), "--out", str(out)]) == 0

    written = {f.name: f.read_text() for f in out.iterdir()}
    assert {"resources.json", "manifests.yaml", "outputs.json"} <= set(written)
    assert all(leak not in text for text in written.values())
    resources = json.loads(written["resources.json"])
    (version,) = [r for r in resources if r["type"] == "aws:secretsmanager/secretVersion:SecretVersion"]
    assert version["inputs"]["secretString"] == "[secret]"


def test_an_empty_section_is_named(tmp_path, capsys):
    config = stack_config("dev")
    config["aiplatform:observability"] = None
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--config-file", str(path), "--out", str(tmp_path)]) == 2
    assert "aiplatform:observability: is empty: give it a value or remove the key" in capsys.readouterr().err


def test_a_stack_without_an_optional_section_plans_with_the_project_files_default(tmp_path, capsys):
    config = stack_config("dev")
    del config["aiplatform:tags"]
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--config-file", str(path), "--out", str(tmp_path / "out")]) == 0


def test_a_stack_without_a_required_section_fails_as_the_pulumi_cli_fails_it(tmp_path, capsys):
    config = stack_config("dev")
    del config["aiplatform:cluster"]
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--stack", "what-if", "--config-file", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        "error: validating stack config: Stack 'what-if' is missing configuration value 'aiplatform:cluster'"
        in err
    )


def test_a_stack_without_a_region_exits_2_naming_the_key(tmp_path, capsys):
    config = stack_config("dev")
    del config["aws:region"]
    path = write_config(tmp_path / "what-if.yaml", config)
    assert plan_tool.main(["--config-file", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Missing required configuration variable 'aws:region'")
    assert "Traceback" not in err
