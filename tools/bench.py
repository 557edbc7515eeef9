"""Plan-time benchmark: how the program scales with the number of inference services.

    python -m tools.bench                 # sizes 1, 10, 100, 500; table to stdout, build/bench.json
    python -m tools.bench --sizes 1 10    # a quicker run
    python -m tools.bench --timeout 150   # stop a program run after 150 s (the default): lower bounds
    python -m tools.bench --model-bucket-name ai-prod-models   # what-if: no caller-identity lookups
    python -m tools.bench --one 100       # (internal) one measurement in this process, JSON on stdout

For each size N a stack config is generated from ``Pulumi.prod.yaml`` with N copies of the
``llama-inference`` entry (unique names and hosts; the ``ml-serving`` quota grown so the copies fit at
their maximum replicas). Each size is planned under the mock engine (``run_program``) in a fresh child
process, so its peak RSS (``ru_maxrss``) is its own. The FLOOR is the same measurement for a program
that registers as many bare resources (Kubernetes ConfigMaps with an explicit provider) under the same
mock engine, through the same ``run_program``.

Both children import the same modules (pulumi, pulumi_aws, pulumi_kubernetes, the components) before
the clock starts: the timed section is ``run_program`` alone, so module import time -- a constant --
does not distort the ratios. The child's whole lifetime is reported too (``process_s``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiplatform.compute.instance_types import require
from aiplatform.plan.runner import read_stack_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SIZES = (1, 10, 100, 500)
BASE_STACK = "prod"
TEMPLATE_WORKLOAD = "llama-inference"
MAX_GROUP_SIZE = 1000  # the most nodes an EKS managed node group scales to (the config's limit)

# Targets of the performance issue.
MAX_TIME_RATIO = 1.5  # program / floor wall time, at every size
MAX_PER_RESOURCE_GROWTH = 1.3  # time per resource at the largest size / at 10 services
MAX_MEMORY_RATIO = 2.0  # program / floor peak RSS at the largest size

FLOOR_PROGRAM = '''\
"""The floor: as many bare resources as the program registers, with a provider, nothing else."""
import pulumi
import pulumi_kubernetes as k8s

count = int(pulumi.Config("bench").require("count"))
provider = k8s.Provider("floor", kubeconfig="{}")
opts = pulumi.ResourceOptions(provider=provider)
for i in range(count - 1):  # the provider is one of the registered resources
    k8s.core.v1.ConfigMap(
        f"floor-{i}",
        metadata={"name": f"floor-{i}", "namespace": "bench"},
        data={"key": f"value-{i}"},
        opts=opts,
    )
'''


# -- the generator -----------------------------------------------------------------------------


def _quantity_gi(value: str) -> float:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    for suffix, factor in units.items():
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value) / 2**30


def _cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def bench_config(services: int, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``Pulumi.prod.yaml`` config with ``services`` copies of the llama-inference service.

    Copy ``i`` is ``llama-inference`` (i = 0) or ``llama-inference-<i>``, routed at
    ``llm.example.com`` / ``llm-<i>.example.com``. The other inference services are dropped so the
    stack has exactly ``services`` of them; training and batch stay. The serving namespace's quota
    grows to hold every copy at its maximum replicas.
    """
    if services < 1:
        raise ValueError("services must be >= 1")
    config = copy.deepcopy(
        base if base is not None else read_stack_file(PROJECT_ROOT / f"Pulumi.{BASE_STACK}.yaml")
    )
    workloads = config["aiplatform:workloads"]
    template = next(w for w in workloads["inference"] if w["name"] == TEMPLATE_WORKLOAD)
    copies = []
    for i in range(services):
        entry = copy.deepcopy(template)
        if i:
            entry["name"] = f"{TEMPLATE_WORKLOAD}-{i}"
            if entry.get("ingress"):
                head, _, rest = entry["ingress"]["host"].partition(".")
                entry["ingress"]["host"] = f"{head}-{i}.{rest}"
        copies.append(entry)
    workloads["inference"] = copies

    # Quota: every copy at max replicas (+ headroom for the batch job and the init/sidecar containers).
    scaling = template.get("autoscaling") or {}
    replicas = max(scaling.get("maxReplicas", 0), template.get("replicas", 1))
    requests = template["resources"]["requests"]
    gpus = (template.get("gpu") or {}).get("count", 0)
    for ns in config["aiplatform:namespaces"]:
        if ns["name"] != template["namespace"]:
            continue
        quota = ns.setdefault("quota", {})
        cpu_needed = services * replicas * (_cpu(str(requests["cpu"])) + 1) + 16
        mem_needed = services * replicas * (_quantity_gi(str(requests["memory"])) + 2) + 64
        quota["cpu"] = str(int(max(_cpu(str(quota.get("cpu", "0"))), cpu_needed)))
        quota["memory"] = f"{int(max(_quantity_gi(str(quota.get('memory', '0Gi'))), mem_needed))}Gi"
        quota["gpus"] = min(1024, max(int(quota.get("gpus", 0)), services * replicas * gpus))
        quota["pods"] = min(10000, max(int(quota.get("pods", 0)), services * replicas + 50))

    _spread_over_gpu_groups(config, copies, always=scaling.get("minReplicas", template.get("replicas", 1)))
    return config


