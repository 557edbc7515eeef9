"""The committed stack files, as tests use them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from aiplatform.plan.runner import read_stack_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = PROJECT_ROOT / "__main__.py"

STACKS = ("dev", "prod")
# The variants in examples/stacks/: GPU capacity from Karpenter or EKS Auto Mode pools (POOL_STACKS),
# routes on ingress-nginx, GPUs by DRA.
POOL_STACKS = ("prod-karpenter", "dev-auto-mode")
EXAMPLE_STACKS = (*POOL_STACKS, "dev-nginx", "dev-dra")
EXAMPLES = PROJECT_ROOT / "examples" / "stacks"


def stack_config(stack: str) -> dict[str, Any]:
    """The full ``config:`` mapping of ``Pulumi.<stack>.yaml`` (a fresh copy to mutate)."""
    return copy.deepcopy(read_stack_file(stack_path(stack)))


def sections(stack: str) -> dict[str, Any]:
    """The ``aiplatform:`` sections of a stack, keyed without the namespace."""
    return {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("aiplatform:")}


def stack_path(stack: str) -> Path:
    """A committed stack's file, or an example variant's."""
    committed = PROJECT_ROOT / f"Pulumi.{stack}.yaml"
    return committed if committed.exists() else EXAMPLES / f"Pulumi.{stack}.yaml"


def nginx_config() -> dict[str, Any]:
    """dev with ingress-nginx in front, its TLS certificate synced into the serving namespace."""
    config = stack_config("dev")
    config["aiplatform:ingress"] = {
        "controller": "nginx",
        "scheme": "internet-facing",
        "tlsSecret": "ingress-tls",
    }
    config["aiplatform:secrets"].append(
        {
            "name": "ingress-tls",
            "namespace": "ml-serving",
            "keys": ["tls.crt", "tls.key"],
            "description": "wildcard",
        }
    )
    return config
