"""Pure kubeconfig building for EKS: no engine, no cloud, easy to test.

The kubeconfig holds no long-lived credential: it runs ``aws eks get-token`` (exec plugin,
``client.authentication.k8s.io/v1beta1``) each time a token is needed. It still names the cluster
endpoint and CA, so callers wrap the result in ``pulumi.Output.secret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from .errors import ArgumentsError

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def kubeconfig_dict(
    cluster_name: str,
    endpoint: str,
    certificate_authority_data: str,
    region: str,
    *,
    role_arn: str | None = None,
    aws_profile: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig (as a dict) that authenticates with ``aws eks get-token``.

    ``role_arn`` makes the token be issued for that role (``--role-arn``), which is how a deployer
    uses one of the cluster's admin access entries; ``aws_profile`` sets ``AWS_PROFILE`` for the CLI.
    """
    args = ["eks", "get-token", "--cluster-name", cluster_name, "--region", region]
    if role_arn:
        args += ["--role-arn", role_arn]
    exec_config: dict[str, Any] = {
        "apiVersion": EXEC_API_VERSION,
        "command": "aws",
        "args": args,
    }
    if aws_profile:
        exec_config["env"] = [{"name": "AWS_PROFILE", "value": aws_profile}]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority_data},
            }
        ],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "preferences": {},
        "users": [{"name": cluster_name, "user": {"exec": exec_config}}],
    }


def render_kubeconfig(config: Mapping[str, Any]) -> str:
    """YAML text of a kubeconfig dict (stable key order, so the plan doesn't churn)."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)


def build_kubeconfig(
    cluster_name: str,
    endpoint: str,
    certificate_authority_data: str,
    region: str,
    *,
    role_arn: str | None = None,
    aws_profile: str | None = None,
) -> str:
    """The kubeconfig as YAML text; see ``kubeconfig_dict``."""
    return render_kubeconfig(
        kubeconfig_dict(
            cluster_name,
            endpoint,
            certificate_authority_data,
            region,
            role_arn=role_arn,
            aws_profile=aws_profile,
        )
    )


def region_from_arn(arn: str) -> str:
    """The region field of an ARN (``arn:aws:eks:us-east-1:123456789012:cluster/ai`` -> ``us-east-1``)."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[3]:
        raise ArgumentsError("region_from_arn", [("arn", f"not a regional ARN: {arn!r}")])
    return parts[3]
