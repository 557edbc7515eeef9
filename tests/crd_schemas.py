"""Strict validation of the custom resources the platform applies, against ``tests/schemas/``."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jsonschema
import yaml

SCHEMAS = Path(__file__).with_name("schemas")


@cache
def schema_for(api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    path = SCHEMAS / f"{api_version.replace('/', '_')}_{kind}.yaml"
    if not path.exists():
        return None
    schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def known(document: dict) -> bool:
    return schema_for(document.get("apiVersion", ""), document.get("kind", "")) is not None


def problems(document: dict) -> list[str]:
    """Every way ``document`` breaks its schema, as ``<path>: <message>``."""
    validator = schema_for(document["apiVersion"], document["kind"])
    assert validator is not None, f"no schema for {document['apiVersion']} {document['kind']}"
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    )
