"""An upgrade N-1 -> N under the real engine: the stack deployed at the minor before its own, then moved
to its own minor with that minor's pins, as a user upgrades a cluster.

The pins coupled to a minor come from the version calendar (``kubernetes_versions``): the EKS add-on
versions the stack pins and the cluster-autoscaler chart. The simulated EKS API upgrades the control
plane in place (the harness restarts the servers at the new minor on the same etcd data) and rolls the
node groups' nodes to the new release one at a time, through the Eviction API.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from aiplatform.kubernetes_versions import BY_VERSION, SUPPORTED_VERSIONS, minor_key, upgrade_problem
from tools.e2e import checks
from tools.e2e.checks import Check
from tools.e2e.scenarios import (
    EndpointSampler,
    ScenarioResult,
    StackUnderTest,
    StepLog,
    _urn_name,
    eks_versions,
    no_change,
    operation,
    scenario,
    set_config,
)
from tools.e2e.stacks import PROJECT

CLUSTER = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"

ConfigPath = tuple[str, ...]  # ("aiplatform:cluster", "addons", "kube-proxy")


def previous_minor(minor: str) -> str:
    """The minor before ``minor`` in the calendar (the one a cluster upgrades from)."""
    ordered = sorted(SUPPORTED_VERSIONS, key=minor_key)
    index = ordered.index(minor)
    if index == 0:
        raise ValueError(f"the calendar holds no minor before {minor} to upgrade from")
    return ordered[index - 1]


def version_pins(config: Mapping[str, Any], minor: str) -> dict[ConfigPath, str]:
    """The stack's settings coupled to the Kubernetes minor, at ``minor``'s values from the calendar:
    ``cluster.kubernetesVersion``, each EKS add-on the stack pins that the calendar pins per minor, and
    the cluster-autoscaler chart where the stack pins one."""
    row = BY_VERSION[minor]
    cluster = config.get(f"{PROJECT}:cluster") or {}
    pins: dict[ConfigPath, str] = {(f"{PROJECT}:cluster", "kubernetesVersion"): minor}
    for addon in sorted(cluster.get("addons") or {}):
        if addon in row.addons:
            pins[(f"{PROJECT}:cluster", "addons", addon)] = row.addons[addon]
    if "clusterAutoscaler" in (config.get(f"{PROJECT}:charts") or {}):
        pins[(f"{PROJECT}:charts", "clusterAutoscaler")] = row.autoscaler_chart
    return pins


def current_pins(config: Mapping[str, Any], paths: list[ConfigPath]) -> dict[ConfigPath, str]:
    """The stack file's own values at ``paths`` (the committed stack's pins of its own minor)."""
    values = {}
    for path in paths:
        node: Any = config
        for key in path:
            node = node[key]
        values[path] = str(node)
    return values


def with_pins(config: Mapping[str, Any], pins: Mapping[ConfigPath, str]) -> dict[str, Any]:
    """A copy of the stack config with ``pins`` set."""
    changed = copy.deepcopy(dict(config))
    for path, value in pins.items():
        node = changed
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return changed


def config_key(path: ConfigPath) -> str:
    """The path as ``pulumi config set --path`` takes it: ``aiplatform:cluster.addons["kube-proxy"]``."""
    head, *rest = path
    return head + "".join(f".{k}" if k.replace("_", "").isalnum() else f'["{k}"]' for k in rest)


def write_stack_at(committed: Path, minor: str, out: Path) -> Path:
    """The committed stack file with the minor and its pins set to ``minor``'s, written to ``out``."""
    document = yaml.safe_load(committed.read_text())
    document["config"] = with_pins(document["config"], version_pins(document["config"], minor))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out


# -- the checks ---------------------------------------------------------------------------------------
def _finished(steps: StepLog, op: str, typ: str) -> dict[str, tuple[float, float | None]]:
    """Each resource of ``typ`` with an ``op`` step: (started, finished)."""
    return {urn: (t, steps.finished.get(urn)) for o, kind, urn, t in steps.steps if o == op and kind == typ}


def updated_only(up: Any, steps: StepLog) -> Check:
    """The upgrade up succeeds and only updates (nothing created, replaced or deleted)."""
    summary = getattr(up, "summary", None)
    changes = {str(getattr(k, "value", k)): int(v) for k, v in (summary.resource_changes or {}).items()}
    ok = summary.result == "succeeded" and changes.get("update", 0) > 0 and set(changes) <= {"update", "same"}
    return Check(
        "the upgrade up succeeds, updating only",
        ok,
        f"{summary.result}, changes {changes}",
        {"changes": changes, "changed": steps.changed_with_diffs()},
    )


