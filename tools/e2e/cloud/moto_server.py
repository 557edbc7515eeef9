"""moto, an AWS emulator, serving the simulated cloud's AWS APIs that real software calls: Secrets Manager
and STS for the external-secrets operator. One server per run on 127.0.0.1 (its state is per server),
in the simulated cloud's account; every request it answers is recorded, so a scenario can judge how a
real operator authenticated and what it read.

    with MotoServer(private_dir) as moto:
        moto.client("secretsmanager").put_secret_value(...)
        moto.requests()            # what it answered, oldest first

The recording holds request bodies (a secret's value among them): it stays in ``private_dir``, which
the run deletes, and ``requests()`` hands out the parts a check needs, never a value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiplatform.plan.cloud import ACCOUNT_ID
from tools.e2e.processes import stop_group

MOTO_VERSION = "5.2.5"  # requirements.txt pins it; the report names it
# moto accepts any key; these name the harness's own calls apart from an operator's in the recording.
HARNESS_ACCESS_KEY = "AKIAHARNESSE2ESIMULA"
HARNESS_SECRET_KEY = "harness-simulated-aws-secret-key"


@dataclass(frozen=True)
class AwsRequest:
    """One request moto answered, as a check reads it: the operation, the access key that signed it
    and the request's parameters (secret values removed)."""

    service: str  # "secretsmanager", "sts"
    action: str  # "GetSecretValue", "AssumeRoleWithWebIdentity", ...
    access_key: str
    temporary: bool  # signed with a session token (credentials from STS)
    params: Mapping[str, Any] = field(default_factory=dict)


# Parameters that carry a value a check must never see.
_SECRET_PARAMS = frozenset({"SecretString", "SecretBinary", "WebIdentityToken"})


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT (its payload, unverified: moto does not verify them either)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def parse_recorded(entry: Mapping[str, Any]) -> AwsRequest | None:
    """A recorded request as an ``AwsRequest`` (None for moto's own API and unknown shapes)."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode(errors="replace")
    credential = headers.get("authorization", "").partition("Credential=")[2].split("/")
    access_key = credential[0] if credential and credential[0] else ""
    service = credential[3] if len(credential) > 3 else ""
    target = headers.get("x-amz-target", "")
    if target:  # JSON protocol: secretsmanager.GetSecretValue
        action = target.rsplit(".", 1)[-1]
        try:
            params = json.loads(body or "{}")
        except ValueError:
            params = {}
    else:  # query protocol: Action=AssumeRoleWithWebIdentity&...
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
        action = params.pop("Action", "")
        params.pop("Version", None)
        service = service or ("sts" if action.startswith(("Assume", "GetCaller")) else "")
    if not action:
        return None
    claims = token_claims(params["WebIdentityToken"]) if "WebIdentityToken" in params else None
    kept = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
    if claims is not None:
        kept["WebIdentityTokenClaims"] = {k: claims.get(k) for k in ("iss", "sub", "aud")}
    return AwsRequest(service, action, access_key, "x-amz-security-token" in headers, kept)


class MotoServer:
    """A moto server on 127.0.0.1, stopped at the end of the ``with`` block (also on failure)."""

    def __init__(self, private_dir: Path, port: int, region: str = "us-east-1"):
        self.dir = private_dir
        self.port = port
        self.region = region
        self.endpoint = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> MotoServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.dir / "moto.log", "w")  # noqa: SIM115 - closed in stop()
        env = {
            **os.environ,
            "MOTO_ACCOUNT_ID": ACCOUNT_ID,  # the simulated cloud's account: its ARNs match moto's
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(self.dir / "requests.jsonl"),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            self._wait_ready()
            self._post("/moto-api/recorder/start-recording")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc, grace=15)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"moto exited with {self._proc.returncode}; see {self.dir / 'moto.log'}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"moto did not answer on {self.endpoint} within {timeout:.0f} s"
                    ) from None
                time.sleep(0.2)

    def _post(self, path: str) -> bytes:
        request = urllib.request.Request(self.endpoint + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    # -- clients and the recording -----------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` on this server, signed as the harness."""
        import boto3  # only the harness imports it; the provider plugin stays light

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=HARNESS_ACCESS_KEY,
            aws_secret_access_key=HARNESS_SECRET_KEY,
        )

    def requests(self) -> list[AwsRequest]:
        """Every AWS request moto answered since it started, oldest first."""
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/recorder/download-recording", timeout=30) as r:
            lines = r.read().decode().splitlines()
        parsed = (parse_recorded(json.loads(line)) for line in lines if line.strip())
        return [request for request in parsed if request is not None]
