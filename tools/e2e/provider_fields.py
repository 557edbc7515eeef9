"""The fields the program sets that the Kubernetes provider in use does not know.

The Python SDK (pulumi-kubernetes 4.34) is newer than the provider built here (a commit between 4.24 and
4.25): a field the SDK offers but the provider's schema lacks would be dropped or refused. This walks
each Kubernetes resource the program registers (the offline plan's ``resources.json``) against the
provider's own schema (``pulumi package get-schema``) and names every property path the schema does not
have. Custom resources have no schema in the provider; they are the API server's to judge.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

Schema = Mapping[str, Any]


def provider_schema(pulumi: str, plugin: str, cache: Path, env: Mapping[str, str]) -> Schema:
    """The provider's schema, as the engine would get it (cached beside the plugin, by its path)."""
    if cache.exists():
        return json.loads(cache.read_text())
    result = subprocess.run(
        [pulumi, "package", "get-schema", plugin], capture_output=True, text=True, check=True, env=dict(env)
    )
    cache.write_text(result.stdout)
    return json.loads(result.stdout)


def _unknown(value: Any, spec: Mapping[str, Any], schema: Schema, path: str) -> Iterator[str]:
    if not isinstance(spec, Mapping):
        return
    ref = spec.get("$ref", "")
    if ref.startswith("#/types/"):
        spec = schema["types"].get(ref.removeprefix("#/types/"), {})
    elif ref:
        return  # pulumi.json#/Any, Archive, Asset: anything goes
    if "oneOf" in spec:
        return  # an int-or-string and the like: the value's shape is the API server's to judge
    if isinstance(value, Mapping):
        properties = spec.get("properties")
        if properties is not None:
            for key, item in value.items():
                if key not in properties:
                    yield f"{path}.{key}"
                else:
                    yield from _unknown(item, properties[key], schema, f"{path}.{key}")
        elif isinstance(spec.get("additionalProperties"), Mapping):
            for key, item in value.items():
                yield from _unknown(item, spec["additionalProperties"], schema, f"{path}[{key}]")
    elif isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _unknown(item, spec["items"], schema, f"{path}[{index}]")


def unknown_fields(resources: list[Mapping[str, Any]], schema: Schema) -> dict[str, list[str]]:
    """``{resource type: [property paths]}`` for every Kubernetes input the provider's schema lacks."""
    found: dict[str, set[str]] = {}
    for resource in resources:
        typ = resource["type"]
        if typ == "pulumi:providers:kubernetes":
            spec = {"properties": schema["provider"]["inputProperties"]}
        elif typ in schema["resources"]:
            spec = {"properties": schema["resources"][typ]["inputProperties"]}
        else:
            continue  # not the provider's, or a custom resource
        # Array indices vary between objects of a type: name each path once, without them.
        for path in _unknown(resource["inputs"], spec, schema, ""):
            found.setdefault(typ, set()).add(_without_indices(path.lstrip(".")))
    return {typ: sorted(paths) for typ, paths in sorted(found.items())}


def _without_indices(path: str) -> str:
    out, depth = [], 0
    for char in path:
        if char == "[":
            depth += 1
            out.append("[]")
        elif char == "]":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out)
