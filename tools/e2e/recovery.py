"""Recovering an interrupted update, as the README's "When things go wrong" tells a user: the lock the dead
engine left, its pending operations (each pending create looked for where its create would have made
it, imported or dropped with ``python -m tools.pending``), a refresh, then ``up``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.e2e.checks import Check
from tools.e2e.cloud import identity
from tools.e2e.kubeapi import ApiError, KubeApi
from tools.e2e.ledger import HELM_RELEASE, helm_releases
from tools.e2e.scenarios import (
    ScenarioResult,
    StackUnderTest,
    StepLog,
    _changes,
    _tail,
    _urn_name,
    no_change,
    operation,
)
from tools.e2e.stacks import PROJECT_ROOT

LOCKED = "the stack is currently locked"


def export_state(s: StackUnderTest) -> dict[str, Any]:
    """The stack's checkpoint as ``pulumi stack export`` prints it."""
    exported = s.run.pulumi("stack", "export")
    if exported.returncode != 0:
        raise RuntimeError(f"pulumi stack export failed: {_tail(exported.stderr, 5)}")
    return json.loads(exported.stdout)["deployment"]


def pending_operations(deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(deployment.get("pending_operations") or [])


def _kubernetes_id(api: KubeApi, inputs: Mapping[str, Any]) -> tuple[str | None, str]:
    """The id of the object a Kubernetes resource's create made (``namespace/name``), or None when the
    API server does not hold it (``kubectl get``)."""
    meta = inputs.get("metadata") or {}
    api_version, kind, name = inputs.get("apiVersion"), inputs.get("kind"), meta.get("name")
    if not (api_version and kind and name):
        return None, "no name in its inputs"
    namespace = meta.get("namespace")
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = next((p for pre, p, _n, k in api.apis() if pre == prefix and k == kind), None)
    if plural is None:
        return None, f"{api_version} {kind} is not served"
    path = f"{prefix}/namespaces/{namespace}/{plural}/{name}" if namespace else f"{prefix}/{plural}/{name}"
    try:
        api.request("GET", path)
    except ApiError as exc:
        if exc.status == 404:
            return None, f"{kind} {namespace or ''}/{name} does not exist"
        raise
    return (f"{namespace}/{name}" if namespace else name), f"{kind} {namespace or ''}/{name} exists"


def apply_manager(api: KubeApi, inputs: Mapping[str, Any]) -> str | None:
    """The field manager that applied a Kubernetes object (the provider's ``pulumi-kubernetes-...``),
    as ``kubectl get -o jsonpath='{.metadata.managedFields[?(@.operation=="Apply")].manager}'`` reads it."""
    meta = inputs.get("metadata") or {}
    api_version, kind, name = inputs.get("apiVersion"), inputs.get("kind"), meta.get("name")
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = next((p for pre, p, _n, k in api.apis() if pre == prefix and k == kind), None)
    if plural is None or not name:
        return None
    namespace = meta.get("namespace")
    path = f"{prefix}/namespaces/{namespace}/{plural}/{name}" if namespace else f"{prefix}/{plural}/{name}"
    obj = api.request("GET", path)
    managers = [
        m["manager"]
        for m in (obj.get("metadata") or {}).get("managedFields") or []
        if m.get("operation") == "Apply"
    ]
    return managers[0] if len(managers) == 1 else None


def find_created(s: StackUnderTest, op: Mapping[str, Any]) -> tuple[list[str], str]:
    """Where a pending create's resource is, if its create went through: the ids found (none, one, or
    several when it was made more than once) and how they were found."""
    resource = op["resource"]
    typ, inputs = resource["type"], resource.get("inputs") or {}
    if typ == HELM_RELEASE:
        key = f"{inputs.get('namespace')}/{inputs.get('name')}"
        release = helm_releases(s.api).get(key)
        if release is None:
            return [], f"no Helm release {key} (helm status)"
        return [key], f"Helm release {key}, revision {release['revision']} {release['status']}"
    if typ.startswith("kubernetes:"):
        ident, how = _kubernetes_id(s.api, inputs)
        return ([ident] if ident else []), how
    if typ.startswith("aws:"):
        found = identity.find(typ, inputs, s.run.store.all(typ))
        by = identity.identity(typ)
        how = f"by {', '.join(by.key) if by.key else ', '.join(by.search)}"
        return [r["id"] for r in found], how
    return [], "not a resource this recovery knows"


@dataclass
class Recovery:
    """What the recovery did: each pending operation and what became of it."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    imported: dict[str, str] = field(default_factory=dict)  # urn -> id
    cleared: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    helm_fixed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


def _cli(s: StackUnderTest, recovery: Recovery, *args: str):
    result = s.run.pulumi(*args)
    recovery.commands.append(f"pulumi {' '.join(args)}  # exit {result.returncode}")
    return result


def finish_pending_release(api: KubeApi, key: str) -> str | None:
    """A Helm release left ``pending-install`` or ``pending-upgrade`` by a killed engine can take no
    other operation. As ``helm rollback`` of an upgrade, or ``helm uninstall`` of an install that never
    finished: its newest revision's record goes, and the recovery imports what remains (or clears the
    pending create of a release that had no earlier revision). Returns what was done."""
    namespace, name = key.split("/", 1)
    secrets = api.list("Secret", namespace, selector=f"owner=helm,name={name}")
    newest = max(secrets, key=lambda x: int(x["metadata"]["labels"].get("version", "0")), default=None)
    if newest is None:
        return None
    status = newest["metadata"]["labels"].get("status", "")
    if not status.startswith("pending-"):
        return None
    api.delete("Secret", newest["metadata"]["name"], namespace)
    return f"{key}: revision {newest['metadata']['labels'].get('version')} {status} removed"


def recover_interrupted_update(s: StackUnderTest, result: ScenarioResult) -> Recovery:
    """What the README's "When things go wrong" tells a user after an update was killed: the rerun is
    refused by the lock the dead engine left; ``pulumi cancel`` removes it; the exported state lists the
    pending operations; each pending create's resource is looked for (in AWS by its key or tags, in the
    cluster by kind and name, a Helm release by its records, whose unfinished revision goes first);
    ``python -m tools.pending`` imports what exists and drops the rest; ``pulumi stack import`` and
    ``pulumi refresh`` (which settles the pending updates and deletes); then ``pulumi up``."""
    recovery = Recovery()
    again = _cli(s, recovery, "up", "--yes", "--skip-preview")
    text = again.stdout + again.stderr
    result.checks.append(
        Check(
            "a rerun is refused by the lock the killed engine left",
            again.returncode != 0 and LOCKED in text,
            _tail(text, 3),
        )
    )
    cancel = _cli(s, recovery, "cancel", "--yes")
    result.checks.append(
        Check(
            "pulumi cancel removes the lock", cancel.returncode == 0, _tail(cancel.stderr, 3) or "cancelled"
        )
    )
    with tempfile.TemporaryDirectory(prefix="aiplatform-state-") as folder:
        exported, repaired = Path(folder) / "state.json", Path(folder) / "repaired.json"
        _cli(s, recovery, "stack", "export", "--file", str(exported))
        deployment = json.loads(exported.read_text())["deployment"]
        recovery.pending = [
            {"type": op["type"], "urn": op["resource"]["urn"]} for op in pending_operations(deployment)
        ]
        imports: list[str] = []
        for op in pending_operations(deployment):
            if op["type"] != "creating":
                continue
            urn = op["resource"]["urn"]
            if op["resource"]["type"] == HELM_RELEASE:
                inputs = op["resource"].get("inputs") or {}
                fixed = finish_pending_release(s.api, f"{inputs.get('namespace')}/{inputs.get('name')}")
                if fixed:
                    recovery.helm_fixed.append(fixed)
            ids, how = find_created(s, op)
            if len(ids) == 1:
                recovery.imported[urn] = ids[0]
                imports += ["--import", urn, ids[0]]
                typ = op["resource"]["type"]
                if typ.startswith("kubernetes:") and typ != HELM_RELEASE:
                    manager = apply_manager(s.api, op["resource"].get("inputs") or {})
                    if manager:
                        imports += ["--field-manager", urn, manager]
            elif not ids:
                recovery.cleared.append(urn)
            else:
                recovery.ambiguous[urn] = ids
            s.run.log(f"pending create {_urn_name(urn)}: {how}: {ids}")
        tool = subprocess.run(
            [sys.executable, "-m", "tools.pending", str(exported), *imports, "--out", str(repaired)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
        )
        recovery.commands.append(
            f"python -m tools.pending STATE {' '.join(imports)} --out REPAIRED  # exit {tool.returncode}"
        )
        settled = _cli(s, recovery, "stack", "import", "--file", str(repaired))
    refresh = _cli(s, recovery, "refresh", "--yes")
    left = pending_operations(export_state(s))
    in_state = {r["urn"] for r in s.state()}
    result.checks += [
        Check(
            "every pending create found at most once",
            not recovery.ambiguous,
            f"{len(recovery.imported)} imported, {len(recovery.cleared)} dropped, "
            f"{len(recovery.ambiguous)} found more than once",
            {"imported": recovery.imported, "cleared": recovery.cleared, "ambiguous": recovery.ambiguous},
        ),
        Check(
            "the settled state imports, refresh settles the rest",
            tool.returncode == 0
            and settled.returncode == 0
            and refresh.returncode == 0
            and not left
            and set(recovery.imported) <= in_state,
            f"tools.pending exit {tool.returncode}, stack import exit {settled.returncode}, refresh exit "
            f"{refresh.returncode}; {len(recovery.pending)} pending before, {len(left)} after; "
            f"{len(set(recovery.imported) & in_state)}/{len(recovery.imported)} imported in the state",
            {
                "pending_before": recovery.pending,
                "pending_after": left,
                "tool": _tail(tool.stdout + tool.stderr, 5),
                "refresh": _tail(refresh.stdout + refresh.stderr, 12),
            },
        ),
    ]
    return recovery


def converge(s: StackUnderTest, result: ScenarioResult, name: str = "up after recovery") -> StepLog:
    """An ``up`` that must succeed, then a second that must change nothing; the first's steps."""
    steps = StepLog()
    up = operation(s, result, name, s.stack.up, on_event=steps)
    summary = getattr(up, "summary", None)
    result.checks.append(
        Check(
            f"{name} succeeds",
            summary is not None and summary.result == "succeeded",
            f"changes {_changes(summary)}",
        )
    )
    no_change(s, result, "second up", s.stack.up, "a second up changes nothing")
    return steps


def imported_not_created_again(recovery: Recovery, steps: StepLog) -> Check:
    """The up after the recovery creates none of the resources the recovery imported."""
    again = sorted(
        _urn_name(urn) for op, _typ, urn in steps.changed() if urn in recovery.imported and op == "create"
    )
    return Check(
        "the up creates nothing the recovery imported",
        not again,
        f"{len(recovery.imported)} imported, {len(again)} created again",
        {"created_again": again},
    )
