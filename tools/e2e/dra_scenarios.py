"""The scenario of a stack that gives pods GPUs through DRA (``compute.gpuAllocation: dra``), judged on
what the API server holds: the claims the real kube-scheduler allocated from the ResourceSlices the
driver's kubelet plugin publishes (``cloud/dra.py`` plays it for kwok nodes), the quota the real API server
enforces per device class, and what the cluster holds after destroy.

``gpu_claims`` runs between ``deploy`` and ``teardown``; ``no_claims_left`` is judged after the teardown.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Mapping
from typing import Any

import yaml

from aiplatform.compute.instance_types import lookup
from aiplatform.compute.node_groups import NODE_GROUP_LABEL
from aiplatform.dra import DRIVER, GPU_DEVICE_CLASS, quota_key
from tools.e2e.checks import Check
from tools.e2e.cloud.dra import AGENT_SELECTOR
from tools.e2e.cloud.nodes import GROUP_LABEL
from tools.e2e.kubeapi import ApiError, wait_for
from tools.e2e.scenarios import (
    ScenarioResult,
    StackUnderTest,
    _offline_plan_problems,
    _workload,
    scenario,
)

UNSATISFIABLE_PRODUCT = "NVIDIA H100 80GB HBM3"  # on a group of A10G nodes: no device matches
PROBE = "dra-probe"


def _key(obj: Mapping[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def _claim_names(pod: Mapping[str, Any]) -> list[str]:
    """The ResourceClaims a pod uses: the shared ones it names, the ones made for it from templates."""
    statuses = {
        s["name"]: s.get("resourceClaimName")
        for s in (pod.get("status") or {}).get("resourceClaimStatuses") or []
    }
    names = []
    for claim in pod["spec"].get("resourceClaims") or []:
        name = claim.get("resourceClaimName") or statuses.get(claim["name"])
        if name:
            names.append(name)
    return names


def _devices(results: list[dict[str, Any]]) -> list[str]:
    return [f"{r['pool']}/{r['device']}" for r in results]


def _allocated(claim: Mapping[str, Any]) -> list[dict[str, Any]]:
    return (((claim.get("status") or {}).get("allocation") or {}).get("devices") or {}).get("results") or []


def claims_allocated_in_their_group(s: StackUnderTest) -> Check:
    """Every running pod with claims: each claim allocated devices of the node the pod runs on, a node of
    the group the pod selects, from the driver's ResourceSlices; no pod asks for nvidia.com/gpu."""
    nodes = {n["metadata"]["name"]: n for n in s.api.list("Node")}
    slices = {
        (sl["spec"]["pool"]["name"], d["name"]): d
        for sl in s.api.list("ResourceSlice", fields=f"spec.driver={DRIVER}")
        for d in sl["spec"].get("devices") or []
    }
    seen, wrong = {}, {}
    for pod in s.api.list("Pod"):
        if not pod["spec"].get("resourceClaims") or (pod.get("status") or {}).get("phase") not in (
            "Running",
            "Succeeded",
        ):
            continue
        key, node = _key(pod), pod["spec"].get("nodeName")
        group = (nodes.get(node, {}).get("metadata", {}).get("labels") or {}).get(NODE_GROUP_LABEL)
        wanted = (pod["spec"].get("nodeSelector") or {}).get(NODE_GROUP_LABEL)
        if any("nvidia.com/gpu" in str(c.get("resources")) for c in pod["spec"]["containers"]):
            wrong[key] = "asks for nvidia.com/gpu too"
        for name in _claim_names(pod):
            claim = s.api.get("ResourceClaim", name, pod["metadata"]["namespace"])
            if claim is None:  # a Job pod that finished: its claim went with it
                continue
            results = _allocated(claim)
            devices = _devices(results)
            products = [
                ((slices.get((r["pool"], r["device"])) or {}).get("attributes") or {})
                .get("productName", {})
                .get("string")
                for r in results
            ]
            seen[f"{key} {name}"] = {"node": node, "group": group, "devices": devices, "products": products}
            if not results:
                wrong[key] = f"claim {name} not allocated"
            elif any(r["driver"] != DRIVER or r["pool"] != node for r in results):
                wrong[key] = f"claim {name} allocated {devices}, the pod runs on {node}"
            elif group != wanted:
                wrong[key] = f"runs on a node of {group}, selects {wanted}"
    return Check(
        "every GPU pod's claim is allocated on its node, in its group",
        bool(seen) and not wrong,
        f"{len(seen)} claims of running pods; {len(wrong)} wrong",
        {"claims": seen, "wrong": wrong},
    )


