"""The simulated cloud's state: one JSON record per AWS resource, in a folder shared by the simulated
``aws`` provider plugin (which the engine starts for each operation) and the harness's simulated
controllers (autoscaler, load balancers, volumes, node classes).

The folder also holds ``cluster.json``: where the local Kubernetes API server answers (the endpoint
and CA the simulated EKS cluster returns, and the token ``aws eks get-token`` hands out);
``control-plane/``: the simulated EKS API's request to run the control plane at another minor and the
harness's answer (the harness owns the server processes; the plugin only asks and waits);
``services.json``: where AWS APIs that real software calls answer (moto: Secrets Manager, STS), which
the plugin makes its calls of those services on, so that what the program creates there is what an
operator reads; and ``events.jsonl``: what the simulated cloud did beyond its records (a node group's
rolling update), for the scenarios to judge.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_ENV = "AIPLATFORM_E2E_CLOUD"


@dataclass(frozen=True)
class ClusterAccess:
    server: str
    token: str
    ca_file: str

    @property
    def ca_data(self) -> str:
        return base64.b64encode(Path(self.ca_file).read_bytes()).decode()


def _write_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class CloudStore:
    def __init__(self, root: Path):
        self.root = root
        (root / "resources").mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls) -> CloudStore:
        root = os.environ.get(STATE_ENV)
        if not root:
            raise RuntimeError(f"{STATE_ENV} is not set: the simulated cloud has no state folder")
        return cls(Path(root))

    # -- the local cluster -----------------------------------------------------------------------
    def set_cluster(self, access: ClusterAccess) -> None:
        _write_atomic(self.root / "cluster.json", access.__dict__)

    def cluster(self) -> ClusterAccess | None:
        path = self.root / "cluster.json"
        return ClusterAccess(**json.loads(path.read_text())) if path.exists() else None

    # -- AWS APIs served by an emulator ------------------------------------------------------------
    def set_services(self, endpoints: dict[str, str], access_key: str, secret_key: str) -> None:
        """Where ``endpoints`` (service -> URL) answer, and the key the simulated cloud signs with."""
        _write_atomic(
            self.root / "services.json",
            {"endpoints": endpoints, "accessKey": access_key, "secretKey": secret_key},
        )

    def services(self) -> dict[str, Any] | None:
        path = self.root / "services.json"
        return json.loads(path.read_text()) if path.exists() else None

    # -- the control plane's minor: a request from the plugin, an answer from the harness -----------
    def _control_plane(self, name: str) -> Path:
        folder = self.root / "control-plane"
        folder.mkdir(exist_ok=True)
        return folder / name

    def request_control_plane(self, minor: str) -> str:
        """Ask the harness to run the control plane at ``minor``; returns the request's id."""
        ident = uuid.uuid4().hex
        _write_atomic(self._control_plane("request.json"), {"id": ident, "minor": minor, "at": time.time()})
        return ident

    def control_plane_request(self) -> dict | None:
        path = self._control_plane("request.json")
        return json.loads(path.read_text()) if path.exists() else None

    def answer_control_plane(self, ident: str, minor: str, seconds: float, error: str | None) -> None:
        answer = {"id": ident, "minor": minor, "seconds": seconds, "error": error, "at": time.time()}
        _write_atomic(self._control_plane("answer.json"), answer)

    def control_plane_answer(self, ident: str) -> dict | None:
        """The harness's answer to request ``ident`` (None: not answered yet)."""
        path = self._control_plane("answer.json")
        if not path.exists():
            return None
        answer = json.loads(path.read_text())
        return answer if answer.get("id") == ident else None

    # -- events ----------------------------------------------------------------------------------
    def record_event(self, kind: str, **fields: Any) -> None:
        """Append one event (one short line per write, so concurrent appends stay whole)."""
        line = json.dumps({"kind": kind, "at": time.time(), **fields}, sort_keys=True)
        with open(self.root / "events.jsonl", "a") as handle:
            handle.write(line + "\n")

    def events(self, kind: str | None = None) -> list[dict]:
        path = self.root / "events.jsonl"
        if not path.exists():
            return []
        found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [e for e in found if kind is None or e["kind"] == kind]

    # -- resources -------------------------------------------------------------------------------
    # A resource is known by its type and id: AWS ids are unique per kind only (an S3 bucket and its
    # versioning configuration share the bucket's name as id). One folder per type, so listing a type
    # reads that type's records only, however large the platform.
    def _type_dir(self, typ: str) -> Path:
        return self.root / "resources" / hashlib.sha256(typ.encode()).hexdigest()[:16]

    def _path(self, typ: str, ident: str) -> Path:
        return self._type_dir(typ) / f"{hashlib.sha256(ident.encode()).hexdigest()[:32]}.json"

    def put(self, typ: str, ident: str, urn: str, inputs: dict, outputs: dict) -> None:
        record = {"type": typ, "id": ident, "urn": urn, "inputs": inputs, "outputs": outputs}
        self._type_dir(typ).mkdir(exist_ok=True)
        _write_atomic(self._path(typ, ident), record)

    def get(self, typ: str, ident: str) -> dict | None:
        try:
            return json.loads(self._path(typ, ident).read_text())
        except FileNotFoundError:
            return None

    def delete(self, typ: str, ident: str) -> None:
        self._path(typ, ident).unlink(missing_ok=True)

    def all(self, typ: str | None = None) -> Iterator[dict]:
        pattern = f"{self._type_dir(typ).name}/*.json" if typ else "*/*.json"
        for path in sorted((self.root / "resources").glob(pattern)):
            try:
                yield json.loads(path.read_text())
            except (FileNotFoundError, ValueError):
                continue  # deleted or being replaced while listing
