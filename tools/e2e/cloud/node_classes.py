"""Karpenter's AWS provider, for its node classes, against the simulated cloud: what its EC2NodeClass
controller does in a real cluster before Karpenter may launch a node from a class.

For each ``EC2NodeClass``: its subnet and security-group selector terms resolved against the simulated
cloud's subnets and security groups (by id, or by every tag of a term, ``*`` matching any value; a tag
a ``aws:ec2/tag:Tag`` resource puts on a group counts, as does the security group EKS creates for the
cluster), its AMI alias (``family@version``), its role (the instance profile the provider makes for
it), its capacity-reservation terms (none exist in the simulated cloud: the class falls back as AWS
would); the results and the conditions ``SubnetsReady``, ``SecurityGroupsReady``, ``AMIsReady``,
``InstanceProfileReady``, ``CapacityReservationsReady``, ``ValidationSucceeded`` and ``Ready`` are
written to its status. The provider's finalizer keeps a class until no NodeClaim launched from it is
left, as the real one does (it terminates their instances first).

The pure part is ``resolve``; ``NodeClasses`` is the controller the harness steps.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tools.e2e.cloud.store import CloudStore
from tools.e2e.kubeapi import ApiError, KubeApi

API = "/apis/karpenter.k8s.aws/v1/ec2nodeclasses"
NODE_CLAIMS = "/apis/karpenter.sh/v1/nodeclaims"
FINALIZER = "karpenter.k8s.aws/termination"
ALIAS = re.compile(r"^(al2023|al2|bottlerocket|windows2019|windows2022)@(latest|v\d{8}|v\d+\.\d+\.\d+)$")
CONDITIONS = (
    "SubnetsReady",
    "SecurityGroupsReady",
    "AMIsReady",
    "InstanceProfileReady",
    "CapacityReservationsReady",
    "ValidationSucceeded",
)


@dataclass(frozen=True)
class Taggable:
    """A subnet or security group as a selector sees it."""

    id: str
    tags: Mapping[str, str]
    zone: str = ""
    name: str = ""


def matches(term: Mapping[str, Any], resource: Taggable) -> bool:
    """Whether one selector term selects ``resource``: its id, or every tag (``*``: any value)."""
    if term.get("id"):
        return term["id"] == resource.id
    tags = term.get("tags") or {}
    if term.get("name"):
        return resource.name == term["name"]
    return bool(tags) and all(
        key in resource.tags and (value == "*" or resource.tags[key] == value) for key, value in tags.items()
    )


def selected(terms: Iterable[Mapping[str, Any]], resources: Iterable[Taggable]) -> list[Taggable]:
    terms = list(terms)
    return sorted((r for r in resources if any(matches(t, r) for t in terms)), key=lambda r: r.id)


def _tags(record: Mapping[str, Any]) -> dict[str, str]:
    return dict(record["outputs"].get("tagsAll") or record["inputs"].get("tags") or {})


def subnets(store: CloudStore) -> list[Taggable]:
    return [
        Taggable(r["id"], _tags(r), r["inputs"].get("availabilityZone", ""))
        for r in store.all("aws:ec2/subnet:Subnet")
    ]


def security_groups(store: CloudStore) -> list[Taggable]:
    """The security groups of the simulated cloud, the clusters' own among them, with every tag on them."""
    added: dict[str, dict[str, str]] = {}
    for record in store.all("aws:ec2/tag:Tag"):
        inputs = record["inputs"]
        added.setdefault(inputs["resourceId"], {})[inputs["key"]] = inputs["value"]
    groups = [
        Taggable(r["id"], _tags(r), name=r["outputs"].get("name", ""))
        for r in store.all("aws:ec2/securityGroup:SecurityGroup")
    ]
    for cluster in store.all("aws:eks/cluster:Cluster"):
        group = (cluster["outputs"].get("vpcConfig") or {}).get("clusterSecurityGroupId")
        if group:
            # EKS tags the security group it creates for the cluster with the cluster's name.
            name = cluster["outputs"].get("name", "")
            groups.append(
                Taggable(group, {"aws:eks:cluster-name": name, f"kubernetes.io/cluster/{name}": "owned"})
            )
    return [Taggable(g.id, {**g.tags, **added.get(g.id, {})}, g.zone, g.name) for g in groups]


def _ami(alias: str, arch: str) -> dict[str, Any]:
    digest = hashlib.sha256(f"{alias}/{arch}".encode()).hexdigest()[:17]
    return {
        "id": f"ami-{digest}",
        "name": f"{alias.replace('@', '-')}-{arch}",
        "requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": [arch]}],
    }


