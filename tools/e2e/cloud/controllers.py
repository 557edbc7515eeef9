"""What AWS and the AWS-facing controllers do in a real cluster, simulated against the local one:

- ``Autoscaler``: the cluster autoscaler's scale-up from zero. A pod the scheduler cannot place gets a
  node of the first node group whose node template (the instance type's capacity plus the group's
  autoscaler node-template tags, as the autoscaler's AWS provider reads them) fits it, up to the group's
  maximum. A wrong tag is a pod that stays Pending.
- ``LoadBalancers``: the load balancer controller's answer to an Ingress of a class the platform
  installed: a load balancer hostname in the Ingress status.
- ``Volumes``: the EBS and EFS CSI drivers' provisioning: a PersistentVolume for each claim of their
  storage classes (once the scheduler picked a node, for WaitForFirstConsumer classes).
- ``dra.KubeletPlugin``: the NVIDIA DRA driver's kubelet plugin on the GPU nodes it runs on (``dra.py``);
  the autoscaler gives a pod with DRA claims a node only where a running node's devices satisfy them.
- ``NodeClasses`` (``node_classes``): Karpenter's AWS provider resolving each EC2NodeClass against the
  simulated cloud, so that the real Karpenter may launch from it.

``SimulatedControllers`` runs them in one background thread while the engine works. On a real cluster
with real AWS, the real controllers do all of this and the harness starts none of them. The
external-secrets operator and Karpenter are not simulated: they run for real (``tools.e2e.operators``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiplatform.pod_requests import manifest_requests
from aiplatform.scheduling import Taint, is_tolerated, toleration_from_dict
from aiplatform.validation import quantity_value
from tools.e2e.cloud import dra
from tools.e2e.cloud.node_classes import NodeClasses
from tools.e2e.cloud.nodes import GROUP_LABEL, NodeFleet, NodeShape, template_from_tags
from tools.e2e.cloud.store import CloudStore
from tools.e2e.kubeapi import KubeApi

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ASG_TAG = "aws:autoscaling/tag:Tag"
DISCOVERY_TAG = "k8s.io/cluster-autoscaler/enabled"


# -- scheduling arithmetic (pure) ---------------------------------------------------------------------
def pod_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What the scheduler reserves for a pod (its spec's effective requests)."""
    return manifest_requests(pod.get("spec", {}))


