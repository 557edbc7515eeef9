"""Faults injected into the simulated AWS: a plan in the simulated cloud's state folder (``faults.json``)
that every client of the simulated AWS reads on each call, as each would meet the fault in AWS: the
``aws`` provider plugin (a new process for each engine operation) and the simulated controllers (the
external-secrets operator reading Secrets Manager).

Per AWS service (``iam``, ``secretsmanager``, ``ec2`` ...), one of:

- ``throttle``: every call is refused with AWS's ``Throttling: Rate exceeded``. The plugin retries it with
  backoff as the AWS SDK does, ``MAX_ATTEMPTS`` times, then fails the operation with the SDK's message;
- ``timeout``: every call waits ``TIMEOUT_SECONDS`` and fails as the SDK's dial timeout does: the request
  never reached AWS, so nothing was created or changed;
- ``unreachable``: every call fails at once, as a refused connection does;
- ``slow``: AWS accepts a create at once, and the resource becomes available ``SLOW_SECONDS`` later,
  as a NAT gateway or an EFS file system does: the provider waits for it (``until_available``). A
  client that dies meanwhile leaves a resource AWS made and nobody recorded.

The plugin marks what AWS is doing for an accepted create or update (``in_flight``): AWS completes it
whatever becomes of its client, so a harness that kills the engine lets those finish
(``calls_in_flight``) before it kills the plugin.

The harness writes the plan (``set_fault``, ``clear_faults``); the clients only read it (``call``).

    set_fault(store.root, "iam", "throttle")
    ...                                      # an up now fails at the first IAM call, naming the resource
    clear_faults(store.root)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

KINDS = ("throttle", "timeout", "unreachable", "slow")
PLAN_FILE = "faults.json"
# The AWS SDK's attempts for a throttled call (the provider's `maxRetries` is 25 by default; the
# simulation's backoff is shorter than the SDK's so a run stays fast).
MAX_ATTEMPTS = int(os.environ.get("AIPLATFORM_E2E_AWS_MAX_ATTEMPTS", "25"))
BACKOFF_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 0.2
TIMEOUT_SECONDS = float(os.environ.get("AIPLATFORM_E2E_AWS_TIMEOUT_SECONDS", "5"))
SLOW_SECONDS = float(os.environ.get("AIPLATFORM_E2E_AWS_SLOW_SECONDS", "10"))

# The provider module of a resource type whose calls go to another service's endpoint.
_SERVICE_OF_MODULE = {"vpc": "ec2", "cloudwatch": "logs"}
# How the SDK names a service in its errors.
_SDK_NAMES = {
    "iam": "IAM",
    "ec2": "EC2",
    "eks": "EKS",
    "kms": "KMS",
    "s3": "S3",
    "logs": "CloudWatch Logs",
    "secretsmanager": "Secrets Manager",
    "efs": "EFS",
    "autoscaling": "Auto Scaling",
    "sqs": "SQS",
    "sts": "STS",
}


# The code each service throttles with (the query APIs: Throttling; EC2: RequestLimitExceeded; the JSON
# APIs: ThrottlingException; S3: SlowDown).
_THROTTLE_CODES = {
    "iam": "Throttling",
    "sts": "Throttling",
    "autoscaling": "Throttling",
    "ec2": "RequestLimitExceeded",
    "s3": "SlowDown",
}


class AwsApiError(RuntimeError):
    """A call the simulated AWS refused; ``code`` is AWS's error code or the transport's failure."""

    def __init__(self, service: str, code: str, message: str):
        super().__init__(message)
        self.service = service
        self.code = code


def service_of(typ: str) -> str:
    """The AWS service whose endpoint a resource type's calls reach (``aws:iam/role:Role`` -> ``iam``)."""
    module = typ.split(":")[1].split("/")[0]
    return _SERVICE_OF_MODULE.get(module, module)


def sdk_name(service: str) -> str:
    """How the SDK names a service in its errors (``iam`` -> ``IAM``)."""
    return _SDK_NAMES.get(service, service)


