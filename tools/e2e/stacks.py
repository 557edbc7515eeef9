"""What the harness reads of a stack file: its config, and the Kubernetes minor its cluster runs (the
control plane the harness starts for it)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from aiplatform.validation import DEFAULT_KUBERNETES_VERSION

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "aiplatform"
KUBERNETES_VERSION_KEY = f"{PROJECT}:cluster.kubernetesVersion"  # as a path-style config key


def stack_config(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text()) or {}
    return document.get("config") or {}


def kubernetes_minor(config: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> str:
    """The stack's ``aiplatform:cluster.kubernetesVersion`` (an override of that path wins), else the
    components' default."""
    if overrides and KUBERNETES_VERSION_KEY in overrides:
        return str(overrides[KUBERNETES_VERSION_KEY])
    cluster = config.get(f"{PROJECT}:cluster")
    version = cluster.get("kubernetesVersion") if isinstance(cluster, Mapping) else None
    return str(version) if version is not None else DEFAULT_KUBERNETES_VERSION


def committed_stack_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The repository's stack files (``Pulumi.<stack>.yaml`` beside ``Pulumi.yaml``)."""
    return sorted(root.glob("Pulumi.*.yaml"))


def committed_stack_minors(root: Path = PROJECT_ROOT) -> set[str]:
    """The Kubernetes minors the repository's stacks run."""
    return {kubernetes_minor(stack_config(path)) for path in committed_stack_files(root)}
