"""The fault machinery of tools/e2e, without an engine or a cluster: the simulated AWS under a fault plan,
what AWS does with a second create of one resource, the audit log's disruptions judged against budgets,
and when the engine killer strikes."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from pulumi.provider.experimental import provider as p
from pulumi.runtime.sync_await import _sync_await as call

from tools.e2e import interrupt, ledger
from tools.e2e.cloud import faults, identity
from tools.e2e.cloud.loopback_proxy import LoopbackProxy
from tools.e2e.cloud.provider import SimulatedAwsProvider, property_map
from tools.e2e.cloud.store import STATE_ENV, CloudStore
from tools.e2e.disruptions import Disruption, budgets_respected, pod_owner, read_audit_log
from tools.e2e.harness import _launcher, _replace

STACK = "urn:pulumi:dev::aiplatform::aiplatform:index:AiPlatform"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]})


def urn(typ: str, name: str) -> str:
    return f"{STACK}${typ}::{name}"


@pytest.fixture
def provider(tmp_path, monkeypatch) -> SimulatedAwsProvider:
    monkeypatch.setenv(STATE_ENV, str(tmp_path))
    monkeypatch.setattr(faults, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(faults, "TIMEOUT_SECONDS", 0)
    plugin = SimulatedAwsProvider()
    call(plugin.configure(p.ConfigureRequest({"aws:config:region": "us-east-1"}, {}, True, True)))
    return plugin


def create(provider, typ: str, resource: str, **inputs) -> p.CreateResponse:
    return call(provider.create(p.CreateRequest(urn(typ, resource), property_map(inputs, set()), 60, False)))


# -- a second create of one resource ----------------------------------------------------------------
def test_a_second_role_of_one_name_is_refused_as_aws_refuses_it(provider):
    create(provider, "aws:iam/role:Role", "eso-role", name="eso-1a2b3c4", assumeRolePolicy=TRUST)
    with pytest.raises(
        ValueError, match=r"creating IAM Role \(eso-1a2b3c4\): EntityAlreadyExists: Role eso-1a2b3c4"
    ):
        create(provider, "aws:iam/role:Role", "eso-role", name="eso-1a2b3c4", assumeRolePolicy=TRUST)


def test_a_second_vpc_and_a_second_kms_key_are_second_resources(provider, tmp_path):
    tags = {"Name": "net-vpc"}
    vpcs = {
        create(provider, "aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.0.0.0/16", tags=tags).resource_id
        for _ in range(2)
    }
    keys = {
        create(provider, "aws:kms/key:Key", "key", description="k", tags={}).resource_id for _ in range(2)
    }
    assert len(vpcs) == 2 and len(keys) == 2
    store = CloudStore(tmp_path)
    # A person finds both by the tags (and a key by its description): one resource made twice.
    assert len(identity.find("aws:ec2/vpc:Vpc", {"tags": tags}, store.all("aws:ec2/vpc:Vpc"))) == 2
    assert len(identity.find("aws:kms/key:Key", {"description": "k", "tags": {}}, store.all())) == 2


def test_a_put_twice_changes_the_one_resource(provider, tmp_path):
    typ = "aws:iam/rolePolicy:RolePolicy"
    one = create(provider, typ, "policy", role="eso", name="eso-read", policy="{}")
    two = create(provider, typ, "policy", role="eso", name="eso-read", policy='{"Version": "2012-10-17"}')
    assert one.resource_id == two.resource_id
    assert [r["inputs"]["policy"] for r in CloudStore(tmp_path).all(typ)] == ['{"Version": "2012-10-17"}']


def test_keys_and_searches_follow_the_table():
    assert identity.key_of("aws:ec2/subnet:Subnet", {"vpcId": "vpc-1", "cidrBlock": "10.0.0.0/24"}) == (
        "'vpc-1'",
        "'10.0.0.0/24'",
    )
    assert identity.key_of("aws:autoscaling/tag:Tag", {"autoscalingGroupName": "a", "tag": {"key": "k"}}) == (
        "'a'",
        "'k'",
    )
    assert identity.key_of("aws:ec2/natGateway:NatGateway", {"tags": {}}) is None
    assert identity.identity("aws:something/new:New").on_duplicate == ""  # unknown: a second resource


# -- the fault plan --------------------------------------------------------------------------------
def test_throttling_fails_the_create_after_the_sdk_attempts_naming_the_resource(provider, tmp_path):
    faults.set_fault(tmp_path, "iam", "throttle")
    with pytest.raises(
        faults.AwsApiError,
        match=r"creating IAM Role \(eso\): operation error IAM: CreateRole, exceeded maximum number of attempts, 3, .*Throttling: Rate exceeded",
    ):
        create(provider, "aws:iam/role:Role", "eso-role", name="eso", assumeRolePolicy=TRUST)
    store = CloudStore(tmp_path)
    assert [e["attempt"] for e in store.events("aws-call-refused")] == [1, 2, 3]
    assert not list(store.all())  # nothing created
    # Other services answer; once IAM does again, the same create goes through.
    create(provider, "aws:ec2/vpc:Vpc", "vpc", cidrBlock="10.0.0.0/16", tags={})
    faults.clear_faults(tmp_path)
    assert (
        create(provider, "aws:iam/role:Role", "eso-role", name="eso", assumeRolePolicy=TRUST).resource_id
        == "eso"
    )


def test_a_timeout_and_an_unreachable_endpoint_fail_every_call_of_the_service(provider, tmp_path):
    faults.set_fault(tmp_path, "secretsmanager", "timeout")
    faults.set_fault(tmp_path, "iam", "unreachable")
    with pytest.raises(
        faults.AwsApiError,
        match=r"creating Secrets Manager Secret \(s\): .*CreateSecret.*dial tcp: i/o timeout",
    ):
        create(provider, "aws:secretsmanager/secret:Secret", "s", name="s")
    with pytest.raises(faults.AwsApiError, match=r"connect: connection refused"):
        create(provider, "aws:iam/role:Role", "r", name="r", assumeRolePolicy=TRUST)
    assert faults.current(tmp_path) == {"iam": "unreachable", "secretsmanager": "timeout"}
    faults.clear_faults(tmp_path, "iam")
    assert faults.current(tmp_path) == {"secretsmanager": "timeout"}
    with pytest.raises(ValueError, match="fault kind"):
        faults.set_fault(tmp_path, "iam", "flaky")


def test_a_throttled_call_goes_through_when_the_throttling_ends_during_its_retries(tmp_path):
    def sleep(_seconds: float) -> None:
        faults.clear_faults(tmp_path)  # AWS answers again before the next attempt

    faults.set_fault(tmp_path, "iam", "throttle")
    faults.call(tmp_path, "iam", "CreateRole", "creating IAM Role (eso)", sleep=sleep)


def test_the_operators_secrets_manager_endpoint_refuses_while_cut_and_serves_again_on_its_port():
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"secret")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with LoopbackProxy(server.server_address[1], "Secrets Manager") as proxy:
            assert urllib.request.urlopen(proxy.endpoint, timeout=5).read() == b"secret"
            port = proxy.port
            proxy.cut()
            with pytest.raises(urllib.error.URLError, match="Connection refused"):
                urllib.request.urlopen(proxy.endpoint, timeout=5)
            proxy.restore()
            assert proxy.port == port
            assert urllib.request.urlopen(proxy.endpoint, timeout=5).read() == b"secret"
        with pytest.raises(urllib.error.URLError, match="Connection refused"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


# -- disruptions --------------------------------------------------------------------------------------
def _audit(verb: str, pod: str, user: str, code: int, sub: str | None = None) -> str:
    ref = {
        "resource": "pods",
        "namespace": "ml-serving",
        "name": pod,
        **({"subresource": sub} if sub else {}),
    }
    return json.dumps(
        {
            "stage": "ResponseComplete",
            "verb": verb,
            "user": {"username": user},
            "objectRef": ref,
            "responseStatus": {"code": code},
            "stageTimestamp": "2026-12-07T10:00:00Z",
        }
    )


def test_disruptions_are_read_from_the_audit_log_and_judged_against_the_budgets(tmp_path):
    log = tmp_path / "audit.log"
    sa = "system:serviceaccount:kube-system:"
    log.write_text(
        "\n".join(
            [
                _audit("create", "llama-inference-7d4b9c8f6d-abcde", "e2e-admin", 201, "eviction"),
                _audit("create", "llama-inference-7d4b9c8f6d-fghij", "e2e-admin", 429, "eviction"),
                _audit("delete", "llama-inference-7d4b9c8f6d-abcde", "kwok-controller", 200),
                _audit("delete", "llama-inference-7d4b9c8f6d-klmno", f"{sa}pod-garbage-collector", 200),
                _audit("delete", "llama-inference-7d4b9c8f6d-pqrst", f"{sa}replicaset-controller", 200),
                _audit("delete", "text-embedder-5f6d7c8b9-uvwxy", "e2e-admin", 200),
                '{"partial',
            ]
        )
    )
    found = read_audit_log(log)
    assert [d.what for d in found] == [
        "eviction allowed",
        "eviction refused (429)",
        "kubelet completing a deletion",
        "involuntary: node gone",
        "rolling update",
        "deleted directly, bypassing any budget",
    ]
    covered = {("ml-serving", "llama-inference"): "llama-inference"}
    judged = budgets_respected(found, covered)
    assert judged.passed and judged.details["by_kind"]["eviction allowed"] == 1
    # A direct delete of a budgeted pod is a voluntary disruption the budget never saw.
    found.append(
        Disruption("t", "e2e-admin", "delete", "ml-serving", "llama-inference-7d4b9c8f6d-zzzzz", 200)
    )
    assert not budgets_respected(found, covered).passed
    assert pod_owner("text-embedder-5f6d7c8b9-uvwxy", ["llama-inference"]) is None


# -- the engine killer ----------------------------------------------------------------------------------
def _op(kind: str, typ: str, name: str) -> dict:
    return {"type": kind, "resource": {"type": typ, "urn": f"{STACK}${typ}::{name}"}}


class _Releases:
    """Helm's release records in a namespace: one revision each, with its status."""

    def __init__(self, **statuses: str):
        self.statuses = statuses

    def list(self, kind, namespace=None, selector="", fields=""):
        assert kind == "Secret" and selector == "owner=helm"
        return [
            {"metadata": {"namespace": "kube-system", "labels": {"name": n, "version": "1", "status": st}}}
            for n, st in self.statuses.items()
        ]