def resolve(
    spec: Mapping[str, Any], store: CloudStore
) -> tuple[dict[str, Any], dict[str, tuple[bool, str, str]]]:
    """The status fields a class resolves to, and each condition: (true, reason, message)."""
    found_subnets = selected(spec.get("subnetSelectorTerms") or [], subnets(store))
    found_groups = selected(spec.get("securityGroupSelectorTerms") or [], security_groups(store))
    aliases = [t["alias"] for t in spec.get("amiSelectorTerms") or [] if t.get("alias")]
    bad_aliases = [a for a in aliases if not ALIAS.match(a)]
    amis = [_ami(a, arch) for a in aliases if ALIAS.match(a) for arch in ("amd64", "arm64")]
    role = spec.get("role")
    roles = {r["outputs"].get("name") for r in store.all("aws:iam/role:Role")}
    status: dict[str, Any] = {
        "subnets": [{"id": s.id, "zone": s.zone} for s in found_subnets],
        "securityGroups": [{"id": g.id, **({"name": g.name} if g.name else {})} for g in found_groups],
        "amis": amis,
        "capacityReservations": [],
    }
    if role in roles:
        status["instanceProfile"] = f"{role}_{hashlib.sha256(role.encode()).hexdigest()[:12]}"
    conditions = {
        "SubnetsReady": (
            bool(found_subnets),
            "SubnetsReady" if found_subnets else "SubnetsNotFound",
            ""
            if found_subnets
            else f"no subnet matches subnetSelectorTerms {spec.get('subnetSelectorTerms')}",
        ),
        "SecurityGroupsReady": (
            bool(found_groups),
            "SecurityGroupsReady" if found_groups else "SecurityGroupsNotFound",
            ""
            if found_groups
            else f"no security group matches securityGroupSelectorTerms {spec.get('securityGroupSelectorTerms')}",
        ),
        "AMIsReady": (
            bool(amis) and not bad_aliases,
            "AMIsReady" if amis and not bad_aliases else "AMINotFound",
            "" if amis and not bad_aliases else f"no AMI for amiSelectorTerms {spec.get('amiSelectorTerms')}",
        ),
        "InstanceProfileReady": (
            role in roles,
            "InstanceProfileReady" if role in roles else "RoleNotFound",
            "" if role in roles else f"role {role!r} does not exist",
        ),
        "CapacityReservationsReady": (True, "CapacityReservationsReady", ""),
        "ValidationSucceeded": (True, "ValidationSucceeded", ""),
    }
    return status, conditions


def _conditions(
    found: Mapping[str, tuple[bool, str, str]], previous: Iterable[Mapping[str, Any]], generation: int
) -> list[dict[str, Any]]:
    before = {c["type"]: c for c in previous}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ready = all(ok for ok, _, _ in found.values())
    failing = [name for name, (ok, _, _) in found.items() if not ok]
    entries = {
        **found,
        "Ready": (ready, "Ready" if ready else "UnhealthyDependents", "" if ready else ", ".join(failing)),
    }
    conditions = []
    for name, (ok, reason, message) in entries.items():
        status = "True" if ok else "False"
        kept = before.get(name)
        conditions.append(
            {
                "type": name,
                "status": status,
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": kept["lastTransitionTime"]
                if kept and kept.get("status") == status
                else now,
            }
        )
    return conditions


@dataclass
class NodeClasses:
    api: KubeApi
    store: CloudStore

    def step(self) -> None:
        try:
            classes = self.api.list_path(API)
        except ApiError:
            return  # the CRD is not installed (yet)
        for node_class in classes:
            meta = node_class["metadata"]
            if meta.get("deletionTimestamp"):
                self._finalize(node_class)
                continue
            if FINALIZER not in (meta.get("finalizers") or []):
                self.api.request(
                    "PATCH",
                    f"{API}/{meta['name']}",
                    {"metadata": {"finalizers": [*(meta.get("finalizers") or []), FINALIZER]}},
                    "application/merge-patch+json",
                )
                continue
            fields, found = resolve(node_class.get("spec") or {}, self.store)
            status = {
                **fields,
                "conditions": _conditions(
                    found, (node_class.get("status") or {}).get("conditions") or [], meta.get("generation", 1)
                ),
            }
            if _comparable(status) != _comparable(node_class.get("status") or {}):
                node_class["status"] = status
                self.api.request("PUT", f"{API}/{meta['name']}/status", node_class)

    def _finalize(self, node_class: dict) -> None:
        name = node_class["metadata"]["name"]
        launched = [
            c["metadata"]["name"]
            for c in self.api.list_path(NODE_CLAIMS)
            if ((c.get("spec") or {}).get("nodeClassRef") or {}).get("name") == name
        ]
        finalizers = node_class["metadata"].get("finalizers") or []
        if launched or FINALIZER not in finalizers:
            return  # the provider waits for the class's instances to be terminated
        self.api.request(
            "PATCH",
            f"{API}/{name}",
            {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER]}},
            "application/merge-patch+json",
        )


def _comparable(status: Mapping[str, Any]) -> Any:
    conditions = sorted(
        (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
        for c in status.get("conditions") or []
    )
    return {**{k: v for k, v in status.items() if k != "conditions"}, "conditions": conditions}
