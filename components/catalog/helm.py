"""Helm releases whose container resources are exactly what the program states.

Helm merges the values it is given into the chart's own ``values.yaml``: maps key by key, while
lists and scalars replace. Setting only ``resources.limits.memory`` therefore keeps a chart's
default ``resources.limits.cpu`` (dcgm-exporter's 200m, for one). Each chart's descriptor
(``registry.py``) records, at the version the stacks pin, every ``resources`` map the chart reads
for a container the program runs, with the chart's default there. ``helm_release`` sends a null
for every one of those default keys (a null deletes a chart default; a key the program states wins
over its null), so what survives the merge is what the program says, no more.

The nulls travel as a values file (``valueYamlFiles``): the provider keeps a file's nulls and
applies ``values`` on top, while a None inside ``values`` is not guaranteed to reach Helm from the
Python SDK.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import registry
from .registry import ResourcePath


# -- pure ------------------------------------------------------------------------------------------
def _nested(path: ResourcePath, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    return out


def _nulled(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The same keys, every leaf a null."""
    return {k: _nulled(v) if isinstance(v, Mapping) and v else None for k, v in tree.items()}


def merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's ``MergeMaps`` (how the provider layers ``values`` over the values files): maps merge
    key by key, anything else in ``override`` (a null too) replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_maps(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def coalesce(defaults: Mapping[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values into a chart's defaults: user maps merge into default maps,
    a user null deletes the default key, any other user value wins."""
    out: dict[str, Any] = {}
    for key in {**defaults, **user}:
        if key in user and user[key] is None:
            continue
        if key not in user:
            out[key] = copy.deepcopy(defaults[key])
        elif isinstance(user[key], Mapping) and isinstance(defaults.get(key), Mapping):
            out[key] = coalesce(defaults[key], user[key])
        elif isinstance(user[key], Mapping):
            out[key] = coalesce({}, user[key])
        else:
            out[key] = copy.deepcopy(user[key])
    return out


def unset_chart_defaults(chart: str) -> dict[str, Any]:
    """A null for every default key of every resources map of ``chart`` (empty when it has none)."""
    unset: dict[str, Any] = {}
    for path, default in _chart_paths(chart).items():
        if default:
            unset = merge_maps(unset, _nested(path, _nulled(default)))
    return unset


def _lookup(values: Mapping[str, Any], path: ResourcePath) -> Any:
    node: Any = values
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def unstated_resources(chart: str, values: Mapping[str, Any]) -> list[str]:
    """The resources maps of ``chart`` that ``values`` leaves to the chart (dotted value paths)."""
    return [".".join(path) for path in _chart_paths(chart) if not _lookup(values, path)]


def effective_resources(
    chart: str, values: Mapping[str, Any], value_files: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """What each container of ``chart`` gets after the provider and Helm have merged everything."""
    user: dict[str, Any] = {}
    for file in value_files:
        user = merge_maps(user, file)
    user = merge_maps(user, values)
    return {
        ".".join(path): coalesce(default, _lookup(user, path) or {})
        for path, default in _chart_paths(chart).items()
    }


def _chart_paths(chart: str) -> Mapping[ResourcePath, Mapping[str, Any]]:
    """Every resources map the chart reads for a container the program runs (an empty map: the
    chart sets no default there)."""
    addon = registry.BY_CHART.get(chart)
    if addon is None:
        raise ValueError(
            f"chart {chart!r}: its resources defaults are not recorded; add them to its descriptor "
            "(catalog/registry.py) from the chart's values.yaml at the pinned version"
        )
    return addon.resources


# -- the release -----------------------------------------------------------------------------------
def chart_source(repository: str, chart: str) -> dict[str, Any]:
    """Where Helm pulls ``chart``: an OCI registry names it by reference (``oci://host/path/chart``,
    no repository); a classic repository serves it by name from its index."""
    if repository.startswith("oci://"):
        return {"chart": f"{repository.rstrip('/')}/{chart}"}
    return {"chart": chart, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=repository)}


def helm_release(
    resource_name: str,
    *,
    chart: str,
    version: str,
    repository: str,
    namespace: pulumi.Input[str],
    values: pulumi.Input[Mapping[str, Any]],
    opts: pulumi.ResourceOptions,
    create_namespace: bool = False,
) -> k8s.helm.v3.Release:
    """A ``helm.v3.Release`` of ``chart`` (named after it) whose resources are what ``values`` say."""
    if isinstance(values, Mapping):
        unstated = unstated_resources(chart, values)
        if unstated:
            raise ValueError(f"{chart}: state the resources of {', '.join(unstated)}")
    unset = unset_chart_defaults(chart)
    return k8s.helm.v3.Release(
        resource_name,
        name=chart,
        **chart_source(repository, chart),
        version=version,
        namespace=namespace,
        create_namespace=create_namespace or None,
        values=values,
        value_yaml_files=[pulumi.StringAsset(yaml.safe_dump(unset, sort_keys=True))] if unset else None,
        opts=opts,
    )