def control_plane_defaults(api: Any) -> set[str]:
    """What a control plane creates for itself (the default RBAC of its controllers and their service
    accounts), keyed as ``checks.snapshot`` keys objects: a newer minor adds some, which belong to the
    cluster, not to the stack."""
    found = set()
    rbac = "rbac.authorization.k8s.io/v1"
    selector = "labelSelector=kubernetes.io%2Fbootstrapping%3Drbac-defaults"
    for plural, kind in (
        ("clusterroles", "ClusterRole"),
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("roles", "Role"),
        ("rolebindings", "RoleBinding"),
    ):
        for item in api.list_path(f"/apis/{rbac}/{plural}?{selector}"):
            meta = item["metadata"]
            key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            found.add(f"{rbac} {kind} {key}")
    controllers = {
        key.rsplit(" ", 1)[1].removeprefix("system:controller:")
        for key in found
        if " ClusterRole system:controller:" in key
    }
    for account in api.list("ServiceAccount", "kube-system"):
        if account["metadata"]["name"] in controllers:
            found.add(f"v1 ServiceAccount kube-system/{account['metadata']['name']}")
    return found


def cluster_updated_in_place(steps: StepLog) -> Check:
    ops = {}
    for op, typ, urn, _t in steps.steps:
        if typ == CLUSTER:
            ops.setdefault(_urn_name(urn), []).append(op)
    replaced = {n: o for n, o in ops.items() if set(o) & {"replace", "create-replacement", "delete-replaced"}}
    updated = {n for n, o in ops.items() if "update" in o}
    return Check(
        "the EKS cluster is updated in place, never replaced",
        bool(ops) and updated == set(ops) and not replaced,
        f"cluster steps {ops}",
        {"steps": ops, "diffs": {_urn_name(u): d for u, d in steps.diffs.items() if CLUSTER in u}},
    )


def after_the_control_plane(steps: StepLog, typ: str, what: str, expect_some: bool = True) -> Check:
    """Every ``update`` step of ``typ`` starts after the cluster's update step finished."""
    cluster = _finished(steps, "update", CLUSTER)
    cluster_done = max((f for _s, f in cluster.values() if f is not None), default=None)
    updates = _finished(steps, "update", typ)
    early = sorted(
        _urn_name(urn) for urn, (start, _f) in updates.items() if cluster_done is None or start < cluster_done
    )
    return Check(
        f"{what} update after the control plane",
        cluster_done is not None and (bool(updates) or not expect_some) and not early,
        f"{len(updates)} {what} updates, {len(early)} started before the cluster update ended",
        {
            "updated": sorted(_urn_name(u) for u in updates),
            "started_early": early,
            "seconds_after_cluster": {
                _urn_name(u): round(s - cluster_done, 2) for u, (s, _f) in updates.items() if cluster_done
            },
        },
    )


def addons_at(s: StackUnderTest, pins: Mapping[ConfigPath, str]) -> Check:
    """The simulated EKS holds each pinned add-on at the pinned version."""
    want = {path[-1]: v for path, v in pins.items() if path[1:2] == ("addons",)}
    held = {r["inputs"]["addonName"]: r["inputs"].get("addonVersion") for r in s.run.store.all(ADDON)}
    wrong = {a: held.get(a) for a, v in want.items() if held.get(a) != v}
    return Check(
        "the EKS add-ons run the new minor's versions",
        not wrong,
        f"{len(want) - len(wrong)}/{len(want)} at the new pins",
        {"expected": want, "held": held, "wrong": wrong},
    )