def shared_claim_on_one_gpu(s: StackUnderTest) -> Check:
    """The pods of the workloads naming one shared claim use its one allocated GPU, on its node."""
    _, first = _workload(s, "inference", lambda w: bool((w.get("gpu") or {}).get("shared")))
    shared = first["gpu"]["shared"]
    namespace = first["namespace"]
    workloads = [
        w["name"]
        for w in (s.run.config.get("aiplatform:workloads") or {}).get("inference") or []
        if (w.get("gpu") or {}).get("shared") == shared and w["namespace"] == namespace
    ]
    pods = [
        p
        for p in s.api.list("Pod", namespace)
        if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") in workloads
        and not p["metadata"].get("deletionTimestamp")
    ]
    claims = {name for p in pods for name in _claim_names(p)}
    claim = s.api.get("ResourceClaim", next(iter(claims)), namespace) if len(claims) == 1 else None
    results = _allocated(claim or {})
    reserved = {r.get("name") for r in ((claim or {}).get("status") or {}).get("reservedFor") or []}
    nodes = {p["spec"].get("nodeName") for p in pods}
    passed = (
        len(workloads) >= 2
        and len(pods) >= 2
        and len(claims) == 1
        and len(results) == 1
        and {p["metadata"]["name"] for p in pods} <= reserved
        and nodes == {results[0]["pool"]}
    )
    return Check(
        "two pods sharing one claim run on the same GPU",
        passed,
        f"{len(pods)} pods of {workloads} use {sorted(claims)}: {_devices(results)}, on nodes "
        f"{sorted(n or '' for n in nodes)}",
        {
            "pods": sorted(p["metadata"]["name"] for p in pods),
            "reserved_for": sorted(reserved),
            "results": results,
        },
    )


def slices_published(s: StackUnderTest) -> Check:
    """Each GPU node running the driver's kubelet plugin has a ResourceSlice of its GPUs, as the instance
    type table describes them, and advertises no device-plugin nvidia.com/gpu."""
    agents = {p["spec"].get("nodeName") for p in s.api.list("Pod", selector=AGENT_SELECTOR)}
    slices = {
        sl["spec"]["nodeName"]: sl for sl in s.api.list("ResourceSlice", fields=f"spec.driver={DRIVER}")
    }
    wrong, seen = {}, {}
    gpu_nodes = [
        n for n in s.api.list("Node") if (n["metadata"].get("labels") or {}).get(GROUP_LABEL) in s.gpu_groups
    ]
    for node in gpu_nodes:
        name = node["metadata"]["name"]
        instance = lookup(node["metadata"]["labels"].get("node.kubernetes.io/instance-type", ""))
        devices = (slices.get(name) or {}).get("spec", {}).get("devices") or []
        products = sorted({d["attributes"]["productName"]["string"] for d in devices})
        seen[name] = {"agent": name in agents, "devices": len(devices), "products": products}
        if name not in agents:
            wrong[name] = "no kubelet plugin pod"
        elif instance is None or len(devices) != instance.gpus or products != [instance.gpu.product_name]:
            wrong[name] = f"slice holds {len(devices)} x {products}"
        elif "nvidia.com/gpu" in (node.get("status") or {}).get("allocatable", {}):
            wrong[name] = "advertises nvidia.com/gpu (a device plugin)"
    return Check(
        "the driver's ResourceSlice on every GPU node, no device plugin",
        bool(gpu_nodes) and not wrong,
        f"{len(gpu_nodes)} GPU nodes; {len(wrong)} wrong",
        {"nodes": seen, "wrong": wrong},
    )


