"""build/e2e/report.json: the toolchain's true versions and build times, and each scenario's outcome."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tools.e2e.toolchain import Binary


class Report:
    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stacks": {},
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

    def add(self, stack: str, result: Any, run: Any) -> None:
        entry = self.data["stacks"].setdefault(stack, {"scenarios": []})
        entry["scenarios"].append(result.as_dict())
        entry["run_dir"] = str(run.run_dir)
        entry["timings"] = run.timings.entries

    @property
    def passed(self) -> bool:
        return all(s["passed"] for stack in self.data["stacks"].values() for s in stack["scenarios"])

    def write(self) -> None:
        self.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.data["passed"] = self.passed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
