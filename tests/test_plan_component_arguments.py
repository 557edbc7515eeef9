"""A program built from components, planned with bad arguments: exit 2, one line per problem, no traceback."""

from __future__ import annotations

import pytest

from aiplatform.plan import cli as plan_tool

PROGRAM = """\
import pulumi_kubernetes as k8s

from aiplatform import workloads as w
from aiplatform.podspec import Resources

provider = k8s.Provider("cluster", kubeconfig="{{}}")
w.InferenceService(
    "summarizer",
    w.InferenceServiceArgs(
        provider=provider,
        namespace="ml-serving",
        image="registry.example.com/summarizer:1.4.2",
        {arguments}
    ),
)
"""


def plan_program(tmp_path, capsys, arguments: str) -> tuple[int, str]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: components-demo\nruntime: python\n", encoding="utf-8")
    (project / "Pulumi.dev.yaml").write_text("config: {}\n", encoding="utf-8")
    (project / "__main__.py").write_text(PROGRAM.format(arguments=arguments), encoding="utf-8")
    code = plan_tool.main(["--stack", "dev", "--project-dir", str(project), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_valid_component_program_plans(tmp_path, capsys):
    code, output = plan_program(tmp_path, capsys, 'resources=Resources(cpu="1", memory="2Gi"),')
    assert code == 0, output


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            'resources=Resources(cpu="1", memory="lots"), replicas=-1,',
            [
                "error: InferenceService 'summarizer': resources.memory: 'lots' is not a Kubernetes quantity "
                "(e.g. 500m, 2, 512Mi, 16Gi)",
                "error: InferenceService 'summarizer': replicas: must be >= 0",
            ],
        ),
        (
            'resources={"cpu": "1", "memory": "2Gi"},',
            [
                "error: InferenceService 'summarizer': resources: got a dict, expected Resources: pass Resources(...)"
            ],
        ),
        (
            'resources=Resources(cpu="1", memory="2Gi"), autoscaling={"max_replicas": 4},',
            [
                "error: InferenceService 'summarizer': autoscaling: got a dict, expected Autoscaling: "
                "pass Autoscaling(...)"
            ],
        ),
        (
            'resources=Resources(cpu="1", memory="2Gi"), secret_files=[{"secret": "hf", "mount_path": "/s"}],',
            [
                "error: InferenceService 'summarizer': secret_files[0]: got a dict, expected SecretFiles: "
                "pass SecretFiles(...)"
            ],
        ),
        (
            'resources=Resources(cpu="1", memory="2Gi"), replica=3,',
            [
                "error: __main__.py, line 9: InferenceServiceArgs.__init__() got an unexpected keyword "
                "argument 'replica' (did you mean 'replicas'?)"
            ],
        ),
    ],
    ids=[
        "arguments-error",
        "dict-for-resources",
        "dict-for-autoscaling",
        "dict-in-a-list",
        "misspelled-keyword",
    ],
)
def test_bad_component_arguments_exit_2_with_one_line_per_problem(tmp_path, capsys, arguments, expected):
    code, output = plan_program(tmp_path, capsys, arguments)
    assert code == 2, output
    assert "Traceback" not in output
    for line in expected:
        assert line in output.splitlines(), output
    assert not (tmp_path / "out").exists()


def test_any_other_failure_of_the_program_still_exits_1_with_its_traceback(tmp_path, capsys):
    code, output = plan_program(tmp_path, capsys, 'resources=Resources(cpu="1", memory="2Gi"), **int("x"),')
    assert code == 1
    assert "Traceback" in output and "invalid literal for int()" in output
