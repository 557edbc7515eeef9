"""Faults under the real engine: what a platform team meets on a bad day, injected into one deployed stack
and judged on what the engine's state, the simulated cloud and the API server hold afterwards.

- the engine killed (SIGKILL) half-way through an update, then recovered as the README says;
- two updates of one stack at once;
- the API server restarted while the engine applies Kubernetes objects;
- a GPU node holding inference replicas lost, then one drained;
- Secrets Manager unreachable for the external-secrets operator, and AWS throttling, then timing out;
- the chart repository down.

Each scenario records in ``report.json`` the fault injected, what survived, and the resources lost,
orphaned and duplicated, counted by ``ledger``: the state against the simulated cloud's records and the
API server's objects (never assumed). The scenarios run in order on one stack (``FAULT_SCENARIOS``); each
leaves it converged for the next.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi import automation as auto

from tools.e2e import checks
from tools.e2e.charts import ChartRepository
from tools.e2e.checks import Check
from tools.e2e.cloud import faults as cloud_faults
from tools.e2e.cloud.loopback_proxy import LoopbackProxy
from tools.e2e.cloud.nodes import NodeFleet
from tools.e2e.disruptions import budgets_respected, read_audit_log
from tools.e2e.interrupt import engine_errors, interrupted_up, mid_first_deploy, one_update_done_one_running
from tools.e2e.kubeapi import wait_for
from tools.e2e.ledger import cluster_objects, judge_ledger
from tools.e2e.recovery import LOCKED, converge, imported_not_created_again, recover_interrupted_update
from tools.e2e.scenarios import (
    EndpointSampler,
    ScenarioResult,
    StackUnderTest,
    StepLog,
    _changes,
    _deployment_pods,
    _tail,
    _urn_name,
    _workload,
    gpu_groups,
    next_image,
    no_change,
    operation,
    scenario,
    set_config,
)


# -- the record of a fault -----------------------------------------------------------------------------
def record(
    result: ScenarioResult,
    injected: str,
    survived: Iterable[str],
    counts: Mapping[str, int] | None,
    times: Mapping[str, float] | None = None,
    notes: Iterable[str] = (),
) -> None:
    result.fault = {
        "injected": injected,
        "survived": list(survived),
        "lost": (counts or {}).get("lost"),
        "orphaned": (counts or {}).get("orphaned"),
        "duplicated": (counts or {}).get("duplicated"),
        "times": dict(times or {}),
        "notes": list(notes),
    }


# -- the engine killed mid-update ----------------------------------------------------------------------
def engine_killed_first_deploy(s: StackUnderTest) -> ScenarioResult:
    """The first ``up`` of the stack, its engine killed when half of its creates are done; recovered as the
    README says, the next ``up`` converges and a second changes nothing; nothing lost, orphaned or
    duplicated in the simulated cloud or the cluster."""
    s.baseline = checks.snapshot(s.api)
    with scenario(s, "engine killed mid first deploy") as result:
        preview = operation(s, result, "preview", s.stack.preview)
        planned = _changes(preview).get("create", 0)
        s.deployed = True  # whatever the killed up made must go at the end
        start = time.monotonic()
        # EFS takes its time, as in AWS: its file system is being created when the engine dies.
        cloud_faults.set_fault(s.run.store.root, "efs", "slow")
        try:
            result.checks.append(interrupted_up(s, result, mid_first_deploy(planned, s.api)))
        finally:
            cloud_faults.clear_faults(s.run.store.root, "efs")
        recovery = recover_interrupted_update(s, result)
        result.checks.append(imported_not_created_again(recovery, converge(s, result)))
        recovered = round(time.monotonic() - start, 1)
        s.gpu_groups = gpu_groups(s)
        result.checks += [
            checks.autoscaled_at_minimum(s.api),
            checks.deployments_available(s.api),
            checks.pods_scheduled(s.api, s.gpu_groups),
        ]
        counts = judge_ledger(s, result)
        killed = result.operations["killed up"]
        record(
            result,
            f"SIGKILL of the engine (and its plugins) with {killed.get('resources_recorded')} of {planned} "
            f"resources recorded and {len(killed.get('pending_at_kill', []))} operations pending",
            [
                f"{len(s.state())} resources in the state after recovery",
                f"pending operations resolved: {len(recovery.imported)} imported, {len(recovery.cleared)} cleared",
            ],
            counts,
            {"to_kill": killed.get("after_seconds"), "kill_to_converged": recovered},
            [f"pending: {p['type']} {_urn_name(p['urn'])}" for p in recovery.pending]
            + [f"helm: {x}" for x in recovery.helm_fixed]
            + recovery.commands,
        )
        result.operations["recovery"] = {
            "pending": recovery.pending,
            "imported": {_urn_name(u): i for u, i in recovery.imported.items()},
            "cleared": [_urn_name(u) for u in recovery.cleared],
            "helm": recovery.helm_fixed,
            "commands": recovery.commands,
        }
    return result


engine_killed_first_deploy.deploys = True  # it is the stack's deploy (tests/e2e/conftest.py)


def _model_servers(s: StackUnderTest, count: int = 2) -> list[tuple[int, dict]]:
    workloads = (s.run.config.get("aiplatform:workloads") or {}).get("inference") or []
    with_model = [(i, w) for i, w in enumerate(workloads) if w.get("modelFetch") or w.get("gpu")]
    return with_model[:count]


def _roll_images(s: StackUnderTest, servers: list[tuple[int, dict]]) -> dict[str, str]:
    """A new image for each server, as a delivery pipeline sets it; returns name -> image."""
    images = {}
    for index, workload in servers:
        current = s.stack.get_config(f"aiplatform:workloads.inference[{index}].image", path=True).value
        images[workload["name"]] = next_image(current or workload["image"])
        set_config(s, f"aiplatform:workloads.inference[{index}].image", images[workload["name"]])
    return images


def _rolled_out(s: StackUnderTest, namespace: str, name: str, image: str) -> bool:
    deployment = s.api.get("Deployment", name, namespace) or {}
    status = deployment.get("status") or {}
    images = {
        c["image"]
        for p in _deployment_pods(s, namespace, name)
        for c in p["spec"]["containers"]
        if c["name"] == "server"
    }
    return images == {image} and status.get("updatedReplicas") == status.get("replicas") == status.get(
        "availableReplicas"
    )


ROLLOUT_ATTEMPTS = 3


def engine_killed_rollout(s: StackUnderTest) -> ScenarioResult:
    """A rollout of two model servers, its engine killed when one Deployment's update is done and the other
    is running; recovered as the README says, the rollout completes on the new images with the Services
    keeping ready endpoints; a second up changes nothing; nothing lost, orphaned or duplicated."""
    with scenario(s, "engine killed mid rollout") as result:
        servers = _model_servers(s)
        start = time.monotonic()
        with contextlib.ExitStack() as sampling:
            samplers = [
                sampling.enter_context(EndpointSampler(s.api, w["namespace"], w["name"])) for _i, w in servers
            ]
            # The two rollouts may end within one checkpoint of each other, leaving no moment with one
            # done and one running: then the up completes unkilled, and the next images are rolled.
            for attempt in range(1, ROLLOUT_ATTEMPTS + 1):
                images = _roll_images(s, servers)
                killed = interrupted_up(s, result, one_update_done_one_running(len(servers)))
                result.operations["killed up"]["attempt"] = attempt
                if result.operations["killed up"].get("after_seconds") is not None:
                    break
            result.checks.append(killed)
            recovery = recover_interrupted_update(s, result)
            result.checks.append(imported_not_created_again(recovery, converge(s, result)))
        recovered = round(time.monotonic() - start, 1)
        rolled = {
            w["name"]: _rolled_out(s, w["namespace"], w["name"], images[w["name"]]) for _i, w in servers
        }
        fewest = {f"{sm.namespace}/{sm.service}": min(sm.samples, default=0) for sm in samplers}
        result.checks += [
            Check("both rollouts complete on the new images", all(rolled.values()), f"{rolled}"),
            Check(
                "the Services kept ready endpoints throughout",
                all(sm.samples for sm in samplers) and all(v > 0 for v in fewest.values()),
                f"fewest ready endpoints {fewest}",
                {sm.service: sm.samples for sm in samplers},
            ),
        ]
        counts = judge_ledger(s, result)
        killed = result.operations["killed up"]
        record(
            result,
            f"SIGKILL of the engine (and its plugins) during a rollout of {', '.join(images)}, pending: "
            f"{killed.get('pending_at_kill')}",
            [f"{service}: rolled out, fewest ready endpoints {count}" for service, count in fewest.items()],
            counts,
            {"to_kill": killed.get("after_seconds"), "kill_to_converged": recovered},
            [f"pending: {p['type']} {_urn_name(p['urn'])}" for p in recovery.pending] + recovery.commands,
        )
    return result


# -- two updates at once ------------------------------------------------------------------------------
def concurrent_updates(s: StackUnderTest) -> ScenarioResult:
    """A second ``up`` (and a ``refresh``) of the stack while an ``up`` runs is refused by the backend's
    lock, naming it; the first completes with exactly its own changes."""
    with scenario(s, "concurrent updates") as result:
        index, workload = _workload(s, "inference", lambda w: bool((w.get("config") or {}).get("data")))
        key = sorted(workload["config"]["data"])[0]
        set_config(
            s,
            f'aiplatform:workloads.inference[{index}].config.data["{key}"]',
            f"concurrent-{int(time.time())}",
        )
        steps = StepLog()
        running = threading.Event()
        attempts: dict[str, Any] = {}

        def second_updates(event: Any) -> None:
            steps(event)
            if steps.steps and not running.is_set():
                running.set()

        def contend(args: tuple[str, ...]) -> None:
            running.wait(timeout=120)
            started = time.monotonic()
            answer = s.run.pulumi(*args)
            attempts[args[0]] = {
                "exit": answer.returncode,
                "seconds": round(time.monotonic() - started, 1),
                "output": _tail(answer.stdout + answer.stderr, 4),
            }

        contenders = [
            threading.Thread(target=contend, args=(args,), name=f"second-{args[0]}")
            for args in (("up", "--yes", "--skip-preview"), ("refresh", "--yes"))
        ]
        for contender in contenders:
            contender.start()
        first = operation(s, result, "first up", s.stack.up, on_event=second_updates)
        for contender in contenders:
            contender.join(timeout=180)
        expected = {"ConfigMap", "Deployment"}
        kinds = {typ.rsplit(":", 1)[-1] for _op, typ, _urn in steps.changed()}
        result.checks += [
            Check(
                f"a second {what} is refused by the lock, naming it",
                what in attempts and attempts[what]["exit"] != 0 and LOCKED in attempts[what]["output"],
                attempts.get(what, {}).get("output", "not attempted"),
                attempts.get(what, {}),
            )
            for what in ("up", "refresh")
        ]
        result.checks.append(
            Check(
                "the first up completes with its own changes only",
                getattr(first.summary, "result", None) == "succeeded" and kinds == expected,
                f"{first.summary.result}; changed {sorted(kinds)}",
                {"changed": steps.changed_with_diffs()},
            )
        )
        no_change(s, result, "second up", s.stack.up, "a second up changes nothing")
        counts = judge_ledger(s, result)
        record(
            result,
            "a second pulumi up, then a pulumi refresh, while an up runs (file backend)",
            ["the first up, completed with its own changes", *(f"{k}: refused" for k in attempts)],
            counts,
            {f"{k}_refused_in": v["seconds"] for k, v in attempts.items()}
            | {"first_up": result.operations["first up"]["seconds"]},
        )
    return result


# -- the API server restarted during an up ---------------------------------------------------------------
@dataclass
class RestartOnKubernetesStep:
    """An ``on_event`` callback that restarts the control plane (kube-apiserver on the same etcd, with its
    controller-manager and scheduler) once the engine starts changing a Kubernetes object."""

    restart: Callable[[], None]
    steps: StepLog = field(default_factory=StepLog)
    restarted: dict[str, Any] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def __call__(self, event: Any) -> None:
        self.steps(event)
        if self._thread is None and any(
            typ.startswith("kubernetes:") for _op, typ, _u in self.steps.changed()
        ):
            self.restarted["during"] = [
                f"{op} {_urn_name(u)}" for op, typ, u in self.steps.changed() if typ.startswith("kubernetes:")
            ]
            self._thread = threading.Thread(target=self._run, name="apiserver-restart", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        start = self.restarted["started"] = time.monotonic()
        try:
            self.restart()
        except Exception as exc:  # noqa: BLE001 - reported by the scenario
            self.restarted["error"] = f"{type(exc).__name__}: {exc}"
        self.restarted["seconds"] = round(time.monotonic() - start, 1)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=180)


def apiserver_restart_during_up(s: StackUnderTest) -> ScenarioResult:
    """The API server restarts (same etcd) while an ``up`` rolls out two model servers: the update either
    completes through the provider's retries or fails naming what it was doing; a rerun converges; no
    object lost or duplicated."""
    with scenario(s, "API server restart during up") as result:
        servers = _model_servers(s)
        images = _roll_images(s, servers)
        run = s.run
        pid = run.cluster.processes["kube-apiserver"].pid
        restarter = RestartOnKubernetesStep(
            lambda: run.cluster.restart_control_plane(run.control_plane(run.kubernetes_minor))
        )
        start = time.monotonic()
        error = None
        try:
            operation(s, result, "up", s.stack.up, on_event=restarter)
        except auto.CommandError as exc:
            error = str(exc)
        ended = time.monotonic()
        restarter.join()
        restarted = run.cluster.processes["kube-apiserver"].pid != pid and "error" not in restarter.restarted
        began = restarter.restarted.pop("started", None)
        result.checks.append(
            Check(
                "kube-apiserver restarted on the same etcd while the engine changed Kubernetes objects",
                restarted and bool(restarter.restarted.get("during")) and began is not None and began < ended,
                f"restart in {restarter.restarted.get('seconds')} s, begun "
                f"{round(ended - began, 1) if began else '?'} s before the up ended, during "
                f"{restarter.restarted.get('during')}",
                restarter.restarted,
            )
        )
        failed_clearly = error is None or any(
            _urn_name(u) in error for _o, _t, u in restarter.steps.changed()
        )
        result.checks.append(
            Check(
                "the up completed, or failed naming the resource",
                failed_clearly,
                "completed through the provider's retries"
                if error is None
                else "failed: " + " | ".join(engine_errors(error, resources_only=True)[-1:]),
                {"engine_errors": engine_errors(error or "")},
            )
        )
        if error is not None:
            converge(s, result, "rerun")
        else:
            no_change(s, result, "second up", s.stack.up, "a second up changes nothing")
        converged = round(time.monotonic() - start, 1)
        rolled = {
            w["name"]: _rolled_out(s, w["namespace"], w["name"], images[w["name"]]) for _i, w in servers
        }
        result.checks += [
            Check("both rollouts complete on the new images", all(rolled.values()), f"{rolled}"),
            checks.deployments_available(s.api),
        ]
        counts = judge_ledger(s, result)
        record(
            result,
            f"kube-apiserver, kube-controller-manager and kube-scheduler restarted (same etcd, "
            f"{restarter.restarted.get('seconds')} s) while the engine was at {restarter.restarted.get('during')}",
            [
                "the update "
                + (
                    "completed through the provider's retries"
                    if error is None
                    else "failed, and a rerun converged"
                ),
                f"rollouts of {', '.join(images)} complete",
            ],
            counts,
            {"restart": restarter.restarted.get("seconds"), "up_to_converged": converged},
            engine_errors(error or "", resources_only=True)[-2:],
        )
    return result


# -- a GPU node lost under serving ------------------------------------------------------------------
def _budgeted_service(s: StackUnderTest) -> tuple[str, str, dict]:
    """An inference Service whose pods a PodDisruptionBudget covers (named as the Service), with it."""
    for pdb in s.api.list_path("/apis/policy/v1/poddisruptionbudgets"):
        meta = pdb["metadata"]
        if s.api.get("Service", meta["name"], meta["namespace"]):
            return meta["namespace"], meta["name"], pdb
    raise LookupError("no inference Service with a PodDisruptionBudget")


class ServingSampler(EndpointSampler):
    """Ready endpoints of a Service that still have a node: a pod whose node is gone stays Ready in the API
    until the pod garbage collector removes it, but serves nothing."""

    def ready(self) -> int:
        nodes = {n["metadata"]["name"] for n in self.api.list("Node")}
        slices = self.api.list(
            "EndpointSlice", self.namespace, selector=f"kubernetes.io/service-name={self.service}"
        )
        return sum(
            1
            for sl in slices
            for ep in sl.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") is not False and ep.get("nodeName") in nodes
        )


def _gpu_nodes(s: StackUnderTest, group: str) -> dict[str, list[str]]:
    """The group's nodes and the non-DaemonSet pods each runs."""
    nodes = {
        n["metadata"]["name"]: [] for n in s.api.list("Node", selector=f"eks.amazonaws.com/nodegroup={group}")
    }
    for pod in s.api.list("Pod"):
        node = pod["spec"].get("nodeName")
        owners = {o["kind"] for o in pod["metadata"].get("ownerReferences") or []}
        if node in nodes and "DaemonSet" not in owners and not pod["metadata"].get("deletionTimestamp"):
            nodes[node].append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
    return nodes


