"""How the real engine's cost grows with the platform: stacks of 10, 50 and 100 inference services (the
plan benchmark's generator, prod-based) against an engine floor of as many bare ConfigMaps, through the
same engine, provider and control plane, in the same run.

    python -m tools.e2e.scale --sizes 10 50 100     # the table, and build/e2e/scale.json
    python -m tools.e2e.scale --one 10               # (internal) one size in this process, JSON out

Each size runs in a child process with its own cluster, so the language side's peak memory is its own.
Per size: wall time of preview, first up, no-op up, rollout up (one service's image) and destroy, for
the program and for the floor; their ratio; and the peak memory of the engine (the ``pulumi`` CLI), the
language side (the program, run inline in the child) and the Kubernetes provider plugin.

Two engine settings shape the figures:

- The file backend rewrites the whole state after every step, so a first ``up`` of N resources costs
  O(N^2) in checkpoints alone (a backend that journals, like Pulumi Cloud's, writes a delta per step).
  The timings are taken with ``PULUMI_SKIP_CHECKPOINTS`` (the state written once, at the end). Up to
  ``CHECKPOINT_MAX_SERVICES`` services (every size with ``--checkpoints``), the floor's first ``up`` is
  timed again with checkpoints on: that cost on its own.
- The engine runs at most ``--parallel`` steps at once (``PULUMI_PARALLEL``), 4 per core by default:
  the figures use the default, as a plain ``pulumi up`` would; ``--parallel N`` measures another.

The second baseline is what a user would run instead: the same Kubernetes objects (the offline plan's
``manifests.yaml`` of the same stack) applied by ``kubectl apply --server-side`` and waited for with
``kubectl wait`` to the readiness the program waits for (``tools.e2e.kubectl_baseline``), on the same
cluster, in a fresh set of namespaces, while the program's stack is up (its node groups, add-on CRDs and
IngressClass are what the objects need). Its ``up`` is the apply and the waits, its ``destroy`` a
``kubectl delete --wait``. The generated stack's node groups get twice their size limit, so the
baseline's pods find room as the program's did (only the limit changes: no node runs for it).

The floor has nothing to wait for; the program's first ``up`` waits for the cluster to converge: each
inference service's Deployment for its rollout (pods on nodes the autoscaler adds), its Service for
its endpoints to settle (the provider waits 10 s after the last change) and its Ingress for a load
balancer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi import automation as auto

from aiplatform import k8s_objects
from tools.bench import MAX_GROUP_SIZE, TEMPLATE_WORKLOAD, bench_config
from tools.e2e.harness import OUT, PROJECT_ROOT, E2eRun
from tools.e2e.kubectl_baseline import Kubectl, KubectlError, measure_kubectl, ratios
from tools.e2e.scenarios import next_image
from tools.e2e.toolchain import ensure_all, ensure_kubectl

SIZES = (10, 50, 100)
OPERATIONS = ("preview", "up", "no-op up", "rollout up", "destroy")
KUBECTL_OPERATIONS = ("up", "destroy")  # the program's first up / destroy against kubectl's
CHECKPOINT_MAX_SERVICES = 50  # beyond, the checkpointed floor alone takes minutes (--checkpoints: all)
WITHOUT_CHECKPOINTS = {"PULUMI_SKIP_CHECKPOINTS": "true"}
WITH_CHECKPOINTS = {"PULUMI_SKIP_CHECKPOINTS": "false"}


def _vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class ProcessPeaks:
    """Peak resident memory (VmHWM) of the engine and the Kubernetes provider, sampled while they run."""

    WATCHED = {"engine": "/pulumi", "kubernetes provider": "pulumi-resource-kubernetes"}

    def __init__(self, interval: float = 0.5):
        self.peaks: dict[str, float] = {}
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            command = _command(int(entry.name))
            for role, suffix in self.WATCHED.items():
                if command.endswith(suffix):
                    peak = _vm_hwm_mib(int(entry.name))
                    if peak:
                        self.peaks[role] = round(max(self.peaks.get(role, 0.0), peak), 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> ProcessPeaks:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def floor_program(count: int):
    """As many bare ConfigMaps as the program has resources (the provider counts as one)."""

    def program() -> None:
        kubeconfig = pulumi.Config("floor").require_secret("kubeconfig")
        provider = k8s_objects.provider("floor", kubeconfig)  # configured as the program's are
        k8s.core.v1.Namespace(
            "floor-ns", metadata={"name": "floor"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        for i in range(count - 2):
            k8s.core.v1.ConfigMap(
                f"floor-{i}",
                metadata={"name": f"floor-{i}", "namespace": "floor"},
                data={"key": pulumi.Config("floor").get("value") or "v1" if i == 0 else f"value-{i}"},
                opts=pulumi.ResourceOptions(provider=provider),
            )

    return program


@contextlib.contextmanager
def timed(record: dict[str, float], name: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    record[name] = round(time.monotonic() - start, 1)


def _quiet(_line: str) -> None:
    pass


class StepTimeline:
    """When each resource's step started and ended (seconds from the first event), from engine events."""

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {}
        self._origin: float | None = None

    def __call__(self, event: auto.EngineEvent) -> None:
        now = time.monotonic()
        self._origin = now if self._origin is None else self._origin
        if event.resource_pre_event and not event.resource_pre_event.planning:
            self.steps[event.resource_pre_event.metadata.urn] = [round(now - self._origin, 1), -1.0]
        elif event.res_outputs_event and event.res_outputs_event.metadata.urn in self.steps:
            self.steps[event.res_outputs_event.metadata.urn][1] = round(now - self._origin, 1)


