"""Custom resources judged by the schemas the API server serves: each one server-side applied with
``dryRun=All`` and ``fieldValidation=Strict``, so an unknown or duplicated field is refused instead of
dropped, and the CRD's schema (types, enums, patterns, CEL rules) judges the rest. Nothing is stored.

It reads only the API server (discovery and the CRDs), so it judges on any cluster; the verdict says
whether a CRD's schema is a real one or open (``x-kubernetes-preserve-unknown-fields`` at its root, as a
stand-in keeps a kind it has no real schema for).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tools.e2e.checks import Check
from tools.e2e.kubeapi import ApiError, KubeApi

FIELD_MANAGER = "aiplatform-strict-dry-run"
_QUERY = urllib.parse.urlencode(
    {"dryRun": "All", "fieldValidation": "Strict", "fieldManager": FIELD_MANAGER, "force": "true"}
)


@dataclass(frozen=True)
class Verdict:
    object: str  # "<apiVersion> <Kind> <namespace/>name"
    accepted: bool
    schema: str  # "real", or "open": the CRD keeps unknown fields at its root
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _schema_kind(crd: Mapping[str, Any], version: str) -> str:
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            root = (served.get("schema") or {}).get("openAPIV3Schema") or {}
            return "open" if root.get("x-kubernetes-preserve-unknown-fields") else "real"
    return "real"


class CustomResources:
    """The CRDs an API server serves, and the strict dry-run of objects of their kinds."""

    def __init__(self, api: KubeApi):
        self.api = api
        self.crds = {
            (crd["spec"]["group"], crd["spec"]["names"]["kind"]): crd
            for crd in api.list("CustomResourceDefinition")
        }

    def crd_of(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        return self.crds.get((group, obj.get("kind")))

    def path(self, obj: Mapping[str, Any]) -> str:
        crd = self.crd_of(obj)
        assert crd is not None, f"no CRD serves {obj.get('apiVersion')} {obj.get('kind')}"
        meta = obj["metadata"]
        parts = [f"/apis/{obj['apiVersion']}"]
        if crd["spec"]["scope"] == "Namespaced":
            parts.append(f"namespaces/{meta.get('namespace') or 'default'}")
        parts += [crd["spec"]["names"]["plural"], meta["name"]]
        return "/".join(parts)

    def dry_run(self, obj: Mapping[str, Any]) -> Verdict:
        """``obj`` server-side applied with a dry run and strict field validation."""
        meta, crd = obj["metadata"], self.crd_of(obj) or {"spec": {"versions": [], "scope": "Cluster"}}
        namespaced = crd["spec"]["scope"] == "Namespaced"
        name = f"{meta.get('namespace') or 'default'}/{meta['name']}" if namespaced else meta["name"]
        label = f"{obj['apiVersion']} {obj['kind']} {name}"
        schema = _schema_kind(crd, obj["apiVersion"].split("/")[-1])
        try:
            self.api.request("PATCH", f"{self.path(obj)}?{_QUERY}", dict(obj), "application/apply-patch+yaml")
        except ApiError as exc:
            return Verdict(label, False, schema, exc.message)
        return Verdict(label, True, schema)


def applied_object(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """What the program sent for a custom resource (its state inputs), as an apply request carries it."""
    obj = {k: v for k, v in inputs.items() if k != "status" and not k.startswith("__")}
    meta = obj.get("metadata") or {}
    obj["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    return obj


def state_custom_resources(state: Iterable[Mapping[str, Any]], served: CustomResources) -> list[dict]:
    """The objects of a stack's state whose kind a CRD of the cluster serves."""
    objects = []
    for resource in state:
        inputs = resource.get("inputs") or {}
        if str(resource.get("type", "")).startswith("kubernetes:") and served.crd_of(inputs):
            objects.append(applied_object(inputs))
    return objects


def custom_resources_accepted(api: KubeApi, state: Iterable[Mapping[str, Any]]) -> Check:
    """Every custom resource of the stack accepted, under strict field validation, by its kind's schema."""
    served = CustomResources(api)
    verdicts = [served.dry_run(obj) for obj in state_custom_resources(state, served)]
    refused = [v for v in verdicts if not v.accepted]
    real = sum(v.schema == "real" for v in verdicts)
    return Check(
        "every custom resource accepted by its schema, strict field validation",
        bool(verdicts) and not refused,
        f"{len(verdicts) - len(refused)}/{len(verdicts)} accepted ({real} by real schemas, "
        f"{len(verdicts) - real} by open ones)",
        {"verdicts": [v.as_dict() for v in verdicts]},
    )