def _selector_matches(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return f"node selector {key}={value}"
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return None

    def term_matches(term: Mapping[str, Any]) -> bool:
        for expr in term.get("matchExpressions") or []:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            present = key in labels
            if (
                (op == "In" and labels.get(key) not in values)
                or (op == "NotIn" and present and labels[key] in values)
                or (op == "Exists" and not present)
                or (op == "DoesNotExist" and present)
            ):
                return False
        return True

    return None if any(term_matches(t) for t in terms) else "required node affinity"


def unfit_reason(
    pod: Mapping[str, Any],
    shape: NodeShape,
    used: Mapping[str, Decimal] | None = None,
    extra: Mapping[str, Decimal] | None = None,
) -> str | None:
    """Why ``pod`` cannot run on an empty node of ``shape`` (``used``: what is already planned there;
    ``extra``: what it needs beyond its containers' requests, such as its claims' devices)."""
    spec = pod.get("spec", {})
    if reason := _selector_matches(spec, shape.labels):
        return reason
    tolerations = [toleration_from_dict(t) for t in spec.get("tolerations") or []]
    for taint in shape.taints:
        if taint["effect"] in ("NoSchedule", "NoExecute") and not is_tolerated(
            Taint(taint["key"], taint.get("value", ""), taint["effect"]), tolerations
        ):
            return f"taint {taint['key']}={taint.get('value', '')}:{taint['effect']}"
    used = used or {}
    for resource, amount in {**pod_requests(pod), **(extra or {})}.items():
        available = quantity_value(shape.allocatable.get(resource, "0")) - used.get(resource, Decimal(0))
        if amount > available:
            return f"insufficient {resource}"
    return None


@dataclass
class GroupTemplate:
    name: str
    shape: NodeShape
    size: int
    max_size: int
    record: Mapping[str, Any]
    # The DRA devices a new node would offer: a running node's, from its ResourceSlices (None: none known)
    devices: list[dra.Device] | None = None


def group_templates(store: CloudStore, api: KubeApi) -> list[GroupTemplate]:
    """The node groups the autoscaler discovers (by their ASG tags), with their node templates."""
    tags_by_asg: dict[str, dict[str, str]] = {}
    for record in store.all(ASG_TAG):
        tag = record["inputs"]["tag"]
        tags_by_asg.setdefault(record["inputs"]["autoscalingGroupName"], {})[tag["key"]] = tag["value"]
    templates = []
    devices = dra.node_devices(api.list("ResourceSlice"))
    for record in store.all(NODE_GROUP):
        outputs = record["outputs"]
        asg = outputs["resources"][0]["autoscalingGroups"][0]["name"]
        # EKS tags every managed group's autoscaling group for discovery; the platform adds the rest.
        tags = {DISCOVERY_TAG: "true", **tags_by_asg.get(asg, {})}
        name = outputs["nodeGroupName"]
        instance_type = (outputs.get("instanceTypes") or ["m6i.large"])[0]
        zone = _zone_of(store, outputs.get("subnetIds") or [])
        shape = template_from_tags(instance_type, tags, zone)
        nodes = api.list("Node", selector=f"{GROUP_LABEL}={name}")
        # A running node's devices, as the autoscaler copies them into a new node of its group.
        example = next(
            (devices[n["metadata"]["name"]] for n in nodes if n["metadata"]["name"] in devices), None
        )
        templates.append(
            GroupTemplate(
                name,
                dra.device_shape(shape, example),
                len(nodes),
                int(outputs["scalingConfig"]["maxSize"]),
                outputs,
                example,
            )
        )
    return sorted(templates, key=lambda t: (int(t.shape.allocatable.get("nvidia.com/gpu", "0")), t.name))


def _zone_of(store: CloudStore, subnet_ids: list[str]) -> str:
    for record in store.all("aws:ec2/subnet:Subnet"):
        if record["id"] in subnet_ids:
            return record["inputs"].get("availabilityZone") or "us-east-1a"
    return "us-east-1a"


def plan_scale_up(
    pending: Iterable[Mapping[str, Any]],
    templates: list[GroupTemplate],
    claims: Mapping[str, list[dra.DeviceRequest] | None] | None = None,
) -> tuple[dict[str, int], dict[str, str], dict[str, str]]:
    """New nodes per group for the pending pods, which group serves each pod, and why the rest wait.

    Pods are packed onto the new nodes of a group before another node is added, as the autoscaler's
    binpacking estimator does. ``claims``: by pod, the devices its DRA claims still need (``dra``).
    """
    new_nodes: dict[str, list[dict[str, Decimal]]] = {}
    served: dict[str, str] = {}
    waiting: dict[str, str] = {}
    for pod in pending:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        devices = (claims or {}).get(key)
        if devices == []:
            waiting[key] = "its claims are allocated on a node already: no new node serves it"
            continue
        reasons = []
        for template in templates:
            extra: dict[str, Decimal] = {}
            if devices is not None:
                reason, needed = dra.device_fit(devices, template.devices)
                if reason:
                    reasons.append(f"{template.name}: {reason}")
                    continue
                extra = dra.as_requests(needed)
            if reason := unfit_reason(pod, template.shape, extra=extra):
                reasons.append(f"{template.name}: {reason}")
                continue
            requests = {**pod_requests(pod), **extra}
            nodes = new_nodes.setdefault(template.name, [])
            for used in nodes:
                if unfit_reason(pod, template.shape, used, extra) is None:
                    for k, v in requests.items():
                        used[k] = used.get(k, Decimal(0)) + v
                    served[key] = template.name
                    break
            else:
                if template.size + len(nodes) >= template.max_size:
                    reasons.append(f"{template.name}: at its maximum size ({template.max_size})")
                    continue
                nodes.append(dict(requests))
                served[key] = template.name
            break
        else:
            waiting[key] = "; ".join(reasons) or "no node group"
    return {name: len(nodes) for name, nodes in new_nodes.items() if nodes}, served, waiting


def _unschedulable(pod: Mapping[str, Any]) -> bool:
    if pod.get("spec", {}).get("nodeName") or pod.get("status", {}).get("phase") != "Pending":
        return False
    return any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
        for c in pod.get("status", {}).get("conditions") or []
    )


# -- the controllers ---------------------------------------------------------------------------------
@dataclass
class Autoscaler:
    api: KubeApi
    store: CloudStore
    fleet: NodeFleet
    served: dict[str, str] = field(default_factory=dict)  # pod -> node group
    waiting: dict[str, str] = field(default_factory=dict)  # pod -> why no group fits
    scale_ups: list[dict] = field(default_factory=list)
    _recent: dict[str, float] = field(default_factory=dict)  # pod -> when a node was added for it

    def step(self) -> None:
        now = time.monotonic()
        pending = [
            p
            for p in self.api.list("Pod", fields="status.phase=Pending")
            if _unschedulable(p)
            # A node added for this pod is still joining: wait before deciding again.
            and now - self._recent.get(p["metadata"]["uid"], -1e9) > 30
        ]
        if not pending:
            return
        templates = group_templates(self.store, self.api)
        pending, following = dra.one_pod_per_shared_claim(pending)
        claims = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": dra.pod_device_requests(self.api, p)
            for p in pending
        }
        additions, served, waiting = plan_scale_up(pending, templates, claims)
        by_name = {t.name: t for t in templates}
        for group, count in additions.items():
            template = by_name[group]
            added = self.fleet.add(template.record, count, salt=f"scale-{len(self.scale_ups)}")
            self.scale_ups.append({"group": group, "nodes": added, "at": time.time()})
        for pod in pending:
            key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
            if key in served:
                self._recent[pod["metadata"]["uid"]] = now
        self.served.update(served)
        self.waiting = {**waiting, **following}


