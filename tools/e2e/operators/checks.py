"""What the real operators did, judged on what the API server and the simulated cloud hold.

- ``karpenter_checks``: every EC2NodeClass resolved (the program's discovery tags, AMI alias and role
  found in the simulated cloud), its role allowed to join the cluster, every NodePool Ready, every
  NodeClaim launched, registered and initialized;
- ``secret_reader_checks``: how the external-secrets operator got its AWS credentials (IRSA or Pod
  Identity, as the stack configures) and that it read only what its role may read;
- ``listeners_check``: every port the operators listen on is on loopback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aiplatform.addons.secrets import ESO_NAMESPACE, ESO_SERVICE_ACCOUNT
from aiplatform.iam import IRSA_ROLE_ANNOTATION
from tools.e2e.checks import Check
from tools.e2e.cloud.pod_identity import association_for
from tools.e2e.kubeapi import KubeApi, wait_for
from tools.e2e.operators import external_secrets
from tools.e2e.operators.supervisor import Supervised


def condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def _true(obj: Mapping[str, Any], kind: str) -> bool:
    return condition(obj, kind).get("status") == "True"


def node_classes_resolved(api: KubeApi) -> Check:
    classes = api.list("EC2NodeClass")
    failing = {
        c["metadata"]["name"]: condition(c, "Ready").get("message") or "no Ready condition"
        for c in classes
        if not _true(c, "Ready")
    }
    resolved = {
        c["metadata"]["name"]: {
            "subnets": [s["id"] for s in (c.get("status") or {}).get("subnets") or []],
            "securityGroups": [g["id"] for g in (c.get("status") or {}).get("securityGroups") or []],
            "instanceProfile": (c.get("status") or {}).get("instanceProfile"),
        }
        for c in classes
    }
    return Check(
        "every EC2NodeClass resolves in AWS (subnets, security groups, AMIs, role)",
        bool(classes) and not failing,
        f"{len(classes) - len(failing)}/{len(classes)} node classes Ready",
        {"not_ready": failing, "resolved": resolved},
    )


def node_roles_join(api: KubeApi, store: Any) -> Check:
    """Each node class's role has an EC2_LINUX access entry: its nodes may join the cluster."""
    roles = {r["outputs"].get("name"): r["outputs"].get("arn") for r in store.all("aws:iam/role:Role")}
    entries = {
        r["inputs"].get("principalArn"): r["inputs"].get("type")
        for r in store.all("aws:eks/accessEntry:AccessEntry")
    }
    missing = {}
    for node_class in api.list("EC2NodeClass"):
        role = (node_class.get("spec") or {}).get("role")
        arn = roles.get(role)
        if entries.get(arn) != "EC2_LINUX":
            missing[node_class["metadata"]["name"]] = f"role {role} ({arn}): access entry {entries.get(arn)}"
    return Check(
        "each node class's role may join the cluster (an EC2_LINUX access entry)",
        not missing,
        f"{len(missing)} node classes whose nodes could not join",
        {"missing": missing},
    )


def node_pools_ready(api: KubeApi) -> Check:
    pools = api.list("NodePool")
    failing = {
        p["metadata"]["name"]: {
            c["type"]: c.get("status") for c in (p.get("status") or {}).get("conditions") or []
        }
        for p in pools
        if not _true(p, "Ready")
    }
    return Check(
        "every NodePool Ready (Karpenter)",
        bool(pools) and not failing,
        f"{len(pools) - len(failing)}/{len(pools)} NodePools Ready",
        {"not_ready": failing},
    )


