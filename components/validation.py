"""Pure validators for the values a stack config holds: names, quantities, schedules, images, CIDRs.

Each returns an error message (``None`` when the value is fine), so callers can collect every problem
of a config before reporting, and the same rule serves the config models and the components.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
import urllib.parse
import zoneinfo
from decimal import Decimal

from .kubernetes_versions import DEFAULT_VERSION, SUPPORTED_VERSIONS

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_HOSTNAME_LABEL = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
# A Go duration (time.ParseDuration), what controllers read: 1h, 1h30m, 1.5h, 500ms.
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
# A Prometheus duration (retention, rate windows): whole numbers of ms to years.
_PROMETHEUS_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# What the API server accepts as an environment variable name (not only C identifiers).
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# A key of a ConfigMap or Secret (and so a file name when mounted).
CONFIG_KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]+$")
# A Prometheus metric name (recording rules, custom metrics).
METRIC_NAME_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SLACK_CHANNEL_PATTERN = re.compile(r"^[#@][A-Za-z0-9._-]{1,80}$")
# A pinned EKS add-on version (v1.20.4-eksbuild.1).
ADDON_VERSION_PATTERN = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+-eksbuild\.[0-9]+$")
_EXACT_VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_EKS_CLUSTER_NAME = re.compile(r"[0-9A-Za-z][A-Za-z0-9_-]{0,99}")

# The Kubernetes minors EKS runs that this platform supports, and the one a new cluster gets: both
# from the version calendar.
SUPPORTED_KUBERNETES_VERSIONS = SUPPORTED_VERSIONS
DEFAULT_KUBERNETES_VERSION = DEFAULT_VERSION
# The values CloudWatch Logs accepts for retention_in_days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)  # fmt: skip

_QUANTITY_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
# AWS tag keys and values: letters, digits and spaces (any script), and _ . : / = + - @.
_AWS_TAG_PUNCTUATION = frozenset("_.:/=+-@")
AWS_TAG_KEY_MAX, AWS_TAG_VALUE_MAX, AWS_TAGS_PER_RESOURCE = 128, 256, 50
# The waiting periods AWS KMS allows before it deletes a key (days).
KMS_DELETION_WINDOW_DAYS = range(7, 31)
MAX_PORT = 65535
# Pulumi's auto-naming appends "-" and 7 random hex characters to a resource's name.
AUTONAME_SUFFIX_LENGTH = 8
_IMAGE_DIGEST = re.compile(r".+@sha256:[0-9a-f]{64}")
_IMAGE_TAG = re.compile(r"[\w][\w.-]{0,127}")


def dns1123_label(value: str) -> str | None:
    """Kubernetes names of namespaces, services, containers: lower-case alphanumerics and '-', max 63."""
    if len(value) > 63:
        return f"'{value[:20]}...' is longer than 63 characters"
    if not _DNS1123_LABEL.fullmatch(value):
        return f"'{value}' is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending alphanumeric)"
    return None


def dns1035_label(value: str) -> str | None:
    """Service names: a DNS-1123 label that starts with a letter."""
    problem = dns1123_label(value)
    if problem is None and not value[:1].isalpha():
        return f"'{value}' must start with a letter (it names a Service: DNS-1035)"
    return problem


def dns1123_subdomain(value: str) -> str | None:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value):
        return f"'{value}' is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
    return None


def label_key(value: str) -> str | None:
    """A Kubernetes label (or taint) key: ``[prefix/]name``, the prefix a DNS subdomain, the name at most 63."""
    prefix, slash, name = value.rpartition("/")
    if slash and (not prefix or dns1123_subdomain(prefix)):
        return f"'{value}': the prefix before '/' must be a DNS subdomain (e.g. example.com/team)"
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            f"'{value}' is not a label key: its name is 1 to 63 letters, digits, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


def label_value(value: str) -> str | None:
    """A Kubernetes label (or taint) value: empty, or up to 63 letters, digits, '-', '_', '.'."""
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        return (
            f"'{value}' is not a label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending alphanumeric"
        )
    return None


def _aws_tag_text(value: str) -> bool:
    return all(c.isalnum() or unicodedata.category(c) == "Zs" or c in _AWS_TAG_PUNCTUATION for c in value)


def aws_tag_key(value: str) -> str | None:
    """An AWS tag key: 1 to 128 characters of the tag alphabet, not starting with ``aws:``."""
    if not 1 <= len(value) <= AWS_TAG_KEY_MAX:
        return f"tag keys are 1 to {AWS_TAG_KEY_MAX} characters"
    if value.lower().startswith("aws:"):
        return "the aws: prefix is reserved for AWS"
    if not _aws_tag_text(value):
        return "tag keys hold letters, digits, spaces and _ . : / = + - @ only"
    return None


def aws_tag_value(value: str) -> str | None:
    """An AWS tag value: at most 256 characters of the tag alphabet."""
    if len(value) > AWS_TAG_VALUE_MAX:
        return f"tag values are at most {AWS_TAG_VALUE_MAX} characters"
    if not _aws_tag_text(value):
        return "tag values hold letters, digits, spaces and _ . : / = + - @ only"
    return None


def hostname(value: str) -> str | None:
    """A fully qualified host name for an Ingress rule (a leading '*.' wildcard is allowed)."""
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or any(len(label) > 63 for label in labels):
        return f"'{value}' is not a valid DNS host name (e.g. llm.example.com)"
    if not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels) or "*" in labels[1:]:
        return f"'{value}' is not a valid DNS host name (e.g. llm.example.com)"
    if labels[-1].isdigit():
        return f"'{value}' is not a DNS host name: an IP address or a numeric top-level label"
    return None


def quantity(value: str | int) -> str | None:
    """A Kubernetes resource quantity such as ``500m``, ``2``, ``16Gi``."""
    if not _QUANTITY.fullmatch(str(value)):
        return f"'{value}' is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"
    return None


def quantity_value(value: str | int) -> Decimal:
    """The exact value of a quantity in base units (cores, bytes); ValueError when it is not one."""
    match = _QUANTITY.fullmatch(str(value))
    if not match:
        raise ValueError(quantity(value))
    number, suffix = match.group(1), match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(number + suffix)
    return Decimal(number) * _QUANTITY_SUFFIXES[suffix]


def duration(value: str) -> str | None:
    """A Go duration as Kubernetes controllers read it (``1h``, ``30m``, ``1h30m``)."""
    if not _DURATION.fullmatch(value):
        return f"'{value}' is not a duration (e.g. 30s, 15m, 1h)"
    return None


_GO_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_NANOSECONDS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def go_duration(value: str) -> str:
    """A duration as a Go controller writes it back (``time.Duration.String()``, what a
    ``metav1.Duration`` field serializes to): ``15m`` -> ``15m0s``, ``1h`` -> ``1h0m0s``. A controller
    that updates the whole object stores this form; a field written in any other form then differs
    from what the program applied, and the controller owns it."""
    if problem := duration(value):
        raise ValueError(problem)
    total = sum(int(Decimal(n) * _NANOSECONDS[u]) for n, u in _GO_DURATION_PART.findall(value))
    if total == 0:
        return "0s"
    if total < 10**9:  # below a second: the largest unit below it, with a fraction
        unit, size = next((u, n) for u, n in (("ms", 10**6), ("µs", 10**3), ("ns", 1)) if total >= n)
        return f"{_fraction(total, size)}{unit}"
    seconds, rest = divmod(total, 10**9)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    text = f"{_fraction(seconds * 10**9 + rest, 10**9)}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _fraction(amount: int, unit: int) -> str:
    whole, part = divmod(amount, unit)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0") if part else ""
    return f"{whole}.{digits}" if digits else str(whole)


def prometheus_duration(value: str) -> str | None:
    """A duration as Prometheus reads it (``2m``, ``15d``, ``1w``)."""
    if not _PROMETHEUS_DURATION.fullmatch(value):
        return f"'{value}' is not a Prometheus duration (e.g. 2m, 15d)"
    return None


def env_name(value: str) -> str | None:
    """An environment variable name as Kubernetes accepts it: letters, digits, '-', '.', '_', not starting
    with a digit."""
    if not _ENV_NAME.fullmatch(value):
        return f"'{value}' is not a valid environment variable name"
    return None


def config_key(value: str) -> str | None:
    """A key of a ConfigMap or Secret: letters, digits, '-', '.', '_'."""
    if not CONFIG_KEY_PATTERN.fullmatch(value):
        return f"'{value}' is not a valid ConfigMap or Secret key (letters, digits, '-', '.', '_')"
    return None


def metric_name(value: str) -> str | None:
    if not METRIC_NAME_PATTERN.fullmatch(value):
        return f"'{value}' is not a Prometheus metric name"
    return None


def slack_channel(value: str) -> str | None:
    if not SLACK_CHANNEL_PATTERN.fullmatch(value):
        return f"'{value}' is not a Slack channel (#channel or @user)"
    return None


def kubernetes_version(value: str) -> str | None:
    if value not in SUPPORTED_KUBERNETES_VERSIONS:
        return f"'{value}' is not supported (supported: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)})"
    return None


def log_retention_days(value: int) -> str | None:
    if value not in LOG_RETENTION_DAYS:
        return f"{value!r} is not a CloudWatch retention (one of {', '.join(map(str, LOG_RETENTION_DAYS))})"
    return None


def cidr(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return f"'{value}' is not a CIDR block with its host bits zero (e.g. 10.0.0.0/16)"
    return None


def ipv4_cidr(value: str) -> str | None:
    if problem := cidr(value):
        return problem
    if ipaddress.ip_network(value).version != 4:
        return f"'{value}' is not an IPv4 block"
    return None


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def chart_repository(value: str) -> str | None:
    """A Helm chart repository URL: https, an OCI registry (oci://, over TLS), or plain http on this
    machine's loopback only."""
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("https", "http", "oci") or not url.hostname:
        return f"'{value}' is not a chart repository URL (https://host/path or oci://host/path)"
    if url.scheme == "http" and url.hostname not in _LOOPBACK_HOSTS:
        return f"'{value}': use https (plain http only for a repository on 127.0.0.1)"
    if url.query or url.fragment or url.username:
        return f"'{value}': a chart repository URL has no query, fragment or credentials"
    return None


def time_zone(value: str) -> str | None:
    """An IANA name known to the tz database (what a CronJob's timeZone takes)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return f"'{value}' is not an IANA time zone (e.g. Etc/UTC, Europe/Paris)"
    return None


def image_reference(value: str) -> str | None:
    """A container image pinned by tag (``repo:tag``) or digest (``repo@sha256:...``): a bare ``repo`` means :latest."""
    if not value or any(c.isspace() for c in value):
        return f"'{value}' is not an image reference"
    if "@sha256:" in value:
        if not _IMAGE_DIGEST.fullmatch(value):
            return f"'{value}' has a malformed digest (sha256: and 64 lower-case hex digits)"
        return None
    last = value.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"'{value}' has no tag: pin one (e.g. {value}:1.2.3) or a digest"
    if not _IMAGE_TAG.fullmatch(last.rsplit(":", 1)[1]):
        return f"'{value}' has an invalid tag (letters, digits, '_', '.', '-'; at most 128)"
    return None


def is_digest_pinned(image: str) -> bool:
    """``repo@sha256:<64 hex>`` (a tag before the digest is allowed and ignored): one immutable image."""
    return "@sha256:" in image and bool(_IMAGE_DIGEST.fullmatch(image))


# -- cron ------------------------------------------------------------------------------------------
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
# (field, lowest, highest, names, "?" allowed): the ranges of the robfig/cron standard parser the
# Kubernetes CronJob controller uses (day of week 0-6: 7 is not Sunday there).
_CRON_FIELDS = (
    ("minute", 0, 59, {}, False),
    ("hour", 0, 23, {}, False),
    ("day of month", 1, 31, {}, True),
    ("month", 1, 12, _MONTHS, False),
    ("day of week", 0, 6, _DAYS, True),
)
CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_NUMBER = re.compile(r"^[0-9]+$")
_CRON_TZ = re.compile(r"^(CRON_)?TZ=")


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    if text.upper() in names:
        return names[text.upper()]
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    if not low <= int(text) <= high:
        raise ValueError(f"{text!r} is outside {low}-{high}")
    return int(text)


def _cron_field_errors(
    text: str, label: str, low: int, high: int, names: dict[str, int], question: bool
) -> list[str]:
    errors = []
    for part in text.split(","):
        try:
            if not part:
                raise ValueError("empty list item")
            base, slash, step = part.partition("/")
            if slash and (not _NUMBER.fullmatch(step) or int(step) == 0):
                raise ValueError(f"step {step!r} must be a positive number")
            if base == "*" or (question and base == "?"):
                continue
            start_text, dash, end_text = base.partition("-")
            start = _cron_value(start_text, low, high, names)
            if dash and _cron_value(end_text, low, high, names) < start:
                raise ValueError(f"range {base!r} ends before it starts")
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
    return errors


def _cron_problems(value: str) -> tuple[str | None, list[str]]:
    """(what makes ``value`` no cron schedule at all, or None; the problems of its fields)."""
    text = (value or "").strip()
    if not text:
        return "schedule is empty", []
    if _CRON_TZ.match(text):
        return (
            "TZ=/CRON_TZ= in the schedule is not supported: use time_zone (timeZone in the stack config)",
            [],
        )
    if text.startswith("@"):
        if text.lower() in CRON_MACROS:
            return None, []
        return f"unknown macro {text!r} ({', '.join(sorted(CRON_MACROS))})", []
    fields = text.split()
    if len(fields) != 5:
        return "expected 5 fields (minute hour day-of-month month day-of-week)", []
    errors: list[str] = []
    for field, (label, low, high, names, question) in zip(fields, _CRON_FIELDS, strict=True):
        errors.extend(_cron_field_errors(field, label, low, high, names, question))
    return None, errors


def cron_schedule_errors(value: str) -> list[str]:
    """Every problem with a 5-field cron expression (or macro such as ``@daily``); empty when valid.

    Fields: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-6 or SUN-SAT;
    each a comma list of ``*``, ``N``, ``N-M`` with optional ``/step`` (``?`` for the day fields).
    ``@every`` and ``TZ=``/``CRON_TZ=`` prefixes are rejected, as the CronJob controller does.
    """
    invalid, errors = _cron_problems(value)
    return [invalid] if invalid else errors


def cron_schedule(value: str) -> str | None:
    """A cron schedule as the CronJob controller accepts it (see ``cron_schedule_errors``)."""
    invalid, errors = _cron_problems(value)
    if invalid:
        return f"'{value}' is not a cron schedule: {invalid}"
    if errors:
        return f"'{value}': " + "; ".join(errors)
    return None


def is_dns1123_label(value: str) -> bool:
    return isinstance(value, str) and dns1123_label(value) is None


def is_quantity(value: object) -> bool:
    return quantity(str(value)) is None


def is_dns1123_subdomain(value: object) -> bool:
    """Names of Secrets, ConfigMaps, SecretStores: DNS-1123 labels joined by '.', max 253."""
    return isinstance(value, str) and dns1123_subdomain(value) is None


def is_exact_version(value: object) -> bool:
    """A chart version pinned exactly (``1.2.3``, ``v1.2.3-rc.1``), not a range."""
    return isinstance(value, str) and _EXACT_VERSION.fullmatch(value) is not None


def is_s3_bucket_name(value: object) -> bool:
    """3-63 lower-case letters, digits, '.' and '-', starting and ending alphanumeric, no '..'."""
    return isinstance(value, str) and _S3_BUCKET.fullmatch(value) is not None and ".." not in value


def is_port(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PORT


def is_eks_cluster_name(value: object) -> bool:
    """1-100 letters, digits, '-' or '_', starting with a letter or digit."""
    return isinstance(value, str) and _EKS_CLUSTER_NAME.fullmatch(value) is not None
