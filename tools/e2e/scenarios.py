"""The scenarios: what the real engine must do with the program, each judged on what the API server and
the stack's state hold. They see only ``StackUnderTest`` (a stack, a cluster API, the simulated cloud's
view of node groups), so they run unchanged against a real cluster and real AWS.

A stack's scenarios run in order: ``deploy`` first, ``teardown`` last; the ones between change the
deployed stack and check what the engine and the cluster did.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from aiplatform.catalog.registry import ADD_ONS, BY_CHART
from aiplatform.compute.instance_types import lookup
from tools.e2e import checks
from tools.e2e.checks import Check
from tools.e2e.harness import SECRET_MARKER, E2eRun, offline_plan, secret_config
from tools.e2e.kubeapi import wait_for
from tools.e2e.operators import checks as operator_checks
from tools.e2e.provider_fields import provider_schema, unknown_fields
from tools.e2e.strict_dry_run import custom_resources_accepted
from tools.e2e.toolchain import cache_root

NODE_AGENTS = ("nvidia-device-plugin",)
DRA_NODE_AGENTS = ("dra-driver-nvidia-gpu",)  # GPUs by DRA: the driver's kubelet plugin instead


def node_agents(run: E2eRun) -> tuple[str, ...]:
    """The GPU node agents the stack installs: the DRA driver's, or the device plugin."""
    return DRA_NODE_AGENTS if DRA_NODE_AGENTS[0] in run.charts_served else NODE_AGENTS


INSTANCE_TYPE = "node.kubernetes.io/instance-type"


@dataclass
class ScenarioResult:
    name: str
    stack: str
    passed: bool = False
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    operations: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # A fault scenario's record: what was injected, what survived, what was lost (tools/e2e/faults.py).
    fault: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stack": self.stack,
            "passed": self.passed,
            "seconds": self.seconds,
            "operations": self.operations,
            "checks": [c.as_dict() for c in self.checks],
            "error": self.error,
            **({"fault": self.fault} if self.fault is not None else {}),
        }

    def verdict(self) -> str:
        failed = [f"{c.name}: {c.summary}" for c in self.checks if not c.passed]
        why = self.error or ("; ".join(failed) if failed else "")
        status = "PASS" if self.passed else "FAIL"
        return f"{status}  {self.stack:<10} {self.name:<34} {self.seconds:7.1f} s{'  ' + why if why else ''}"


@dataclass
class StackUnderTest:
    run: E2eRun
    baseline: set[str] = field(default_factory=set)
    deployed: bool = False
    gpu_groups: list[str] = field(default_factory=list)
    retained_volumes: list[str] = field(default_factory=list)  # volumes kept by their Retain policy

    @property
    def api(self):
        return self.run.cluster.api

    @property
    def stack(self) -> auto.Stack:
        return self.run.stack

    def state(self) -> list[dict[str, Any]]:
        return self.stack.export_stack().deployment.get("resources", [])


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _changes(summary: Any) -> dict[str, int]:
    changes = getattr(summary, "resource_changes", None) or getattr(summary, "change_summary", None) or {}
    return {str(getattr(k, "value", k)): int(v) for k, v in changes.items()}


def engine_summary(name: str, outcome: Any, op: str, count: int | None = None) -> Check:
    """What the engine reports of an operation: an update's ``result`` is "succeeded" (a preview reports
    none), and every resource change it counts is ``op``: ``count`` of them, or at least one."""
    summary = getattr(outcome, "summary", None)
    succeeded = summary is None or summary.result == "succeeded"
    changes = _changes(summary or outcome)
    counted = changes.get(op, 0)
    passed = succeeded and set(changes) == {op} and (counted == count if count is not None else counted > 0)
    result = "" if summary is None else f"{summary.result}, "
    return Check(name, passed, f"{result}changes {changes}", {"changes": changes, "expected": {op: count}})


def operation(
    s: StackUnderTest, result: ScenarioResult, name: str, op: Callable[..., Any], **kwargs: Any
) -> Any:
    """One engine operation, timed and logged, recorded in ``result.operations[name]``."""
    run = s.run
    run.log(f"==== {result.stack} {result.name}: {name}")
    start = time.monotonic()
    outcome = op(color="never", on_output=run.log, **kwargs)
    seconds = round(time.monotonic() - start, 1)
    summary = getattr(outcome, "summary", None) or outcome
    result.operations[name] = {"seconds": seconds, "changes": _changes(summary)}
    run.log(f"==== {name}: {seconds} s, {result.operations[name]['changes']}")
    return outcome


