"""Killing the engine mid-operation, as a CI runner that dies does: SIGKILL of the ``pulumi`` process and the
plugins it started, at the first checkpoint of the stack's state where a kill point holds (the state then
holds exactly what a dead engine leaves: its lock, its pending operations). The simulated AWS plugin is
AWS's side too: it finishes the calls AWS accepted before it goes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from tools.e2e.checks import Check
from tools.e2e.cloud import faults as cloud_faults
from tools.e2e.kubeapi import KubeApi
from tools.e2e.ledger import HELM_RELEASE, helm_releases
from tools.e2e.scenarios import ScenarioResult, StackUnderTest, _urn_name

# How long the simulated AWS is given at most to finish the calls it accepted before the engine died.
AWS_SECONDS = 60.0


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, command line) of a process, or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1]), cmdline


def _processes() -> dict[int, tuple[int, str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = info
    return found


def descendants(pid: int, table: Mapping[int, tuple[int, str]]) -> list[int]:
    children = [p for p, (parent, _cmd) in table.items() if parent == pid]
    return children + [d for c in children for d in descendants(c, table)]


def engine_processes(pulumi: str) -> list[int]:
    """The engine processes (``pulumi up`` ...) this process started from the run's ``pulumi``."""
    me = os.getpid()
    return [
        pid for pid, (parent, cmd) in _processes().items() if parent == me and cmd.startswith(pulumi + " ")
    ]


def kill_engine(pulumi: str, aws: Path | None = None, bound: float = AWS_SECONDS) -> dict[str, Any]:
    """SIGKILL the running engine and the plugins it started, as a runner that dies takes them all: the
    engine and the Kubernetes provider at once; the simulated AWS plugin once the calls AWS accepted
    have finished (``aws``: the simulated cloud's folder; ``bound`` seconds at most), since AWS completes
    a request whatever becomes of its client. Nothing is cleaned up: no lock released, no checkpoint."""
    table = _processes()
    engines = engine_processes(pulumi)
    if not engines:
        raise RuntimeError(f"no running engine ({pulumi}) to kill")
    tree = [d for e in engines for d in descendants(e, table)]
    aws_side = [p for p in tree if "tools.e2e.cloud.provider" in table[p][1]]
    for pid in engines + [p for p in tree if p not in aws_side]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    finished: dict[str, Any] = {}

    def aws_finishes() -> None:
        start = time.monotonic()
        finished["calls"] = cloud_faults.calls_in_flight(aws) if aws else []
        while aws and cloud_faults.calls_in_flight(aws) and time.monotonic() - start < bound:
            time.sleep(0.1)
        finished["seconds"] = round(time.monotonic() - start, 1)
        for pid in aws_side:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    finisher = threading.Thread(target=aws_finishes, name="aws-side", daemon=True)
    finisher.start()
    return {
        "engine": engines,
        "plugins": {pid: table[pid][1].split()[0].rsplit("/", 1)[-1] for pid in tree},
        "aws_completed": finished,
        "finisher": finisher,
    }


def checkpoint_path(s: StackUnderTest) -> Path:
    """The stack's checkpoint in the file backend: the JSON each step's begin and end rewrite."""
    backend = Path(s.run.env()["PULUMI_BACKEND_URL"].removeprefix("file://"))
    return backend / ".pulumi" / "stacks" / "aiplatform" / f"{s.run.stack_name}.json"


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint's deployment (resources, pending operations), or None while there is none."""
    try:
        return json.loads(path.read_text()).get("checkpoint", {}).get("latest") or {}
    except (FileNotFoundError, ValueError):
        return None  # not written yet, or being replaced


KillPoint = Callable[[Mapping[str, Any]], bool]


