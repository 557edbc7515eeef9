"""The policy pack, evaluated in the offline plan without the policy server.

``evaluate(policies, registrations)`` hands every policy what the engine would: each resource as
``ResourceValidationArgs`` (props wrapped in pulumi-policy's unknown-checking proxy, exactly as the
server does) and the whole stack as ``StackValidationArgs``; it collects the violations with their
enforcement level. ``policy_report(plan)`` is the plan's report section: blocking when any violation is
mandatory. The levels come from ``policies_for`` for the plan's stack, the same function the pack uses.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from inspect import isawaitable

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from ..guardrails import PACK_NAME, environment_of, policies_for
from .mock_engine import Registration
from .model import Plan, Report


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str  # "mandatory" | "advisory"
    message: str
    urn: str = ""
    name: str = ""
    type: str = ""

    @property
    def mandatory(self) -> bool:
        return self.level == EnforcementLevel.MANDATORY.value


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    """``urn:pulumi:<stack>::<project>::<parent$type>::<name>`` -> (type, name)."""
    parts = urn.split("::")
    return (parts[2].split("$")[-1], parts[3]) if len(parts) >= 4 else ("", "")


def _options(r: Registration) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=r.protect,
        ignore_changes=list(r.ignore_changes),
        delete_before_replace=r.delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=r.parent or None,
    )


def _provider(r: Registration, by_urn: dict[str, Registration]) -> PolicyProviderResource | None:
    if not r.provider:
        return None
    urn = r.provider_urn
    typ, name = _urn_type_and_name(urn)
    props = by_urn[urn].inputs if urn in by_urn else {}
    return PolicyProviderResource(typ, unknown_checking_proxy(props), urn, name)


def resource_args(r: Registration, by_urn: dict[str, Registration]) -> ResourceValidationArgs:
    """What the policy server passes a resource validation for this registration."""
    return ResourceValidationArgs(
        r.type, unknown_checking_proxy(r.inputs), r.urn, r.name, _options(r), _provider(r, by_urn)
    )


def stack_args(registrations: Sequence[Registration]) -> StackValidationArgs:
    """What the policy server passes a stack validation: every resource, parents, dependencies and
    property dependencies linked."""
    by_urn = {r.urn: r for r in registrations}
    resources = {
        r.urn: PolicyResource(
            r.type,
            unknown_checking_proxy(r.inputs),
            r.urn,
            r.name,
            _options(r),
            _provider(r, by_urn),
            None,
            [],
            {},
        )
        for r in registrations
    }
    for r in registrations:
        resource = resources[r.urn]
        resource.parent = resources.get(r.parent)
        resource.dependencies = [resources[d] for d in r.dependencies if d in resources]
        resource.property_dependencies = {
            key: [resources[d] for d in urns if d in resources]
            for key, urns in r.property_dependencies.items()
        }
    return StackValidationArgs(list(resources.values()))


def _run(policy: Policy, args, collect) -> None:
    try:
        result = policy.validate(args, collect)
        if isawaitable(result):
            asyncio.run(result)
    except (UnknownValueError, _NotApplicableError):
        pass  # the server reports these as "cannot run during preview" / "not applicable", not violations


def _collector(found: list[Violation], policy: Policy, resource: Registration | None):
    """The ``report_violation`` callback for one policy (and one resource, for a resource policy)."""
    level = (policy.enforcement_level or EnforcementLevel.ADVISORY).value

    def report_violation(message: str, urn: str | None = None) -> None:
        if resource is not None and not urn:
            urn, name, typ = resource.urn, resource.name, resource.type
        else:
            urn = urn or ""
            typ, name = _urn_type_and_name(urn)
        found.append(Violation(policy.name, level, message, urn, name, typ))

    return report_violation


def evaluate(policies: Iterable[Policy], registrations: Sequence[Registration]) -> list[Violation]:
    """Every violation of ``policies`` over ``registrations``, in policy order."""
    by_urn = {r.urn: r for r in registrations}
    found: list[Violation] = []
    for policy in policies:
        if policy.enforcement_level == EnforcementLevel.DISABLED:
            continue
        if isinstance(policy, ResourceValidationPolicy):
            for r in registrations:
                _run(policy, resource_args(r, by_urn), _collector(found, policy, r))
        elif isinstance(policy, StackValidationPolicy):
            _run(policy, stack_args(registrations), _collector(found, policy, None))
    return found


def evaluate_stack(stack: str, registrations: Sequence[Registration]) -> list[Violation]:
    return evaluate(policies_for(environment_of(stack)), registrations)


def policy_report(plan: Plan) -> Report:
    environment = environment_of(plan.stack)
    policies = policies_for(environment)
    violations = evaluate(policies, plan.registrations)
    counts = Counter(v.level for v in violations)
    levels = Counter(p.enforcement_level.value for p in policies)
    lines = [
        f"{counts['mandatory']} mandatory violations, {counts['advisory']} advisory violations",
        f"{len(policies)} policies of {PACK_NAME} with the levels of '{environment}' "
        f"({levels['mandatory']} mandatory, {levels['advisory']} advisory)",
    ]
    for v in sorted(violations, key=lambda v: (not v.mandatory, v.policy, v.urn)):
        lines.append(f"[{v.level}] {v.policy}: {v.name or 'stack'}: {v.message}")
    document = {
        "pack": PACK_NAME,
        "stack": plan.stack,
        "environment": environment,
        "policies": [{"name": p.name, "level": p.enforcement_level.value} for p in policies],
        "violations": [asdict(v) for v in violations],
    }
    return Report(
        title="Policies",
        lines=lines,
        files={"policy.json": json.dumps(document, indent=2) + "\n"},
        blocking=counts["mandatory"] > 0,
    )