@contextmanager
def scenario(s: StackUnderTest, name: str) -> Iterator[ScenarioResult]:
    """Times a scenario and turns an engine failure or an exception into a failed check."""
    result = ScenarioResult(name, s.run.stack_name)
    start = time.monotonic()
    try:
        yield result
    except auto.CommandError as exc:
        result.checks.append(
            Check("engine operation", False, "an engine operation failed", {"output": _tail(str(exc))})
        )
    except Exception as exc:  # noqa: BLE001 - recorded in the report, the next scenario still runs
        result.error = f"{type(exc).__name__}: {exc}"
        result.checks.append(
            Check("scenario ran", False, result.error, {"traceback": traceback.format_exc()})
        )
    result.seconds = round(time.monotonic() - start, 1)
    result.passed = bool(result.checks) and all(c.passed for c in result.checks) and result.error is None


def gpu_groups(s: StackUnderTest) -> list[str]:
    """The node groups whose instances have GPUs, as the simulated cloud holds them, and the Karpenter
    NodePools whose instance types all have GPUs, as the API server holds them."""
    groups = []
    for record in s.run.store.all("aws:eks/nodeGroup:NodeGroup"):
        types = record["outputs"].get("instanceTypes") or []
        instance = lookup(types[0]) if types else None
        if instance and instance.gpus:
            groups.append(record["outputs"]["nodeGroupName"])
    if "karpenter" in s.run.charts_served:
        for pool in s.api.list("NodePool"):
            requirements = pool["spec"]["template"]["spec"].get("requirements") or []
            types = [v for r in requirements if r["key"] == INSTANCE_TYPE for v in r.get("values") or []]
            if types and all(getattr(lookup(t), "gpus", 0) for t in types):
                groups.append(pool["metadata"]["name"])
    return sorted(groups)


def eks_versions(s: StackUnderTest) -> dict[str, str | None]:
    """Each EKS cluster's ``version`` output, as the simulated cloud holds it, by cluster name."""
    return {
        record["outputs"].get("name", record.get("id", "?")): record["outputs"].get("version")
        for record in s.run.store.all("aws:eks/cluster:Cluster")
    }


def provider_knows_the_fields(s: StackUnderTest) -> Check:
    """Every field the program sets on a Kubernetes resource is in the running provider's schema."""
    run = s.run
    plugin = run.binaries["pulumi-resource-kubernetes"]
    cache = cache_root() / "schemas" / f"kubernetes-{plugin.version}.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    schema = provider_schema(
        str(run.run_dir / "bin" / "pulumi"), plugin.path, cache, {**os.environ, **run.env()}
    )
    planned = json.loads((run.run_dir / "plan" / "resources.json").read_text())
    unknown = unknown_fields(planned, schema)
    return Check(
        "the provider knows every field the program sets",
        not unknown,
        f"provider {plugin.version}: {sum(len(v) for v in unknown.values())} unknown fields",
        {"provider": plugin.version, "module": plugin.module, "unknown": unknown},
    )


def helm_kept_crds(run: E2eRun) -> list[str]:
    """CRDs the charts install from a ``crds/`` folder (which Helm never deletes)."""
    kept = []
    for chart in run.charts_served:
        addon = BY_CHART.get(chart)
        if addon is not None and not addon.crds_in_templates:
            kept += [f"{crd.plural}.{crd.group}" for crd in addon.crds]
    return sorted(kept)


