"""The simulated AWS provider plugin, called as the engine calls it (no engine, no cluster)."""

from __future__ import annotations

import json

import pytest
from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.runtime.rpc import UNKNOWN
from pulumi.runtime.sync_await import _sync_await as call

from tools.e2e.cloud.nodes import group_shape, kubelet_version, node_manifest
from tools.e2e.cloud.provider import SimulatedAwsProvider, from_plain, plain_map, property_map
from tools.e2e.cloud.store import STATE_ENV, CloudStore, ClusterAccess
from tools.e2e.control_plane import ControlPlaneOperator

ROLE_URN = "urn:pulumi:dev::aiplatform::aiplatform:index:AiPlatform$aws:iam/role:Role::eso-role"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]})


@pytest.fixture
def provider(tmp_path, monkeypatch) -> SimulatedAwsProvider:
    monkeypatch.setenv(STATE_ENV, str(tmp_path))
    plugin = SimulatedAwsProvider()
    call(plugin.configure(p.ConfigureRequest({"aws:config:region": "eu-west-1"}, {}, True, True)))
    return plugin


def props(**values) -> dict[str, PropertyValue]:
    return property_map(values, set())


def test_check_generates_a_name_and_keeps_it_across_updates(provider):
    first = call(provider.check(p.CheckRequest(ROLE_URN, {}, props(assumeRolePolicy=TRUST), b"\x01\x02")))
    name = first.inputs["name"].value
    assert name.startswith("eso-role-") and len(name) == len("eso-role-") + 7
    assert not first.failures
    again = call(
        provider.check(p.CheckRequest(ROLE_URN, first.inputs, props(assumeRolePolicy=TRUST), b"\x09"))
    )
    assert again.inputs["name"].value == name


def test_check_refuses_what_aws_refuses_with_the_property(provider):
    response = call(
        provider.check(p.CheckRequest(ROLE_URN, {}, props(name="r" * 65, assumeRolePolicy="not json"), b""))
    )
    assert [(f.property, f.reason) for f in response.failures] == [
        ("name", "role name must be 1 to 64 characters (got 65)"),
        ("assumeRolePolicy", "is not a JSON policy document"),
    ]


def test_create_records_the_resource_and_read_answers_a_refresh(provider, tmp_path):
    inputs = props(name="eso", assumeRolePolicy=TRUST)
    created = call(provider.create(p.CreateRequest(ROLE_URN, inputs, 60, False)))
    assert created.resource_id == "eso"
    assert created.properties["arn"].value == "arn:aws:iam::123456789012:role/eso"
    record = CloudStore(tmp_path).get("aws:iam/role:Role", "eso")
    assert record["type"] == "aws:iam/role:Role" and record["urn"] == ROLE_URN
    read = call(provider.read(p.ReadRequest(ROLE_URN, "eso", created.properties, inputs)))
    assert read.resource_id == "eso" and read.properties["arn"].value == created.properties["arn"].value
    call(provider.delete(p.DeleteRequest(ROLE_URN, "eso", created.properties, 60)))
    gone = call(provider.read(p.ReadRequest(ROLE_URN, "eso", created.properties, inputs)))
    assert gone.resource_id == ""


def test_a_replacement_gets_new_ids(provider):
    urn = ROLE_URN.replace("aws:iam/role:Role::eso-role", "aws:ec2/vpc:Vpc::vpc")
    one = call(provider.create(p.CreateRequest(urn, props(cidrBlock="10.0.0.0/16"), 60, False)))
    two = call(provider.create(p.CreateRequest(urn, props(cidrBlock="10.1.0.0/16"), 60, False)))
    assert one.resource_id.startswith("vpc-") and two.resource_id.startswith("vpc-")
    assert one.resource_id != two.resource_id


def test_preview_leaves_computed_outputs_unknown(provider):
    response = call(
        provider.create(p.CreateRequest(ROLE_URN, props(name="eso", assumeRolePolicy=TRUST), 60, True))
    )
    assert response.resource_id == ""
    assert response.properties["arn"].value == UNKNOWN
    assert response.properties["name"].value == "eso"