def nodes_rolled(s: StackUnderTest, minor: str, before: Mapping[str, list[str]]) -> Check:
    """Every node group node present before is gone, replaced one at a time by a node at the new kubelet
    version, its pods evicted through the Eviction API."""
    kubelet = f"v{minor}.0"
    events = s.run.store.events("node-replaced")
    now = {
        group: {n["metadata"]["name"]: n["status"].get("nodeInfo", {}).get("kubeletVersion") for n in nodes}
        for group, nodes in _group_nodes(s).items()
    }
    old_left = sorted(n for group, names in before.items() for n in names if n in now.get(group, {}))
    wrong_version = sorted(n for nodes in now.values() for n, v in nodes.items() if v != kubelet)
    replaced = {e["old"] for e in events}
    not_replaced = sorted(n for names in before.values() for n in names if n not in replaced)
    # One at a time: within a group, a node's replacement starts after the previous one ended.
    overlapping = []
    by_group: dict[str, list[dict]] = {}
    for e in events:
        by_group.setdefault(e["group"], []).append(e)
    for group, group_events in by_group.items():
        ordered = sorted(group_events, key=lambda e: e["started"])
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b["started"] < a["ended"]:
                overlapping.append(f"{group}: {b['old']} began before {a['old']} was done")
    return Check(
        "node groups rolled to the new release, one node at a time",
        bool(events) and not old_left and not wrong_version and not not_replaced and not overlapping,
        f"{len(events)} nodes replaced; {len(old_left)} old nodes left; {len(wrong_version)} nodes not at "
        f"{kubelet}; {sum(len(e['evicted']) for e in events)} evictions, "
        f"{sum(e['refused'] for e in events)} refused by a PodDisruptionBudget",
        {
            "events": events,
            "old_left": old_left,
            "not_at_new_version": wrong_version,
            "not_replaced": not_replaced,
            "overlapping": overlapping,
            "nodes": now,
        },
    )


def endpoints_kept(s: StackUnderTest, samplers: list[EndpointSampler]) -> Check:
    """Each inference Service whose pods a PodDisruptionBudget covers kept a ready endpoint in every
    sample. A single-replica server has no budget (nothing to keep while its only pod moves): its gap is
    reported, not judged, as EKS's drain would leave the same gap."""
    budgets = {
        (pdb["metadata"]["namespace"], pdb["metadata"]["name"])
        for pdb in s.api.list_path("/apis/policy/v1/poddisruptionbudgets")
    }
    judged, gaps = {}, {}
    for sm in samplers:
        fewest = min(sm.samples, default=0)
        covered = (sm.namespace, sm.service) in budgets  # the program names the budget as the Service
        entry = {
            "samples": len(sm.samples),
            "fewest_ready": fewest,
            "samples_without_endpoint": sum(1 for x in sm.samples if x == 0),
            "interval_seconds": sm.interval,
            "pod_disruption_budget": covered,
        }
        (judged if covered else gaps)[f"{sm.namespace}/{sm.service}"] = entry
    failed = [k for k, v in judged.items() if not v["samples"] or v["fewest_ready"] == 0]
    summary = ", ".join(f"{k}: fewest {v['fewest_ready']}" for k, v in judged.items())
    if gaps:
        single = ", ".join(f"{k}: fewest {v['fewest_ready']}" for k, v in gaps.items())
        summary += f"; single replicas (no budget): {single}"
    return Check(
        "inference Services with a PodDisruptionBudget kept ready endpoints throughout",
        bool(judged) and not failed,
        summary,
        {"judged": judged, "single_replica": gaps, "failed": failed},
    )


def _group_nodes(s: StackUnderTest) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for node in s.api.list("Node"):
        group = (node["metadata"].get("labels") or {}).get("eks.amazonaws.com/nodegroup")
        if group:
            groups.setdefault(group, []).append(node)
    return groups


def _inference_services(s: StackUnderTest) -> list[tuple[str, str]]:
    workloads = (s.run.config.get(f"{PROJECT}:workloads") or {}).get("inference") or []
    return [(w["namespace"], w["name"]) for w in workloads]