# -- the scenarios -----------------------------------------------------------------------------------
def deploy(s: StackUnderTest) -> ScenarioResult:
    """preview plans creates only and up succeeds creating exactly those; the API server and the EKS
    cluster report the stack's Kubernetes minor; every Deployment available;
    every pod scheduled where it belongs; every object of the state (custom resources included) held by
    the API server; every custom resource accepted by its kind's schema under strict field validation."""
    s.baseline = checks.snapshot(s.api)
    with scenario(s, "deploy") as result:
        preview = operation(s, result, "preview", s.stack.preview)
        result.checks.append(
            engine_summary("preview plans to create the stack, nothing else", preview, "create")
        )
        up = operation(s, result, "up", s.stack.up)
        s.deployed = True
        planned = _changes(preview).get("create", 0)
        result.checks.append(
            engine_summary("up succeeded, creating what the preview planned", up, "create", planned)
        )
        s.gpu_groups = gpu_groups(s)
        s.retained_volumes = [
            f"v1 PersistentVolume {pv['metadata']['name']}"
            for pv in s.api.list("PersistentVolume")
            if pv["spec"].get("persistentVolumeReclaimPolicy") == "Retain"
        ]
        autoscaler = s.run.controllers.autoscaler
        result.checks.append(provider_knows_the_fields(s))
        result.checks += [
            checks.control_plane_version(
                s.run.cluster.server_version(), eks_versions(s), s.run.kubernetes_minor
            ),
            checks.autoscaled_at_minimum(s.api),
            checks.deployments_available(s.api),
            checks.pods_scheduled(s.api, s.gpu_groups),
            checks.gpu_nodes_run_node_agents(s.api, s.gpu_groups, node_agents(s.run)),
            checks.state_objects_exist(s.api, s.state()),
            custom_resources_accepted(s.api, s.state()),
        ]
        if "cluster-autoscaler" in s.run.charts_served:
            result.checks.append(
                Check(
                    "scale-up from zero served the GPU pods",
                    not autoscaler.waiting,
                    f"{len(autoscaler.scale_ups)} scale-ups; {len(autoscaler.waiting)} pods no group could take",
                    {
                        "served": dict(autoscaler.served),
                        "waiting": dict(autoscaler.waiting),
                        "scale_ups": autoscaler.scale_ups,
                    },
                )
            )
        if "karpenter" in s.run.charts_served:
            result.checks += operator_checks.karpenter_checks(s.api, s.run.store)
        result.checks.append(operator_checks.listeners_check(s.run.operators.running.values()))
    return result


def destroy_order(state: list[dict[str, Any]], steps: StepLog) -> list[str]:
    """Each Ingress or custom resource whose delete did not finish before its chart's release began to go."""
    chart_of = {
        r["urn"]: (r.get("inputs") or {}).get("chart")
        for r in state
        if r["type"] == "kubernetes:helm.sh/v3:Release"
    }
    release_delete = {
        chart_of[urn]: t for op, _typ, urn, t in steps.steps if op == "delete" and urn in chart_of
    }
    done = {urn: t for urn, t in steps.finished.items()}
    wrong = []
    # An Ingress or custom resource must go before the release of each chart that owns its kind.
    for r in state:
        for chart in (addon.chart for addon in ADD_ONS if r["type"] in addon.owns):
            if chart in release_delete and done.get(r["urn"], float("inf")) > release_delete[chart]:
                wrong.append(f"{_urn_name(r['urn'])} was still there when the {chart} release began to go")
    return wrong


