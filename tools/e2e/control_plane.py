"""The harness's side of an EKS control-plane upgrade: the simulated EKS API (the ``aws`` provider
plugin, a process the engine starts) asks for the control plane at another minor by writing a request
into the simulated cloud's state; this operator, in the harness that owns the server processes, sees
it, restarts kube-apiserver, kube-controller-manager and kube-scheduler at that minor on the same etcd
data, and answers (the seconds it took, or the error). The plugin's update returns after the answer.

    with ControlPlaneOperator(store, restart=lambda minor: ..., served=lambda: "1.36"):
        stack.up()
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from tools.e2e.cloud.store import CloudStore


@dataclass
class ControlPlaneOperator:
    store: CloudStore
    restart: Callable[[str], None]  # run the control plane at this minor; returns once it serves
    served: Callable[[], str]  # the minor the API server reports now
    interval: float = 0.25
    restarts: list[dict] = field(default_factory=list)  # what it did: minors and seconds
    _handled: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ControlPlaneOperator:
        # A request left by an earlier run of the same state is not this run's to answer.
        if (old := self.store.control_plane_request()) is not None:
            self._handled.add(old["id"])
        self._thread = threading.Thread(target=self._run, name="control-plane-operator", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def step(self) -> None:
        request = self.store.control_plane_request()
        if request is None or request["id"] in self._handled:
            return
        self._handled.add(request["id"])
        minor, start, error, before = request["minor"], time.monotonic(), None, None
        try:
            before = self.served()
            if before != minor:
                self.restart(minor)
            if (now := self.served()) != minor:
                error = f"the API server reports {now} after the restart, not {minor}"
        except Exception as exc:  # noqa: BLE001 - answered to the plugin, which fails the update
            error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        seconds = round(time.monotonic() - start, 2)
        self.restarts.append({"from": before, "to": minor, "seconds": seconds, "error": error})
        self.store.answer_control_plane(request["id"], minor, seconds, error)

    def _run(self) -> None:
        while not self._stop.is_set():
            # The state folder may be being written: read it again on the next tick.
            with contextlib.suppress(Exception):
                self.step()
            self._stop.wait(self.interval)
