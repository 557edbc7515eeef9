"""Lost, orphaned, duplicated: the stack's state against what the simulated cloud's records and the API
server hold, counted rather than assumed.

- lost: a resource of the state the cloud or the cluster no longer holds;
- orphaned: a resource the stack made that the state does not hold (an AWS record, an object the
  engine's server-side apply wrote, a Helm release);
- duplicated: one resource made twice (the simulated cloud knows which create made each record), or two
  resources of the state sharing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.e2e import checks
from tools.e2e.checks import Check
from tools.e2e.kubeapi import ApiError, KubeApi
from tools.e2e.scenarios import ScenarioResult, StackUnderTest, _urn_name

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _object_key(group: str, kind: str, namespace: str | None, name: str) -> str:
    return f"{group}/{kind} {namespace}/{name}" if namespace else f"{group}/{kind} {name}"


def _engine_managed(obj: Mapping[str, Any]) -> bool:
    """Written by the Kubernetes provider's server-side apply (its field managers are
    ``pulumi-kubernetes-<suffix>``), not by Helm or a controller."""
    return any(
        (m.get("manager") or "").startswith("pulumi-kubernetes-")
        for m in obj["metadata"].get("managedFields") or []
    )


def cluster_objects(api: KubeApi) -> dict[str, dict]:
    """Every object the API server holds that the engine wrote, by ``group/kind namespace/name``."""
    found = {}
    for prefix, plural, _namespaced, kind in api.apis():
        if kind in ("Event", "Lease", "EndpointSlice", "Endpoints") or plural == "componentstatuses":
            continue
        try:
            items = api.list_path(f"{prefix}/{plural}")
        except ApiError:
            continue
        group = (
            prefix.removeprefix("/api/v1").removeprefix("/apis/").rsplit("/", 1)[0]
            if prefix != "/api/v1"
            else ""
        )
        for item in items:
            if _engine_managed(item):
                meta = item["metadata"]
                found[_object_key(group, kind, meta.get("namespace"), meta["name"])] = item
    return found


def helm_releases(api: KubeApi) -> dict[str, dict]:
    """The Helm releases the cluster holds (their storage Secrets), by ``namespace/name``: each release's
    latest revision and its status (``deployed``, ``pending-install`` ...)."""
    releases: dict[str, dict] = {}
    for secret in api.list("Secret", selector="owner=helm"):
        labels = secret["metadata"].get("labels") or {}
        key = f"{secret['metadata']['namespace']}/{labels.get('name')}"
        revision = int(labels.get("version", "0"))
        if revision >= releases.get(key, {}).get("revision", -1):
            releases[key] = {"revision": revision, "status": labels.get("status")}
    return releases


def ledger(s: StackUnderTest) -> tuple[Check, dict[str, int]]:
    """The state against the simulated cloud and the API server: resources the state holds that are gone
    (lost), resources the stack made that the state does not hold (orphaned), and resources made twice for
    one (duplicated). Every Helm release deployed."""
    state = [r for r in s.state() if r.get("custom", True) and r.get("id")]
    records = list(s.run.store.all())
    held = {(r["type"], r["id"]) for r in records}
    state_aws: dict[tuple[str, str], list[str]] = {}
    for r in state:
        if r["type"].startswith("aws:"):
            state_aws.setdefault((r["type"], r["id"]), []).append(r["urn"])
    by_urn: dict[str, list[str]] = {}
    for rec in records:
        by_urn.setdefault(rec["urn"], []).append(rec["id"])
    lost = [
        f"aws {typ} {ident} ({_urn_name(urns[0])})"
        for (typ, ident), urns in state_aws.items()
        if (typ, ident) not in held
    ]
    orphaned = [
        f"aws {rec['type']} {rec['id']} (created for {_urn_name(rec['urn'])})"
        for rec in records
        if (rec["type"], rec["id"]) not in state_aws
    ]
    # The simulated cloud knows which resource's create made each record: two records for one resource
    # is a duplicate, whatever the state says.
    duplicated = [
        f"aws {_urn_name(urn)}: {len(ids)} resources {sorted(ids)}"
        for urn, ids in by_urn.items()
        if len(ids) > 1
    ]
    duplicated += [
        f"state: {len(urns)} resources share aws {typ} {ident}"
        for (typ, ident), urns in state_aws.items()
        if len(urns) > 1
    ]

    held_check = checks.state_objects_exist(s.api, state)
    lost += held_check.details.get("missing", [])
    state_k8s: dict[str, list[str]] = {}
    state_releases: set[str] = set()
    for r in state:
        if r["type"] == HELM_RELEASE:
            outputs = r.get("outputs") or {}
            state_releases.add(f"{outputs.get('namespace')}/{outputs.get('name')}")
            continue
        outputs = r.get("outputs") or {}
        meta = outputs.get("metadata") or {}
        if r["type"].startswith("kubernetes:") and outputs.get("kind") and meta.get("name"):
            key = _object_key(
                _group(outputs["apiVersion"]), outputs["kind"], meta.get("namespace"), meta["name"]
            )
            state_k8s.setdefault(key, []).append(r["urn"])
    written = cluster_objects(s.api)
    orphaned += [f"kubernetes {key}" for key in sorted(written) if key not in state_k8s]
    duplicated += [
        f"state: {len(urns)} resources share kubernetes {key}"
        for key, urns in state_k8s.items()
        if len(urns) > 1
    ]
    releases = helm_releases(s.api)
    orphaned += [f"helm release {key}" for key in sorted(releases) if key not in state_releases]
    lost += [f"helm release {key}" for key in sorted(state_releases) if key not in releases]
    not_deployed = {k: v["status"] for k, v in releases.items() if v["status"] != "deployed"}
    counts = {"lost": len(lost), "orphaned": len(orphaned), "duplicated": len(duplicated)}
    check = Check(
        "nothing lost, orphaned or duplicated; every Helm release deployed",
        not lost and not orphaned and not duplicated and not not_deployed,
        f"{len(state)} resources in the state, {len(records)} in the simulated cloud, {len(written)} objects "
        f"written by the engine, {len(releases)} Helm releases: {counts['lost']} lost, "
        f"{counts['orphaned']} orphaned, {counts['duplicated']} duplicated, "
        f"{len(not_deployed)} releases not deployed",
        {"lost": lost, "orphaned": orphaned, "duplicated": duplicated, "releases_not_deployed": not_deployed},
    )
    return check, counts


def judge_ledger(s: StackUnderTest, result: ScenarioResult) -> dict[str, int]:
    check, counts = ledger(s)
    result.checks.append(check)
    return counts