def teardown(s: StackUnderTest) -> ScenarioResult:
    """destroy removes Ingresses before their controller and custom resources before the release of their
    CRDs, leaves no namespace and nothing of the platform behind, and an empty state. A stack with protected
    resources refuses until they are unprotected, as a user would do it."""
    with scenario(s, "teardown") as result:
        state = s.state()
        protected = [r["urn"] for r in state if r.get("protect")]
        if protected:
            # As a user types it: `pulumi destroy` previews first, and the preview refuses.
            attempt = s.run.pulumi("destroy", "--yes")
            refused = attempt.returncode != 0 and "protected" in attempt.stdout + attempt.stderr
            untouched = len(s.state()) == len(state)
            result.checks.append(
                Check(
                    "destroy refuses while resources are protected, deleting nothing",
                    refused and untouched,
                    f"{len(protected)} protected resources; destroy {'refused' if refused else 'did not refuse'}, "
                    f"{len(state) - len(s.state())} resources deleted",
                    {
                        "protected": [_urn_name(u) for u in protected],
                        "output": _tail(attempt.stdout + attempt.stderr, 8),
                    },
                )
            )
            unprotect = s.run.pulumi("state", "unprotect", "--all", "--yes")
            result.checks.append(
                Check("unprotect", unprotect.returncode == 0, _tail(unprotect.stderr, 5) or "unprotected")
            )
        steps = StepLog()
        start = time.monotonic()
        destroyed = operation(s, result, "destroy", s.stack.destroy, on_event=steps)
        s.deployed = False
        result.operations["destroy"]["wall_seconds"] = round(time.monotonic() - start, 1)
        result.checks.append(engine_summary("destroy succeeded, deleting only", destroyed, "delete"))
        wrong = destroy_order(state, steps)
        result.checks.append(
            Check(
                "Ingresses and custom resources go before their controllers",
                not wrong,
                f"{len(wrong)} out of order",
                {"out_of_order": wrong},
            )
        )
        left_state = s.state()
        result.checks.append(
            Check(
                "state empty",
                not left_state,
                f"{len(left_state)} resources left in the state",
                {"left": [r["urn"] for r in left_state]},
            )
        )
        after = checks.snapshot(s.api)
        namespaces = sorted(x for x in after - s.baseline if " Namespace " in x)
        result.checks.append(
            Check(
                "no namespace left",
                not namespaces,
                f"{len(namespaces)} namespaces left",
                {"left": namespaces},
            )
        )
        result.checks.append(
            checks.nothing_left(s.baseline, after, helm_kept_crds(s.run), s.retained_volumes)
        )
    return result


# -- day two -------------------------------------------------------------------------------------------
@dataclass
class StepLog:
    """The engine's resource steps of one operation, from its event stream: (op, type, urn) in order."""

    steps: list[tuple[str, str, str, float]] = field(default_factory=list)
    finished: dict[str, float] = field(default_factory=dict)  # urn -> when its step completed
    diffs: dict[str, list[str]] = field(default_factory=dict)  # urn -> the properties that differ

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None and pre.metadata is not None:
            meta = pre.metadata
            op = meta.op.value if hasattr(meta.op, "value") else str(meta.op)
            self.steps.append((op, meta.type, meta.urn, time.monotonic()))
            if op not in ("same", "read", "refresh"):
                self.diffs[meta.urn] = sorted(set(meta.diffs or []) | set(meta.detailed_diff or {}))
        done = getattr(event, "res_outputs_event", None)
        if done is not None and done.metadata is not None:
            self.finished[done.metadata.urn] = time.monotonic()

    def changed(self) -> list[tuple[str, str, str]]:
        """The steps that change something (not ``same``, ``read`` or ``refresh``)."""
        return [(op, typ, urn) for op, typ, urn, _ in self.steps if op not in ("same", "read", "refresh")]

    def changed_with_diffs(self) -> dict[str, dict[str, Any]]:
        """Each changed resource by name: its operations and the properties that differ."""
        out: dict[str, dict[str, Any]] = {}
        for op, typ, urn in self.changed():
            entry = out.setdefault(_urn_name(urn), {"type": typ, "ops": [], "diffs": self.diffs.get(urn, [])})
            entry["ops"].append(op)
        return out

    def started(self, op: str, type_prefix: str) -> list[float]:
        return [t for o, typ, _, t in self.steps if o == op and typ.startswith(type_prefix)]


def _urn_name(urn: str) -> str:
    return urn.split("::")[-1]


def no_change(
    s: StackUnderTest,
    result: ScenarioResult,
    op: str,
    run: Callable[..., Any],
    check: str,
    verb: str = "changed",
    **kwargs: Any,
) -> None:
    """Run ``op`` (an up or a preview) and check that it changes nothing, naming what it would change."""
    steps = StepLog()
    operation(s, result, op, run, on_event=steps, **kwargs)
    changed = steps.changed()
    result.checks.append(
        Check(check, not changed, f"{len(changed)} resources {verb}", {"changed": steps.changed_with_diffs()})
    )


def no_perpetual_diff(s: StackUnderTest) -> ScenarioResult:
    """A second up with nothing changed changes nothing; neither does a preview after a refresh."""
    with scenario(s, "no perpetual diff") as result:
        no_change(s, result, "no-op up", s.stack.up, "second up changes nothing")
        operation(s, result, "refresh", s.stack.refresh)
        no_change(
            s,
            result,
            "preview after refresh",
            s.stack.preview,
            "preview after refresh shows no change",
            verb="would change",
            diff=True,
        )
    return result


