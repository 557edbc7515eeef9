"""Hostile input: every nonsensical stack config ends in a ConfigError naming its key path.

Never a traceback, never another exception type, never a registered resource. The regression cases
below are inputs that once passed the config check and failed later, inside a component (with resources
already registered), or crashed the plan tool.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiplatform.config import ConfigError, PlatformSettings, parse_settings
from aiplatform.plan import cli as plan_tool
from aiplatform.plan.mock_engine import PlatformMocks, RecordingMonitor
from aiplatform.plan.runner import run_program
from tests.stacks import PROGRAM, stack_config
from tests.strategies import committed, invalid_configs, mutated_configs

PROBLEM_LINE = re.compile(r"^aiplatform:[^:\s]+([.\[].*?)?: .+", re.DOTALL)

FAST = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def assert_well_formed(error: ConfigError) -> None:
    assert error.problems, "a ConfigError must list at least one problem"
    for line in error.problems:
        assert PROBLEM_LINE.match(line), f"problem line without a key path: {line!r}"


def parse_or_config_error(config: dict[str, Any]) -> PlatformSettings | None:
    """The settings, or None after checking the ConfigError; any other exception fails the test."""
    try:
        return parse_settings(config)
    except ConfigError as error:
        assert_well_formed(error)
        return None


def to_stack(sections: dict[str, Any], stack: str = "dev") -> dict[str, Any]:
    """A full stack-file ``config:`` mapping (aws:region included) from ``aiplatform:`` sections."""
    config = {k: v for k, v in stack_config(stack).items() if not k.startswith("aiplatform:")}
    config.update({f"aiplatform:{k}": v for k, v in sections.items()})
    return config


def run_whole_program(config: dict[str, Any]) -> RecordingMonitor:
    monitor = RecordingMonitor(PlatformMocks())
    run_program(config, "hostile", program=PROGRAM, monitor=monitor)
    return monitor


def assert_rejected_before_registering(config: dict[str, Any]) -> ConfigError:
    monitor = RecordingMonitor(PlatformMocks())
    with pytest.raises(ConfigError) as caught:
        run_program(config, "hostile", program=PROGRAM, monitor=monitor)
    assert_well_formed(caught.value)
    assert monitor.registrations == []
    return caught.value


# -- property: random mutations of the committed configs -----------------------------------------


@FAST
@given(mutated_configs())
def test_any_mutation_parses_or_names_its_key_paths(case):
    _, config = case
    parse_or_config_error(config)


@FAST
@given(invalid_configs())
def test_always_invalid_configs_raise_config_error(case):
    _, done, config = case
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert_well_formed(caught.value)
    assert caught.value.problems, done


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["dev", "prod"]),
    st.sampled_from(["environment", "cluster", "charts", "network", "workloads", "tags"]),
    st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
)
def test_a_section_of_the_wrong_type_is_named(stack, section, value):
    config = committed(stack)
    config[section] = value
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert_well_formed(caught.value)
    assert any(line.startswith(f"aiplatform:{section}") for line in caught.value.problems)


# -- the whole program: invalid configs register nothing -----------------------------------------


def _drop_section(section: str) -> Callable[[dict], None]:
    return lambda c: c.pop(section)


INVALID_PROGRAM_INPUTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "missing cluster": _drop_section("cluster"),
    "unknown section": lambda c: c.__setitem__("monitoring", {"enabled": True}),
    "network is a list": lambda c: c.__setitem__("network", [1, 2]),
    "emoji workload name": lambda c: c["workloads"]["inference"][0].__setitem__("name", "🔥llama"),
    "dangling secret": lambda c: c["workloads"]["inference"][2]["secretEnv"][0].__setitem__("secret", "nope"),
    "duplicate namespace": lambda c: c["namespaces"].append(copy.deepcopy(c["namespaces"][0])),
    "huge azCount": lambda c: c["network"].__setitem__("azCount", 10**30),
    "negative disk": lambda c: c["nodeGroups"]["system"].__setitem__("diskSizeGiB", -50),
}


@pytest.mark.parametrize("mutate", INVALID_PROGRAM_INPUTS.values(), ids=INVALID_PROGRAM_INPUTS.keys())
def test_the_whole_program_rejects_invalid_configs_before_registering(mutate):
    sections = committed("dev")
    mutate(sections)
    assert_rejected_before_registering(to_stack(sections))


def test_a_section_given_as_secure_value_registers_nothing():
    config = stack_config("dev")
    config["aiplatform:cluster"] = {"secure": "v1:AAAA"}
    error = assert_rejected_before_registering(config)
    assert "aiplatform:cluster: must not be a secret (only secret values are encrypted)" in error.problems


# -- the whole program: valid mutations plan (a component's ValueError here is a bug) -------------
# They mutate the small config the bug cases use (see ``bug_config``), to keep the file fast.

VALID_PROGRAM_INPUTS: dict[str, Callable[[dict[str, Any]], None]] = {
    # Letters of any script and spaces; IAM and EKS refuse symbols such as emoji in tags.
    "unicode tag values": lambda c: c["tags"].update({"owner": "名前 チーム", "k" * 100: "v" * 250}),
    "extreme deadlines": lambda c: c["workloads"].__setitem__(
        "batch",
        [
            {
                "name": "b",
                "namespace": "team",
                "image": "r.example.com/b:1.0.0",
                "schedule": "@daily",
                "startingDeadlineSeconds": 10**30,
                "activeDeadlineSeconds": 10**18,
            }
        ],
    ),
    "63-character name, digest image": lambda c: c["workloads"]["inference"][0].update(
        {"name": "e" * 63, "image": "registry.example.com/x@sha256:" + "a" * 64}
    ),
}


@pytest.mark.parametrize("mutate", VALID_PROGRAM_INPUTS.values(), ids=VALID_PROGRAM_INPUTS.keys())
def test_valid_mutations_run_the_whole_program(mutate):
    config = bug_config("valid", mutate)
    assert parse_settings(
        {
            k.split(":", 1)[1]: v
            for k, v in config.items()
            if k.startswith("aiplatform:") and k != "aiplatform:kubeconfig"
        }
    )
    assert run_whole_program(config).registrations


def test_a_valid_mutation_of_the_committed_dev_stack_runs_the_whole_program():
    sections = committed("dev")
    sections["workloads"]["inference"][1]["env"] = {"NOTE": "ünïcødé 🔥 " * 100}
    sections["nodeGroups"]["gpu"][0]["labels"] = {"team.example.com/owner": "ml"}
    assert run_whole_program(to_stack(sections)).registrations


# -- known bugs: the config layer accepts what a component (or Kubernetes) rejects ---------------
# Each builds on a small valid config (no workloads, no GPU groups) to keep the program run cheap.


def minimal() -> dict[str, Any]:
    """A small valid dev config: the cluster, the system node group, one namespace, one service."""
    c = committed("dev")
    c["nodeGroups"] = {"system": c["nodeGroups"]["system"]}
    c["secrets"] = []
    c["storage"] = {}
    c["observability"] = {"enabled": False}
    c["namespaces"] = [{"name": "team"}]
    c["workloads"] = {
        "inference": [{"name": "svc", "namespace": "team", "image": "registry.example.com/svc:1.0.0"}]
    }
    return c


EXISTING_CLUSTER = {
    "mode": "existing",
    "name": "ai-dev",
    "existing": {
        "kubeconfigSecret": "kubeconfig",
        "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/AB",
        "oidcIssuerUrl": "https://oidc.eks.us-east-1.amazonaws.com/id/AB",
    },
}

# Bugs whose input needs the managed cluster (network, EKS, node groups); the others run on an
# existing cluster, which registers a third as much and keeps the file fast.
MANAGED_ONLY = ("adminRoleArns", "publicAccessCidrs", "GPU node group", "network.existing")


def bug_config(bug: str, mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    sections = minimal()
    managed = any(word in bug for word in MANAGED_ONLY)
    if not managed:
        sections["cluster"] = copy.deepcopy(EXISTING_CLUSTER)
    mutate(sections)
    config = to_stack(sections)
    if not managed:
        config["aiplatform:kubeconfig"] = {"secure": "v1:kubeconfig"}
    return config


def _svc(c: dict[str, Any]) -> dict[str, Any]:
    return c["workloads"]["inference"][0]


def _role(arn: str) -> Callable[[dict], None]:
    return lambda c: c["cluster"].__setitem__("adminRoleArns", [arn])


def _prod_internal(c: dict[str, Any]) -> None:
    c["environment"] = "prod"
    c["ingress"] = {"scheme": "internal"}
    # prod delivers its alerts: a receiver whose webhook lives in a synced secret.
    c.setdefault("secrets", []).append({"name": "alerts", "namespace": "monitoring", "keys": ["webhook-url"]})
    c["observability"] = {
        "enabled": True,
        "alerting": {
            "enabled": True,
            "receiver": {"type": "slack", "secret": "alerts", "key": "webhook-url"},
        },
    }
    _svc(c).update({"replicas": 2, "ingress": {"host": "svc.example.com", "tls": False}})
    _svc(c)["image"] += "@sha256:" + "0" * 64  # prod runs images by digest


# (bug id, mutation of minimal(), the exception the program raises today)
BUGS: list[tuple[str, Callable[[dict[str, Any]], None], type[BaseException]]] = [
    ("workload name starting with a digit (DNS-1123 ok, DNS-1035 required by the component)",
     lambda c: _svc(c).__setitem__("name", "1svc"), ValueError),
    ("batch name starting with a digit",
     lambda c: c["workloads"].__setitem__("batch", [{"name": "9nightly", "namespace": "team", "image": "r.example.com/b:1.0.0", "schedule": "0 2 * * *"}]),
     ValueError),
    ("config.data key outside [-._a-zA-Z0-9]",
     lambda c: _svc(c).__setitem__("config", {"data": {"a b": "1"}}), ValueError),
    ("storage.modelBucket.name with '..'",
     lambda c: c["storage"].__setitem__("modelBucket", {"name": "my..bucket"}), ValueError),
    ("cluster.name of 34+ characters makes the default bucket name longer than 63",
     lambda c: c["cluster"].__setitem__("name", "a" * 34), ValueError),
    ("adminRoleArns account id of fewer than 12 digits", _role("arn:aws:iam::1:role/admins"), ValueError),
    ("adminRoleArns role name with a space", _role("arn:aws:iam::123456789012:role/a b"), ValueError),
    ("adminRoleArns duplicated",
     lambda c: c["cluster"]["adminRoleArns"].append(c["cluster"]["adminRoleArns"][0]), ValueError),
    ("endpoint.publicAccessCidrs IPv6 block",
     lambda c: c["cluster"]["endpoint"].__setitem__("publicAccessCidrs", ["2001:db8::/32"]), ValueError),
    ("same secret name in two namespaces",
     lambda c: (c["namespaces"].append({"name": "team2"}), c.__setitem__("secrets", [
         {"name": "s", "namespace": "team", "keys": ["k"]}, {"name": "s", "namespace": "team2", "keys": ["k"]}])),
     ValueError),
    ("secrets[].existingArn without 12-digit account / 6-char suffix",
     lambda c: c.__setitem__("secrets", [{"name": "s", "namespace": "team", "keys": ["k"],
                                          "existingArn": "arn:aws:secretsmanager:us-east-1:123:secret:x"}]),
     ValueError),
    ("GPU node group label with a reserved prefix",
     lambda c: c["nodeGroups"].__setitem__("gpu", [{"name": "g", "instanceTypes": ["g5.xlarge"], "accelerator": "nvidia-a10g",
                                                    "scaling": {"minSize": 0, "desiredSize": 0, "maxSize": 1},
                                                    "labels": {"kubernetes.io/role": "x"}}]),
     ValueError),
    ("resources.requests.cpu '0'",
     lambda c: _svc(c).__setitem__("resources", {"requests": {"cpu": "0"}}), ValueError),
    ("autoscaling customMetrics averageValue '0'",
     lambda c: (c.__setitem__("observability", {"customMetrics": [{"name": "rps", "series": "http_requests_total"}]}),
                _svc(c).__setitem__("autoscaling", {"minReplicas": 1, "maxReplicas": 2,
                                                    "customMetrics": [{"name": "rps", "averageValue": "0"}]})),
     ValueError),
    ("ingress host with a numeric last label",
     lambda c: _svc(c).__setitem__("ingress", {"host": "svc.example.123"}), ValueError),
    ("chart version with +build metadata (externalSecrets)",
     lambda c: c["charts"].__setitem__("externalSecrets", "2.10.0+1"), ValueError),
    ("chart version with +build metadata (awsLoadBalancerController)",
     lambda c: c["charts"].__setitem__("awsLoadBalancerController", "3.5.0+1"), ValueError),
    ("ingress.certificateArn without a 12-digit account",
     lambda c: c["ingress"].__setitem__("certificateArn", "arn:aws:acm:us-east-1::certificate/x"), ValueError),
    ("network.existing: a subnet listed as both public and private",
     lambda c: c["network"].__setitem__("existing", {"vpcId": "vpc-12345678",
                                                     "publicSubnetIds": ["subnet-11111111", "subnet-22222222"],
                                                     "privateSubnetIds": ["subnet-11111111", "subnet-22222222"]}),
     ValueError),
    ("env MODEL_DIR, which the platform sets from modelStorage (the API server rejects the repeat)",
     lambda c: _svc(c).update({"env": {"MODEL_DIR": "/models"}, "modelFetch": {"prefix": "models/m"},
                               "modelStorage": {"mountPath": "/models"}}), ValueError),
    ("config file mounted at /tmp, which the platform mounts",
     lambda c: _svc(c).__setitem__("config", {"data": {"a": "1"}, "files": [{"key": "a", "mountPath": "/tmp"}]}),
     ValueError),
    ("trailing newline in a DNS-1123 name is accepted ('$' of re.match) and registered",
     lambda c: _svc(c).__setitem__("name", "svc\n"), pytest.fail.Exception),
]  # fmt: skip


@pytest.mark.parametrize(
    ("bug", "mutate"),
    [pytest.param(bug, mutate, id=bug) for bug, mutate, _ in BUGS],
)
def test_known_bug_configs_end_in_a_config_error(bug, mutate):
    assert_rejected_before_registering(bug_config(bug, mutate))


def test_prod_may_serve_an_internal_route_without_tls():
    """TLS is required on public ingresses in prod; an internal load balancer may stay plain HTTP."""
    assert run_whole_program(bug_config("prod internal", _prod_internal)).registrations


@pytest.mark.parametrize("base", ["managed", "existing"])
def test_the_bases_of_the_bug_cases_plan(base):
    """Each bug case is its mutation alone: both bases plan cleanly."""
    bug = "adminRoleArns" if base == "managed" else "nothing"
    assert run_whole_program(bug_config(bug, lambda c: None)).registrations


# -- the plan tool's arguments --------------------------------------------------------------------


def _plan(tmp_path, path, capsys) -> tuple[int, str]:
    code = plan_tool.main(["--stack", "hostile", "--config-file", str(path), "--out", str(tmp_path / "out")])
    return code, capsys.readouterr().err


STACK_FILES: dict[str, bytes | None] = {
    "missing file": None,
    "yaml list": b"- just\n- a list\n",
    "config is a scalar": b"config: 42\n",
    "config is a list": b"config: [a, b]\n",
    "a plain string": b'"just a string"\n',
    "recursive alias": b"config: &a [*a]\n",
}


@pytest.mark.parametrize("content", STACK_FILES.values(), ids=STACK_FILES.keys())
def test_unusable_stack_files_exit_2_with_one_error_line(tmp_path, capsys, content):
    path = tmp_path / "Pulumi.hostile.yaml"
    if content is not None:
        path.write_bytes(content)
    code, err = _plan(tmp_path, path, capsys)
    assert code == 2
    assert "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_a_directory_as_stack_file_exits_2(tmp_path, capsys):
    code, err = _plan(tmp_path, tmp_path, capsys)
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_unreadable_stack_file_exits_2(tmp_path, capsys):
    path = tmp_path / "Pulumi.hostile.yaml"
    path.write_text("config: {}\n", encoding="utf-8")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as root: chmod 000 does not block reads (the directory case covers OSError)")
    code, err = _plan(tmp_path, path, capsys)
    assert code == 2 and "cannot read the stack file" in err and "Traceback" not in err


CONFIG_ERROR_FILES: dict[str, str] = {
    "section as secure value": "config:\n  aws:region: us-east-1\n  aiplatform:network: {secure: v1:AAA}\n",
    "nan and huge numbers": "config:\n  aiplatform:network: {azCount: .nan}\n  aiplatform:tags: {a: 1e999}\n",
    "everything wrong": "config:\n  aiplatform:environment: [dev]\n  aiplatform:cluster: 7\n"
    "  aiplatform:charts: null\n  aiplatform:🔥: 1\n",
}


def _with_required_sections(text: str) -> str:
    """The file with dev's required sections first (where it lacks them), so its own values are judged
    rather than the Pulumi CLI's refusal of a stack without them."""
    required = {
        key: value
        for key, value in stack_config("dev").items()
        if key in ("aws:region", "aiplatform:environment", "aiplatform:cluster", "aiplatform:charts")
        and key not in text
    }
    block = yaml.safe_dump(required, sort_keys=False).replace("\n", "\n  ")
    return text.replace("config:\n", f"config:\n  {block.rstrip()}\n", 1) if required else text