def _path(root: Path) -> Path:
    return Path(root) / PLAN_FILE


def current(root: Path) -> dict[str, str]:
    """The fault plan: AWS service -> fault kind (empty: AWS answers)."""
    try:
        return json.loads(_path(root).read_text())
    except FileNotFoundError:
        return {}


def _write(root: Path, faults: dict[str, str]) -> None:
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-faults-")
    with os.fdopen(fd, "w") as handle:
        json.dump(faults, handle, sort_keys=True)
    os.replace(tmp, _path(root))


def set_fault(root: Path, service: str, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"fault kind {kind!r}: expected one of {', '.join(KINDS)}")
    _write(root, {**current(root), service: kind})


def clear_faults(root: Path, *services: str) -> None:
    """Clear the faults of ``services`` (all of them when none is named)."""
    _write(root, {s: k for s, k in current(root).items() if services and s not in services})


def _endpoint(service: str, region: str) -> str:
    return f"https://{service}.{region}.amazonaws.com/"


def call(
    root: Path,
    service: str,
    operation: str,
    what: str,
    region: str = "us-east-1",
    record=None,
    sleep=time.sleep,
) -> None:
    """One API call of ``operation`` (``CreateRole``) on ``service``, as the SDK makes it: returns when AWS
    would answer, raises ``AwsApiError`` with the provider's message (``what``: ``creating IAM Role
    (name)``) when the plan refuses it. ``record(kind, **fields)`` is told of every refused attempt."""
    kind = current(root).get(service)
    if kind is None:
        return
    sdk = f"operation error {sdk_name(service)}: {operation}"
    tell = record or (lambda *_a, **_k: None)
    if kind == "throttle":
        for attempt in range(1, MAX_ATTEMPTS + 1):
            tell("aws-call-refused", service=service, operation=operation, fault=kind, attempt=attempt)
            if attempt < MAX_ATTEMPTS:
                sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_SECONDS * 2 ** (attempt - 1)))
            # Whether the plan changed meanwhile: the SDK's next attempt may go through.
            if current(root).get(service) != kind:
                return call(root, service, operation, what, region, record, sleep)
        code = _THROTTLE_CODES.get(service, "ThrottlingException")
        raise AwsApiError(
            service,
            code,
            f"{what}: {sdk}, exceeded maximum number of attempts, {MAX_ATTEMPTS}, https response error "
            f"StatusCode: 400, RequestID: {uuid.uuid4()}, api error {code}: Rate exceeded",
        )
    if kind == "slow":
        return None  # accepted at once; see until_available
    tell("aws-call-refused", service=service, operation=operation, fault=kind, attempt=1)
    if kind == "timeout":
        sleep(TIMEOUT_SECONDS)
        reason = "dial tcp: i/o timeout"
    else:
        reason = "dial tcp: connect: connection refused"
    raise AwsApiError(
        service,
        "RequestError",
        f"{what}: {sdk}, https response error StatusCode: 0, RequestID: , request send failed, "
        f'Post "{_endpoint(service, region)}": {reason}',
    )


@contextlib.contextmanager
def in_flight(root: Path, what: str) -> Iterator[None]:
    """Mark a call AWS is carrying out for as long as it runs."""
    folder = Path(root) / "in-flight"
    folder.mkdir(exist_ok=True)
    marker = folder / uuid.uuid4().hex
    marker.write_text(what)
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def calls_in_flight(root: Path) -> list[str]:
    """The calls the simulated AWS is carrying out now."""
    found = []
    for marker in sorted((Path(root) / "in-flight").glob("*")):
        with contextlib.suppress(FileNotFoundError):
            found.append(marker.read_text())
    return found


def until_available(root: Path, service: str, sleep=None) -> None:
    """The provider's wait for a resource AWS accepted to become available: ``SLOW_SECONDS`` where the
    plan makes ``service`` slow, none otherwise."""
    if current(root).get(service) == "slow":
        (sleep or time.sleep)(SLOW_SECONDS)