class EndpointSampler:
    """Samples a Service's ready endpoints (EndpointSlices) in the background during an operation."""

    def __init__(self, api: Any, namespace: str, service: str, interval: float = 0.25):
        self.api, self.namespace, self.service, self.interval = api, namespace, service, interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ready(self) -> int:
        slices = self.api.list(
            "EndpointSlice", self.namespace, selector=f"kubernetes.io/service-name={self.service}"
        )
        return sum(
            1
            for sl in slices
            for ep in sl.get("endpoints") or []
            if (ep.get("conditions") or {}).get("ready") is not False
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a missed sample is not a missing endpoint
                self.samples.append(self.ready())
            self._stop.wait(self.interval)

    def __enter__(self) -> EndpointSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _workload(s: StackUnderTest, kind: str, predicate: Callable[[dict], bool]) -> tuple[int, dict]:
    for index, workload in enumerate((s.run.config.get("aiplatform:workloads") or {}).get(kind) or []):
        if predicate(workload):
            return index, workload
    raise LookupError(f"the stack has no {kind} workload for this scenario")


def _deployment_pods(s: StackUnderTest, namespace: str, name: str) -> list[dict]:
    deployment = s.api.get("Deployment", name, namespace)
    labels = deployment["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    return [
        p
        for p in s.api.list("Pod", namespace, selector=selector)
        if not p["metadata"].get("deletionTimestamp")
    ]


def _only(changed: list[tuple[str, str, str]], expected: dict[str, set[str]]) -> tuple[bool, dict]:
    """Whether the changed steps are exactly ``{resource name: {ops}}``."""
    seen: dict[str, set[str]] = {}
    for op, _typ, urn in changed:
        seen.setdefault(_urn_name(urn), set()).add(op)
    return seen == expected, {k: sorted(v) for k, v in seen.items()}


def next_image(image: str) -> str:
    """The next release of an image: a new tag, and a new digest where the image is pinned by one."""
    name, _, digest = image.partition("@")
    repository, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "latest")
    new_name = f"{repository}:{tag}-next"
    if not digest:
        return new_name
    return f"{new_name}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def set_config(s: StackUnderTest, key: str, value: str) -> None:
    """Change one config value of the stack, as ``pulumi config set --path`` does."""
    s.stack.set_config(key, auto.ConfigValue(value), path=True)


def model_rollout(s: StackUnderTest) -> ScenarioResult:
    """A new image for one model server updates exactly its Deployment, in place; the rollout completes
    with maxUnavailable 0 and the Service keeps ready endpoints throughout."""
    with scenario(s, "model rollout") as result:
        index, workload = _workload(s, "inference", lambda w: True)
        name, namespace = workload["name"], workload["namespace"]
        new_image = next_image(workload["image"])
        set_config(s, f"aiplatform:workloads.inference[{index}].image", new_image)
        steps = StepLog()
        with EndpointSampler(s.api, namespace, name) as sampler:
            operation(s, result, "rollout up", s.stack.up, on_event=steps)
        exact, seen = _only(steps.changed(), {f"{name}-deployment": {"update"}})
        deployment = s.api.get("Deployment", name, namespace)
        strategy = deployment["spec"]["strategy"]["rollingUpdate"]
        images = {
            c["image"]
            for p in _deployment_pods(s, namespace, name)
            for c in p["spec"]["containers"]
            if c["name"] == "server"
        }
        status = deployment.get("status") or {}
        result.checks += [
            Check("only the Deployment changed, in place", exact, f"changed: {seen}", {"changed": seen}),
            Check(
                "maxUnavailable is 0", str(strategy.get("maxUnavailable")) == "0", f"rollingUpdate {strategy}"
            ),
            Check(
                "rollout complete on the new image",
                images == {new_image}
                and status.get("updatedReplicas")
                == status.get("replicas")
                == status.get("availableReplicas"),
                f"pods run {sorted(images)}; {status.get('updatedReplicas')}/{status.get('replicas')} updated",
            ),
            Check(
                "the Service kept endpoints throughout",
                bool(sampler.samples) and min(sampler.samples) > 0,
                f"{len(sampler.samples)} samples, fewest ready endpoints {min(sampler.samples, default=0)}",
                {"samples": sampler.samples},
            ),
        ]
    return result


