"""What only a real Karpenter shows, on a stack whose GPU capacity is Karpenter's pools:

- ``consolidation``: an inference server scaled down leaves empty nodes; Karpenter removes them after
  the pool's ``consolidateAfter``, never while a blocked window is open, never more at once than the
  pool's budget (``maxNodes``);
- ``limits``: a pool filled to its GPU limit leaves the next pod Pending, with Karpenter's reason.

Both change the deployed stack only through its config (an ``up``), as a user would, or create their
own pods; both read only the API server.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiplatform.compute.instance_types import lookup
from tools.e2e.checks import POOL_LABEL, Check
from tools.e2e.kubeapi import ApiError, KubeApi, wait_for
from tools.e2e.scenarios import (
    STACK_SCENARIOS,
    ScenarioResult,
    StackUnderTest,
    StepLog,
    _deployment_pods,
    _workload,
    operation,
    scenario,
    set_config,
    teardown,
)

DISRUPTED_TAINT = "karpenter.sh/disrupted"
# The scenario's own consolidateAfter: the stacks' (minutes to an hour) shortened to what a test waits.
CONSOLIDATE_AFTER = "20s"


def _pool_index(s: StackUnderTest, pool: str) -> tuple[int, dict]:
    pools = (s.run.config.get("aiplatform:compute") or {}).get("pools") or []
    for index, spec in enumerate(pools):
        if spec["name"] == pool:
            return index, spec
    raise LookupError(f"the stack has no pool {pool!r}")


def pool_nodes(api: KubeApi, pool: str) -> list[dict]:
    return api.list("Node", selector=f"{POOL_LABEL}={pool}")


def _disrupting(node: dict) -> bool:
    taints = (node.get("spec") or {}).get("taints") or []
    return bool(node["metadata"].get("deletionTimestamp")) or any(
        t.get("key") == DISRUPTED_TAINT for t in taints
    )


@dataclass
class PoolSampler:
    """The pool's nodes every ``interval`` seconds: which exist and which Karpenter is disrupting."""

    api: KubeApi
    pool: str
    interval: float = 1.0
    samples: list[tuple[float, list[str], list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        with contextlib.suppress(OSError, ApiError):
            nodes = pool_nodes(self.api, self.pool)
            self.samples.append(
                (
                    time.time(),
                    sorted(n["metadata"]["name"] for n in nodes),
                    sorted(n["metadata"]["name"] for n in nodes if _disrupting(n)),
                )
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PoolSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        # The pool as the wait that ended the sampling saw it, not as it was up to an interval before.
        self._sample()


def _window_now(seconds_left_at_least: float = 60) -> tuple[str, str, float]:
    """A blocked window open now: a cron schedule of the current minute (UTC, as Karpenter reads it)
    and a duration in whole minutes that keeps it open at least ``seconds_left_at_least``; and when it
    closes (epoch seconds)."""
    now = datetime.datetime.now(datetime.UTC)
    start = now.replace(second=0, microsecond=0)
    minutes = 2
    while (start + datetime.timedelta(minutes=minutes) - now).total_seconds() < seconds_left_at_least:
        minutes += 1
    return (
        f"{start.minute} {start.hour} * * *",
        f"{minutes}m",
        (start + datetime.timedelta(minutes=minutes)).timestamp(),
    )


def _events(api: KubeApi, kind: str, name: str, reason: str) -> list[dict]:
    return [
        e
        for e in api.list("Event")
        if e.get("reason") == reason
        and (e.get("involvedObject") or {}).get("kind") == kind
        and (e.get("involvedObject") or {}).get("name") == name
    ]


def consolidation(s: StackUnderTest) -> ScenarioResult:
    """An inference server on a GPU pool scaled out by two replicas, then back: its two emptied nodes
    stay while a blocked window is open, then Karpenter removes them, no more at once than
    ``maxNodes``, each after ``consolidateAfter``; the replicas left run undisturbed."""
    with scenario(s, "consolidation") as result:
        index, workload = _workload(
            s, "inference", lambda w: bool((w.get("gpu") or {}).get("pool")) and bool(w.get("autoscaling"))
        )
        pool = workload["gpu"]["pool"]
        pool_index, pool_spec = _pool_index(s, pool)
        disruption = pool_spec.get("disruption") or {}
        if not str(disruption.get("maxNodes", "")).isdigit() or not disruption.get("blockedWindows"):
            raise LookupError(f"pool {pool} has no maxNodes budget and blocked window to prove")
        budget = int(disruption["maxNodes"])
        name, namespace = workload["name"], workload["namespace"]
        base = int(workload["autoscaling"]["minReplicas"])
        api = s.api
        scaling = f"aiplatform:workloads.inference[{index}].autoscaling"
        prefix = f"aiplatform:compute.pools[{pool_index}].disruption"

        def replicas(count: int) -> list[dict]:
            def ready() -> list[dict] | None:
                pods = [p for p in _deployment_pods(s, namespace, name) if p["spec"].get("nodeName")]
                return pods if len(pods) == count else None

            return wait_for(ready, timeout=120, what=f"{namespace}/{name} at {count} replicas")

        # Two more replicas, each on a node of its own (one GPU each); the pool consolidates 20 s after
        # a node empties instead of the stack's minutes.
        set_config(s, f"{prefix}.consolidateAfter", CONSOLIDATE_AFTER)
        set_config(s, f"{scaling}.minReplicas", str(base + 2))
        set_config(s, f"{scaling}.maxReplicas", str(base + 2))
        operation(s, result, "scale out up", s.stack.up, on_event=StepLog())
        replicas(base + 2)
        # Back to the stack's minimum, with the pool's blocked window open from now.
        schedule, duration, window_closes = _window_now()
        set_config(s, f"{prefix}.blockedWindows[0].schedule", schedule)
        set_config(s, f"{prefix}.blockedWindows[0].duration", duration)
        set_config(s, f"{scaling}.minReplicas", str(base))
        set_config(s, f"{scaling}.maxReplicas", str(base))
        with PoolSampler(api, pool) as sampler:
            operation(s, result, "scale in up", s.stack.up, on_event=StepLog())
            kept = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in replicas(base)}
            emptied_at = time.time()
            busy = set(kept.values())
            with contextlib.suppress(TimeoutError):  # judged on the samples below
                wait_for(
                    lambda: {n["metadata"]["name"] for n in pool_nodes(api, pool)} <= busy,
                    timeout=window_closes - time.time() + 180,
                    interval=2,
                    what=f"pool {pool} down to its busy nodes",
                )
        samples = [x for x in sampler.samples if x[0] >= emptied_at]
        empty = sorted(set(samples[0][1]) - busy) if samples else []
        in_window = [x for x in samples if x[0] < window_closes]
        gone_in_window = set(empty) - set(in_window[-1][1]) if in_window else set()
        disrupted_in_window = sorted({n for x in in_window for n in x[2]} | gone_in_window)
        at_once = max((len(x[2]) for x in samples), default=0)
        first = next((x[0] for x in samples if x[2]), None)
        left = samples[-1][1] if samples else []
        blocked = _events(api, "NodePool", pool, "DisruptionBlocked")
        now = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in _deployment_pods(s, namespace, name)}
        closes = time.strftime("%H:%M:%S", time.gmtime(window_closes))
        result.checks += [
            Check(
                "scaling in left empty nodes to consolidate",
                len(empty) >= 2,
                f"{len(empty)} empty nodes of {pool} after {name} went from {base + 2} to {base} replicas",
                {"empty": empty, "busy": sorted(busy)},
            ),
            Check(
                "no node removed while the blocked window was open",
                not disrupted_in_window and bool(in_window),
                f"window '{schedule}' for {duration} closed at {closes} UTC; {len(in_window)} samples in it "
                f"over {0 if not in_window else in_window[-1][0] - emptied_at:.0f} s, "
                f"{len(disrupted_in_window)} nodes disrupted there",
                {"disrupted_in_window": disrupted_in_window},
            ),
            Check(
                "Karpenter said the budget blocked it",
                bool(blocked),
                "; ".join(sorted({e.get("message", "") for e in blocked})) or "no DisruptionBlocked event",
            ),
            Check(
                f"the empty nodes removed after the window, at most {budget} at a time",
                set(left) <= busy and 0 < at_once <= budget,
                f"{len(left)} nodes left; at most {at_once} disrupted at once; the first "
                f"{0 if first is None else first - window_closes:+.0f} s after the window closed",
                {
                    "timeline": [
                        (round(t - emptied_at, 1), nodes, disrupted) for t, nodes, disrupted in samples
                    ]
                },
            ),
            Check(
                f"not before consolidateAfter ({CONSOLIDATE_AFTER})",
                first is not None and first - emptied_at >= 20,
                f"the first disruption {0 if first is None else first - emptied_at:.0f} s after the nodes emptied",
            ),
            Check("the replicas left run undisturbed", now == kept, f"{name}: {now}, before {kept}"),
        ]
    return result


def _filler(namespace: str, pool: str, replicas: int, image: str) -> dict[str, Any]:
    """A Deployment of one-GPU pods placed on ``pool`` as the platform's workloads are (its label,
    the GPU taint tolerated), restricted as the namespace's pod security requires."""
    labels = {"app.kubernetes.io/name": "gpu-limit-probe"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "gpu-limit-probe", "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"aiplatform.io/gpu-pool": pool},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                            },
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
                                "limits": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
                            },
                        }
                    ],
                },
            },
        },
    }


