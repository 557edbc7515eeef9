"""What the scheduler reserves for a pod, per resource name (cpu, memory, nvidia.com/gpu, ...). Pure.

Kubernetes' rule, native sidecars included (KEP-753): the larger of
- each regular init container, in order, plus the sidecars (restartable init containers) started
  before it, and
- the regular containers plus every sidecar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from .validation import quantity_value

Amounts = Mapping[str, Decimal]


def _plus(a: Amounts, b: Amounts) -> dict[str, Decimal]:
    return {k: a.get(k, Decimal(0)) + b.get(k, Decimal(0)) for k in {*a, *b}}


def _larger(a: Amounts, b: Amounts) -> dict[str, Decimal]:
    return {k: max(a.get(k, Decimal(0)), b.get(k, Decimal(0))) for k in {*a, *b}}


def effective_requests(
    containers: Iterable[Amounts], init_containers: Iterable[tuple[Amounts, bool]] = ()
) -> dict[str, Decimal]:
    """The pod's requests from its containers' and its ``(init container, is a sidecar)`` in order."""
    peak: dict[str, Decimal] = {}
    sidecars: dict[str, Decimal] = {}
    for requests, sidecar in init_containers:
        if sidecar:
            sidecars = _plus(sidecars, requests)
        else:
            peak = _larger(peak, _plus(requests, sidecars))
    running = sidecars
    for requests in containers:
        running = _plus(running, requests)
    return _larger(peak, running)


def container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """A container's requests as a manifest holds them, in base units (cores, bytes, devices)."""
    requests = (container.get("resources") or {}).get("requests") or {}
    return {name: quantity_value(amount) for name, amount in requests.items()}


def manifest_requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """``effective_requests`` of a pod spec as a manifest holds it (camelCase keys)."""
    return effective_requests(
        map(container_requests, spec.get("containers") or []),
        (
            (container_requests(c), c.get("restartPolicy") == "Always")
            for c in spec.get("initContainers") or []
        ),
    )