def autoscaled_for_claims(s: StackUnderTest) -> Check:
    """The simulated cluster autoscaler added GPU nodes for pending pods with claims, each copying the
    devices of a running node of the group (its AWS template, from tags, holds none)."""
    autoscaler = s.run.controllers.autoscaler
    dra_pods = {
        _key(p)
        for p in s.api.list("Pod")
        if p["spec"].get("resourceClaims") and p["metadata"]["name"] != PROBE
    }
    served = {pod: group for pod, group in autoscaler.served.items() if pod in dra_pods}
    gpu_ups = [u for u in autoscaler.scale_ups if u["group"] in s.gpu_groups]
    return Check(
        "the autoscaler scaled GPU groups up from a running node's devices for pods with claims",
        bool(served) and bool(gpu_ups) and set(served.values()) <= set(s.gpu_groups),
        f"{len(gpu_ups)} GPU scale-ups; {len(served)} pods with claims served: {sorted(set(served.values()))}",
        {"served": served, "scale_ups": gpu_ups, "waiting": dict(autoscaler.waiting)},
    )


def _restricted_pod(name: str, template: str, placement: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": placement.get("nodeSelector") or {},
            "tolerations": placement.get("tolerations") or [],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": template}],
            "containers": [
                {
                    "name": "server",
                    "image": "registry.k8s.io/pause:3.10",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "128Mi"},
                        "limits": {"cpu": "100m", "memory": "128Mi"},
                        "claims": [{"name": "gpu"}],
                    },
                }
            ],
        },
    }


def unsatisfiable_selector(s: StackUnderTest) -> list[Check]:
    """A model server's claim asking for a GPU no node of its group has: the config check refuses the
    stack file; applied to the cluster anyway, the pod stays Pending with the scheduler's reason and the
    autoscaler adds no node for it."""
    index, server = _workload(s, "inference", lambda w: bool((w.get("gpu") or {}).get("selector")))
    namespace = server["namespace"]
    document = yaml.safe_load(s.run.config_file.read_text())
    mutated = copy.deepcopy(document)
    mutated["config"]["aiplatform:workloads"]["inference"][index]["gpu"]["selector"] = {
        "productName": UNSATISFIABLE_PRODUCT
    }
    config_file = s.run.run_dir / "Pulumi.unsatisfiable.yaml"
    config_file.write_text(yaml.safe_dump(mutated, sort_keys=False))
    code, lines = _offline_plan_problems(config_file, "unsatisfiable", s.run.run_dir / "plan-unsatisfiable")
    key = f"aiplatform:workloads.inference[{index}].gpu.selector:"
    checks = [
        Check(
            "the config check refuses a selector no instance type of the group satisfies",
            code == 2 and any(line.startswith(key) and UNSATISFIABLE_PRODUCT in line for line in lines),
            f"exit {code}: {lines}",
        )
    ]
    # The same claim, applied as the program would have: a template and a pod placed like the server.
    deployment = s.api.get("Deployment", server["name"], namespace)
    placement = deployment["spec"]["template"]["spec"]
    (ref,) = placement["resourceClaims"]
    template = s.api.get("ResourceClaimTemplate", ref["resourceClaimTemplateName"], namespace)
    spec = copy.deepcopy(template["spec"])
    spec["spec"]["devices"]["requests"][0]["exactly"]["selectors"] = [
        {"cel": {"expression": f"device.attributes['{DRIVER}'].productName == '{UNSATISFIABLE_PRODUCT}'"}}
    ]
    s.api.create(
        "ResourceClaimTemplate",
        {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceClaimTemplate",
            "metadata": {"name": PROBE, "namespace": namespace},
            "spec": spec,
        },
        namespace,
    )
    nodes_before = len(s.api.list("Node"))
    try:
        s.api.create("Pod", _restricted_pod(PROBE, PROBE, placement), namespace)

        def unschedulable() -> str | None:
            pod = s.api.get("Pod", PROBE, namespace) or {}
            for condition in (pod.get("status") or {}).get("conditions") or []:
                if condition.get("type") == "PodScheduled" and condition.get("reason") == "Unschedulable":
                    return condition.get("message")
            return None

        message = wait_for(unschedulable, timeout=60, what="the scheduler's verdict on the probe pod")
        time.sleep(3)  # give the autoscaler a step or two to (not) act on it
        pod = s.api.get("Pod", PROBE, namespace) or {}
        waiting = s.run.controllers.autoscaler.waiting.get(f"{namespace}/{PROBE}", "")
        checks.append(
            Check(
                "a claim no device satisfies leaves its pod Pending with the scheduler's reason",
                (pod.get("status") or {}).get("phase") == "Pending" and "claim" in (message or ""),
                message or "no verdict",
                {"autoscaler": waiting},
            )
        )
        checks.append(
            Check(
                "the autoscaler adds no node for it",
                len(s.api.list("Node")) == nodes_before and bool(waiting),
                f"{nodes_before} nodes before, {len(s.api.list('Node'))} after; autoscaler: {waiting}",
            )
        )
    finally:
        with contextlib.suppress(ApiError):
            s.api.delete("Pod", PROBE, namespace)
        with contextlib.suppress(ApiError):
            s.api.delete("ResourceClaimTemplate", PROBE, namespace)
    return checks


