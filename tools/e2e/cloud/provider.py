"""``pulumi-resource-aws``: the simulated AWS as a Pulumi provider plugin, on the SDK's provider interface.

The real engine starts it like any provider plugin (the harness puts it first on PATH). Every answer
comes from ``aiplatform.plan.cloud.SimulatedCloud``, the same simulation the offline plan's mocks use:
``check`` fills generated names and refuses what AWS refuses, ``diff`` says what changed and what forces
a replacement, ``create``/``update`` return AWS's outputs and keep a record in the simulated cloud's
state, ``read`` answers a refresh from that record, ``delete`` removes it.

Some resources have effects beyond their record, as in AWS: an EKS cluster answers at the local API
server, and a change of its ``version`` upgrades that control plane in place (the harness restarts the
servers at the new minor on the same data; the update returns once they serve); a node group's
instances join it as kwok nodes shaped like the group, and a change of its ``version`` rolls them;
secrets and their versions are made in the Secrets Manager the run serves (moto, ``services.json`` in
the simulated cloud's state), where the external-secrets operator reads them, with AWS's ARNs and ids.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pulumi.provider.experimental import provider as p
from pulumi.provider.experimental.property_value import PropertyValue
from pulumi.provider.experimental.server import main as serve
from pulumi.runtime.rpc import UNKNOWN

from aiplatform.plan.cloud import AUTONAMED, EksEndpoint, SimulatedCloud
from aiplatform.plan.cloud import UNKNOWN as SIM_UNKNOWN
from tools.e2e.cloud import faults, identity, secrets_manager
from tools.e2e.cloud.nodes import NodeFleet
from tools.e2e.cloud.store import CloudStore
from tools.e2e.kubeapi import KubeApi

# The version the Python SDK asks the engine for; the plugin says it is the simulation of it.
PLUGIN_VERSION = os.environ.get("AIPLATFORM_E2E_AWS_VERSION", "7.51.1")
# How long a cluster's version update waits for the harness to serve the new control plane.
CONTROL_PLANE_SECONDS = float(os.environ.get("AIPLATFORM_E2E_CONTROL_PLANE_SECONDS", "300"))

Plain = Any


# -- PropertyValue <-> plain values -------------------------------------------------------------------
def to_plain(value: PropertyValue) -> Plain:
    v = value.value
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, tuple):
        return [to_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: to_plain(x) for k, x in v.items()}
    return v


def _contains_secret(value: PropertyValue) -> bool:
    if value.is_secret:
        return True
    v = value.value
    if isinstance(v, tuple):
        return any(_contains_secret(x) for x in v)
    if isinstance(v, Mapping):
        return any(_contains_secret(x) for x in v.values())
    return False


def plain_map(values: Mapping[str, PropertyValue]) -> tuple[dict[str, Plain], set[str]]:
    """Plain inputs, and the top-level keys that hold a secret (kept secret in the outputs)."""
    return {k: to_plain(v) for k, v in values.items()}, {k for k, v in values.items() if _contains_secret(v)}


def from_plain(value: Plain) -> PropertyValue:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return PropertyValue(value)
    if isinstance(value, int | float):
        return PropertyValue(float(value))
    if isinstance(value, list | tuple):
        return PropertyValue([from_plain(x) for x in value])
    if isinstance(value, Mapping):
        return PropertyValue({k: from_plain(x) for k, x in value.items()})
    raise TypeError(f"cannot represent {type(value).__name__} as a property value")


def property_map(values: Mapping[str, Plain], secret_keys: set[str]) -> dict[str, PropertyValue]:
    return {k: from_plain(v).with_secret(k in secret_keys) for k, v in values.items()}


def has_unknowns(value: Plain) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, list):
        return any(has_unknowns(x) for x in value)
    if isinstance(value, dict):
        return any(has_unknowns(x) for x in value.values())
    return False


def _judgeable(value: Plain) -> Plain:
    """The value with unknowns marked as such, so validation judges only what is known."""
    if value == UNKNOWN:
        return SIM_UNKNOWN
    if isinstance(value, list):
        return [_judgeable(x) for x in value]
    if isinstance(value, dict):
        return {k: _judgeable(x) for k, x in value.items()}
    return value


def _known(value: Plain) -> Plain:
    """The value with unknowns blanked, so the simulation can compute which outputs exist."""
    if value == UNKNOWN:
        return ""
    if isinstance(value, list):
        return [_known(x) for x in value]
    if isinstance(value, dict):
        return {k: _known(x) for k, x in value.items()}
    return value


def with_nested_outputs(olds: Mapping[str, Plain], news: Mapping[str, Plain]) -> dict[str, Plain]:
    """The new inputs with the values AWS computed inside an input object kept from the old outputs
    (a cluster's ``vpcConfig.clusterSecurityGroupId`` survives an update of its ``version``)."""
    merged = dict(news)
    for key, new in news.items():
        old = olds.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            merged[key] = {**{k: v for k, v in old.items() if k not in new}, **with_nested_outputs(old, new)}
    return merged


def _urn_name(urn: str) -> str:
    return urn.split("::")[-1]


def _urn_type(urn: str) -> str:
    return urn.split("::")[-2].split("$")[-1]


def _kind(typ: str) -> str:
    """How the provider names a type in its errors: ``aws:iam/role:Role`` -> ``IAM Role``."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", typ.rsplit(":", 1)[-1])
    return f"{faults.sdk_name(faults.service_of(typ))} {words}"


def _physical(inputs: Mapping[str, Plain], fallback: str) -> str:
    for key in ("name", "bucket", "nodeGroupName", "addonName", "roleName"):
        if isinstance(inputs.get(key), str) and inputs[key]:
            return inputs[key]
    return fallback


class SimulatedAwsProvider(p.Provider):
    def __init__(self) -> None:
        self.store = CloudStore.from_env()
        self.cloud = SimulatedCloud()
        self._secrets_manager: secrets_manager.SecretsManager | None = None
        self._secrets_manager_lock = threading.Lock()  # creates run on worker threads

    def secrets_manager(self) -> secrets_manager.SecretsManager | None:
        """The Secrets Manager the run serves, if it serves one (else the simulation's own records)."""
        services = self.store.services()
        endpoint = ((services or {}).get("endpoints") or {}).get("secretsmanager")
        with self._secrets_manager_lock:
            if endpoint and self._secrets_manager is None:
                self._secrets_manager = secrets_manager.SecretsManager(
                    endpoint, self.cloud.region, services["accessKey"], services["secretKey"]
                )
            return self._secrets_manager

    # -- configuration -----------------------------------------------------------------------------
    async def check_config(self, request: p.CheckRequest) -> p.CheckResponse:
        return p.CheckResponse(inputs=request.new_inputs)

    async def diff_config(self, request: p.DiffRequest) -> p.DiffResponse:
        return p.DiffResponse(changes=False)

    async def configure(self, request: p.ConfigureRequest) -> p.ConfigureResponse:
        args, _ = plain_map(request.args)
        region = args.get("region") or request.variables.get("aws:config:region") or "us-east-1"
        cluster = self.store.cluster()
        eks = EksEndpoint(cluster.server, cluster.ca_data) if cluster else None
        self.cloud = SimulatedCloud(region=region, eks=eks)
        return p.ConfigureResponse(accept_secrets=True, supports_preview=True, accept_resources=True)

    async def invoke(self, request: p.InvokeRequest) -> p.InvokeResponse:
        args, _ = plain_map(request.args)
        result = self.cloud.invoke(request.tok, args)
        if not result:
            return p.InvokeResponse(failures=[p.CheckFailure("", f"{request.tok} is not simulated")])
        return p.InvokeResponse(return_value=property_map(result, set()))

    # -- resources -------------------------------------------------------------------------------
    async def check(self, request: p.CheckRequest) -> p.CheckResponse:
        news, secret_keys = plain_map(request.new_inputs)
        olds, _ = plain_map(request.old_inputs)
        typ = _urn_type(request.urn)
        # A generated name is kept across updates, as the AWS provider keeps it.
        generated = AUTONAMED.get(typ)
        if generated and not news.get(generated) and olds.get(generated):
            news[generated] = olds[generated]
        seed = request.random_seed.hex() if request.random_seed else uuid.uuid4().hex
        inputs = self.cloud.autoname(typ, request.name, news, seed)
        failures = [
            p.CheckFailure(path, reason) for path, reason in self.cloud.problems(typ, _judgeable(inputs))
        ]
        return p.CheckResponse(inputs=property_map(inputs, secret_keys), failures=failures)

    def _computed_keys(self, typ: str, name: str, inputs: dict) -> set[str]:
        _, outputs = self.cloud.create(typ, name, _known(inputs))
        return set(outputs) - set(inputs)

    async def diff(self, request: p.DiffRequest) -> p.DiffResponse:
        news, _ = plain_map(request.new_inputs)
        typ = _urn_type(request.urn)
        # Compare inputs with inputs: the record keeps what the resource was created or updated from,
        # so outputs AWS computes (inside an input too, like a cluster's security group) are no change.
        record = self.store.get(typ, request.resource_id)
        if record is not None:
            olds = record["inputs"]
            keys = set(news) | set(olds)
        else:
            olds, _ = plain_map(request.old_state)
            keys = (set(news) | set(olds)) - self._computed_keys(typ, request.name, news)
        changed = sorted(k for k in keys if olds.get(k) != news.get(k))
        replaces = [k for k in self.cloud.replaces(typ, olds, news) if k in changed]
        detailed = {
            k: p.PropertyDiff(
                (p.PropertyDiffKind.UPDATE_REPLACE if k in replaces else p.PropertyDiffKind.UPDATE)
                if k in olds and k in news
                else (p.PropertyDiffKind.ADD if k in news else p.PropertyDiffKind.DELETE),
                input_diff=True,
            )
            for k in changed
        }
        return p.DiffResponse(changes=bool(changed), replaces=replaces, diffs=changed, detailed_diff=detailed)

    def _preview_outputs(self, typ: str, name: str, inputs: dict) -> dict:
        return {**inputs, **{k: UNKNOWN for k in self._computed_keys(typ, name, inputs)}}

    async def create(self, request: p.CreateRequest) -> p.CreateResponse:
        inputs, secret_keys = plain_map(request.properties)
        typ, name = _urn_type(request.urn), request.name
        if request.preview:
            return p.CreateResponse(
                resource_id="", properties=property_map(self._preview_outputs(typ, name, inputs), secret_keys)
            )
        what = f"creating {_kind(typ)} ({_physical(inputs, name)})"
        await self._call(typ, "Create", what)
        # AWS's side, in a thread that runs to its end even if the engine goes away meanwhile (its
        # request is then cancelled here): AWS completes what it accepted.
        ident, outputs = await asyncio.to_thread(self._accept_create, typ, name, request.urn, inputs, what)
        await asyncio.to_thread(faults.until_available, self.store.root, faults.service_of(typ))
        return p.CreateResponse(resource_id=ident, properties=property_map(outputs, secret_keys))

    def _accept_create(self, typ: str, name: str, urn: str, inputs: dict, what: str) -> tuple[str, dict]:
        with faults.in_flight(self.store.root, what):
            ident, outputs = self.cloud.create(typ, name, inputs, salt=uuid.uuid4().hex)
            existing = identity.duplicate_of(typ, inputs, self.store.all(typ))
            if existing is not None:
                if identity.identity(typ).on_duplicate == identity.REFUSE:
                    raise ValueError(f"{what}: {identity.refusal(typ, inputs, existing)}")
                ident = existing["id"]  # a put: the same resource, changed
            elif typ in secrets_manager.TYPES and (service := self.secrets_manager()):
                ident, outputs = service.create(typ, inputs, outputs)  # made where the operator reads
            self.store.put(typ, ident, urn, inputs, outputs)
            self._apply_effects("create", typ, ident, inputs, outputs, {})
        return ident, outputs

    async def update(self, request: p.UpdateRequest) -> p.UpdateResponse:
        olds, _ = plain_map(request.olds)
        news, secret_keys = plain_map(request.news)
        typ, name = _urn_type(request.urn), request.name
        record = self.store.get(typ, request.resource_id)
        refused = self.cloud.update_problems(
            typ, record["inputs"] if record else olds, news, self._node_group_versions(news.get("name"))
        )
        if refused:
            raise ValueError("; ".join(f"{name}: {reason}" for _path, reason in refused))
        if request.preview:
            return p.UpdateResponse(
                properties=property_map(self._preview_outputs(typ, name, news), secret_keys)
            )
        what = f"updating {_kind(typ)} ({request.resource_id})"
        await self._call(typ, "Update", what)
        computed = {k: v for k, v in olds.items() if k in self._computed_keys(typ, name, news)}
        outputs = {**computed, **with_nested_outputs(olds, news)}
        await asyncio.to_thread(
            self._accept_update, typ, request.resource_id, request.urn, news, outputs, olds, what
        )
        return p.UpdateResponse(properties=property_map(outputs, secret_keys))

    def _accept_update(
        self, typ: str, ident: str, urn: str, news: dict, outputs: dict, olds: dict, what: str
    ) -> None:
        with faults.in_flight(self.store.root, what):
            self._apply_effects("update", typ, ident, news, outputs, olds)
            self.store.put(typ, ident, urn, news, outputs)

    async def read(self, request: p.ReadRequest) -> p.ReadResponse:
        typ = _urn_type(request.urn)
        await self._call(typ, "Describe", f"reading {_kind(typ)} ({request.resource_id})")
        record = self.store.get(typ, request.resource_id)
        if record is None:
            return p.ReadResponse(resource_id="")  # gone from the cloud
        _, secret_keys = plain_map(request.properties)
        return p.ReadResponse(
            resource_id=record["id"],
            properties=property_map(record["outputs"], secret_keys),
            inputs=property_map(record["inputs"], secret_keys),
        )

    async def delete(self, request: p.DeleteRequest) -> None:
        outputs, _ = plain_map(request.properties)
        typ = _urn_type(request.urn)
        await self._call(typ, "Delete", f"deleting {_kind(typ)} ({request.resource_id})")
        await asyncio.to_thread(
            self._apply_effects, "delete", typ, request.resource_id, outputs, outputs, outputs
        )
        self.store.delete(typ, request.resource_id)

    async def _call(self, typ: str, verb: str, what: str) -> None:
        """One AWS API call for a resource of ``typ``: fails as AWS would under the harness's fault plan."""
        operation = f"{verb}{typ.rsplit(':', 1)[-1]}"
        await asyncio.to_thread(
            faults.call,
            self.store.root,
            faults.service_of(typ),
            operation,
            what,
            self.cloud.region,
            self.store.record_event,
        )

    def _node_group_versions(self, cluster: str | None) -> dict[str, str]:
        """The managed node groups of ``cluster`` the simulated cloud holds: name -> Kubernetes minor."""
        return {
            r["inputs"]["nodeGroupName"]: str(r["inputs"].get("version"))
            for r in self.store.all("aws:eks/nodeGroup:NodeGroup")
            if cluster and r["inputs"].get("clusterName") == cluster and r["inputs"].get("version")
        }

    # -- effects beyond the record ---------------------------------------------------------------
    def _fleet(self) -> NodeFleet | None:
        cluster = self.store.cluster()
        if cluster is None:
            return None
        return NodeFleet(KubeApi(cluster.server, cluster.token, cluster.ca_file), zones=self._zones())

    def _zones(self) -> tuple[str, ...]:
        zones = sorted(
            {r["inputs"].get("availabilityZone") for r in self.store.all("aws:ec2/subnet:Subnet")} - {None}
        )
        return tuple(zones) or (f"{self.cloud.region}a", f"{self.cloud.region}b")

    def _apply_effects(self, op: str, typ: str, ident: str, inputs: dict, outputs: dict, olds: dict) -> None:
        if (
            typ == "aws:eks/cluster:Cluster"
            and op == "update"
            and olds.get("version") != inputs.get("version")
        ):
            self._upgrade_control_plane(inputs.get("name") or ident, olds.get("version"), inputs["version"])
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            fleet = self._fleet()
            if fleet is None:
                return
            if op == "delete":
                fleet.remove_group(inputs["nodeGroupName"])
            elif op == "create":
                fleet.add(inputs, int(inputs["scalingConfig"]["desiredSize"]), salt=ident)
            else:
                if olds.get("version") != inputs.get("version"):
                    fleet.roll(
                        inputs, salt=f"{ident}-{inputs.get('version')}", record=self.store.record_event
                    )
                if olds.get("scalingConfig") != inputs.get("scalingConfig"):
                    fleet.scale_to(inputs, int(inputs["scalingConfig"]["desiredSize"]), salt=ident)
        elif typ in secrets_manager.TYPES and (service := self.secrets_manager()):
            if op == "update":
                service.update(typ, ident, olds, inputs)
            elif op == "delete":
                service.delete(typ, ident, inputs)

    def _upgrade_control_plane(self, cluster: str, current: str | None, minor: str) -> None:
        """Ask the harness for the control plane at ``minor`` and wait until it serves, as EKS's
        UpdateClusterVersion returns once the upgraded control plane is ACTIVE."""
        if self.store.cluster() is None:
            return  # no local control plane behind this cloud
        start = time.monotonic()
        ident = self.store.request_control_plane(minor)
        deadline = start + CONTROL_PLANE_SECONDS
        while (answer := self.store.control_plane_answer(ident)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"EKS cluster {cluster}: the control plane did not serve {minor} within "
                    f"{CONTROL_PLANE_SECONDS:.0f} s (request {ident} in {self.store.root / 'control-plane'} "
                    "not answered; the harness restarts the servers)"
                )
            time.sleep(0.25)
        if answer.get("error"):
            raise RuntimeError(
                f"EKS cluster {cluster}: upgrading the control plane to {minor} failed: {answer['error']}"
            )
        self.store.record_event(
            "control-plane-upgraded",
            cluster=cluster,
            old=current,
            new=minor,
            restart_seconds=answer.get("seconds"),
            seconds=round(time.monotonic() - start, 2),
        )


def main() -> None:
    serve(sys.argv[1:], PLUGIN_VERSION, SimulatedAwsProvider())


if __name__ == "__main__":
    main()