def load_balancer_hostname(namespace: str, name: str, region: str = "us-east-1") -> str:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:16]
    return f"k8s-{namespace[:8]}-{name[:8]}-{digest}.{region}.elb.amazonaws.com"


@dataclass
class LoadBalancers:
    api: KubeApi
    controllers: frozenset[str] = frozenset({"ingress.k8s.aws/alb", "k8s.io/ingress-nginx"})

    def step(self) -> None:
        classes = {
            c["metadata"]["name"]
            for c in self.api.list("IngressClass")
            if c["spec"].get("controller") in self.controllers
        }
        for ingress in self.api.list("Ingress"):
            meta = ingress["metadata"]
            if ingress["spec"].get("ingressClassName") not in classes or meta.get("deletionTimestamp"):
                continue
            if (ingress.get("status") or {}).get("loadBalancer", {}).get("ingress"):
                continue
            ingress["status"] = {
                "loadBalancer": {
                    "ingress": [{"hostname": load_balancer_hostname(meta["namespace"], meta["name"])}]
                }
            }
            self.api.replace_status("Ingress", ingress)


@dataclass
class Volumes:
    api: KubeApi
    provisioners: frozenset[str] = frozenset({"ebs.csi.aws.com", "efs.csi.aws.com"})

    def step(self) -> None:
        self._provision()
        self._reclaim()

    def _reclaim(self) -> None:
        """A released volume of ours whose policy is Delete goes, as the CSI driver deletes it."""
        for pv in self.api.list("PersistentVolume"):
            annotations = pv["metadata"].get("annotations") or {}
            if (
                annotations.get("pv.kubernetes.io/provisioned-by") in self.provisioners
                and (pv.get("status") or {}).get("phase") == "Released"
                and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                self.api.delete("PersistentVolume", pv["metadata"]["name"])

    def _provision(self) -> None:
        classes = {sc["metadata"]["name"]: sc for sc in self.api.list("StorageClass")}
        for claim in self.api.list("PersistentVolumeClaim"):
            meta, spec = claim["metadata"], claim["spec"]
            sc = classes.get(spec.get("storageClassName") or "")
            if not sc or sc.get("provisioner") not in self.provisioners or spec.get("volumeName"):
                continue
            waits = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
            if waits and "volume.kubernetes.io/selected-node" not in (meta.get("annotations") or {}):
                continue
            pv_name = f"pvc-{meta['uid']}"
            if self.api.get("PersistentVolume", pv_name):
                continue
            self.api.create(
                "PersistentVolume",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {
                        "name": pv_name,
                        "annotations": {"pv.kubernetes.io/provisioned-by": sc["provisioner"]},
                    },
                    "spec": {
                        "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                        "accessModes": spec["accessModes"],
                        "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                        "storageClassName": sc["metadata"]["name"],
                        "claimRef": {
                            "namespace": meta["namespace"],
                            "name": meta["name"],
                            "uid": meta["uid"],
                        },
                        "csi": {"driver": sc["provisioner"], "volumeHandle": pv_name},
                    },
                },
            )


class SimulatedControllers:
    """The simulated controllers, stepped every ``interval`` seconds in a background thread; the
    autoscaler only where the stack installs the cluster autoscaler (Karpenter stacks do not)."""

    def __init__(self, api: KubeApi, store: CloudStore, interval: float = 1.0, autoscaler: bool = True):
        self.autoscaler = Autoscaler(api, store, NodeFleet(api))
        self.kubelet_plugin = dra.KubeletPlugin(api)
        self.controllers = [LoadBalancers(api), Volumes(api), NodeClasses(api, store), self.kubelet_plugin]
        if autoscaler:
            self.controllers.insert(0, self.autoscaler)
        self.errors: list[str] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-controllers", daemon=True)

    def __enter__(self) -> SimulatedControllers:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for controller in self.controllers:
                try:
                    controller.step()
                except Exception as exc:  # noqa: BLE001 - a controller retries, as real ones do
                    message = f"{type(controller).__name__}: {exc}"
                    if message not in self.errors[-5:]:
                        self.errors.append(message)
            self._stop.wait(self._interval)