def _serving(s: StackUnderTest, namespace: str, name: str, want: int) -> bool:
    status = (s.api.get("Deployment", name, namespace) or {}).get("status") or {}
    return (
        status.get("availableReplicas", 0) >= want and ServingSampler(s.api, namespace, name).ready() >= want
    )


def gpu_node_lost(s: StackUnderTest) -> ScenarioResult:
    """A GPU node holding an inference replica deleted, as an instance termination does: the replica is
    rescheduled on capacity the autoscaler brings back, and the Service keeps at least its budget's
    healthy minimum of ready endpoints (on live nodes) throughout. Then another such node drained through
    the Eviction API and removed, as a scale-in does. Every voluntary disruption of the run went through
    the PodDisruptionBudget."""
    with scenario(s, "GPU node lost under serving") as result:
        namespace, name, pdb = _budgeted_service(s)
        group = next(
            g for g in s.gpu_groups if any(name in p for pods in _gpu_nodes(s, g).values() for p in pods)
        )
        want = int(((s.api.get("Deployment", name, namespace) or {}).get("status") or {}).get("replicas", 0))
        minimum = int((pdb.get("status") or {}).get("desiredHealthy", 0))
        # The autoscaler removes GPU nodes nothing needs (after its scale-down delay): start from there, so
        # the lost capacity has to come back from the node group.
        idle = [n for n, pods in _gpu_nodes(s, group).items() if not pods]
        for node in idle:
            s.api.delete("Node", node)
        autoscaler = s.run.controllers.autoscaler
        scale_ups_before = len(autoscaler.scale_ups)
        times: dict[str, float] = {}
        with ServingSampler(s.api, namespace, name) as sampler:

            def serving_node(other_than: str | None = None) -> str:
                return next(
                    n
                    for n, pods in _gpu_nodes(s, group).items()
                    if n != other_than and any(f"{namespace}/{name}-" in p for p in pods)
                )

            def serving_again() -> None:
                wait_for(
                    lambda: _serving(s, namespace, name, want),
                    timeout=240,
                    what=f"{namespace}/{name} back at {want} ready replicas",
                )

            lost = serving_node()
            start = time.monotonic()
            s.api.delete("Node", lost)
            serving_again()
            times["node_lost_to_serving_again"] = round(time.monotonic() - start, 1)
            # A scale-in: the node is drained through the Eviction API first, then goes.
            drained = serving_node(other_than=lost)
            start = time.monotonic()
            s.api.merge_patch("Node", drained, {"spec": {"unschedulable": True}})
            evicted, refused = NodeFleet(s.api).drain(drained, timeout=240)
            s.api.delete("Node", drained)
            serving_again()
            times["drain_to_serving_again"] = round(time.monotonic() - start, 1)
        scale_ups = autoscaler.scale_ups[scale_ups_before:]
        fewest = min(sampler.samples, default=0)
        covered = {}
        for budget in s.api.list_path("/apis/policy/v1/poddisruptionbudgets"):
            labels = budget["spec"]["selector"].get("matchLabels") or {}
            for d in s.api.list("Deployment", budget["metadata"]["namespace"]):
                if labels and all(
                    (d["spec"]["template"]["metadata"].get("labels") or {}).get(k) == v
                    for k, v in labels.items()
                ):
                    covered[(budget["metadata"]["namespace"], d["metadata"]["name"])] = budget["metadata"][
                        "name"
                    ]
        result.checks += [
            Check(
                "the Service kept the budget's minimum of ready endpoints throughout",
                bool(sampler.samples) and fewest >= minimum > 0,
                f"{len(sampler.samples)} samples, fewest {fewest} ready on live nodes; the budget keeps {minimum} "
                f"(maxUnavailable {pdb['spec'].get('maxUnavailable')}) of {want}",
                {"samples": sampler.samples},
            ),
            Check(
                "the autoscaler brought GPU capacity back",
                bool(scale_ups) and all(x["group"] == group for x in scale_ups),
                f"{len(scale_ups)} scale-ups of {group}: {[x['nodes'] for x in scale_ups]}",
                {"scale_ups": scale_ups, "idle_nodes_removed_first": idle},
            ),
            Check(
                "the drain's evictions went through the budget",
                bool(evicted),
                f"{len(evicted)} evicted, {refused} refused by the budget",
                {"evicted": evicted, "refused": refused},
            ),
            budgets_respected(read_audit_log(s.run.cluster.audit_log), covered),
            checks.deployments_available(s.api),
            checks.pods_scheduled(s.api, s.gpu_groups),
        ]
        counts = judge_ledger(s, result)
        record(
            result,
            f"GPU node {lost} ({group}) deleted under {namespace}/{name}, then {drained} drained and removed",
            [
                f"{namespace}/{name}: fewest {fewest} ready endpoints of {want} (budget keeps {minimum})",
                f"{len(scale_ups)} nodes added by the autoscaler",
            ],
            counts,
            times,
            [
                "Karpenter's spot interruption (the interruption queue's message drains the node first) is not "
                "covered: the fault scenarios run on dev, on node groups"
            ],
        )
    return result