def _gpus(obj: dict, where: str) -> int:
    return int(((obj.get("status") or {}).get(where) or {}).get("nvidia.com/gpu", "0"))


@contextlib.contextmanager
def _deployed(api: KubeApi, manifest: dict) -> Iterator[None]:
    namespace = manifest["metadata"]["namespace"]
    api.create("Deployment", manifest, namespace)
    try:
        yield
    finally:
        api.request(
            "DELETE",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/{manifest['metadata']['name']}"
            "?propagationPolicy=Background",
        )


def limits(s: StackUnderTest) -> ScenarioResult:
    """A GPU pool filled to its ``limits.gpus``: Karpenter launches nodes up to the limit and leaves the
    next pod Pending, with its reason on the pod."""
    with scenario(s, "pool at its GPU limit") as result:
        _index, workload = _workload(s, "inference", lambda w: bool((w.get("gpu") or {}).get("pool")))
        pool, namespace = workload["gpu"]["pool"], workload["namespace"]
        _pool_index_, pool_spec = _pool_index(s, pool)
        limit = int(pool_spec["limits"]["gpus"])
        per_node = {
            lookup(t).gpus
            for t in pool_spec.get("instanceTypes") or []
            if lookup(t) is not None and lookup(t).gpus
        }
        if per_node != {1}:
            raise LookupError(f"pool {pool}: the probe counts one GPU per node; its types have {per_node}")
        api = s.api
        in_use = sum(
            int(c["resources"].get("requests", {}).get("nvidia.com/gpu", "0"))
            for p in api.list("Pod")
            if p["spec"].get("nodeName") in {n["metadata"]["name"] for n in pool_nodes(api, pool)}
            and p["status"].get("phase") in ("Running", "Pending")
            for c in p["spec"]["containers"]
            if c.get("resources")
        )
        room = limit - in_use
        manifest = _filler(namespace, pool, room + 1, workload["image"])
        selector = "app.kubernetes.io/name=gpu-limit-probe"
        with _deployed(api, manifest):

            def settled() -> tuple[list[dict], list[dict]] | None:
                pods = api.list("Pod", namespace, selector=selector)
                running = [p for p in pods if p["status"].get("phase") == "Running"]
                pending = [p for p in pods if p["status"].get("phase") == "Pending"]
                if len(running) == room and len(pending) == 1:
                    reason = [
                        e
                        for e in api.list("Event", namespace)
                        if (e.get("involvedObject") or {}).get("name") == pending[0]["metadata"]["name"]
                        and "exceed limits for nodepool" in e.get("message", "")
                    ]
                    return (running, reason) if reason else None
                return None

            with contextlib.suppress(TimeoutError):
                wait_for(settled, timeout=180, interval=2, what=f"{room} probes running and one Pending")
            pods = api.list("Pod", namespace, selector=selector)
            pending = [p for p in pods if p["status"].get("phase") == "Pending"]
            messages = sorted(
                {
                    e.get("message", "")
                    for e in api.list("Event", namespace)
                    if (e.get("involvedObject") or {}).get("name") in {p["metadata"]["name"] for p in pending}
                    and e.get("reason") == "FailedScheduling"
                }
            )
            capacity = sum(
                _gpus(c, "capacity")
                for c in api.list("NodeClaim")
                if (c["metadata"].get("labels") or {}).get(POOL_LABEL) == pool
            )
            result.checks += [
                Check(
                    f"Karpenter filled {pool} to its limit of {limit} GPUs",
                    capacity == limit and len(pods) - len(pending) == room,
                    f"{capacity} GPUs in the pool's NodeClaims; {len(pods) - len(pending)}/{room} probes running",
                ),
                Check(
                    "the next pod stays Pending with Karpenter's reason",
                    len(pending) == 1
                    and any("exceed limits for nodepool" in m and pool in m for m in messages),
                    f"{len(pending)} Pending; {messages[-1] if messages else 'no FailedScheduling event'}",
                    {"messages": messages},
                ),
            ]
    return result


KARPENTER_SCENARIOS = (consolidation, limits)


def scenarios_for(config: dict[str, Any]) -> tuple:
    """A stack's scenarios in order: the stacks' own, Karpenter's where its pools are Karpenter's, the
    teardown last."""
    compute = config.get("aiplatform:compute") or {}
    extra = KARPENTER_SCENARIOS if compute.get("provisioner") == "karpenter" else ()
    return (*STACK_SCENARIOS[:-1], *extra, teardown)
