"""The real operators' harness: what Karpenter is offered, how the external-secrets operator starts and
is judged, the loopback-only namespace, the supervisor, the simulated Pod Identity agent and node
classes, and moto's recording read back without secret values."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from aiplatform.compute.capacity import allocatable
from aiplatform.compute.instance_types import INSTANCE_TYPES, require
from aiplatform.plan.cost import load_pricing
from tools.e2e.cloud import node_classes
from tools.e2e.cloud.moto_server import HARNESS_ACCESS_KEY, AwsRequest, parse_recorded
from tools.e2e.cloud.pod_identity import PodIdentityAgent, trusts_pod_identity
from tools.e2e.cloud.store import CloudStore
from tools.e2e.operators import external_secrets, karpenter, supervisor
from tools.e2e.operators.netns import UnixToTcp, loopback_only

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/eso-role"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev/openai-secret-AbCdEf"


# -- Karpenter's instance types ------------------------------------------------------------------------
def test_every_priced_type_is_offered_in_each_zone_on_demand_and_spot():
    pricing = load_pricing()
    types = karpenter.instance_types(["us-east-1b", "us-east-1a"], pricing)
    assert {t["name"] for t in types} == set(INSTANCE_TYPES) & set(pricing["ec2_on_demand_hour"])
    g5 = next(t for t in types if t["name"] == "g5.2xlarge")
    offered = {
        tuple(
            r["values"][0]
            for r in o["Requirements"]
            if r["key"] in ("karpenter.sh/capacity-type", "topology.kubernetes.io/zone")
        ): o["Price"]
        for o in g5["offerings"]
    }
    on_demand = pricing["ec2_on_demand_hour"]["g5.2xlarge"]
    assert offered[("on-demand", "us-east-1a")] == on_demand
    assert offered[("spot", "us-east-1b")] == pytest.approx(on_demand * (1 - pricing["spot_discount"]))
    assert len(offered) == 4


def test_karpenter_sees_the_capacity_models_allocatable_with_gpus_and_the_kubernetes_arch():
    g5 = karpenter.instance_type_entry(require("g5.2xlarge"), ["us-east-1a"], 1.0, 0.5)
    shape = allocatable(require("g5.2xlarge"))
    # kwok subtracts its own 100m / 10Mi: what Karpenter schedules against is the capacity model's.
    assert g5["resources"]["cpu"] == f"{shape.allocatable.cpu_m + 100}m"
    assert g5["resources"]["memory"] == f"{shape.allocatable.memory_mib + 10}Mi"
    assert g5["resources"]["nvidia.com/gpu"] == "1"
    assert g5["architecture"] == "amd64"
    assert karpenter.instance_type_entry(require("m7g.large"), ["a"], 1.0, 0.5)["architecture"] == "arm64"
    assert (
        "nvidia.com/gpu"
        not in karpenter.instance_type_entry(require("m6i.large"), ["a"], 1.0, 0.5)["resources"]
    )


def test_karpenter_zones_are_the_discovered_subnets(tmp_path):
    store = CloudStore(tmp_path)
    for zone, tags in (("us-east-1a", {"karpenter.sh/discovery": "ai"}), ("us-east-1c", {})):
        store.put(
            "aws:ec2/subnet:Subnet", f"subnet-{zone}", "urn", {"availabilityZone": zone, "tags": tags}, {}
        )
    assert karpenter.discovered_zones(store) == ["us-east-1a"]


def test_karpenter_runs_in_its_own_namespace_with_leader_election_off(tmp_path):
    launch = karpenter.launch("/bin/karpenter", tmp_path / "k", tmp_path / "t.json", tmp_path / "s", 6443)
    assert launch.argv[:4] == ["unshare", "--net", "--map-root-user", "--"]
    assert launch.argv[-1] == "/bin/karpenter"
    assert launch.env["DISABLE_LEADER_ELECTION"] == "true"
    assert "AWS_ACCESS_KEY_ID" not in launch.env


# -- the loopback-only namespace ------------------------------------------------------------------------
def _unshare_allowed() -> bool:
    return (
        subprocess.run(["unshare", "--net", "--map-root-user", "true"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(not _unshare_allowed(), reason="user and network namespaces are not allowed here")
def test_a_listener_on_every_interface_in_the_namespace_is_reachable_only_through_the_bridge(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as outside:
        port = outside.getsockname()[1]
        probe = (
            "import socket, urllib.request\n"
            "s = socket.create_server(('', 0))\n"  # every interface, as Karpenter binds
            "from tools.e2e.operators.netns import interfaces\n"
            f"c = socket.create_connection(('127.0.0.1', {port}))\n"
            "c.sendall(b'ping')\n"
            "print(interfaces(), s.getsockname()[1], c.recv(4).decode())\n"
        )
        with UnixToTcp(tmp_path / "bridge.sock", port):
            proc = subprocess.Popen(
                loopback_only([sys.executable, "-c", probe], tmp_path / "bridge.sock", port),
                stdout=subprocess.PIPE,
                text=True,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)},
            )
            conn, _ = outside.accept()
            assert conn.recv(4) == b"ping"
            conn.sendall(b"pong")
            out, _ = proc.communicate(timeout=30)
            conn.close()
    names, inner_port, answer = out.strip().splitlines()[-1].rsplit(" ", 2)
    assert (names, answer) == ("['lo']", "pong")
    with pytest.raises(OSError):  # the namespace's listener is not on this machine's interfaces
        socket.create_connection(("127.0.0.1", int(inner_port)), timeout=1).close()


# -- the supervisor ------------------------------------------------------------------------------------
class _Api:
    def __init__(self, served: bool):
        self.served = served

    def request(self, method, path, body=None, content_type="", timeout=30):
        return {"resources": [{"name": "things"}] if self.served else []}


def test_the_supervisor_waits_for_the_crds_then_restarts_an_operator_that_exits(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "RESTART_BACKOFF_SECONDS", (0.1,))
    api = _Api(served=False)
    command = lambda: supervisor.Launch([sys.executable, "-c", "raise SystemExit(3)"], {})  # noqa: E731
    with supervisor.Supervised("x", api, (("example.io/v1", "things"),), command, tmp_path / "x.log") as op:
        time.sleep(0.5)
        assert op.starts == []  # the kinds are not served: not started
        api.served = True
        deadline = time.monotonic() + 20
        while len(op.exits) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [code for _, code in op.exits[:2]] == [3, 3]
    assert len(op.starts) >= 2


# -- the external-secrets operator ------------------------------------------------------------------------
def test_the_operator_starts_with_loopback_listeners_and_moto_endpoints(tmp_path):
    launch = external_secrets.launch(
        "/bin/eso", tmp_path / "k", "http://127.0.0.1:5001", "http://127.0.0.1:5000", 1, 2, {}
    )
    assert "--enable-leader-election=false" in launch.argv
    assert "--metrics-addr=127.0.0.1:1" in launch.argv and "--live-addr=127.0.0.1:2" in launch.argv
    assert launch.env["AWS_SECRETSMANAGER_ENDPOINT"] == "http://127.0.0.1:5001"
    assert launch.env["AWS_STS_ENDPOINT"] == "http://127.0.0.1:5000"
    assert launch.env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert not {k for k in launch.env if k.startswith("AWS_ACCESS") or k.startswith("AWS_SECRET_ACCESS")}


def _jwt(claims: dict) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.sig"


def test_a_recorded_request_keeps_its_parameters_but_no_secret_value():
    sts = parse_recorded(
        {
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": urllib.parse.urlencode(
                {
                    "Action": "AssumeRoleWithWebIdentity",
                    "Version": "2011-06-15",
                    "RoleArn": ROLE,
                    "WebIdentityToken": _jwt(
                        {"sub": "system:serviceaccount:es:es", "aud": ["sts.amazonaws.com"]}
                    ),
                }
            ),
        }
    )
    put = parse_recorded(
        {
            "headers": {
                "X-Amz-Target": "secretsmanager.PutSecretValue",
                "Authorization": f"AWS4-HMAC-SHA256 Credential={HARNESS_ACCESS_KEY}/20260101/us-east-1/secretsmanager/aws4_request",
            },
            "body": base64.b64encode(
                json.dumps({"SecretId": SECRET, "SecretString": "hunter2"}).encode()
            ).decode(),
            "body_encoded": True,
        }
    )
    assert (sts.service, sts.action, sts.params["RoleArn"]) == ("sts", "AssumeRoleWithWebIdentity", ROLE)
    assert sts.params["WebIdentityTokenClaims"]["sub"] == "system:serviceaccount:es:es"
    assert "WebIdentityToken" not in sts.params
    assert (put.service, put.action, put.access_key) == (
        "secretsmanager",
        "PutSecretValue",
        HARNESS_ACCESS_KEY,
    )
    assert "hunter2" not in json.dumps(put.params)


def _irsa_store(
    tmp_path: Path, subject: str = "system:serviceaccount:external-secrets:external-secrets"
) -> CloudStore:
    store = CloudStore(tmp_path)
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "oidc.example/id/X:sub": subject,
                        "oidc.example/id/X:aud": "sts.amazonaws.com",
                    }
                },
            }
        ]
    }
    store.put(
        "aws:iam/role:Role",
        "eso-role",
        "urn",
        {"assumeRolePolicy": json.dumps(trust)},
        {"arn": ROLE, "name": "eso-role"},
    )
    policy = {
        "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [SECRET]}]
    }
    store.put(
        "aws:iam/rolePolicy:RolePolicy",
        "eso-role:p",
        "urn",
        {"role": "eso-role", "policy": json.dumps(policy)},
        {},
    )
    store.put(
        "aws:secretsmanager/secret:Secret",
        SECRET,
        "urn",
        {"name": "dev/openai-secret"},
        {"name": "dev/openai-secret", "arn": SECRET},
    )
    return store


def _assumed(sub: str) -> AwsRequest:
    claims = {"sub": sub, "aud": ["sts.amazonaws.com"], "iss": "https://kubernetes.default.svc.cluster.local"}
    return AwsRequest(
        "sts", "AssumeRoleWithWebIdentity", "", False, {"RoleArn": ROLE, "WebIdentityTokenClaims": claims}
    )


def test_irsa_is_judged_on_the_role_the_token_and_the_credentials_that_read(tmp_path):
    store = _irsa_store(tmp_path)
    read = AwsRequest(
        "secretsmanager", "GetSecretValue", "ASIAOPERATOR", True, {"SecretId": "dev/openai-secret"}
    )
    good = external_secrets.irsa_check(
        [_assumed("system:serviceaccount:external-secrets:external-secrets"), read],
        store,
        "external-secrets",
        "external-secrets",
    )
    assert good.passed, good.details
    wrong_account = external_secrets.irsa_check(
        [_assumed("system:serviceaccount:default:default"), read],
        store,
        "external-secrets",
        "external-secrets",
    )
    assert not wrong_account.passed
    static_key = AwsRequest("secretsmanager", "GetSecretValue", "AKIASTATIC", False, {"SecretId": SECRET})
    assert not external_secrets.irsa_check(
        [_assumed("system:serviceaccount:external-secrets:external-secrets"), static_key],
        store,
        "external-secrets",
        "external-secrets",
    ).passed


def test_a_read_its_role_does_not_allow_fails(tmp_path):
    store = _irsa_store(tmp_path)
    allowed = AwsRequest(
        "secretsmanager", "GetSecretValue", "ASIAOPERATOR", True, {"SecretId": "dev/openai-secret"}
    )
    other = AwsRequest("secretsmanager", "GetSecretValue", "ASIAOPERATOR", True, {"SecretId": "dev/other"})
    assert external_secrets.reads_allowed_check([allowed], store, ROLE).passed
    denied = external_secrets.reads_allowed_check([allowed, other], store, ROLE)
    assert not denied.passed and denied.details["not_allowed"] == ["GetSecretValue dev/other"]
    assert external_secrets.allows(
        [{"Statement": {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}}],
        "secretsmanager:ListSecrets",
        "*",
    )


# -- Pod Identity ------------------------------------------------------------------------------------------
POD_IDENTITY_TRUST = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "pods.eks.amazonaws.com"},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    ]
}


def test_only_a_trust_policy_for_pod_identity_with_tag_session_is_accepted():
    assert trusts_pod_identity(json.dumps(POD_IDENTITY_TRUST))
    without_tags = {"Statement": [{**POD_IDENTITY_TRUST["Statement"][0], "Action": "sts:AssumeRole"}]}
    assert not trusts_pod_identity(without_tags)
    assert not trusts_pod_identity(
        {"Statement": [{**POD_IDENTITY_TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]}
    )


class _ReviewApi:
    def __init__(self, username: str):
        self.username = username

    def request(self, method, path, body=None, *args, **kwargs):
        assert path.endswith("/tokenreviews") and body["spec"]["audiences"] == ["pods.eks.amazonaws.com"]
        return {
            "status": {"authenticated": body["spec"]["token"] == "good", "user": {"username": self.username}}
        }


def _agent(tmp_path: Path, username: str, trust: dict) -> PodIdentityAgent:
    store = CloudStore(tmp_path)
    store.put(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "a-1",
        "urn",
        {
            "clusterName": "ai-dev",
            "namespace": "external-secrets",
            "serviceAccount": "external-secrets",
            "roleArn": ROLE,
        },
        {},
    )
    store.put("aws:iam/role:Role", "eso-role", "urn", {"assumeRolePolicy": json.dumps(trust)}, {"arn": ROLE})

    def assume_role(**request):
        assert request["RoleArn"] == ROLE
        tags = {t["Key"]: t["Value"] for t in request["Tags"]}
        assert tags["kubernetes-service-account"] == "external-secrets"
        from datetime import datetime

        return {
            "Credentials": {
                "AccessKeyId": "ASIAPOD",
                "SecretAccessKey": "s",
                "SessionToken": "t",
                "Expiration": datetime(2030, 1, 1),
            }
        }

    return PodIdentityAgent(_ReviewApi(username), store, assume_role)


def test_the_agent_gives_the_associated_account_its_role_and_refuses_others(tmp_path):
    agent = _agent(tmp_path, "system:serviceaccount:external-secrets:external-secrets", POD_IDENTITY_TRUST)
    status, body = agent.credentials("/v1/credentials", "good")
    assert status == 200 and body["AccessKeyId"] == "ASIAPOD" and body["Expiration"] == "2030-01-01T00:00:00Z"
    assert agent.credentials("/v1/credentials", "forged")[0] == 401
    other = _agent(tmp_path / "o", "system:serviceaccount:default:default", POD_IDENTITY_TRUST)
    assert other.credentials("/v1/credentials", "good")[0] == 400
    untrusted = _agent(
        tmp_path / "u", "system:serviceaccount:external-secrets:external-secrets", {"Statement": []}
    )
    status, body = untrusted.credentials("/v1/credentials", "good")
    assert status == 403 and "trust policy" in body["message"]


# -- node classes ------------------------------------------------------------------------------------------
def _cloud(tmp_path: Path) -> CloudStore:
    store = CloudStore(tmp_path)
    for zone in ("us-east-1a", "us-east-1b"):
        store.put(
            "aws:ec2/subnet:Subnet",
            f"subnet-{zone}",
            "urn",
            {"availabilityZone": zone, "tags": {"karpenter.sh/discovery": "ai"}},
            {},
        )
    store.put(
        "aws:ec2/subnet:Subnet", "subnet-public", "urn", {"availabilityZone": "us-east-1a", "tags": {}}, {}
    )
    store.put(
        "aws:eks/cluster:Cluster",
        "ai",
        "urn",
        {},
        {"name": "ai", "vpcConfig": {"clusterSecurityGroupId": "sg-cluster"}},
    )
    store.put(
        "aws:ec2/tag:Tag",
        "sg-cluster,karpenter.sh/discovery",
        "urn",
        {"resourceId": "sg-cluster", "key": "karpenter.sh/discovery", "value": "ai"},
        {},
    )
    store.put(
        "aws:iam/role:Role",
        "node-role",
        "urn",
        {},
        {"name": "node-role", "arn": "arn:aws:iam::123456789012:role/node-role"},
    )
    return store


SPEC = {
    "role": "node-role",
    "amiSelectorTerms": [{"alias": "al2023@v20260714"}],
    "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ai"}}],
    "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "ai"}}],
}


def test_a_node_class_resolves_the_programs_discovery_tags_the_cluster_group_and_its_role(tmp_path):
    status, conditions = node_classes.resolve(SPEC, _cloud(tmp_path))
    assert all(ok for ok, _, _ in conditions.values()), conditions
    assert [s["id"] for s in status["subnets"]] == ["subnet-us-east-1a", "subnet-us-east-1b"]
    assert [g["id"] for g in status["securityGroups"]] == ["sg-cluster"]
    assert status["instanceProfile"].startswith("node-role_")


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "other"}}]}, "SubnetsReady"),
        ({"securityGroupSelectorTerms": [{"tags": {"Name": "nope"}}]}, "SecurityGroupsReady"),
        ({"role": "missing-role"}, "InstanceProfileReady"),
        ({"amiSelectorTerms": [{"alias": "al2023@20260714"}]}, "AMIsReady"),
    ],
)
def test_a_node_class_that_finds_nothing_is_not_ready(tmp_path, change, failing):
    _, conditions = node_classes.resolve({**SPEC, **change}, _cloud(tmp_path))
    assert [name for name, (ok, _, _) in conditions.items() if not ok] == [failing]


# -- the consolidation scenario's sampler ----------------------------------------------------------------
def test_the_pool_sampler_ends_on_the_pool_as_it_is_when_sampling_stops():
    from tools.e2e.operators.scenarios import PoolSampler

    class Nodes:
        def __init__(self):
            self.names = ["a", "b", "c"]

        def list(self, kind, namespace=None, selector="", fields=""):
            assert (kind, selector) == ("Node", "karpenter.sh/nodepool=gpu-inference")
            return [{"metadata": {"name": n}, "spec": {}} for n in self.names]

    api = Nodes()
    with PoolSampler(api, "gpu-inference", interval=3600) as sampler:
        deadline = time.monotonic() + 10
        while not sampler.samples and time.monotonic() < deadline:
            time.sleep(0.01)
        api.names = ["a", "b"]  # a node goes between two samples an hour apart
    assert [names for _, names, _ in sampler.samples] == [["a", "b", "c"], ["a", "b"]]