def node_claims_initialized(api: KubeApi, timeout: float = 90) -> Check:
    """Every NodeClaim Karpenter made is launched, registered and initialized (its node Ready and every
    resource it promised, GPUs included, registered)."""
    stages = ("Launched", "Registered", "Initialized")

    def short() -> dict[str, list[str]]:
        return {
            c["metadata"]["name"]: [s for s in stages if not _true(c, s)]
            for c in api.list("NodeClaim")
            if not c["metadata"].get("deletionTimestamp") and not all(_true(c, s) for s in stages)
        }

    with contextlib.suppress(TimeoutError):
        wait_for(lambda: not short(), timeout=timeout, what="NodeClaims initialized")
    claims = api.list("NodeClaim")
    launched = [
        {
            "nodeClaim": c["metadata"]["name"],
            "pool": (c["metadata"].get("labels") or {}).get("karpenter.sh/nodepool"),
            "instanceType": (c["metadata"].get("labels") or {}).get("node.kubernetes.io/instance-type"),
            "capacityType": (c["metadata"].get("labels") or {}).get("karpenter.sh/capacity-type"),
            "zone": (c["metadata"].get("labels") or {}).get("topology.kubernetes.io/zone"),
            "node": (c.get("status") or {}).get("nodeName"),
        }
        for c in claims
    ]
    behind = short()
    return Check(
        "Karpenter launched, registered and initialized a node for the pending pods",
        bool(claims) and not behind,
        f"{len(claims)} NodeClaims; {len(behind)} not initialized",
        {"node_claims": launched, "not_initialized": behind},
    )


def karpenter_checks(api: KubeApi, store: Any) -> list[Check]:
    return [
        node_classes_resolved(api),
        node_roles_join(api, store),
        node_pools_ready(api),
        node_claims_initialized(api),
    ]


# -- the external-secrets operator -----------------------------------------------------------------
def secret_reader_checks(run: Any) -> list[Check]:
    """How the operator authenticated (the stack's identity mode decides: a Pod Identity association
    of its service account, else its IRSA annotation) and what it read, from moto's recording."""
    requests = run.moto.requests()
    store = run.store
    association = association_for(store, ESO_NAMESPACE, ESO_SERVICE_ACCOUNT)
    if association is not None:
        role_arn = association["inputs"]["roleArn"]
        how = external_secrets.pod_identity_check(
            requests, run.operators.pod_identity.answers, ESO_NAMESPACE, ESO_SERVICE_ACCOUNT
        )
    else:
        account = run.cluster.api.get("ServiceAccount", ESO_SERVICE_ACCOUNT, ESO_NAMESPACE) or {}
        role_arn = (account.get("metadata", {}).get("annotations") or {}).get(IRSA_ROLE_ANNOTATION, "")
        how = external_secrets.irsa_check(requests, store, ESO_NAMESPACE, ESO_SERVICE_ACCOUNT)
    return [how, external_secrets.reads_allowed_check(requests, store, role_arn)]


# -- listeners ---------------------------------------------------------------------------------------
def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def _descendants(pid: int) -> list[int]:
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
                found.append(int(child))
                frontier.append(int(child))
    return found


def listening(pid: int) -> list[str]:
    """The TCP addresses the process tree of ``pid`` listens on, as its network namespace sees them."""
    inodes = set().union(*(_socket_inodes(p) for p in _descendants(pid)))
    addresses = []
    for table, family in (("tcp", 4), ("tcp6", 6)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                    continue
                host, port = fields[1].split(":")
                addresses.append(f"{_address(host, family)}:{int(port, 16)}")
    return sorted(addresses)


def _address(hex_host: str, family: int) -> str:
    raw = bytes.fromhex(hex_host)
    if family == 4:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    return str(ipaddress.IPv6Address(b"".join(words)))


def _interfaces(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
        return sorted(line.split(":")[0].strip() for line in lines)
    return []


def listeners_check(operators: Iterable[Supervised]) -> Check:
    """Each operator's listeners are reachable from this machine only: on a loopback address, or in a
    network namespace whose only interface is loopback."""
    seen, wrong = {}, {}
    for operator in operators:
        pid = operator.pid
        if pid is None:
            wrong[operator.name] = "not running"
            continue
        addresses, interfaces = listening(pid), _interfaces(pid)
        seen[operator.name] = {"listening": addresses, "interfaces": interfaces}
        exposed = [a for a in addresses if not a.startswith(("127.", "::1:"))]
        if exposed and interfaces != ["lo"]:
            wrong[operator.name] = f"listens on {exposed} with interfaces {interfaces}"
    return Check(
        "the operators listen on loopback only",
        bool(seen) and not wrong,
        f"{len(seen)} operators; {len(wrong)} reachable from elsewhere",
        {"operators": seen, "wrong": wrong},
    )