def config_rolls_pods(s: StackUnderTest) -> ScenarioResult:
    """A changed value in a workload's ConfigMap changes the ConfigMap and rolls that Deployment, and
    nothing else."""
    with scenario(s, "config change rolls the pods") as result:
        index, workload = _workload(s, "inference", lambda w: bool((w.get("config") or {}).get("data")))
        name, namespace = workload["name"], workload["namespace"]
        key = sorted(workload["config"]["data"])[0]
        value = f"{workload['config']['data'][key]}-changed"
        set_config(s, f'aiplatform:workloads.inference[{index}].config.data["{key}"]', value)
        before = {p["metadata"]["name"] for p in _deployment_pods(s, namespace, name)}
        steps = StepLog()
        operation(s, result, "config up", s.stack.up, on_event=steps)
        seen: dict[str, set[str]] = {}
        for op, typ, urn in steps.changed():
            seen.setdefault(f"{typ.split(':')[-1]} {_urn_name(urn)}", set()).add(op)
        kinds = {k.split()[0] for k in seen}
        after = {p["metadata"]["name"] for p in _deployment_pods(s, namespace, name)}
        deployment_ops = {op for k, ops in seen.items() if k.startswith("Deployment") for op in ops}
        result.checks += [
            Check(
                "only the ConfigMap and its Deployment changed",
                kinds == {"ConfigMap", "Deployment"} and deployment_ops == {"update"},
                f"changed: { {k: sorted(v) for k, v in seen.items()} }",
            ),
            Check(
                "the pods rolled",
                bool(after) and not (after & before),
                f"{len(before)} pods before, {len(after)} new after",
            ),
        ]
    return result


def secret_rotation(s: StackUnderTest) -> ScenarioResult:
    """The external-secrets operator synced the Secret, owned by its ExternalSecret, reading Secrets
    Manager as the stack's identity mode lets it (its role, through IRSA or Pod Identity) and only what
    its role may read; a value rotated in Secrets Manager reaches the Secret without a deploy, and
    neither up nor a new seed value in config changes the stack."""
    with scenario(s, "secret rotation without a deploy") as result:
        spec = next(x for x in s.run.config.get("aiplatform:secrets") or [] if x.get("valueFrom"))
        name, namespace = spec["name"], spec["namespace"]
        key = spec["keys"][0]

        def held() -> str:
            data = (s.api.get("Secret", name, namespace) or {}).get("data") or {}
            return base64.b64decode(data.get(key, "")).decode()

        with contextlib.suppress(TimeoutError):  # judged on what the API server holds below
            wait_for(lambda: s.api.get("Secret", name, namespace), timeout=60, what=f"{namespace}/{name}")
        secret = s.api.get("Secret", name, namespace)
        owners = (secret or {}).get("metadata", {}).get("ownerReferences") or []
        seeded = held()
        result.checks.append(
            Check(
                "the operator synced the Secret, owned by its ExternalSecret",
                any(o["kind"] == "ExternalSecret" and o.get("controller") for o in owners)
                and seeded.startswith(SECRET_MARKER),
                f"owners: {[(o['kind'], o['name']) for o in owners]}; "
                f"{'the seed value' if seeded.startswith(SECRET_MARKER) else 'not the seed value'}",
            )
        )
        record = next(
            r
            for r in s.run.store.all("aws:secretsmanager/secret:Secret")
            if r["outputs"].get("tags", {}).get("kubernetes-secret") == name
        )
        rotated = {k: f"rotated-{k}-{int(time.time())}" for k in spec["keys"]}
        # A rotation in Secrets Manager (the console, a rotation function): a new AWSCURRENT version.
        s.run.aws_client("secretsmanager").put_secret_value(
            SecretId=record["id"], SecretString=json.dumps(rotated)
        )
        # The operator re-reads at the ExternalSecret's refreshInterval (minutes to an hour in the stacks);
        # a new annotation makes it re-read now, as `kubectl annotate es <name> force-sync=$(date +%s)`.
        s.api.request(
            "PATCH",
            f"/apis/external-secrets.io/v1/namespaces/{namespace}/externalsecrets/{name}",
            {"metadata": {"annotations": {"force-sync": str(int(time.time()))}}},
            "application/merge-patch+json",
        )
        start = time.monotonic()
        with contextlib.suppress(TimeoutError):  # judged on the value read back below
            wait_for(
                lambda: held() == rotated[key], timeout=60, what=f"the rotated value in {namespace}/{name}"
            )
        reached = held() == rotated[key]
        result.checks.append(
            Check(
                "the rotated value reached the Secret",
                reached,
                f"synced by the operator {time.monotonic() - start:.1f} s after the rotation, without a deploy"
                if reached
                else f"{namespace}/{name} key {key}: not the rotated value after 60 s",
            )
        )
        result.checks += operator_checks.secret_reader_checks(s.run)
        steps = StepLog()
        operation(s, result, "up after rotation", s.stack.up, refresh=True, on_event=steps)
        result.checks.append(
            Check("up after the rotation changes nothing", not steps.changed(), f"changed: {steps.changed()}")
        )
        s.stack.set_config(
            f"aiplatform:{spec['valueFrom']}",
            auto.ConfigValue(
                json.dumps({k: f"{SECRET_MARKER}-reseeded-{k}" for k in spec["keys"]}), secret=True
            ),
        )
        steps = StepLog()
        operation(s, result, "up with a new seed", s.stack.up, on_event=steps)
        result.checks.append(
            Check(
                "a new seed value does not overwrite the rotation",
                not steps.changed() and held() == rotated[key],
                f"changed: {steps.changed()}; the Secret holds {'the rotated' if held() == rotated[key] else 'another'} value",
            )
        )
    return result


