"""Where each planned EKS cluster's Kubernetes minor stands on ``plan.today``, per the version calendar.

It warns when standard support has ended (extended support is billed) or ends within
``STANDARD_ENDING_DAYS`` days, naming the end date and the extra cost per month, and blocks a minor
past extended support or not yet released on EKS. The clusters are found by their registered
``aws:eks/cluster:Cluster`` inputs, so it judges any program that builds an EKS cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..kubernetes_versions import (
    DEFAULT_VERSION,
    STANDARD_ENDING_DAYS,
    SUPPORTED_VERSIONS,
    Lifecycle,
    lifecycle,
)
from .cost import extended_support_fee, load_pricing
from .model import Plan, Report, cluster_versions

UPGRADE_ADVICE = "upgrade one minor at a time (README: Kubernetes versions and upgrades)"


def _fee(pricing: Mapping[str, Any]) -> str:
    return (
        f"${extended_support_fee(pricing):,.2f}/month per cluster "
        f"(${float(pricing['eks_extended_support_hour']):.2f} instead of "
        f"${float(pricing['eks_control_plane_hour']):.2f} per cluster hour x {pricing['hours_per_month']} h)"
    )


def judge(name: str, state: Lifecycle, pricing: Mapping[str, Any]) -> tuple[str, bool, bool]:
    """(line, warns, blocks) for one cluster."""
    v = state.version
    if state.status == "upcoming":
        return (
            f"BLOCKED: {name}: Kubernetes {v} is not on EKS before {state.eks_release} "
            f"(today {state.today}): use a released minor",
            False,
            True,
        )
    if state.status == "unsupported":
        if state.end_of_extended is None:
            reason = f"is not in the version calendar (supported: {', '.join(SUPPORTED_VERSIONS)})"
        else:
            reason = (
                f"is past extended support since {state.end_of_extended}: EKS creates no cluster on it "
                "and upgrades existing ones on its own"
            )
        return f"BLOCKED: {name}: Kubernetes {v} {reason}; {UPGRADE_ADVICE}", False, True
    if state.status == "extended":
        return (
            f"warning: {name}: Kubernetes {v} left standard support on {state.end_of_standard}; extended "
            f"support (until {state.end_of_extended}) costs {_fee(pricing)}; {UPGRADE_ADVICE}",
            True,
            False,
        )
    if state.status == "standard-ending":
        return (
            f"warning: {name}: Kubernetes {v} leaves standard support on {state.end_of_standard} "
            f"(in {state.days_to_end_of_standard} days); from then extended support costs {_fee(pricing)}; "
            f"{UPGRADE_ADVICE}",
            True,
            False,
        )
    return (
        f"{name}: Kubernetes {v}, standard support until {state.end_of_standard} "
        f"({state.days_to_end_of_standard} days), extended until {state.end_of_extended}",
        False,
        False,
    )


def lifecycle_report(plan: Plan) -> Report:
    pricing = load_pricing()
    lines = [
        f"judged on {plan.today} (--today); warns {STANDARD_ENDING_DAYS} days before standard support ends"
    ]
    blocking = False
    clusters = cluster_versions(plan.registrations)
    if not clusters:
        lines.append("no EKS cluster in this plan")
    for name, version in clusters:
        if version is None:
            lines.append(
                f"{name}: no version given: EKS picks its default (the platform's is {DEFAULT_VERSION})"
            )
            continue
        line, _, blocks = judge(name, lifecycle(version, plan.today), pricing)
        lines.append(line)
        blocking = blocking or blocks
    return Report(title="Kubernetes version lifecycle", lines=lines, blocking=blocking)