# -- Secrets Manager unreachable ------------------------------------------------------------------------
def secret_store_endpoint(s: StackUnderTest) -> LoopbackProxy:
    """The Secrets Manager endpoint the real external-secrets operator reads through (cut, restored)."""
    endpoint = s.run.operators.secrets_endpoint if s.run.operators else None
    if endpoint is None:
        raise AssertionError(f"{s.run.stack_name}: the external-secrets operator does not run")
    return endpoint


def _ready_condition(obj: Mapping[str, Any] | None) -> dict:
    return next(
        (c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {}
    )


def secret_store_unreachable(s: StackUnderTest) -> ScenarioResult:
    """Secrets Manager unreachable while a value is rotated there: the synced Secret keeps its value, the
    ExternalSecret reports the error in its status, the workloads keep running; once the endpoint is back
    the next refresh syncs the rotated value."""
    with scenario(s, "secret store unreachable") as result:
        spec = next(x for x in s.run.config.get("aiplatform:secrets") or [] if x.get("valueFrom"))
        name, namespace = spec["name"], spec["namespace"]
        endpoint = secret_store_endpoint(s)
        before = s.api.get("Secret", name, namespace)
        pods_before = sorted(
            p["metadata"]["uid"]
            for p in s.api.list("Pod", namespace)
            if not p["metadata"].get("deletionTimestamp")
        )
        record_ = next(
            r
            for r in s.run.store.all("aws:secretsmanager/secret:Secret")
            if r["outputs"].get("tags", {}).get("kubernetes-secret") == name
        )
        external_secret = next(
            es
            for es in s.api.list("ExternalSecret", namespace)
            if ((es["spec"].get("target") or {}).get("name") or es["metadata"]["name"]) == name
        )
        es_name = external_secret["metadata"]["name"]
        times: dict[str, float] = {}
        endpoint.cut()
        try:
            start = time.monotonic()
            rotated = {k: f"rotated-during-outage-{k}-{int(time.time())}" for k in spec["keys"]}
            # A rotation in Secrets Manager (its own path is up: only the operator's is cut).
            s.run.aws_client("secretsmanager").put_secret_value(
                SecretId=record_["id"], SecretString=json.dumps(rotated)
            )
            # The operator reads again on its refresh or on a change; ask now, as the interval is long.
            s.api.merge_patch(
                "ExternalSecret",
                es_name,
                {"metadata": {"annotations": {"force-sync": f"outage-{int(time.time())}"}}},
                namespace,
            )
            failing = wait_for(
                lambda: (
                    (c := _ready_condition(s.api.get("ExternalSecret", es_name, namespace))).get("status")
                    == "False"
                    and c
                ),
                timeout=60,
                what=f"ExternalSecret {namespace}/{es_name} reporting the error",
            )
            times["error_reported_after"] = round(time.monotonic() - start, 1)
            time.sleep(5)  # the operator keeps retrying meanwhile
            during = s.api.get("Secret", name, namespace)
            events = [
                e["message"]
                for e in s.api.list("Event", namespace)
                if e["involvedObject"].get("name") == es_name and e.get("type") == "Warning"
            ]
            available = checks.deployments_available(s.api)
        finally:
            endpoint.restore()
        start = time.monotonic()
        # As the README says: the next refresh syncs; force one now.
        s.api.merge_patch(
            "ExternalSecret",
            es_name,
            {"metadata": {"annotations": {"force-sync": str(int(time.time()))}}},
            namespace,
        )
        key = spec["keys"][0]

        def synced() -> bool:
            data = (s.api.get("Secret", name, namespace) or {}).get("data") or {}
            return base64.b64decode(data.get(key, "")).decode() == rotated[key]

        with contextlib.suppress(TimeoutError):
            wait_for(synced, timeout=60, what=f"the rotated value in {namespace}/{name}")
        times["synced_after_restore"] = round(time.monotonic() - start, 1)
        pods_after = sorted(
            p["metadata"]["uid"]
            for p in s.api.list("Pod", namespace)
            if not p["metadata"].get("deletionTimestamp")
        )
        recovered = _ready_condition(s.api.get("ExternalSecret", es_name, namespace))
        result.checks += [
            Check(
                "the synced Secret kept its value during the outage",
                during is not None and during.get("data") == before.get("data"),
                f"resourceVersion {before['metadata']['resourceVersion']} -> {during['metadata']['resourceVersion'] if during else 'gone'}",
            ),
            Check(
                "the ExternalSecret reports the error in its status",
                failing.get("reason") == "SecretSyncedError",
                f"Ready={failing.get('status')} {failing.get('reason')}: {failing.get('message')}",
                {"condition": failing, "events": events[-3:]},
            ),
            Check(
                f"workloads kept running: {available.name}",
                available.passed and pods_after == pods_before,
                f"{available.summary}; pods unchanged: {pods_after == pods_before}",
            ),
            Check(
                "once back, the next refresh syncs the rotated value",
                synced() and recovered.get("status") == "True",
                f"synced in {times['synced_after_restore']} s; Ready={recovered.get('status')} {recovered.get('reason')}",
            ),
        ]
        counts = judge_ledger(s, result)
        record(
            result,
            f"{endpoint.description} unreachable (connection refused) while {namespace}/{name}'s value was rotated",
            [f"Secret {namespace}/{name} (its last synced value)", "every Deployment, its pods unchanged"],
            counts,
            times,
        )
    return result


# -- AWS throttling, then timing out ---------------------------------------------------------------------
def _failed_up(s: StackUnderTest, result: ScenarioResult, name: str) -> str | None:
    s.run.log(f"==== {result.stack} {result.name}: {name}")
    start = time.monotonic()
    try:
        s.stack.up(color="never", on_output=s.run.log)
    except auto.CommandError as exc:
        result.operations[name] = {"seconds": round(time.monotonic() - start, 1), "failed": True}
        return str(exc)
    result.operations[name] = {"seconds": round(time.monotonic() - start, 1), "failed": False}
    return None


NEW_SECRET = {
    "name": "model-registry-token",
    "description": "Token of the model registry",
    "keys": ["token"],
    "refreshInterval": "1h",
}


def aws_refusing_calls(s: StackUnderTest) -> ScenarioResult:
    """A new secret (a Secrets Manager secret, the operator's IAM policy, an ExternalSecret) deployed while
    AWS refuses: Secrets Manager throttling, then IAM timing out. Each ``up`` fails naming the resource and
    the AWS error; once AWS answers, a rerun converges; nothing lost, orphaned or duplicated."""
    with scenario(s, "AWS throttling, then timing out") as result:
        root = s.run.store.root
        secrets_config = list(s.run.config.get("aiplatform:secrets") or [])
        namespace = secrets_config[0]["namespace"]
        added = {**NEW_SECRET, "namespace": namespace}
        s.stack.set_config("aiplatform:secrets", auto.ConfigValue(json.dumps([*secrets_config, added])))
        try:
            cloud_faults.set_fault(root, "secretsmanager", "throttle")
            throttled = _failed_up(s, result, "up, Secrets Manager throttling")
            cloud_faults.clear_faults(root)
            cloud_faults.set_fault(root, "iam", "timeout")
            timed_out = _failed_up(s, result, "up, IAM timing out")
        finally:
            cloud_faults.clear_faults(root)
        refused = s.run.store.events("aws-call-refused")
        result.checks += [
            Check(
                "throttled: up fails naming the Secrets Manager secret and the throttling",
                throttled is not None
                and "aiplatform-secrets-model-registry-token" in throttled
                and "ThrottlingException: Rate exceeded" in throttled,
                " | ".join(engine_errors(throttled or "")[-1:]) or "up succeeded",
            ),
            Check(
                "timing out: up fails naming the IAM policy and the timeout",
                timed_out is not None
                and "aiplatform-secrets-controller-policy" in timed_out
                and "i/o timeout" in timed_out,
                " | ".join(engine_errors(timed_out or "")[-1:]) or "up succeeded",
            ),
        ]
        converge(s, result, "rerun after recovery")
        es = next(
            (
                x
                for x in s.api.list("ExternalSecret", namespace)
                if (x["spec"].get("target") or {}).get("name") == added["name"]
            ),
            None,
        )
        result.checks.append(
            Check("the new ExternalSecret exists", es is not None, f"{namespace}/{added['name']}")
        )
        counts = judge_ledger(s, result)
        record(
            result,
            f"the simulated AWS throttling Secrets Manager ({cloud_faults.MAX_ATTEMPTS} attempts per call), then "
            f"IAM timing out ({cloud_faults.TIMEOUT_SECONDS:.0f} s per call), during ups adding a secret",
            [
                "every resource not behind the refused calls, updated by the failed ups",
                "the rerun: the secret, its policy and its ExternalSecret",
            ],
            counts,
            {k: v["seconds"] for k, v in result.operations.items()},
            engine_errors(throttled or "")[-1:]
            + engine_errors(timed_out or "")[-1:]
            + [
                f"{len(refused)} refused AWS calls: "
                + ", ".join(sorted({f"{e['service']} {e['operation']} ({e['fault']})" for e in refused}))
            ],
        )
    return result


# -- the chart repository down ------------------------------------------------------------------------
def up_as_the_cli_runs_it(s: StackUnderTest, **kwargs: Any) -> Any:
    """``pulumi up`` as typed: a preview, then the update only if the preview succeeded. (The Automation
    API's ``up`` skips the preview, as ``pulumi up --skip-preview`` does.)"""
    s.stack.preview(**kwargs)
    return s.stack.up(**kwargs)


def _fingerprint(s: StackUnderTest) -> dict[str, Any]:
    """What a failed operation must leave as it was: the state, the engine's objects (by resourceVersion)
    and the simulated cloud's records."""
    return {
        "state": json.dumps(s.state(), sort_keys=True),
        "objects": {k: v["metadata"]["resourceVersion"] for k, v in cluster_objects(s.api).items()},
        "aws": {f"{r['type']} {r['id']}": json.dumps(r, sort_keys=True) for r in s.run.store.all()},
    }


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    changed = ["the state"] if before["state"] != after["state"] else []
    for what in ("objects", "aws"):
        keys = set(before[what]) | set(after[what])
        changed += sorted(f"{what}: {k}" for k in keys if before[what].get(k) != after[what].get(k))
    return changed


def chart_repository_down(s: StackUnderTest) -> ScenarioResult:
    """With the chart repository stopped and changes pending, ``preview`` fails naming the chart and the
    repository, and so does ``up``, before it changes anything: the state, the cluster and the cloud as
    they were. Back, the same ``up`` converges."""
    with scenario(s, "chart repository down") as result:
        run = s.run
        _roll_images(s, _model_servers(s, 1))
        retention = int((run.config.get("aiplatform:cluster") or {}).get("logRetentionDays") or 14)
        set_config(s, "aiplatform:cluster.logRetentionDays", str(30 if retention != 30 else 60))
        url, folder = run.charts.url, run.charts.folder
        before = _fingerprint(s)
        outputs: dict[str, str] = {}
        run.charts.stop()
        try:
            for what, op in (
                ("preview", s.stack.preview),
                ("up", lambda **kw: up_as_the_cli_runs_it(s, **kw)),
            ):
                run.log(f"==== {result.stack} {result.name}: {what}, repository down")
                try:
                    op(color="never", on_output=run.log)
                    outputs[what] = ""
                except auto.CommandError as exc:
                    outputs[what] = str(exc)
            changed = _changed(before, _fingerprint(s))
            # The same up without its preview (--skip-preview, or the Automation API's up), for the record.
            run.log(f"==== {result.stack} {result.name}: up --skip-preview, repository down")
            try:
                s.stack.up(color="never", on_output=run.log)
                outputs["up --skip-preview"] = ""
            except auto.CommandError as exc:
                outputs["up --skip-preview"] = str(exc)
            skipped = _changed(before, _fingerprint(s))
        finally:
            run.charts = ChartRepository(folder, port=int(url.rsplit(":", 1)[1])).__enter__()
        charts = sorted(run.charts_served)
        for what in ("preview", "up"):
            errors = engine_errors(outputs[what])
            named = sorted({c for c in charts for line in errors if c in line})
            result.checks.append(
                Check(
                    f"{what} fails naming the chart and the repository",
                    bool(errors) and any(url in line for line in errors) and bool(named),
                    f"charts named: {named}; repository named: {any(url in line for line in errors)}",
                    {"errors": errors},
                )
            )
        result.checks.append(
            Check(
                "nothing half-applied: the state, the cluster and the cloud as they were",
                not changed,
                f"{len(changed)} changed",
                {"changed": changed},
            )
        )
        result.operations["up --skip-preview"] = {
            "failed": bool(outputs["up --skip-preview"]),
            "applied_before_failing": skipped,
        }
        converge(s, result, "up once the repository is back")
        counts = judge_ledger(s, result)
        record(
            result,
            f"the chart repository {url} stopped, with a model rollout and a log retention change pending",
            ["the state, every object and every AWS resource unchanged by the failed preview and up"]
            if not changed
            else [],
            counts,
            {k: v["seconds"] for k, v in result.operations.items() if isinstance(v, dict) and "seconds" in v},
            engine_errors(outputs["up"], resources_only=True)[-1:]
            + [
                f"up --skip-preview (the Automation API's up) failed only after applying "
                f"{len(skipped)} changes: {skipped}"
            ],
        )
    return result


FAULT_SCENARIOS = (
    engine_killed_first_deploy,
    engine_killed_rollout,
    concurrent_updates,
    apiserver_restart_during_up,
    gpu_node_lost,
    secret_store_unreachable,
    aws_refusing_calls,
    chart_repository_down,
)