def secrets_in_state(s: StackUnderTest) -> ScenarioResult:
    """The exported state holds the recognisable secret values only encrypted."""
    with scenario(s, "secrets only encrypted in state") as result:
        # As a user exports it: `pulumi stack export`, without --show-secrets.
        export = s.run.pulumi("stack", "export")
        if export.returncode != 0:
            raise RuntimeError(f"pulumi stack export failed: {_tail(export.stderr, 5)}")
        exported = export.stdout
        plain = [v for v in s.run.secret_values.values() if v in exported]
        markers = exported.count(SECRET_MARKER)
        ciphertexts = exported.count('"ciphertext"')
        logs = s.run.log_path.read_text() if s.run.log_path.exists() else ""
        operator_logs = {
            path.name: path.read_text(errors="replace")
            for path in (s.run.run_dir / "logs").glob("*.log")
            if path.name in {f"{name}.log" for name in s.run.operators.running}
        }
        result.checks += [
            Check(
                "no secret value in the state",
                not plain and markers == 0,
                f"{markers} plain occurrences of the marker",
            ),
            Check(
                "the state holds them as ciphertext",
                ciphertexts > 0,
                f"{ciphertexts} encrypted values in the state",
            ),
            Check(
                "no secret value in the engine's output", SECRET_MARKER not in logs, "engine output checked"
            ),
            Check(
                "no secret value in the operators' logs",
                not any(SECRET_MARKER in text for text in operator_logs.values()),
                f"{', '.join(sorted(operator_logs)) or 'no operator'} checked",
            ),
        ]
    return result


def _offline_plan_problems(config_file: Path, stack: str, out: Path) -> tuple[int, list[str]]:
    """The offline plan's exit code and its problem lines for a stack file."""
    result = offline_plan(config_file, stack, out)
    return result.returncode, [
        line.strip() for line in result.stderr.splitlines() if line.strip().startswith("aiplatform:")
    ]


