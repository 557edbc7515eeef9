"""A controller that a release's chart runs in a cluster, run as a process on this machine against the
local API server, the way its Deployment would run it: started once the API server serves the kinds it
watches (the chart installed their CRDs), started again when it exits (a pod's restart, with the same
back-off cap as the kubelet's), stopped at the end of the run.

``command`` is asked anew at each start: what a pod gets at creation (a Pod Identity association's
credentials, say) is decided when it starts.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools.e2e.kubeapi import ApiError, KubeApi
from tools.e2e.processes import stop_group

RESTART_BACKOFF_SECONDS = (1, 2, 4, 8, 16, 30)  # then 30 s, as a pod in CrashLoopBackOff waits (capped)


@dataclass(frozen=True)
class Launch:
    """What to run: the command line and its environment (the whole environment: nothing inherited)."""

    argv: list[str]
    env: dict[str, str]


@dataclass
class Supervised:
    name: str
    api: KubeApi
    kinds: tuple[tuple[str, str], ...]  # (group/version, plural) the controller watches
    command: Callable[[], Launch]
    log_path: Path
    starts: list[float] = field(default_factory=list)  # when each process started (epoch seconds)
    exits: list[tuple[float, int]] = field(default_factory=list)  # (when, exit code) of each that ended
    errors: list[str] = field(default_factory=list)  # a start that failed, and why

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"operator-{self.name}", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Supervised:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._terminate()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def served(self) -> bool:
        """Whether the API server serves every kind the controller watches."""
        for group_version, plural in self.kinds:
            try:
                listing = self.api.request("GET", f"/apis/{group_version}", timeout=10)
            except (ApiError, OSError):
                return False
            if plural not in {r["name"] for r in listing.get("resources", [])}:
                return False
        return True

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            if not self.served():
                self._stop.wait(1)
                continue
            try:
                self._start()
            except Exception as exc:  # noqa: BLE001 - recorded; a pod that cannot start retries too
                self.errors.append(f"{type(exc).__name__}: {exc}")
                failures += 1
            else:
                while not self._stop.is_set() and self._proc is not None and self._proc.poll() is None:
                    self._stop.wait(0.5)
                if self._stop.is_set():
                    return
                code = self._proc.returncode if self._proc is not None else -1
                self.exits.append((time.time(), code))
                failures = failures + 1 if time.time() - self.starts[-1] < 60 else 0
            self._stop.wait(RESTART_BACKOFF_SECONDS[min(failures, len(RESTART_BACKOFF_SECONDS) - 1)])

    def _start(self) -> None:
        launch = self.command()
        with self._lock:
            if self._stop.is_set():
                return
            log = open(self.log_path, "a")  # noqa: SIM115 - the process keeps it; closed below
            try:
                log.write(f"==== {time.strftime('%H:%M:%S')} starting {self.name}\n")
                log.flush()
                self._proc = subprocess.Popen(
                    launch.argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=launch.env,
                    start_new_session=True,
                )
            finally:
                log.close()
            self.starts.append(time.time())

    def _terminate(self) -> None:
        if self._proc is not None:
            stop_group(self._proc, grace=20)


def base_env(extra: dict[str, str], keep: Iterable[str] = ("PATH", "HOME", "LANG", "TZ")) -> dict[str, str]:
    """A process environment of ``extra`` and the few variables any process needs, nothing else: no
    cloud credentials, proxies or kubeconfig of the user's leak into an operator."""
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}