def device_quota(s: StackUnderTest) -> list[Check]:
    """A claim asking for more GPUs than its namespace's device quota: the API server's quota admission
    refuses it with a message naming the quota; the config check refuses the same case in the stack file."""
    index, workload = _workload(s, "training", lambda w: bool(w.get("gpu")))
    namespace = workload["namespace"]
    key = quota_key(GPU_DEVICE_CLASS)
    quota = next(q for q in s.api.list("ResourceQuota", namespace) if key in q["spec"]["hard"])
    limit = int(quota["spec"]["hard"][key])
    claim = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "over-quota", "namespace": namespace},
        "spec": {
            "devices": {
                "requests": [
                    {"name": "gpu", "exactly": {"deviceClassName": GPU_DEVICE_CLASS, "count": limit + 1}}
                ]
            }
        },
    }
    message = ""
    try:
        s.api.create("ResourceClaim", claim, namespace)
        s.api.delete("ResourceClaim", "over-quota", namespace)
    except ApiError as exc:
        message = exc.message
    checks = [
        Check(
            "quota admission refuses a claim over the namespace's device quota, naming the quota",
            "exceeded quota" in message and quota["metadata"]["name"] in message and key in message,
            message or "the claim was admitted",
        )
    ]
    document = yaml.safe_load(s.run.config_file.read_text())
    document["config"]["aiplatform:workloads"]["training"][index]["gpu"]["count"] = limit + 1
    config_file = s.run.run_dir / "Pulumi.over-device-quota.yaml"
    config_file.write_text(yaml.safe_dump(document, sort_keys=False))
    code, lines = _offline_plan_problems(
        config_file, "over-device-quota", s.run.run_dir / "plan-over-device-quota"
    )
    expected = f"aiplatform:workloads.training[{index}].gpu.count: a pod asks for {limit + 1} GPUs, more than namespace '{namespace}' GPU quota ({limit})"
    checks.append(
        Check(
            "the config check refuses the same claim in the stack file",
            code == 2 and expected in lines,
            f"exit {code}: {lines}",
        )
    )
    return checks


def gpu_claims(s: StackUnderTest) -> ScenarioResult:
    """Claims allocated by the real scheduler where they belong, one GPU shared by two servers, a claim
    no device satisfies, the device quota, and the autoscaler's scale-up for claims."""
    with scenario(s, "GPU claims through DRA") as result:
        result.checks += [
            slices_published(s),
            claims_allocated_in_their_group(s),
            shared_claim_on_one_gpu(s),
            autoscaled_for_claims(s),
        ]
        result.checks += unsatisfiable_selector(s)
        result.checks += device_quota(s)
    return result


def no_claims_left(s: StackUnderTest) -> Check:
    """After destroy: no ResourceClaim, ResourceClaimTemplate or DeviceClass, and no ResourceSlice."""
    left = {
        kind: [_key(o) if o["metadata"].get("namespace") else o["metadata"]["name"] for o in s.api.list(kind)]
        for kind in ("ResourceClaim", "ResourceClaimTemplate", "DeviceClass", "ResourceSlice")
    }
    with contextlib.suppress(TimeoutError):  # the garbage collector removes claims and slices of gone owners
        wait_for(lambda: not any(s.api.list(k) for k in left), timeout=60, what="claims and slices gone")
    left = {
        kind: [_key(o) if o["metadata"].get("namespace") else o["metadata"]["name"] for o in s.api.list(kind)]
        for kind in left
    }
    return Check(
        "destroy left no claim, claim template, DeviceClass or ResourceSlice",
        not any(left.values()),
        f"{sum(len(v) for v in left.values())} left",
        {"left": left},
    )