def test_diff_reports_updates_and_replacements_but_not_computed_outputs(provider):
    created = call(
        provider.create(p.CreateRequest(ROLE_URN, props(name="eso", assumeRolePolicy=TRUST), 60, False))
    )
    same = call(
        provider.diff(
            p.DiffRequest(ROLE_URN, "eso", created.properties, props(name="eso", assumeRolePolicy=TRUST), [])
        )
    )
    assert same.changes is False
    renamed = call(
        provider.diff(
            p.DiffRequest(
                ROLE_URN,
                "eso",
                created.properties,
                props(name="eso2", assumeRolePolicy=TRUST, description="x"),
                [],
            )
        )
    )
    assert renamed.changes is True
    assert renamed.replaces == ["name"]
    assert sorted(renamed.diffs) == ["description", "name"]
    assert renamed.detailed_diff["description"].kind == p.PropertyDiffKind.ADD


def test_secret_inputs_stay_secret_in_the_outputs(provider):
    urn = ROLE_URN.replace(
        "aws:iam/role:Role::eso-role", "aws:secretsmanager/secretVersion:SecretVersion::seed"
    )
    inputs = {
        "secretId": PropertyValue("my-secret"),
        "secretString": PropertyValue('{"k": "v"}', is_secret=True),
    }
    created = call(provider.create(p.CreateRequest(urn, inputs, 60, False)))
    assert created.properties["secretString"].is_secret
    assert not created.properties["secretId"].is_secret


@pytest.fixture
def moto(tmp_path, provider):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    provider.store.set_services({"secretsmanager": f"http://{host}:{port}"}, "AKIATEST", "test-secret")
    yield provider.secrets_manager().client
    server.stop()


def test_secrets_and_their_versions_are_made_in_the_secrets_manager_the_run_serves(provider, moto):
    secret_urn = ROLE_URN.replace("aws:iam/role:Role::eso-role", "aws:secretsmanager/secret:Secret::s")
    version_urn = ROLE_URN.replace(
        "aws:iam/role:Role::eso-role", "aws:secretsmanager/secretVersion:SecretVersion::v"
    )
    secret = call(
        provider.create(
            p.CreateRequest(
                secret_urn, props(name="dev/openai", recoveryWindowInDays=7, tags={"a": "b"}), 60, False
            )
        )
    )
    arn = secret.resource_id
    assert arn.startswith("arn:aws:secretsmanager:eu-west-1:123456789012:secret:dev/openai-")
    assert secret.properties["arn"].value == arn  # the AWS provider's id is the ARN, as moto made it
    value = PropertyValue('{"k": "v"}', is_secret=True)
    version = call(
        provider.create(
            p.CreateRequest(version_urn, {"secretId": PropertyValue(arn), "secretString": value}, 60, False)
        )
    )
    assert version.resource_id == f"{arn}|{version.properties['versionId'].value}"
    assert moto.get_secret_value(SecretId="dev/openai")["SecretString"] == '{"k": "v"}'
    call(provider.delete(p.DeleteRequest(secret_urn, arn, secret.properties, 60)))
    assert moto.describe_secret(SecretId=arn).get("DeletedDate")  # scheduled, its recovery window running


def test_invokes_answer_for_the_configured_region(provider):
    zones = call(provider.invoke(p.InvokeRequest("aws:index/getAvailabilityZones:getAvailabilityZones", {})))
    assert [z.value for z in zones.return_value["names"].value][:2] == ["eu-west-1a", "eu-west-1b"]


def test_plain_values_round_trip():
    values = {"n": 2, "f": 1.5, "l": [1, "a"], "m": {"b": True, "z": None}}
    assert plain_map({k: from_plain(v) for k, v in values.items()})[0] == values


def test_values_unknown_in_a_preview_are_not_judged(provider):
    policy = "urn:pulumi:dev::aiplatform::aws:iam/rolePolicy:RolePolicy::kms"
    response = call(provider.check(p.CheckRequest(policy, {}, props(role="r", policy=UNKNOWN), b"")))
    assert not response.failures
    missing = call(provider.check(p.CheckRequest(policy, {}, props(policy=UNKNOWN), b"")))
    assert [(f.property, f.reason) for f in missing.failures] == [("role", "required")]


CLUSTER_URN = "urn:pulumi:dev::aiplatform::aiplatform:index:AiPlatform$aws:eks/cluster:Cluster::ai-cluster"


def _cluster_inputs(version: str) -> dict[str, PropertyValue]:
    role = "arn:aws:iam::123456789012:role/eks"
    return props(name="ai", roleArn=role, version=version, vpcConfig={"subnetIds": ["subnet-1"]})


def _cluster(provider, version: str):
    return call(provider.create(p.CreateRequest(CLUSTER_URN, _cluster_inputs(version), 60, False)))