def test_a_first_deploy_is_killed_from_half_its_resources_with_a_release_mid_install_and_an_aws_create():
    role = _op("creating", "aws:iam/role:Role", "r")
    release = _op("creating", "kubernetes:helm.sh/v3:Release", "autoscaler")
    release["resource"]["inputs"] = {"namespace": "kube-system", "name": "cluster-autoscaler"}
    killing = interrupt.mid_first_deploy(10, _Releases(**{"cluster-autoscaler": "pending-install"}))
    assert not killing({"resources": [{}] * 4, "pending_operations": [role, release]})  # before half
    assert not killing({"resources": [{}] * 6, "pending_operations": [role]})  # no release pending
    assert not killing({"resources": [{}] * 6, "pending_operations": [release]})  # no AWS create
    assert killing({"resources": [{}] * 5, "pending_operations": [role, release]})
    # Pending in the state, but Helm has not begun (no record) or has finished: not yet, or too late.
    for statuses in ({}, {"cluster-autoscaler": "deployed"}):
        ready = interrupt.mid_first_deploy(10, _Releases(**statuses))
        assert not ready({"resources": [{}] * 5, "pending_operations": [role, release]})


def test_a_slow_create_is_accepted_at_once_and_waited_for(provider, tmp_path, monkeypatch):
    slept = []
    monkeypatch.setattr(faults.time, "sleep", slept.append)
    faults.set_fault(tmp_path, "efs", "slow")
    created = create(provider, "aws:efs/fileSystem:FileSystem", "fs", tags={"Name": "shared"})
    assert slept == [faults.SLOW_SECONDS]  # the provider's wait for the file system to be available
    assert CloudStore(tmp_path).get("aws:efs/fileSystem:FileSystem", created.resource_id) is not None
    assert faults.calls_in_flight(tmp_path) == []
    with faults.in_flight(tmp_path, "creating EFS File System (fs)"):
        assert faults.calls_in_flight(tmp_path) == ["creating EFS File System (fs)"]


