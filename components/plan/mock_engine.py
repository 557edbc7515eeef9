"""An offline stand-in for the Pulumi engine.

``PlatformMocks`` answers resource registrations and invokes from the simulated cloud (``cloud``):
plausible, deterministic ids, ARNs, endpoints, the OIDC issuer, availability zones and the account id,
so the real program runs without credentials or network. ``RecordingMonitor`` keeps what the program
sent for every resource: its parent, provider, dependencies and inputs, with Pulumi's secret marker
still on secret values so they can be redacted exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from .cloud import ACCOUNT_ID, SimulatedCloud

SECRET_PLACEHOLDER = "[secret]"


STACK_REFERENCE = "pulumi:pulumi:StackReference"
ANY_STACK = "*"


@dataclass
class PlatformMocks(Mocks):
    """Pulumi's mock interface, answered by the simulated cloud of a region and account.

    ``stack_outputs`` are what a ``StackReference`` reads: outputs by stack name (``org/project/stack``),
    or under ``ANY_STACK`` for every referenced stack. Values that are ``[secret]`` (as the plan writes
    secret outputs) come back as secret outputs; an unknown stack has no outputs.
    """

    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    stack_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def cloud(self) -> SimulatedCloud:
        return SimulatedCloud(region=self.region, account_id=self.account_id)

    def call(self, args: MockCallArgs) -> dict:
        return self.cloud.invoke(args.token, args.args)

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        if args.typ == STACK_REFERENCE:
            return self._stack_reference(str(args.inputs.get("name") or args.name))
        # What AWS would refuse fails the plan here, as it would fail the deployment.
        named = self.cloud.autoname(args.typ, args.name, args.inputs)
        if problems := self.cloud.problems(args.typ, named):
            raise CloudRefusal(args.typ, args.name, problems)
        return self.cloud.create(args.typ, args.name, args.inputs)

    def _stack_reference(self, stack: str) -> tuple[str, dict]:
        outputs = dict(self.stack_outputs.get(stack, self.stack_outputs.get(ANY_STACK, {})))
        secret = sorted(name for name, value in outputs.items() if value == SECRET_PLACEHOLDER)
        return stack, {"name": stack, "outputs": outputs, "secretOutputNames": secret}


class CloudRefusal(Exception):
    """Inputs the cloud would refuse."""

    def __init__(self, typ: str, name: str, problems: list[tuple[str, str]]):
        listed = "; ".join(f"{prop}: {reason}" for prop, reason in problems)
        super().__init__(f"{typ} '{name}': AWS would refuse these inputs: {listed}")


def redact_secrets(value: Any) -> Any:
    """Replace every value that carries Pulumi's secret marker with ``[secret]``.

    Also turns whole numbers back into ints: the wire format (protobuf Struct) carries every number
    as a double, and Kubernetes rejects ``replicas: 2.0``.
    """
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        return {k: redact_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _resource_ref(value: Any) -> Any:
    """Resource references (a provider, a component passed as input) plan as their URN."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_resource_sig:
            return value.get("urn")
        return {k: _resource_ref(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resource_ref(v) for v in value]
    return value


@dataclass
class Registration:
    """What the program sent the engine for one resource."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    dependencies: list[str]
    inputs: dict
    protect: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    delete_before_replace: bool
    replace_on_changes: list[str] = field(default_factory=list)
    # input name -> the URNs its value came from (the engine's property dependencies)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)

    def as_plan_entry(self) -> dict:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "inputs": self.inputs,
        }

    @property
    def provider_urn(self) -> str:
        """The provider reference without its id suffix."""
        return "::".join(self.provider.split("::")[:-1]) if self.provider else ""


class RecordingMonitor(MockMonitor):
    """A mock monitor that also records every registration as the engine would receive it."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 - the engine's method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.registrations.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    custom=bool(request.custom),
                    provider=request.provider,
                    dependencies=list(request.dependencies),
                    inputs=_resource_ref(redact_secrets(raw)),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    ignore_changes=list(request.ignoreChanges),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    property_dependencies={
                        key: list(value.urns) for key, value in request.propertyDependencies.items()
                    },
                )
            )
        return response

    # Convenience lookups for tests and the plan.
    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.registrations if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"expected one resource named {name!r}, found {len(matches)}")
        return matches[0]