def test_a_cluster_update_that_skips_a_minor_is_refused_in_preview_and_update(provider):
    created = _cluster(provider, "1.34")
    news = _cluster_inputs("1.36")
    for preview in (True, False):
        with pytest.raises(ValueError, match=r"cluster\.kubernetesVersion: EKS upgrades a cluster one minor"):
            call(
                provider.update(p.UpdateRequest(CLUSTER_URN, "ai", created.properties, news, 60, [], preview))
            )
    assert CloudStore.from_env().get("aws:eks/cluster:Cluster", "ai")["inputs"]["version"] == "1.34"


def test_a_cluster_version_update_returns_after_the_harness_serves_the_new_minor(provider, tmp_path):
    store = CloudStore(tmp_path)
    store.set_cluster(ClusterAccess("https://127.0.0.1:1", "token", str(tmp_path / "ca.crt")))
    created = _cluster(provider, "1.35")
    served = {"minor": "1.35"}
    operator = ControlPlaneOperator(
        store, restart=lambda minor: served.update(minor=minor), served=lambda: served["minor"], interval=0.05
    )
    news = _cluster_inputs("1.36")
    with operator:
        updated = call(
            provider.update(p.UpdateRequest(CLUSTER_URN, "ai", created.properties, news, 60, [], False))
        )
    assert updated.properties["version"].value == "1.36" and served["minor"] == "1.36"
    # What EKS computed inside an input object survives the update (the cluster's security group).
    group = created.properties["vpcConfig"].value["clusterSecurityGroupId"].value
    assert updated.properties["vpcConfig"].value["clusterSecurityGroupId"].value == group
    assert [(r["from"], r["to"], r["error"]) for r in operator.restarts] == [("1.35", "1.36", None)]
    [event] = store.events("control-plane-upgraded")
    assert (event["old"], event["new"], event["cluster"]) == ("1.35", "1.36", "ai")


def test_a_cluster_version_update_fails_with_the_harness_error(provider, tmp_path):
    store = CloudStore(tmp_path)
    store.set_cluster(ClusterAccess("https://127.0.0.1:1", "token", str(tmp_path / "ca.crt")))
    created = _cluster(provider, "1.35")

    def broken(minor: str) -> None:
        raise RuntimeError(f"no kube-apiserver {minor}")

    news = _cluster_inputs("1.36")
    with (
        ControlPlaneOperator(store, restart=broken, served=lambda: "1.35", interval=0.05),
        pytest.raises(
            RuntimeError, match="upgrading the control plane to 1.36 failed: RuntimeError: no kube"
        ),
    ):
        call(provider.update(p.UpdateRequest(CLUSTER_URN, "ai", created.properties, news, 60, [], False)))


def test_a_cluster_version_update_times_out_when_nobody_answers(provider, tmp_path, monkeypatch):
    monkeypatch.setattr("tools.e2e.cloud.provider.CONTROL_PLANE_SECONDS", 0.3)
    CloudStore(tmp_path).set_cluster(ClusterAccess("https://127.0.0.1:1", "token", str(tmp_path / "ca.crt")))
    created = _cluster(provider, "1.35")
    news = _cluster_inputs("1.36")
    with pytest.raises(TimeoutError, match="did not serve 1.36 within 0 s"):
        call(provider.update(p.UpdateRequest(CLUSTER_URN, "ai", created.properties, news, 60, [], False)))


def test_a_node_reports_its_groups_kubelet_minor():
    shape = group_shape({"nodeGroupName": "system", "instanceTypes": ["t3.large"]}, "us-east-1a")
    manifest = node_manifest(
        "system-abc-0", shape, "aws:///us-east-1a/i-1", kubelet_version({"version": "1.36"})
    )
    assert manifest["status"]["nodeInfo"] == {"kubeletVersion": "v1.36.0"}
    assert "nodeInfo" not in node_manifest("n", shape, "aws:///us-east-1a/i-2")["status"]


def test_a_cluster_update_is_refused_while_a_node_group_is_behind(provider):
    created = _cluster(provider, "1.35")
    CloudStore.from_env().put(
        "aws:eks/nodeGroup:NodeGroup",
        "ai:gpu",
        CLUSTER_URN.replace("aws:eks/cluster:Cluster::ai-cluster", "aws:eks/nodeGroup:NodeGroup::gpu"),
        {"clusterName": "ai", "nodeGroupName": "gpu", "version": "1.34"},
        {},
    )
    with pytest.raises(
        ValueError, match="only when its managed node groups run its minor 1.35, and gpu at 1.34"
    ):
        call(
            provider.update(
                p.UpdateRequest(CLUSTER_URN, "ai", created.properties, _cluster_inputs("1.36"), 60, [], True)
            )
        )
