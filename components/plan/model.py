"""The plan's shared types: a finished ``Plan``, the ``Report`` sections computed from it, and the
Kubernetes manifests it would apply.

The reports (``policy_report``, ``critical_path``, ``cost``, ``capacity_report``) import this module and ``cli`` imports the
reports, so imports run one way: engine -> runner -> model -> reports -> cli.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .cloud import auto_name
from .mock_engine import Registration
from .runner import ProgramRun

# Registrations that are not Kubernetes objects, although their type says kubernetes.
_NOT_MANIFESTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "kubernetes:kustomize/")


def is_manifest(registration: Registration) -> bool:
    return (
        registration.custom
        and registration.type.startswith("kubernetes:")
        and not registration.type.startswith(_NOT_MANIFESTS)
    )


def manifest_of(registration: Registration) -> dict:
    """The object Kubernetes would receive: apiVersion, kind and metadata first, auto-names filled in."""
    inputs = dict(registration.inputs)
    metadata = dict(inputs.pop("metadata", None) or {})
    if not metadata.get("name"):
        metadata["name"] = auto_name(registration.name)
    head = {
        "apiVersion": inputs.pop("apiVersion", None),
        "kind": inputs.pop("kind", None),
        "metadata": metadata,
    }
    return {**head, **inputs}


def manifests(registrations: Iterable[Registration]) -> list[dict]:
    return [manifest_of(r) for r in registrations if is_manifest(r)]


EKS_CLUSTER = "aws:eks/cluster:Cluster"


def cluster_versions(registrations: Iterable[Registration]) -> list[tuple[str, str | None]]:
    """(resource name, Kubernetes version) of every EKS cluster registered, whatever program built it
    (None: the version input was not given, EKS picks its default)."""
    found = []
    for r in registrations:
        if r.type == EKS_CLUSTER:
            version = r.inputs.get("version")
            found.append((r.name, version if isinstance(version, str) else None))
    return found


@dataclass
class Report:
    """One section of the plan's output, computed from what the program registered."""

    title: str
    lines: list[str]
    files: dict[str, str] = field(default_factory=dict)  # written to the output folder
    blocking: bool = False  # the deployment must not go ahead (exit 3)

    def render(self) -> str:
        return "\n".join([f"{self.title}:", *(f"  {line}" for line in self.lines)])


@dataclass
class Plan:
    stack: str
    out_dir: Path
    run: ProgramRun
    warnings: list[str] = field(default_factory=list)
    # The day the plan is judged on (version lifecycle, price age): a parameter, so reports are repeatable.
    today: date = field(default_factory=date.today)
    # The outputs the program's StackReferences were answered with, by stack name ("*": any stack).
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def registrations(self) -> list[Registration]:
        return self.run.registrations

    def write(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        entries = [r.as_plan_entry() for r in self.registrations]
        (self.out_dir / "resources.json").write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        documents = manifests(self.registrations)
        (self.out_dir / "manifests.yaml").write_text(
            yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False), encoding="utf-8"
        )
        (self.out_dir / "outputs.json").write_text(
            json.dumps(self.run.outputs, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )

    def summary(self) -> str:
        by_urn = {r.urn: r for r in self.registrations}

        roots = [r for r in self.registrations if r.parent not in by_urn]
        one_root = len(roots) == 1

        def top_component(r: Registration) -> str:
            # Group by the outermost components; under a single root (the platform), by its children
            # (network, cluster, ...).
            while r.parent in by_urn and (not one_root or by_urn[r.parent].parent in by_urn):
                r = by_urn[r.parent]
            return f"{r.name} ({r.type})"

        per_component: dict[str, Counter] = defaultdict(Counter)
        for r in self.registrations:
            per_component[top_component(r)][r.type] += 1
        lines = [f"Plan for stack '{self.stack}': {len(self.registrations)} resources"]
        for component in sorted(per_component):
            counts = per_component[component]
            lines.append(f"  {component}: {sum(counts.values())}")
            lines += [f"      {count:3d}  {typ}" for typ, count in sorted(counts.items())]
        releases = [r for r in self.registrations if r.type == "kubernetes:helm.sh/v3:Release"]
        if releases:
            lines.append("Helm releases:")
            for r in releases:
                # A chart from an OCI registry is named by its full reference, with no repository.
                repo = (r.inputs.get("repositoryOpts") or {}).get("repo") or "OCI registry"
                lines.append(f"  {r.inputs.get('chart')} {r.inputs.get('version')}  ({repo}) as {r.name}")
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        lines.append(f"Kubernetes objects: {sum(1 for r in self.registrations if is_manifest(r))}")
        lines.append(f"Written: {self.out_dir}/resources.json, manifests.yaml, outputs.json")
        return "\n".join(lines)
