"""The scenarios: what the real engine must do with the program, each judged on what the API server and
the stack's state hold. They see only ``E2eRun`` (a stack, a cluster API, the simulated cloud's view of
node groups), so they run unchanged against a real cluster and real AWS.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pulumi import automation as auto

from aiplatform.instance_types import lookup
from tools.e2e import checks
from tools.e2e.charts import STAND_INS, StandIn
from tools.e2e.checks import Check
from tools.e2e.harness import E2eRun

NODE_AGENTS = ("nvidia-device-plugin",)


@dataclass
class ScenarioResult:
    name: str
    passed: bool = False
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    operations: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "seconds": self.seconds,
            "operations": self.operations,
            "checks": [c.as_dict() for c in self.checks],
            "error": self.error,
        }

    def verdict(self) -> str:
        failed = [c.name for c in self.checks if not c.passed]
        why = self.error or (", ".join(failed) if failed else "")
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}  ({self.seconds:.0f} s){'  ' + why if why else ''}"


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _changes(summary: Any) -> dict[str, int]:
    changes = getattr(summary, "resource_changes", None) or getattr(summary, "change_summary", None) or {}
    return {str(k): int(v) for k, v in changes.items()}


def run_operation(run: E2eRun, name: str, op: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """One engine operation, timed, its output logged; raises ``auto.CommandError`` on failure."""
    run.log(f"==== {name}")
    start = time.monotonic()
    result = op(color="never", on_output=run.log, **kwargs)
    seconds = round(time.monotonic() - start, 1)
    summary = getattr(result, "summary", None) or result
    record = {"seconds": seconds, "changes": _changes(summary) if summary is not None else {}}
    run.log(f"==== {name}: {seconds} s, {record['changes']}")
    return record


def gpu_groups(run: E2eRun) -> list[str]:
    """The node groups whose instances have GPUs, as the simulated cloud holds them."""
    groups = []
    for record in run.store.all("aws:eks/nodeGroup:NodeGroup"):
        types = record["outputs"].get("instanceTypes") or []
        instance = lookup(types[0]) if types else None
        if instance and instance.gpus:
            groups.append(record["outputs"]["nodeGroupName"])
    return sorted(groups)


def helm_kept_crds(run: E2eRun) -> list[str]:
    """CRDs the charts install from a ``crds/`` folder (which Helm never deletes)."""
    kept = []
    for chart in run.charts_served:
        stand_in = STAND_INS.get(chart, StandIn())
        if not stand_in.crds_in_templates:
            kept += [f"{crd.plural}.{crd.group}" for crd in stand_in.crds]
    return sorted(kept)


def deploy_and_destroy(run: E2eRun) -> ScenarioResult:
    """preview, up, the checks of a deployed platform, destroy, and nothing left behind."""
    result = ScenarioResult("deploy and destroy")
    start = time.monotonic()
    api = run.cluster.api
    before = checks.snapshot(api)
    try:
        try:
            result.operations["preview"] = run_operation(run, "preview", run.stack.preview)
            result.checks.append(Check("preview succeeded", True, "preview succeeded"))
            result.operations["up"] = run_operation(run, "up", run.stack.up)
            result.checks.append(Check("up succeeded", True, "up succeeded"))
        except auto.CommandError as exc:
            result.checks.append(
                Check("engine operation", False, "an engine operation failed", {"stderr": _tail(str(exc))})
            )
        groups = gpu_groups(run)
        result.checks += [
            checks.deployments_available(api),
            checks.pods_scheduled(api, groups),
            checks.gpu_nodes_run_node_agents(api, groups, NODE_AGENTS),
            checks.state_objects_exist(api, run.stack.export_stack().deployment.get("resources", [])),
        ]
        autoscaler = run.controllers.autoscaler
        result.checks.append(
            Check(
                "scale-up from zero served the GPU pods",
                not autoscaler.waiting,
                f"{len(autoscaler.scale_ups)} scale-ups; {len(autoscaler.waiting)} pods no group could take",
                {
                    "served": dict(autoscaler.served),
                    "waiting": dict(autoscaler.waiting),
                    "scale_ups": autoscaler.scale_ups,
                },
            )
        )
    except Exception as exc:  # noqa: BLE001 - recorded; the destroy below still runs
        result.error = f"{type(exc).__name__}: {exc}"
        result.checks.append(Check("checks ran", False, result.error, {"traceback": traceback.format_exc()}))
    finally:
        try:
            result.operations["destroy"] = run_operation(run, "destroy", run.stack.destroy)
            result.checks.append(Check("destroy succeeded", True, "destroy succeeded"))
        except auto.CommandError as exc:
            result.checks.append(
                Check("destroy succeeded", False, "destroy failed", {"stderr": _tail(str(exc))})
            )
        state = run.stack.export_stack().deployment.get("resources", [])
        result.checks.append(
            Check(
                "state empty after destroy",
                not state,
                f"{len(state)} resources left in the state",
                {"left": [r["urn"] for r in state]},
            )
        )
        result.checks.append(checks.nothing_left(before, checks.snapshot(api), helm_kept_crds(run)))
    result.seconds = round(time.monotonic() - start, 1)
    result.passed = all(c.passed for c in result.checks) and result.error is None
    return result
