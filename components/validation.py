"""Pure validators for the values a stack config holds: names, quantities, schedules, images, CIDRs.

Each returns an error message (``None`` when the value is fine), so callers can collect every problem
of a config before reporting, and the same rule serves the config models and the components.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_HOSTNAME_LABEL = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
_DURATION = re.compile(r"^([0-9]+(ns|us|ms|s|m|h))+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def dns1123_label(value: str) -> str | None:
    """Kubernetes names of namespaces, services, containers: lower-case alphanumerics and '-', max 63."""
    if len(value) > 63:
        return f"'{value[:20]}...' is longer than 63 characters"
    if not _DNS1123_LABEL.match(value):
        return f"'{value}' is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric)"
    return None


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        return f"'{value}' is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
    return None


def hostname(value: str) -> str | None:
    """A fully qualified host name for an Ingress rule (a leading '*.' wildcard is allowed)."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or any(len(label) > 63 for label in labels):
        return f"'{value}' is not a valid DNS host name (e.g. llm.example.com)"
    if not all(_HOSTNAME_LABEL.match(label) for label in labels) or "*" in labels[1:]:
        return f"'{value}' is not a valid DNS host name (e.g. llm.example.com)"
    return None


def quantity(value: str) -> str | None:
    """A Kubernetes resource quantity such as ``500m``, ``2``, ``16Gi``."""
    if not _QUANTITY.match(value):
        return f"'{value}' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"
    return None


def quantity_value(value: str) -> float:
    """The numeric value of a valid quantity, in base units (cores, bytes)."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"'{value}' is not a Kubernetes quantity")
    number, suffix = float(match.group(1)), match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return number * 10 ** int(suffix[1:])
    if suffix in _BINARY_SUFFIXES:
        return number * _BINARY_SUFFIXES[suffix]
    return number * _DECIMAL_SUFFIXES[suffix]


def duration(value: str) -> str | None:
    """A Go duration as Kubernetes controllers read it (``1h``, ``30m``, ``1h30m``)."""
    if not _DURATION.match(value):
        return f"'{value}' is not a duration (e.g. 30s, 15m, 1h)"
    return None


def env_name(value: str) -> str | None:
    if not _ENV_NAME.match(value):
        return f"'{value}' is not a valid environment variable name"
    return None


def cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return f"'{value}' is not a CIDR block with its host bits zero (e.g. 10.0.0.0/16)"
    return None


def time_zone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"'{value}' is not an IANA time zone (e.g. Etc/UTC, Europe/Paris)"
    return None


def image_reference(value: str) -> str | None:
    """A container image with an explicit tag or digest."""
    if not value or any(c.isspace() for c in value):
        return f"'{value}' is not an image reference"
    if "@sha256:" in value:
        return None
    last = value.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"'{value}' has no tag: pin one (e.g. {value}:1.2.3) or a digest"
    return None


def is_latest(image: str) -> bool:
    return "@sha256:" not in image and image.rsplit("/", 1)[-1].endswith(":latest")


# -- cron ------------------------------------------------------------------------------------------
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])},
    ),
    ("day of week", 0, 7, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}),
)
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _cron_value(token: str, low: int, high: int, names: dict[str, int]) -> int | None:
    token = token.lower()
    if token in names:
        return names[token]
    if token.isdigit() and low <= int(token) <= high:
        return int(token)
    return None


def _cron_field(text: str, label: str, low: int, high: int, names: dict[str, int]) -> str | None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"{label}: step '{step}' must be a positive number"
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = _cron_value(start, low, high, names)
        last = _cron_value(end, low, high, names) if dash else first
        if first is None or last is None:
            return f"{label}: '{base}' is outside {low}-{high}"
        if last < first:
            return f"{label}: range '{base}' runs backwards"
    return None


def cron_schedule(value: str) -> str | None:
    """A five-field cron schedule, as the CronJob controller accepts it (or a macro such as @daily)."""
    if value.strip().lower() in _CRON_MACROS:
        return None
    if "TZ=" in value:
        return "put the time zone in timeZone, not in the schedule (CRON_TZ/TZ is not supported)"
    fields = value.split()
    if len(fields) != 5:
        return f"'{value}' is not a cron schedule: expected 5 fields (minute hour day-of-month month day-of-week)"
    for text, (label, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field(text, label, low, high, names)
        if problem:
            return f"'{value}': {problem}"
    return None


def is_dns1123_label(value: str) -> bool:
    return isinstance(value, str) and dns1123_label(value) is None


def is_quantity(value: object) -> bool:
    return quantity(str(value)) is None