def step_summary(steps: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per resource type: how many steps, their median and longest duration, and when the first started
    and the last ended (seconds into the up)."""
    by_type: dict[str, list[list[float]]] = {}
    for urn, (start, end) in steps.items():
        if end >= 0:
            by_type.setdefault(urn.split("::")[-2].split("$")[-1], []).append([start, end])
    summary = {}
    for typ, spans in sorted(by_type.items()):
        durations = sorted(end - start for start, end in spans)
        summary[typ] = {
            "count": len(spans),
            "median_s": round(durations[len(durations) // 2], 1),
            "max_s": round(durations[-1], 1),
            "first_start_s": min(start for start, _ in spans),
            "last_end_s": max(end for _, end in spans),
        }
    return summary


def last_steps(steps: dict[str, list[float]], count: int = 3) -> list[dict[str, Any]]:
    """The steps that ended last (what set the up's end), latest last: name, type, start and end."""
    finished = sorted((end, start, urn) for urn, (start, end) in steps.items() if end >= 0)
    return [
        {
            "name": urn.split("::")[-1],
            "type": urn.split("::")[-2].split("$")[-1],
            "start_s": start,
            "end_s": end,
        }
        for end, start, urn in finished
        if not urn.split("::")[-2].split("$")[-1].startswith(("pulumi:pulumi:", "aiplatform:"))
    ][-count:]


def first_ups(
    run: E2eRun, stack: auto.Stack, times: dict[str, float], timeline: StepTimeline | None = None
) -> None:
    """Time the preview, the first up and a no-op up of ``stack`` (the up's steps into ``timeline``)."""
    with timed(times, "preview"):
        stack.preview(color="never", on_output=run.log)
    with timed(times, "up"):
        stack.up(color="never", on_output=run.log, on_event=timeline)
    with timed(times, "no-op up"):
        stack.up(color="never", on_output=run.log)


def scale_config(size: int) -> dict[str, Any]:
    """The bench's generated stack, each node group's size limit doubled (at most EKS's
    ``MAX_GROUP_SIZE``): room for the kubectl baseline's copies of the program's pods."""
    config = bench_config(size)
    groups = config.get("aiplatform:nodeGroups") or {}
    for group in [groups.get("system"), *(groups.get("gpu") or [])]:
        if group and "scaling" in group:
            group["scaling"]["maxSize"] = min(MAX_GROUP_SIZE, 2 * group["scaling"]["maxSize"])
    return config


def measure_baseline(run: E2eRun) -> dict[str, Any]:
    """The kubectl baseline on ``run``'s cluster, beside the program's stack (see the module's doc); a
    kubectl failure is recorded (``error``) and the program's figures are kept."""
    binary = ensure_kubectl(run.kubernetes_minor, log=run.log)
    kubectl = Kubectl(binary.path, run.cluster.kubeconfig_path("admin"), log=run.log)
    try:
        return measure_kubectl(kubectl, run.run_dir / "plan" / "manifests.yaml", run.run_dir / "kubectl")
    except KubectlError as exc:
        return {"error": str(exc)[-1000:]}


def measure_program(run: E2eRun) -> tuple[dict[str, float], int, dict[str, Any], dict[str, Any]]:
    """The program's operations, with the kubectl baseline run after its rollout, before its destroy;
    the first up's steps by resource type, and the steps that ended it."""
    stack, times, timeline = run.stack, {}, StepTimeline()
    first_ups(run, stack, times, timeline)
    (run.run_dir / "up-steps.json").write_text(json.dumps(timeline.steps, indent=1))
    template = next(
        w for w in run.config["aiplatform:workloads"]["inference"] if w["name"] == TEMPLATE_WORKLOAD
    )
    stack.set_config(
        "aiplatform:workloads.inference[0].image", auto.ConfigValue(next_image(template["image"])), path=True
    )
    with timed(times, "rollout up"):
        stack.up(color="never", on_output=run.log)
    resources = len(stack.export_stack().deployment.get("resources", []))
    kubectl = measure_baseline(run)
    run.pulumi("state", "unprotect", "--all", "--yes")
    with timed(times, "destroy"):
        stack.destroy(color="never", on_output=run.log)
    return (
        times,
        resources,
        kubectl,
        {
            "by_type": step_summary(timeline.steps),
            "last": last_steps(timeline.steps),
        },
    )


def _floor_stack(run: E2eRun, name: str, count: int, engine_env: dict[str, str]) -> auto.Stack:
    kubeconfig = run.cluster.kubeconfig_path("admin").read_text()
    stack = run.new_stack(
        name, _empty_stack_file(run), program=floor_program(count), project="floor", engine_env=engine_env
    )
    stack.set_config("floor:kubeconfig", auto.ConfigValue(kubeconfig, secret=True))
    return stack


def measure_floor(run: E2eRun, count: int) -> dict[str, float]:
    stack = _floor_stack(run, "floor", count, WITHOUT_CHECKPOINTS)
    times: dict[str, float] = {}
    first_ups(run, stack, times)
    stack.set_config("floor:value", auto.ConfigValue("v2"))
    with timed(times, "rollout up"):
        stack.up(color="never", on_output=run.log)
    with timed(times, "destroy"):
        stack.destroy(color="never", on_output=run.log)
    return times


def measure_checkpoints(run: E2eRun, count: int) -> float:
    """The floor's first ``up`` with the file backend's checkpoint after every step (not destroyed: the
    run's cluster and backend go with the run)."""
    stack = _floor_stack(run, "floor-checkpointed", count, WITH_CHECKPOINTS)
    times: dict[str, float] = {}
    with timed(times, "up"):
        stack.up(color="never", on_output=run.log)
    return times["up"]


def _empty_stack_file(run: E2eRun) -> Path:
    path = run.run_dir / "Pulumi.floor.yaml"
    path.write_text("config: {}\n")
    return path


def measure(size: int, parallel: int | None = None, checkpoints: bool = False) -> dict[str, Any]:
    """One size, in this process: the program, then the floor, on one cluster."""
    binaries = ensure_all(log=_quiet)
    config_file = OUT / "scale" / f"Pulumi.scale-{size}.yaml"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump({"config": scale_config(size)}, sort_keys=False))
    engine_env = {**WITHOUT_CHECKPOINTS, **({"PULUMI_PARALLEL": str(parallel)} if parallel else {})}
    run = E2eRun(binaries, stack=f"scale-{size}", config_file=config_file, engine_env=engine_env)
    with run, ProcessPeaks() as peaks:
        program, resources, kubectl, up_steps = measure_program(run)
        program_peaks = dict(peaks.peaks)
        language_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        floor = measure_floor(run, resources)
        checkpointed = checkpoints or size <= CHECKPOINT_MAX_SERVICES
        checkpointed_up = measure_checkpoints(run, resources) if checkpointed else None
    return {
        "services": size,
        "resources": resources,
        "parallel": parallel or f"default ({4 * (os.cpu_count() or 1)})",
        "program_seconds": program,
        "floor_seconds": floor,
        "ratio": {op: round(program[op] / floor[op], 2) if floor[op] else None for op in OPERATIONS},
        "kubectl_seconds": kubectl,
        "kubectl_ratio": ratios(program, kubectl) if "error" not in kubectl else None,
        "program_up_steps": up_steps,
        "floor_up_with_checkpoints_seconds": checkpointed_up,
        "peak_memory_mib": {
            "engine": program_peaks.get("engine"),
            "language (program, inline)": round(language_peak, 1),
            "kubernetes provider": program_peaks.get("kubernetes provider"),
        },
    }


def run_size(
    size: int, timeout: float, parallel: int | None = None, checkpoints: bool = False
) -> dict[str, Any]:
    """One size in a child process. Past ``timeout`` the child is stopped with SIGTERM, which its run
    turns into stopping its cluster and engine, and the size is recorded as failed."""
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "tools.e2e.scale", "--one", str(size)]
        + (["--parallel", str(parallel)] if parallel else [])
        + (["--checkpoints"] if checkpoints else []),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.terminate()
        try:
            child.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
        return {"services": size, "error": [f"timed out after {timeout:.0f} s"]}
    if child.returncode != 0:
        return {"services": size, "error": stderr.strip().splitlines()[-5:]}
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'services':>8} {'resources':>9}  " + "  ".join(f"{op:>20}" for op in OPERATIONS)
    parallel = sorted({str(r["parallel"]) for r in results if "error" not in r})
    lines = [
        head,
        f"  (program s / floor s = ratio; engine parallel {', '.join(parallel)}; no per-step checkpoints)",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['services']:>8}  failed: {r['error']}")
            continue
        cells = [
            f"{r['program_seconds'][op]:>6.1f}/{r['floor_seconds'][op]:>5.1f}={r['ratio'][op] or 0:>5.2f}"
            for op in OPERATIONS
        ]
        lines.append(f"{r['services']:>8} {r['resources']:>9}  " + "  ".join(f"{c:>20}" for c in cells))
    lines.append("  program / kubectl apply --server-side + kubectl wait (same objects, same cluster):")
    for r in results:
        if "error" not in r and "error" in (r.get("kubectl_seconds") or {}):
            lines.append(f"{r['services']:>8}  kubectl baseline failed: {r['kubectl_seconds']['error']}")
        elif "error" not in r and r.get("kubectl_seconds"):
            cells = [
                f"{op} {r['program_seconds'][op]:.1f}/{r['kubectl_seconds'][op]:.1f}="
                f"{r['kubectl_ratio'][op] or 0:.2f}"
                for op in KUBECTL_OPERATIONS
            ]
            lines.append(f"{r['services']:>8} {r['resources']:>9}  " + "   ".join(cells))
    lines.append("  floor's first up with a checkpoint after every step (file backend):")
    for r in results:
        if "error" not in r and r["floor_up_with_checkpoints_seconds"] is not None:
            checkpointed = r["floor_up_with_checkpoints_seconds"]
            lines.append(
                f"{r['services']:>8} {r['resources']:>9}  {checkpointed:>6.1f} s "
                f"(x{checkpointed / r['floor_seconds']['up']:.2f} the same up without)"
            )
    for r in results:
        if "error" not in r:
            lines.append(f"peak memory at {r['services']} services (MiB): {r['peak_memory_mib']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--checkpoints",
        action="store_true",
        help=f"time the checkpointed floor at every size (default: up to {CHECKPOINT_MAX_SERVICES} services)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per size (default 1800)")
    parser.add_argument(
        "--parallel", type=int, help="engine steps at once (default: the engine's, 4 per core)"
    )
    parser.add_argument("--out", type=Path, default=OUT / "scale.json")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.parallel, args.checkpoints)))
        return 0
    results = [run_size(size, args.timeout, args.parallel, args.checkpoints) for size in args.sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
