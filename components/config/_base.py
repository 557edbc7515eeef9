"""Shared pieces of the settings models: strict base model, value types, rule violations."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pulumi.errors import RunError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)
from pydantic_core import PydanticCustomError

from .. import validation
from ..addons.ingress import ACM_ARN_PATTERN
from ..addons.secrets import SECRET_ARN_PATTERN
from ..cluster import ROLE_ARN_PATTERN

NAMESPACE = "aiplatform"
# The name __main__ gives the platform: the physical names of its resources start with it.
RESOURCE_PREFIX = "aiplatform"

# -- error reporting -------------------------------------------------------------------------------


class ConfigError(RunError):
    """A stack config that cannot be deployed. Pulumi prints a RunError without a traceback."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("invalid stack configuration:\n  " + "\n  ".join(self.problems))


Violation = tuple[tuple[str | int, ...], str]


def raise_violations(found: list[Violation]) -> None:
    """Raise the rule violations of a model at once; each carries its path relative to the model."""
    if found:
        raise PydanticCustomError("rules", "{summary}", {"violations": found, "summary": str(found)})


def checked(check: Callable[[str], str | None]) -> Callable[[str], str]:
    """Adapt a pure validator (message or None) to a pydantic field validator."""

    def run(value: str) -> str:
        problem = check(value)
        if problem:
            raise PydanticCustomError("value", "{problem}", {"problem": problem})
        return value

    return run


DnsLabel = Annotated[str, AfterValidator(checked(validation.dns1123_label))]
Quantity = Annotated[str, AfterValidator(checked(validation.quantity))]
Cidr = Annotated[str, AfterValidator(checked(validation.cidr))]
Image = Annotated[str, AfterValidator(checked(validation.image_reference))]
Hostname = Annotated[str, AfterValidator(checked(validation.hostname))]
Duration = Annotated[str, AfterValidator(checked(validation.duration))]
EnvName = Annotated[str, AfterValidator(checked(validation.env_name))]
RetentionDays = Annotated[
    int,
    AfterValidator(
        checked(
            lambda days: (
                None
                if days in validation.LOG_RETENTION_DAYS
                else f"must be one of {sorted(validation.LOG_RETENTION_DAYS)}"
            )
        )
    ),
]
ChartVersion = Annotated[
    str,
    AfterValidator(
        checked(
            lambda v: (
                None
                if validation.is_exact_version(v)
                else f"'{v}' is not an exact chart version (e.g. 1.2.3)"
            )
        )
    ),
]
ChartRepositoryUrl = Annotated[str, AfterValidator(checked(validation.chart_repository))]
AddonVersion = Annotated[str, Field(pattern=validation.ADDON_VERSION_PATTERN.pattern)]
Arn = Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{0,12}:.+$")]


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[str], str | None]:
    return lambda value: None if pattern.fullmatch(value) else f"'{value}' is not {what}"


RoleArn = Annotated[
    str,
    AfterValidator(
        checked(_pattern(ROLE_ARN_PATTERN, "an IAM role ARN (arn:aws:iam::<12 digits>:role/<name>)"))
    ),
]
CertificateArn = Annotated[str, AfterValidator(checked(_pattern(ACM_ARN_PATTERN, "an ACM certificate ARN")))]
SecretArn = Annotated[
    str,
    AfterValidator(
        checked(_pattern(SECRET_ARN_PATTERN, "a full Secrets Manager ARN (ending in -<6 characters>)"))
    ),
]
Ipv4Cidr = Annotated[str, AfterValidator(checked(validation.ipv4_cidr))]
ServiceName = Annotated[str, AfterValidator(checked(validation.dns1035_label))]
ConfigKey = Annotated[str, Field(pattern=validation.CONFIG_KEY_PATTERN.pattern, max_length=253)]
MetricName = Annotated[str, Field(pattern=validation.METRIC_NAME_PATTERN.pattern)]
PositiveQuantity = Annotated[
    Quantity,
    AfterValidator(checked(lambda v: None if validation.quantity_value(v) > 0 else "must be greater than 0")),
]


def _aws_tags(tags: dict[str, str]) -> dict[str, str]:
    raise_violations(
        [
            ((key,), problem)
            for key, value in tags.items()
            if (problem := validation.aws_tag_key(key) or validation.aws_tag_value(value))
        ]
    )
    return tags


AwsTags = Annotated[dict[str, str], AfterValidator(_aws_tags)]


class Model(BaseModel):
    """Strict, immutable settings: unknown keys are errors, and nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, str_strip_whitespace=False)


def duplicates(names: Iterable[str]) -> set[str]:
    return {name for name, count in Counter(names).items() if count > 1}


def unique_names(
    items: list, what: str, key: Callable[[Any], str] = lambda item: item.name
) -> list[Violation]:
    dupes = duplicates(key(item) for item in items)
    return [
        ((i, "name"), f"duplicate {what} '{key(item)}'") for i, item in enumerate(items) if key(item) in dupes
    ]