def mid_first_deploy(total: int, api: KubeApi) -> KillPoint:
    """Half of ``total`` resources recorded, a Helm release the state has pending mid-install in the
    cluster (its record ``pending-install``) and an AWS create pending: the hardest steps to recover,
    both at once."""

    def ready(deployment: Mapping[str, Any]) -> bool:
        pending = deployment.get("pending_operations") or []
        creating = [op["resource"] for op in pending if op["type"] == "creating"]
        if len(deployment.get("resources") or []) < total / 2 or not any(
            r["type"].startswith("aws:") for r in creating
        ):
            return False
        releases = {
            f"{(r.get('inputs') or {}).get('namespace')}/{(r.get('inputs') or {}).get('name')}"
            for r in creating
            if r["type"] == HELM_RELEASE
        }
        installing = {k for k, v in helm_releases(api).items() if v["status"] == "pending-install"}
        return bool(releases & installing)

    return ready


def one_update_done_one_running(count: int) -> KillPoint:
    """Of ``count`` updates, some done (no longer pending) while others still run: after half."""
    seen: set[str] = set()

    def ready(deployment: Mapping[str, Any]) -> bool:
        running = {
            op["resource"]["urn"]
            for op in deployment.get("pending_operations") or []
            if op["type"] == "updating"
        }
        seen.update(running)
        return bool(running) and len(seen - running) >= max(1, count // 2)

    return ready


@dataclass
class EngineKiller:
    """Watches the stack's checkpoint while an operation runs and kills the engine (``kill_engine``) at the
    first checkpoint where ``when`` holds: the state then records exactly what a dead engine leaves."""

    checkpoint: Path
    pulumi: str
    when: KillPoint
    aws: Path | None = None  # the simulated cloud's folder: its accepted calls finish before its plugin dies
    interval: float = 0.05
    killed: dict[str, Any] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _start: float = 0.0

    def __enter__(self) -> EngineKiller:
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._watch, name="engine-killer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.killed and "finisher" in self.killed:
            self.killed.pop("finisher").join(timeout=AWS_SECONDS + 10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            deployment = read_checkpoint(self.checkpoint)
            if deployment is not None and engine_processes(self.pulumi) and self.when(deployment):
                pending = deployment.get("pending_operations") or []
                self.killed = {
                    "after_seconds": round(time.monotonic() - self._start, 1),
                    "resources_recorded": len(deployment.get("resources") or []),
                    "pending_at_kill": sorted(
                        f"{op['type']} {_urn_name(op['resource']['urn'])}" for op in pending
                    ),
                    **kill_engine(self.pulumi, self.aws),
                }
                return
            self._stop.wait(self.interval)


def interrupted_up(s: StackUnderTest, result: ScenarioResult, when: KillPoint) -> Check:
    """An ``up`` whose engine is killed at the first checkpoint where ``when`` holds: the operation fails,
    and nothing of the engine survives."""
    run = s.run
    run.log(f"==== {result.stack} {result.name}: up, killed")
    start = time.monotonic()
    error = None
    with EngineKiller(checkpoint_path(s), _pulumi(s), when, s.run.store.root) as killer:
        try:
            s.stack.up(color="never", on_output=run.log)
        except auto.CommandError as exc:
            error = str(exc)
    result.operations["killed up"] = {"seconds": round(time.monotonic() - start, 1), **(killer.killed or {})}
    left = engine_processes(_pulumi(s))
    killed = killer.killed or {}
    return Check(
        "the engine was killed (SIGKILL) with operations pending in the state",
        bool(killed) and error is not None and not left,
        f"killed after {killed.get('after_seconds')} s, {killed.get('resources_recorded')} resources recorded, "
        f"{len(killed.get('pending_at_kill', []))} operations pending; up {'failed' if error else 'succeeded'}",
        {"killed": result.operations["killed up"], "engine_output": engine_errors(error or "")},
    )


def engine_errors(text: str, resources_only: bool = False) -> list[str]:
    """The engine's error lines of an operation's output (``error: ...``), each once; only those naming a
    resource (its URN or type) with ``resources_only``."""
    found: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        named = "urn:pulumi:" in line or line.split(" ", 2)[-1].startswith(("aws:", "kubernetes:"))
        if "error:" in line and line not in found and (named or not resources_only):
            found.append(line)
    return found


def _pulumi(s: StackUnderTest) -> str:
    return str(s.run.run_dir / "bin" / "pulumi")