def test_a_rollout_is_killed_once_one_update_is_done_and_another_runs():
    ready = interrupt.one_update_done_one_running(count=2)
    a = _op("updating", "kubernetes:apps/v1:Deployment", "a")
    b = _op("updating", "kubernetes:apps/v1:Deployment", "b")
    assert not ready({"pending_operations": [a, b]})
    assert ready({"pending_operations": [b]})  # a done, b running
    assert not interrupt.one_update_done_one_running(2)({"pending_operations": [b]})  # nothing done yet


def test_the_checkpoint_is_read_from_the_file_backend(tmp_path):
    path = tmp_path / "faults.json"
    assert interrupt.read_checkpoint(path) is None
    path.write_text('{"version": 3, "checkpoint": {"latest": {"resources": [1], "pending_operations": []}}}')
    assert interrupt.read_checkpoint(path) == {"resources": [1], "pending_operations": []}
    path.write_text('{"version": 3, "check')  # being replaced
    assert interrupt.read_checkpoint(path) is None


def test_the_engine_errors_are_its_error_lines_once_each():
    text = "Updating (faults):\n  ~ aws:iam:RolePolicy p updating error: x failed\n    error: x failed\n    error: x failed\nDone"
    assert interrupt.engine_errors(text) == [
        "~ aws:iam:RolePolicy p updating error: x failed",
        "error: x failed",
    ]