def _spread_over_gpu_groups(config: dict[str, Any], copies: list[dict[str, Any]], always: int) -> None:
    """Each GPU group holds its copies at their minimum (the replicas that always run) and a rollout's
    surge, within EKS's MAX_GROUP_SIZE: as many copies of the template's group as that takes, the
    copies spread evenly over them (``gpu-inference``, ``gpu-inference-2``, ...)."""
    placement = copies[0].get("gpu") or {}
    groups = (config.get("aiplatform:nodeGroups") or {}).get("gpu") or []
    template = next((g for g in groups if g["name"] == placement.get("nodeGroup")), None)
    if template is None:
        return
    per_node = require(template["instanceTypes"][0]).gpus // placement["count"]
    per_group = (MAX_GROUP_SIZE * per_node - 1) // always
    count = -(-len(copies) // per_group)
    shares = [copies[k::count] for k in range(count)]
    at = groups.index(template)
    for k, share in enumerate(shares):
        group = template if k == 0 else {**copy.deepcopy(template), "name": f"{template['name']}-{k + 1}"}
        needed = -(-(len(share) * always + 1) // per_node)
        group["scaling"]["maxSize"] = max(template["scaling"]["maxSize"], needed)
        if k:
            groups.insert(at + k, group)
        for entry in share:
            entry["gpu"] = {**placement, "nodeGroup": group["name"]}


def generated_config(services: int, bucket_name: str | None = None) -> dict[str, Any]:
    """The stack a size plans: ``bench_config``, with the what-if bucket name when one is given."""
    config = bench_config(services)
    if bucket_name:
        config["aiplatform:storage"].setdefault("modelBucket", {})["name"] = bucket_name
    return config


def settings_of(config: dict[str, Any]):
    """Validate a generated config exactly as the program does (``parse_settings``)."""
    from aiplatform.config import parse_settings, secret_config_keys

    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("aiplatform:")}
    secret = secret_config_keys(raw)
    return parse_settings({k: v for k, v in raw.items() if k not in secret})


# -- one measurement (runs in a child) -----------------------------------------------------------


# The provider modules the program uses (pulumi_aws and pulumi_kubernetes load them lazily, on first
# attribute access). Importing them costs ~3 s, a constant that is not registration work.
PROGRAM_MODULES = (
    *(f"pulumi_aws.{m}" for m in ("autoscaling", "cloudwatch", "ec2", "efs", "eks", "iam", "kms", "s3")),
    "pulumi_aws.secretsmanager",
    *(f"pulumi_kubernetes.{m}" for m in ("apps.v1", "autoscaling.v2", "batch.v1", "core.v1", "helm.v3")),
    *(f"pulumi_kubernetes.{m}" for m in ("meta.v1", "networking.v1", "policy.v1", "storage.v1")),
    "aiplatform.platform",
)


def _warm_imports() -> float:
    """The same imports in every child, before the clock starts; returns the seconds they took."""
    import importlib

    start = time.perf_counter()
    for name in PROGRAM_MODULES:
        module = importlib.import_module(name)
        hasattr(module, "_bench_load")  # any attribute access makes a lazy module load for real
    return time.perf_counter() - start


def measure_program(services: int, bucket_name: str | None = None) -> dict[str, Any]:
    from aiplatform.plan.runner import run_program

    config = generated_config(services, bucket_name)
    imports = _warm_imports()
    logger = _quiet_logger()
    start = time.perf_counter()
    run = run_program(config, f"bench-{services}", program=PROJECT_ROOT / "__main__.py", logger=logger)
    elapsed = time.perf_counter() - start
    return {
        "kind": "program",
        "services": services,
        "resources": len(run.registrations),
        "wall_s": elapsed,
        "imports_s": round(imports, 3),
    }


def measure_floor(count: int, warm: bool = True) -> dict[str, Any]:
    from aiplatform.plan.runner import run_program

    imports = _warm_imports() if warm else 0.0
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        program = Path(tmp) / "__main__.py"
        program.write_text(FLOOR_PROGRAM, encoding="utf-8")
        start = time.perf_counter()
        run = run_program({"bench:count": str(count)}, "bench-floor", program=program)
        elapsed = time.perf_counter() - start
    return {
        "kind": "floor",
        "resources": len(run.registrations),
        "wall_s": elapsed,
        "imports_s": round(imports, 3),
    }


def _quiet_logger():
    import logging

    logger = logging.getLogger("aiplatform.bench")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _child_main(kind: str, size: int, bucket_name: str | None = None) -> int:
    started = time.perf_counter()
    result = measure_program(size, bucket_name) if kind == "program" else measure_floor(size)
    result["peak_rss_mib"] = round(_peak_rss_mib(), 1)
    result["process_s"] = round(time.perf_counter() - started, 3)
    result["wall_s"] = round(result["wall_s"], 3)
    print(json.dumps(result))
    return 0


# -- the driver ----------------------------------------------------------------------------------


PROGRAM_TIMEOUT_S = 150.0  # per program child: keeps `make bench` under 5 minutes even when it scales badly
FLOOR_TIMEOUT_S = 120.0


def _peak_rss_of(pid: int) -> float | None:
    """VmHWM (peak RSS) of a live child, in MiB (Linux only), read before it is stopped."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def run_child(kind: str, size: int, timeout: float, bucket_name: str | None = None) -> dict[str, Any]:
    """One measurement in a fresh interpreter: its memory and time are its own.

    A child that outlives ``timeout`` is stopped; the result says ``timed_out`` with the wall time as
    a lower bound and the peak RSS it had reached.
    """
    command = [sys.executable, "-m", "tools.bench", "--one", str(size), "--kind", kind]
    if bucket_name:
        command += ["--model-bucket-name", bucket_name]
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = _peak_rss_of(proc.pid)
        proc.kill()
        proc.communicate()
        return {
            "kind": kind,
            "timed_out": True,
            "wall_s": round(time.perf_counter() - start, 3),
            "peak_rss_mib": peak,
        }
    if proc.returncode != 0:
        raise RuntimeError(f"bench child ({kind} {size}) failed:\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _extrapolated_resources(known: dict[int, int], services: int) -> int | None:
    """Resources grow linearly with services (a fixed platform + k per service): extrapolate."""
    if len(known) < 2:
        return None
    (n1, r1), (n2, r2) = sorted(known.items())[-2:]
    per = (r2 - r1) / (n2 - n1)
    return round(r2 + per * (services - n2))


def bench(
    sizes: tuple[int, ...] = SIZES,
    program_timeout: float = PROGRAM_TIMEOUT_S,
    bucket_name: str | None = None,
) -> dict[str, Any]:
    rows = []
    known: dict[int, int] = {}
    overhead = 0.0  # a child's imports and set-up, outside the timed section (from the last finished one)
    for size in sizes:
        program = run_child("program", size, program_timeout, bucket_name)
        if program.get("timed_out"):
            program["wall_s"] = round(program["wall_s"] - overhead, 3)  # lower bound of run_program
            program["resources"] = _extrapolated_resources(known, size)
            program["resources_extrapolated"] = True
            if program["resources"] is None:
                raise RuntimeError(f"the program at {size} services timed out before any size finished")
        else:
            known[size] = program["resources"]
            overhead = program["process_s"] - program["wall_s"]
        resources = program["resources"]
        floor = run_child("floor", resources, FLOOR_TIMEOUT_S)
        memory_ratio = (
            round(program["peak_rss_mib"] / floor["peak_rss_mib"], 2)
            if program.get("peak_rss_mib") and floor.get("peak_rss_mib")
            else None
        )
        rows.append(
            {
                "services": size,
                "resources": resources,
                "program": program,
                "floor": floor,
                "timed_out": bool(program.get("timed_out")),
                "time_ratio": round(program["wall_s"] / floor["wall_s"], 2),
                "memory_ratio": memory_ratio,
                "program_ms_per_resource": round(1000 * program["wall_s"] / resources, 3),
                "floor_ms_per_resource": round(1000 * floor["wall_s"] / resources, 3),
            }
        )
    return {
        "sizes": list(sizes),
        "variant": {"model_bucket_name": bucket_name} if bucket_name else "as committed",
        "program_timeout_s": program_timeout,
        "rows": rows,
        "targets": targets(rows),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's three targets, each with its measured value and whether it is met."""
    by_size = {r["services"]: r for r in rows}
    found = []
    worst = max(rows, key=lambda r: r["time_ratio"])
    more = ">=" if worst.get("timed_out") else ""
    found.append(
        {
            "target": f"time ratio program/floor <= {MAX_TIME_RATIO} at every size",
            "value": f"worst {more}{worst['time_ratio']} at {worst['services']} services",
            "met": worst["time_ratio"] <= MAX_TIME_RATIO,
        }
    )
    largest = max(by_size)
    if 10 in by_size and largest != 10:
        growth = by_size[largest]["program_ms_per_resource"] / by_size[10]["program_ms_per_resource"]
        more = ">=" if by_size[largest].get("timed_out") else ""
        found.append(
            {
                "target": f"time/resource at {largest} <= {MAX_PER_RESOURCE_GROWTH}x that at 10 services",
                "value": f"{more}{growth:.2f}x",
                "met": growth <= MAX_PER_RESOURCE_GROWTH,
            }
        )
    ratio = by_size[largest]["memory_ratio"]
    early = " (program stopped early: the peak it had reached)" if by_size[largest].get("timed_out") else ""
    found.append(
        {
            "target": f"peak memory at {largest} <= {MAX_MEMORY_RATIO}x the floor's",
            "value": f"{ratio}x{early}" if ratio is not None else "not measured",
            "met": ratio is not None and ratio <= MAX_MEMORY_RATIO,
        }
    )
    return found


def render(result: dict[str, Any]) -> str:
    head = (
        f"{'services':>8} {'resources':>9} {'time s':>8} {'floor s':>8} {'ratio':>6} "
        f"{'ms/res':>7} {'floor':>7} {'RSS MiB':>8} {'floor':>8} {'ratio':>6}"
    )
    lines = [head, "-" * len(head)]

    def num(value: float | None, width: int, digits: int) -> str:
        return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    for r in result["rows"]:
        p, f = r["program"], r["floor"]
        mark = ">" if r.get("timed_out") else " "
        lines.append(
            f"{r['services']:>8} {r['resources']:>9} {mark}{p['wall_s']:>7.2f} {f['wall_s']:>8.2f} "
            f"{mark}{r['time_ratio']:>5.2f} {mark}{r['program_ms_per_resource']:>6.2f} {r['floor_ms_per_resource']:>7.2f} "
            f"{num(p.get('peak_rss_mib'), 8, 1)} {num(f.get('peak_rss_mib'), 8, 1)} "
            f"{num(r.get('memory_ratio'), 6, 2)}"
        )
    if any(r.get("timed_out") for r in result["rows"]):
        lines.append(
            f"> the program child was stopped after {result.get('program_timeout_s')} s: lower bounds; "
            "its resource count is extrapolated (linear in services), its RSS is the peak it had reached"
        )
    lines.append("")
    for t in result["targets"]:
        lines.append(f"[{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['value']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="inference services per run"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "build" / "bench.json")
    parser.add_argument("--timeout", type=float, default=PROGRAM_TIMEOUT_S, help="seconds per program run")
    parser.add_argument(
        "--model-bucket-name",
        help="what-if: set storage.modelBucket.name (the program then makes no get_caller_identity call)",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=("program", "floor"), default="program", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        return _child_main(args.kind, args.one, args.model_bucket_name)

    from aiplatform.config import ConfigError
    from aiplatform.plan.cli import EXIT_INVALID

    # Every size's stack checked first, as the plan checks it: a config error is a message and exit 2.
    for size in args.sizes:
        try:
            settings_of(generated_config(size, args.model_bucket_name))
        except ConfigError as exc:
            print(f"error: the stack generated for {size} services: {exc}", file=sys.stderr)
            return EXIT_INVALID

    started = time.perf_counter()
    result = bench(tuple(args.sizes), args.timeout, args.model_bucket_name)
    result["total_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(render(result))
    print(f"\ntotal {result['total_s']} s; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
