"""Reading the stack config into ``PlatformSettings``, with every problem named by its key path."""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError

from .. import sdk
from ._base import NAMESPACE, ConfigError
from .settings import PlatformSettings, rule_violations

# -- loading ---------------------------------------------------------------------------------------

SECTIONS = tuple(PlatformSettings.model_fields)


# Problem lines quote what was given: a huge key or value must not flood the terminal, so keys and
# quoted values are clipped, never the reason around them. A message is cut only past a length no
# rule's own text reaches (a value quoted without quotes).
MAX_KEY_LENGTH, MAX_VALUE_LENGTH, MAX_MESSAGE_LENGTH = 60, 100, 2000
# A quoted value: quotes not inside a word (the apostrophe of "namespace's" opens nothing).
_QUOTED = re.compile(r"(?<!\w)'[^']*'(?!\w)|(?<!\w)\"[^\"]*\"(?!\w)")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(text: str) -> str:
    """The reason whole, each quoted value in it at most ``MAX_VALUE_LENGTH`` characters."""

    def shorten(quoted: re.Match[str]) -> str:
        value = quoted.group(0)
        return value if len(value) <= MAX_VALUE_LENGTH + 2 else value[:MAX_VALUE_LENGTH] + "…" + value[0]

    short = _QUOTED.sub(shorten, text)
    return _clip(short, MAX_MESSAGE_LENGTH)


def _problem(loc: Sequence[str | int], message: str) -> str:
    """``aiplatform:<key path>: <message>``, the key path as a person writes it in the stack file."""
    if not loc:
        return f"{NAMESPACE}: {_message(message)}"
    section, *rest = loc
    path = f"{NAMESPACE}:{_clip(str(section), MAX_KEY_LENGTH)}"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{_clip(str(part), MAX_KEY_LENGTH)}"
    return f"{path}: {_message(message)}"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The settings model that holds the keys at ``loc`` (a key path below the namespace), if any."""
    annotation: Any = PlatformSettings
    for part in loc:
        annotation = _inner_model(annotation, part)
        if annotation is None:
            return None
    return _inner_model(annotation, None)


def _inner_model(annotation: Any, part: str | int | None) -> Any:
    """Step from ``annotation`` into ``part``: a model's field, a list's item, a mapping's value;
    ``None`` as part unwraps ``X | None`` to the model itself."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _inner_model(models[0], part) if len(models) == 1 else None
    if origin is typing.Annotated:
        return _inner_model(typing.get_args(annotation)[0], part)
    if part is None:
        return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if isinstance(part, int) and origin in (list, tuple):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field is not None else None
    return None


def _unknown_key(loc: Sequence[str | int]) -> str:
    """An unknown key, with the known key it most likely means."""
    model = _model_at(loc[:-1])
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"did you mean {close[0]}?" if close else "check the spelling against Pulumi.yaml"
    return f"unknown key ({hint})"


def _describe(error: Mapping[str, Any], loc: Sequence[str | int]) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return "required key is missing"
    if (
        kind == "string_type"
        and isinstance(error.get("input"), int | float)
        and not isinstance(error.get("input"), bool)
    ):
        # YAML reads an unquoted 1.30 as the number 1.3.
        return f"a number ({error['input']!r}) where text is expected: quote the value in the stack file"
    return message.removeprefix("Value error, ")


def problems_of(error: ValidationError) -> list[str]:
    """Every problem of a validation error as ``aiplatform:<key path>: <what is wrong>``."""
    problems: list[str] = []
    for item in error.errors():
        # Validator wrappers add "function-after[...]" steps to the location; they are not keys.
        loc = [p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-after"))]
        if item["type"] == "rules":
            problems += [_problem([*loc, *path], message) for path, message in item["ctx"]["violations"]]
        elif loc and loc[-1] == "[key]":
            # A mapping key that is not allowed: the key itself is the path.
            problems.append(_problem(loc[:-1], f"not a known key here: {_describe(item, loc[:-1])}"))
        else:
            problems.append(_problem(loc, _describe(item, loc)))
    return list(dict.fromkeys(problems))


def parse_settings(raw: Mapping[str, Any]) -> PlatformSettings:
    """Validate a mapping of section name -> value (as in the stack file, without the namespace)."""
    try:
        return PlatformSettings.model_validate(dict(raw))
    except ValidationError as exc:
        # Field errors stop pydantic before the rules between sections; run those whose sections
        # are valid on their own, so one run reports every problem.
        rules = [_problem(path, message) for path, message in rule_violations(raw)]
        raise ConfigError(list(dict.fromkeys(problems_of(exc) + rules))) from None


def secret_config_keys(raw: Mapping[str, Any]) -> set[str]:
    """Config keys that hold secret values and are named by other settings (never parsed as settings)."""
    keys: set[str] = set()
    for secret in raw.get("secrets") or []:
        if isinstance(secret, Mapping) and isinstance(secret.get("valueFrom"), str):
            keys.add(secret["valueFrom"])
    cluster = raw.get("cluster")
    if isinstance(cluster, Mapping) and isinstance(cluster.get("existing"), Mapping):
        keys.add(str(cluster["existing"].get("kubeconfigSecret", "existingKubeconfig")))
    elif isinstance(cluster, Mapping) and cluster.get("mode") == "existing":
        keys.add("existingKubeconfig")
    return keys


# Stands in for a secret config value: settings never hold secret values, only their key names.
SECRET_VALUE = object()


def _raw_namespace_config() -> dict[str, Any]:
    """Every ``aiplatform:*`` key the runtime was given, objects decoded from their JSON form."""
    raw: dict[str, Any] = {}
    for full_key, value in sdk.config_values().items():
        namespace, _, key = str(full_key).partition(":")
        if namespace != NAMESPACE or not key:
            continue
        if sdk.is_secret_config(full_key):
            raw[key] = SECRET_VALUE
            continue
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[key] = value
    return raw


def load_settings() -> PlatformSettings:
    """Read and validate the ``aiplatform:`` config of the current stack, or raise ``ConfigError``."""
    raw = _raw_namespace_config()
    secret_keys = secret_config_keys(raw)
    problems: list[str] = []
    for key, value in raw.items():
        if key in secret_keys:
            continue
        if key not in SECTIONS:
            problems.append(_problem([key], f"unknown key (known keys: {', '.join(SECTIONS)})"))
        elif value is SECRET_VALUE:
            problems.append(_problem([key], "must not be a secret (only secret values are encrypted)"))
        elif value is None:
            problems.append(_problem([key], "is empty: give it a value or remove the key"))
    settings_raw = {k: v for k, v in raw.items() if k in SECTIONS and v is not None and v is not SECRET_VALUE}
    try:
        settings = parse_settings(settings_raw)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return settings


def secret_value(key: str) -> pulumi.Output[str] | None:
    """A secret config value of this namespace, as a Pulumi secret (never a plain string)."""
    return pulumi.Config(NAMESPACE).get_secret(key)