def test_the_runs_commands_are_replaced_atomically_while_others_run_them(tmp_path):
    target = tmp_path / "pulumi-v1"
    target.write_text("#!/bin/sh\n")
    link, launcher = tmp_path / "bin" / "pulumi", tmp_path / "bin" / "pulumi-resource-aws"
    link.parent.mkdir()

    def refresh_bin(_i: int) -> None:
        _replace(link, lambda tmp: tmp.symlink_to(target))
        _launcher(launcher, "tools.e2e.cloud.provider")
        assert link.resolve() == target and "tools.e2e.cloud.provider" in launcher.read_text()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(refresh_bin, range(64)))
    assert sorted(p.name for p in link.parent.iterdir()) == ["pulumi", "pulumi-resource-aws"]


class _EmptyCluster:
    """An API server holding nothing of the stack."""

    def apis(self):
        return iter(())

    def list(self, kind, namespace=None, selector="", fields=""):
        return []


def test_the_ledger_counts_a_resource_made_twice_for_one_create(tmp_path):
    fs = "aws:efs/fileSystem:FileSystem"
    urn_ = urn(fs, "shared-fs")
    store = CloudStore(tmp_path)
    store.put(fs, "fs-first", urn_, {"tags": {"Name": "shared"}}, {})
    stack = type("Stack", (), {})()
    stack.api = _EmptyCluster()
    stack.run = type("Run", (), {"store": store})()
    stack.state = lambda: [{"urn": urn_, "type": fs, "id": "fs-first", "custom": True}]
    check, counts = ledger.ledger(stack)
    assert check.passed and counts == {"lost": 0, "orphaned": 0, "duplicated": 0}
    # A rerun that created the file system again (its pending create cleared instead of imported).
    store.put(fs, "fs-second", urn_, {"tags": {"Name": "shared"}}, {})
    stack.state = lambda: [{"urn": urn_, "type": fs, "id": "fs-second", "custom": True}]
    check, counts = ledger.ledger(stack)
    assert counts == {"lost": 0, "orphaned": 1, "duplicated": 1} and not check.passed
    assert check.details["orphaned"] == [f"aws {fs} fs-first (created for shared-fs)"]
    # The state pointing at a resource the cloud no longer holds.
    stack.state = lambda: [{"urn": urn_, "type": fs, "id": "fs-gone", "custom": True}]
    assert ledger.ledger(stack)[1]["lost"] == 1
