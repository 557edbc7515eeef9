"""``python -m tools.pending``: settle the pending creates an interrupted update left in a stack's state.

An engine killed mid-update leaves in the checkpoint the operations it began and never saw end. A pending
create is a resource the cloud or the cluster may hold while the state does not: it must be imported
(its create went through) or dropped (it did not), before the next ``up`` creates it a second time.
``pulumi refresh --import-pending-creates`` is meant to do that, but the pinned CLI drops an imported
create with the others (the next ``up`` creates it again), so this does it on an exported state:

    pulumi stack export --stack dev --file state.json
    python -m tools.pending state.json                     # what is pending, and what names each
    python -m tools.pending state.json --import URN ID [--import URN ID ...] \
        [--field-manager URN MANAGER ...] --out repaired.json
    pulumi stack import --stack dev --file repaired.json
    pulumi refresh --yes --stack dev                       # reads what was imported; settles the rest

An imported create becomes a resource of the state with its id, its inputs as they were sent, and those
inputs as its outputs until the refresh reads the real ones; every other pending create is dropped.
A Kubernetes object (not a Helm release) also needs the server-side apply field manager its create
applied it with (``--field-manager``; ``kubectl get ... -o jsonpath='{.metadata.managedFields[?(@.operation=="Apply")].manager}'``):
the provider keeps that name in the resource's state, and without it the next update applies under a
new name and conflicts with the old one on every field it changes.
Pending updates and deletes stay for the refresh, which settles them by reading their resources.
Nothing here reads a secret: values stay as the export holds them (encrypted).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The inputs that name a resource where its provider made it: what to look it up by.
NAMING = (
    "name",
    "bucket",
    "clusterName",
    "nodeGroupName",
    "addonName",
    "principalArn",
    "role",
    "policyArn",
    "url",
    "vpcId",
    "subnetId",
    "cidrBlock",
    "description",
    "tags",
    "namespace",
    "chart",
)


# Where the Kubernetes provider keeps, in a resource's state, the field manager it applies the object with.
FIELD_MANAGER_KEY = "__fieldManager"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


class PendingError(ValueError):
    """An import the state cannot take (the message names the URN)."""


def _deployment(state: Mapping[str, Any]) -> dict[str, Any]:
    return state["deployment"]


def pending(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each pending operation: its kind (``creating``, ``updating`` ...), type, URN and what names it."""
    found = []
    for op in _deployment(state).get("pending_operations") or []:
        resource = op["resource"]
        inputs = resource.get("inputs") or {}
        naming = {k: inputs[k] for k in NAMING if k in inputs}
        if isinstance(inputs.get("metadata"), Mapping):
            meta = inputs["metadata"]
            naming.update({k: meta[k] for k in ("namespace", "name") if k in meta})
            naming["kind"] = inputs.get("kind")
        found.append(
            {"operation": op["type"], "type": resource["type"], "urn": resource["urn"], "names": naming}
        )
    return found


def settle(
    state: Mapping[str, Any], imports: Mapping[str, str], field_managers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The state with each pending create in ``imports`` (URN -> id) made a resource with that id (a
    Kubernetes object's with its field manager from ``field_managers``, URN -> name), every other
    pending create dropped, and pending updates and deletes kept for a refresh."""
    field_managers = dict(field_managers or {})
    repaired = json.loads(json.dumps(state))
    deployment = _deployment(repaired)
    creates = {
        op["resource"]["urn"]: op
        for op in deployment.get("pending_operations") or []
        if op["type"] == "creating"
    }
    unknown = sorted(set(imports) - set(creates))
    if unknown:
        raise PendingError(
            "not a pending create of this state: "
            + ", ".join(unknown)
            + " (python -m tools.pending STATE lists them)"
        )
    for urn, manager in field_managers.items():
        if urn not in imports:
            raise PendingError(f"{urn}: a field manager is given for an object not imported (--import it)")
        typ = creates[urn]["resource"]["type"]
        if not typ.startswith("kubernetes:") or typ == HELM_RELEASE:
            raise PendingError(f"{urn}: {typ} is not a Kubernetes object: it has no field manager")
        if not manager:
            raise PendingError(f"{urn}: an empty field manager")
    held = {r["urn"] for r in deployment.get("resources") or []}
    for urn, ident in imports.items():
        if urn in held:
            raise PendingError(f"{urn}: already a resource of the state")
        if not ident:
            raise PendingError(f"{urn}: an import needs the resource's id")
        resource = dict(creates[urn]["resource"])
        resource["id"] = ident
        # Until the refresh reads the resource, what was sent stands for what exists (a provider's read
        # finds it by its id and, for a Helm release or a Kubernetes object, its name in these).
        resource["outputs"] = dict(resource.get("outputs") or resource.get("inputs") or {})
        if urn in field_managers:
            resource["outputs"][FIELD_MANAGER_KEY] = field_managers[urn]
        deployment.setdefault("resources", []).append(resource)
    deployment["pending_operations"] = [
        op for op in deployment.get("pending_operations") or [] if op["type"] != "creating"
    ]
    return repaired


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.pending",
        description="List or settle the pending creates of an exported stack state (pulumi stack export).",
    )
    parser.add_argument("state", type=Path, help="the file pulumi stack export --file wrote")
    parser.add_argument(
        "--import",
        dest="imports",
        nargs=2,
        action="append",
        default=[],
        metavar=("URN", "ID"),
        help="a pending create whose resource exists, and its id (repeat for each)",
    )
    parser.add_argument(
        "--field-manager",
        dest="field_managers",
        nargs=2,
        action="append",
        default=[],
        metavar=("URN", "MANAGER"),
        help="an imported Kubernetes object's server-side apply field manager (repeat for each)",
    )
    parser.add_argument("--out", type=Path, help="write the settled state here (pulumi stack import --file)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state = json.loads(args.state.read_text())
    if args.out is None:
        print(json.dumps(pending(state), indent=2))
        return 0
    try:
        repaired = settle(state, dict(args.imports), dict(args.field_managers))
    except PendingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(repaired, indent=2))
    dropped = sum(1 for p in pending(state) if p["operation"] == "creating") - len(args.imports)
    print(f"{len(args.imports)} pending creates imported, {dropped} dropped: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