@pytest.mark.parametrize("text", CONFIG_ERROR_FILES.values(), ids=CONFIG_ERROR_FILES.keys())
def test_stack_files_with_bad_values_exit_2_with_key_paths(tmp_path, capsys, text):
    path = tmp_path / "Pulumi.hostile.yaml"
    path.write_text(_with_required_sections(text), encoding="utf-8")
    code, err = _plan(tmp_path, path, capsys)
    assert code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "error: invalid stack configuration:"
    assert all(PROBLEM_LINE.match(line.strip()) for line in lines[1:]), err


PLAN_TOOL_BUGS: dict[str, tuple[bytes, str]] = {
    "binary garbage bytes": (bytes(range(256)) * 2, "UnicodeDecodeError escapes read_stack_file: exit 1 + traceback"),
    "non-UTF-8 text": ("config:\n  aiplatform:tags: {a: caf\xe9}\n".encode("latin-1"), "UnicodeDecodeError: exit 1 + traceback"),
    "YAML date value": (b"config:\n  aiplatform:tags: {built: 2024-01-01}\n", "json.dumps(date) TypeError in runtime_config: exit 1 + traceback"),
    "YAML date key": (b"config:\n  aiplatform:tags: {2024-01-01: x}\n", "json.dumps date key TypeError in runtime_config: exit 1 + traceback"),
    "YAML !!binary value": (b"config:\n  aiplatform:tags: !!binary aGVsbG8=\n", "json.dumps(bytes) TypeError in runtime_config: exit 1 + traceback"),
    "bad YAML": (b"config: [unclosed\n", "the 'not valid YAML' error spans 7 lines (the YAML problem mark), not one"),
}  # fmt: skip


@pytest.mark.parametrize(
    "content",
    [pytest.param(content, id=name) for name, (content, _) in PLAN_TOOL_BUGS.items()],
)
def test_hostile_stack_file_bytes_exit_2_with_one_error_line(tmp_path, capsys, content):
    path = tmp_path / "Pulumi.hostile.yaml"
    path.write_bytes(content)
    code, err = _plan(tmp_path, path, capsys)
    assert "Traceback" not in err, err
    assert code == 2
    assert err.startswith("error: ")
    first, *rest = err.strip().splitlines()
    assert not rest or all(PROBLEM_LINE.match(line.strip()) for line in rest), err


def test_non_string_keys_plan_as_the_cli_reads_them(tmp_path, capsys):
    """YAML keys that are not strings reach the program as strings, as the CLI passes config as JSON."""
    path = tmp_path / "Pulumi.hostile.yaml"
    path.write_text(_with_required_sections("config:\n  1: 2\n  aiplatform:tags: {1: x, null: y, 2.5: z}\n"))
    code, err = _plan(tmp_path, path, capsys)
    assert code == 0, err
    outputs = (tmp_path / "out" / "resources.json").read_text()
    assert '"1": "x"' in outputs and '"null": "y"' in outputs and '"2.5": "z"' in outputs