# -- the scenario ------------------------------------------------------------------------------------
def kubernetes_upgrade(s: StackUnderTest, committed: Path, target: str) -> ScenarioResult:
    """The deployed stack (at the minor before ``target``) moved to ``target`` with the committed
    stack's pins: the cluster is updated in place and its control plane serves ``target``; add-ons and
    node groups follow the control plane; nodes roll one at a time; the inference Services keep ready
    endpoints; every object of the state is served at its apiVersion; a second up changes nothing."""
    with scenario(s, f"upgrade {s.run.kubernetes_minor} -> {target}") as result:
        committed_config = yaml.safe_load(committed.read_text())["config"]
        derived = version_pins(committed_config, target)
        paths = list(derived)
        pins = current_pins(committed_config, paths)
        result.operations["pins"] = {
            "from": {
                config_key(p): v for p, v in version_pins(committed_config, s.run.kubernetes_minor).items()
            },
            "to": {config_key(p): v for p, v in pins.items()},
        }
        result.checks.append(
            Check(
                "the committed stack's pins are the calendar's for its minor",
                pins == derived,
                f"{sum(pins[p] == derived[p] for p in paths)}/{len(paths)} pins as the calendar says",
                {
                    "committed": {config_key(p): v for p, v in pins.items()},
                    "calendar": {config_key(p): v for p, v in derived.items()},
                },
            )
        )
        before = {g: sorted(n["metadata"]["name"] for n in nodes) for g, nodes in _group_nodes(s).items()}
        for path, value in pins.items():
            set_config(s, config_key(path), value)
        steps = StepLog()
        with contextlib.ExitStack() as sampling:
            samplers = [
                sampling.enter_context(EndpointSampler(s.api, ns, name))
                for ns, name in _inference_services(s)
            ]
            up = operation(s, result, "upgrade up", s.stack.up, on_event=steps)
        # The new minor's controllers bring their own defaults: the cluster's, not the stack's to delete.
        s.baseline |= control_plane_defaults(s.api)
        upgraded = s.run.store.events("control-plane-upgraded")
        roll = s.run.store.events("node-replaced")
        restart = s.run.operator.restarts[-1] if s.run.operator and s.run.operator.restarts else {}
        result.operations["upgrade up"].update(
            {
                "control_plane_restart_seconds": restart.get("seconds"),
                "cluster_update_seconds": upgraded[-1]["seconds"] if upgraded else None,
                "node_roll_seconds": round(max(e["ended"] for e in roll) - min(e["started"] for e in roll), 1)
                if roll
                else None,
                "nodes_replaced": len(roll),
                "min_ready_endpoints": {
                    f"{sm.namespace}/{sm.service}": min(sm.samples, default=0) for sm in samplers
                },
            }
        )
        result.checks += [
            updated_only(up, steps),
            cluster_updated_in_place(steps),
            Check(
                "the control plane restarted at the new minor on the same data",
                bool(restart) and restart.get("to") == target and not restart.get("error"),
                f"{restart.get('from')} -> {restart.get('to')} in {restart.get('seconds')} s",
                {"restarts": s.run.operator.restarts if s.run.operator else []},
            ),
            after_the_control_plane(steps, ADDON, "EKS add-on"),
            addons_at(s, pins),
            after_the_control_plane(steps, NODE_GROUP, "node group"),
            nodes_rolled(s, target, before),
        ]
        result.checks.append(endpoints_kept(s, samplers))
        result.checks += [
            checks.state_objects_exist(s.api, s.state()),
            checks.control_plane_version(s.run.cluster.server_version(), eks_versions(s), target),
            checks.deployments_available(s.api),
        ]
        no_change(s, result, "second up", s.stack.up, "a second up changes nothing")
        result.checks.append(downgrade_refused(s, committed_config, target, pins))
    return result


def downgrade_refused(
    s: StackUnderTest, config: Mapping[str, Any], current: str, pins: Mapping[ConfigPath, str]
) -> Check:
    """A preview back to the previous minor fails at the simulated EKS API with the one-way, one-minor
    rule's message (a skip cannot be previewed here: the calendar holds no minor after ``current``);
    the stack's ``pins`` are put back after."""
    older = previous_minor(current)
    expected = upgrade_problem(current, older)
    for path, value in version_pins(config, older).items():
        set_config(s, config_key(path), value)
    output: list[str] = []
    start = time.monotonic()
    try:
        s.stack.preview(color="never", on_output=output.append)
        failed = False
    except Exception as exc:  # noqa: BLE001 - the engine's failure is the expected outcome
        failed = True
        output.append(str(exc))
    finally:
        for path, value in pins.items():
            set_config(s, config_key(path), value)
    text = "\n".join(output)
    return Check(
        "the simulated EKS API refuses a downgrade, naming cluster.kubernetesVersion",
        failed and bool(expected) and expected in text,
        f"preview {current} -> {older} {'failed' if failed else 'succeeded'} in "
        f"{time.monotonic() - start:.1f} s",
        {"expected": expected, "engine_output": "\n".join(text.splitlines()[-12:])},
    )
