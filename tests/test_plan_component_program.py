"""The plan's compute, capacity and cost reports for a program built from components (an EKS cluster,
node groups and a model server in tests/programs/components_cluster), not from the stack file."""

from __future__ import annotations

import json
from datetime import date
from functools import cache

from aiplatform.plan import cli as plan_tool
from aiplatform.plan.capacity_report import capacity_report
from aiplatform.plan.compute_report import compute_report
from aiplatform.plan.cost import cost_report
from aiplatform.plan.model import Plan
from tests.stacks import PROJECT_ROOT

PROGRAM = PROJECT_ROOT / "tests" / "programs" / "components_cluster"


@cache
def component_plan() -> Plan:
    return plan_tool.plan("dev", project_dir=PROGRAM, today=date(2026, 12, 6))


def test_the_compute_report_lists_the_registered_node_groups():
    assert compute_report(component_plan()).lines == [
        "provisioner: node groups, no autoscaler registered (they keep their desired size)",
        "NodeGroup system (system): m6i.large; ON_DEMAND; 2-3 nodes (desired 2)",
        "NodeGroup gpu (gpu): g5.2xlarge; ON_DEMAND; 0-4 nodes (desired 0); taints nvidia.com/gpu=true:NoSchedule",
    ]


def test_the_capacity_report_places_the_server_on_its_gpu_group():
    report = capacity_report(component_plan())
    lines = report.lines
    gpu = lines.index(
        "gpu (g5.2xlarge: 7.91 CPU / 28.63 GiB, 58 pods per node; DaemonSets take 0 CPU / 0.00 GiB of each)"
    )
    assert lines[gpu + 1].startswith("  at minSize 0: requests 4 CPU / 16.00 GiB, 2 pods of 0 CPU")
    assert lines[gpu + 2].startswith("  at maxSize 4: requests 8 CPU / 32.00 GiB, 4 pods of 31.64 CPU")
    assert lines[gpu + 3] == "    summarizer x 2-4: 2 CPU / 8.00 GiB, 1 GPU (workload)"
    assert lines[-1] == (
        "warning: gpu: minSize is 0, but summarizer (2) always run there: the group never scales to zero "
        "(the idle cost counts the 2 nodes they need)"
    )
    groups = {g["group"]: g for g in json.loads(report.files["capacity.json"])["groups"]}
    assert set(groups) == {"system", "gpu"}
    assert groups["system"]["pods"] == []  # nothing of the server lands on the untainted group
    assert groups["gpu"]["always_running_nodes"] == 2


def test_the_idle_cost_counts_the_two_gpu_nodes_the_server_keeps_running():
    document = json.loads(cost_report(component_plan()).files["cost.json"])
    items = {i["item"]: i for i in document["items"]}
    gpu = items["EC2 demo-nodes-gpu (g5.2xlarge)"]
    assert (gpu["quantity_idle"], gpu["quantity_peak"]) == (2, 4)
    assert "idle: 2 nodes for what always runs there (summarizer x 2), minimum 0" in gpu["note"]
    assert document["gpus"] == {"idle": 2, "peak": 4}


def test_the_cli_prints_the_reports_of_a_component_program(tmp_path, capsys):
    args = ["--stack", "dev", "--project-dir", str(PROGRAM), "--out", str(tmp_path), "--today", "2026-12-06"]
    assert plan_tool.main(args) == 0
    out = capsys.readouterr().out
    assert "not reported" not in out
    assert "  NodeGroup gpu (gpu): g5.2xlarge; ON_DEMAND; 0-4 nodes (desired 0)" in out
    assert "      summarizer x 2-4: 2 CPU / 8.00 GiB, 1 GPU (workload)" in out
