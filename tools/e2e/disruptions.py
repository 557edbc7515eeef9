"""Who took down which pod, from the API server's audit log (``LocalCluster.audit_log``: pod deletions and
evictions only), judged against the PodDisruptionBudgets.

A budget governs voluntary disruptions made through the Eviction API: the API server refuses an eviction
(HTTP 429) that would leave fewer healthy pods than the budget keeps. A pod deleted directly by anyone but
the controllers that own pods bypasses the budget. The rest are not voluntary disruptions: a Deployment's
rolling update (its own ``maxUnavailable``), the pod garbage collector removing pods whose node is gone
(an involuntary loss), the cascade of an owner's deletion, and the kubelet (kwok here) completing a
deletion another request began.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.e2e.checks import Check

_SA = "system:serviceaccount:kube-system:"
# Deletions that are not a voluntary disruption, by who makes them.
NOT_VOLUNTARY = {
    f"{_SA}replicaset-controller": "rolling update",
    f"{_SA}pod-garbage-collector": "involuntary: node gone",
    f"{_SA}generic-garbage-collector": "owner deleted",
    f"{_SA}namespace-controller": "owner deleted",
    f"{_SA}job-controller": "owner's controller",
    f"{_SA}daemon-set-controller": "owner's controller",
    f"{_SA}statefulset-controller": "owner's controller",
    f"{_SA}cronjob-controller": "owner's controller",
    "kwok-controller": "kubelet completing a deletion",
    "system:kube-controller-manager": "owner's controller",
}


@dataclass(frozen=True)
class Disruption:
    at: str  # the API server's timestamp of the request's completion
    user: str
    verb: str  # "evict" or "delete"
    namespace: str
    pod: str
    code: int  # the API server's answer: 201/200 done, 429 refused by a budget

    @property
    def what(self) -> str:
        if self.verb == "evict":
            return "eviction allowed" if self.code < 300 else f"eviction refused ({self.code})"
        return NOT_VOLUNTARY.get(self.user, "deleted directly, bypassing any budget")


def read_audit_log(path: Path) -> list[Disruption]:
    """The pod deletions and evictions the API server completed or refused, in order."""
    found = []
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line being written
        ref = event.get("objectRef") or {}
        if ref.get("resource") != "pods" or event.get("stage") != "ResponseComplete":
            continue
        evict = event.get("verb") == "create" and ref.get("subresource") == "eviction"
        if not evict and event.get("verb") != "delete":
            continue
        found.append(
            Disruption(
                at=event.get("stageTimestamp", ""),
                user=(event.get("user") or {}).get("username", ""),
                verb="evict" if evict else "delete",
                namespace=ref.get("namespace", ""),
                pod=ref.get("name", ""),
                code=int((event.get("responseStatus") or {}).get("code", 0)),
            )
        )
    return found


def pod_owner(pod: str, deployments: Iterable[str]) -> str | None:
    """The Deployment a pod's name says it belongs to (``<deployment>-<template hash>-<suffix>``)."""
    for name in deployments:
        if re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{5,10}}-[a-z0-9]{{5}}", pod):
            return name
    return None


def budgets_respected(disruptions: Iterable[Disruption], covered: Mapping[tuple[str, str], str]) -> Check:
    """Every voluntary disruption of a pod a budget covers (``covered``: (namespace, Deployment) -> the
    budget's name) went through the Eviction API, where the budget judged it."""
    judged: dict[str, int] = {}
    bypassed: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    for d in disruptions:
        owner = pod_owner(d.pod, [name for ns, name in covered if ns == d.namespace])
        if owner is None:
            continue
        entry = {**asdict(d), "what": d.what, "budget": covered[(d.namespace, owner)]}
        seen.append(entry)
        judged[d.what] = judged.get(d.what, 0) + 1
        if d.what.startswith("deleted directly"):
            bypassed.append(entry)
    voluntary = sum(n for what, n in judged.items() if what.startswith(("eviction", "deleted directly")))
    return Check(
        "every voluntary disruption went through the PodDisruptionBudget",
        not bypassed,
        f"{voluntary} voluntary disruptions of budgeted pods, {len(bypassed)} bypassing the budget; "
        + ", ".join(f"{what}: {n}" for what, n in sorted(judged.items())),
        {"by_kind": judged, "bypassed": bypassed, "disruptions": seen},
    )