def hostile_stack(
    s: StackUnderTest, mutate: Callable[[dict], None], stack: str = "hostile"
) -> ScenarioResult:
    """An invalid stack file fails preview under the real engine with the offline plan's problem line,
    before any resource is registered."""
    with scenario(s, "hostile stack file") as result:
        document = yaml.safe_load(s.run.config_file.read_text())
        mutate(document["config"])
        config_file = s.run.run_dir / f"Pulumi.{stack}.yaml"
        config_file.write_text(yaml.safe_dump(document, sort_keys=False))
        code, expected = _offline_plan_problems(config_file, stack, s.run.run_dir / f"plan-{stack}")
        result.checks.append(
            Check("the offline plan refuses it", code == 2 and bool(expected), f"exit {code}: {expected}")
        )
        hostile = s.run.new_stack(stack, config_file, secret_config(document["config"]))
        output: list[str] = []
        steps = StepLog()
        failed = False
        try:
            hostile.preview(color="never", on_output=output.append, on_event=steps)
        except auto.CommandError as exc:
            failed = True
            output.append(str(exc))
        text = "\n".join(output)
        registered = [urn for _op, typ, urn, _t in steps.steps if typ != "pulumi:pulumi:Stack"]
        result.checks += [
            Check("preview fails", failed, "preview failed" if failed else "preview succeeded"),
            Check(
                "with the offline plan's problem line",
                bool(expected) and all(line in text for line in expected),
                f"expected {expected}",
                {"engine_output": _tail(text, 15)},
            ),
            Check(
                "before any resource is registered",
                not registered,
                f"{len(registered)} resources registered",
                {"registered": registered},
            ),
        ]
        hostile.workspace.remove_stack(stack)
    return result


def _gpu_pod_spec(gpus: int, image: str) -> dict:
    restricted = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }
    return {
        "restartPolicy": "Never",
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "trainer",
                "image": image,
                "securityContext": restricted,
                "resources": {
                    "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": str(gpus)},
                    "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": str(gpus)},
                },
            }
        ],
    }


def quota_admission(s: StackUnderTest) -> ScenarioResult:
    """A training Job asking for more GPUs than its namespace's quota: the API server's quota admission
    refuses its pod with a message naming the quota; the config check refuses the same case in the stack
    file before any resource is registered."""
    with scenario(s, "GPU quota admission") as result:
        index, workload = _workload(s, "training", lambda w: bool(w.get("gpu")))
        namespace = workload["namespace"]
        quotas = s.api.list("ResourceQuota", namespace)
        limit = next(
            int(q["spec"]["hard"]["requests.nvidia.com/gpu"])
            for q in quotas
            if "requests.nvidia.com/gpu" in q["spec"]["hard"]
        )
        quota_name = next(
            q["metadata"]["name"] for q in quotas if "requests.nvidia.com/gpu" in q["spec"]["hard"]
        )
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "over-quota-sweep", "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": _gpu_pod_spec(limit + 1, workload["image"])}},
        }
        s.api.create("Job", job, namespace)
        try:

            def refusal() -> str | None:
                for event in s.api.list("Event", namespace):
                    if (
                        event["involvedObject"].get("name") == "over-quota-sweep"
                        and event.get("reason") == "FailedCreate"
                    ):
                        return event.get("message")
                return None

            message = wait_for(refusal, timeout=60, what="the Job controller's FailedCreate event")
        finally:
            s.api.request(
                "DELETE",
                f"/apis/batch/v1/namespaces/{namespace}/jobs/over-quota-sweep?propagationPolicy=Background",
            )
        result.checks.append(
            Check(
                "quota admission refuses the Job's pod, naming the quota",
                "exceeded quota" in message and quota_name in message and "nvidia.com/gpu" in message,
                message,
            )
        )

        def over_quota(config: dict) -> None:
            training = config["aiplatform:workloads"]["training"][index]
            training["parallelism"] = limit + 1
            training["completions"] = max(training.get("completions", 1), limit + 1)

        hostile = hostile_stack(s, over_quota, stack="over-quota")
        result.checks += [
            Check(f"config check: {c.name}", c.passed, c.summary, c.details) for c in hostile.checks
        ]
    return result


def invalid_stack_file(s: StackUnderTest) -> ScenarioResult:
    """A stack file with an inconsistent value fails under the real engine as the offline plan fails it."""

    def max_below_min(config: dict) -> None:
        workloads = config["aiplatform:workloads"]["inference"]
        autoscaled = next(w for w in workloads if w.get("autoscaling"))
        autoscaled["autoscaling"]["maxReplicas"] = autoscaled["autoscaling"]["minReplicas"] - 1

    result = hostile_stack(s, max_below_min)
    result.name = "invalid stack file"
    return result


STACK_SCENARIOS = (
    deploy,
    no_perpetual_diff,
    model_rollout,
    config_rolls_pods,
    secret_rotation,
    quota_admission,
    invalid_stack_file,
    secrets_in_state,
    teardown,
)
