"""build/e2e/report.json: the toolchain's true versions and times (per binary: ``build_seconds``, its cold
build, and ``ensure_seconds``, what having it took this run: that build, or finding it in the cache),
each stack's run (its cluster start, the charts it served, the real operators' starts and exits) and
each scenario's outcome with its checks and engine operations."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.e2e.toolchain import Binary, parallel_builds


class Report:
    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runs": {},
            "scenarios": [],
        }

    @contextmanager
    def timing(self, key: str):
        start = time.monotonic()
        try:
            yield
        finally:
            self.data[key] = round(time.monotonic() - start, 1)

    def toolchain(self, binaries: dict[str, Binary]) -> None:
        self.data["toolchain"] = {name: asdict(b) for name, b in binaries.items()}
        self.data["toolchain_parallel_builds"] = parallel_builds()

    def add_run(self, run: Any) -> None:
        self.data["runs"][run.stack_name] = {
            "run_dir": str(run.run_dir),
            "timings": run.timings.entries,
            "charts": run.charts_served,
            "crds": run.crds.provenance() if getattr(run, "crds", None) else None,
            "operators": {
                name: {"starts": operator.starts, "exits": operator.exits, "errors": operator.errors}
                for name, operator in (run.operators.running if run.operators else {}).items()
            },
            "kubernetes": {
                "stack_minor": run.kubernetes_minor,
                "server_version": run.cluster.server_version() if run.cluster else None,
            },
        }

    def add(self, result: Any) -> None:
        self.data["scenarios"].append(result.as_dict())

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value

    @property
    def passed(self) -> bool:
        return bool(self.data["scenarios"]) and all(s["passed"] for s in self.data["scenarios"])

    def write(self) -> None:
        self.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.data["passed"] = self.passed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
