"""Hypothesis strategies that turn the committed stack configs into hostile ones."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from hypothesis import strategies as st

from tests.stacks import EXAMPLE_STACKS, STACKS, sections

Path = tuple[str | int, ...]

# Dicts whose keys are data, not schema (an unknown key there may be valid).
FREE_FORM_DICTS = frozenset({"tags", "labels", "env", "data", "addons"})

NASTY_STRINGS = [
    "",
    " ",
    "🔥",
    "名前",
    "ℵ₀",
    "\x00",
    "\n",
    "a" * 300,
    "A" * 64,
    "-1",
    "1e999",
    "NaN",
    "null",
    "true",
    "dev",
    "prod",
    "../../etc/passwd",
    "arn:aws:iam::123456789012:role/x",
]

junk_scalars = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, -5, 10**30, -(10**30), 2**63, 2**64 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(NASTY_STRINGS),
)

junk = st.recursive(
    junk_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(NASTY_STRINGS)), children, max_size=3),
    ),
    max_leaves=6,
)

# Strings a DNS-1123 label field never accepts.
bad_names = st.one_of(
    st.sampled_from(["", "🔥", "名前", "Upper", "under_score", "-lead", "trail-", "a.b", "a b", "x" * 64]),
    st.text(min_size=64, max_size=80, alphabet="abc"),
    st.text(min_size=1, max_size=10).filter(lambda s: any(c in s for c in "🔥_ .ABCZ!") or s.isspace()),
)


@cache
def _committed(stack: str) -> dict[str, Any]:
    return sections(stack)


def committed(stack: str) -> dict[str, Any]:
    """A fresh copy of a committed stack's ``aiplatform:`` sections."""
    return copy.deepcopy(_committed(stack))


def all_paths(tree: Any, prefix: Path = ()) -> list[Path]:
    """Every path into ``tree`` (dict keys and list indexes), the root excluded."""
    found: list[Path] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.append((*prefix, key))
            found += all_paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found.append((*prefix, index))
            found += all_paths(value, (*prefix, index))
    return found


def get(tree: Any, path: Path) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def set_at(tree: Any, path: Path, value: Any) -> None:
    get(tree, path[:-1])[path[-1]] = value


def delete_at(tree: Any, path: Path) -> None:
    del get(tree, path[:-1])[path[-1]]


@st.composite
def stack_and_config(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    # The example stacks too: their compute sections (pools, Karpenter, Auto Mode) get mutated as well.
    stack = draw(st.sampled_from((*STACKS, *EXAMPLE_STACKS)))
    return stack, committed(stack)


@st.composite
def mutated_configs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A committed config with one to three random mutations (the result may still be valid)."""
    stack, config = draw(stack_and_config())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = all_paths(config)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        target = get(config, path)
        kind = draw(st.sampled_from(["replace", "replace", "delete", "unknown-key", "duplicate", "inflate"]))
        if kind == "replace":
            set_at(config, path, draw(junk))
        elif kind == "delete":
            delete_at(config, path)
        elif kind == "unknown-key" and isinstance(target, dict):
            target[draw(st.text(min_size=1, max_size=10))] = draw(junk)
        elif kind == "duplicate" and isinstance(target, list) and target:
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
        elif kind == "inflate" and isinstance(target, list) and target:
            target.extend(copy.deepcopy(target[0]) for _ in range(draw(st.integers(50, 300))))
        else:
            set_at(config, path, draw(junk))
    return stack, config


def model_dict_paths(config: dict[str, Any]) -> list[Path]:
    """Paths of the dicts that are models (fixed keys): an unknown key there is always an error."""
    found = []
    for path in all_paths(config):
        if isinstance(get(config, path), dict) and not (
            isinstance(path[-1], str) and path[-1] in FREE_FORM_DICTS
        ):
            found.append(path)
    return found


def name_paths(config: dict[str, Any]) -> list[Path]:
    """Paths of every ``name`` that must be a DNS-1123 label."""
    label_lists = (
        ("namespaces",),
        ("secrets",),
        ("nodeGroups", "gpu"),
        ("compute", "pools"),
        ("workloads", "inference"),
        ("workloads", "training"),
        ("workloads", "batch"),
    )
    found: list[Path] = [("cluster", "name")]
    for base in label_lists:
        if _exists(config, base):
            found += [(*base, i, "name") for i in range(len(get(config, base)))]
    return found


# Bounded integers of the committed configs: negative or 10**30 is always out of range.
BOUNDED_INTS: list[Path] = [
    ("network", "azCount"),
    ("nodeGroups", "system", "scaling", "minSize"),
    ("nodeGroups", "system", "scaling", "maxSize"),
    ("nodeGroups", "system", "diskSizeGiB"),
    ("nodeGroups", "gpu", 0, "gpusPerNode"),
    ("nodeGroups", "gpu", 0, "scaling", "maxSize"),
    ("namespaces", 0, "quota", "gpus"),
    ("namespaces", 0, "quota", "pods"),
    ("workloads", "inference", 0, "port"),
    ("workloads", "inference", 0, "autoscaling", "minReplicas"),
    ("workloads", "inference", 0, "probes", "startupSeconds"),
    ("workloads", "inference", 1, "replicas"),
    ("workloads", "training", 0, "completions"),
    ("workloads", "training", 0, "parallelism"),
    ("workloads", "training", 0, "backoffLimit"),
    ("compute", "pools", 0, "limits", "gpus"),
    ("compute", "pools", 0, "limits", "cpu"),
    ("compute", "gpuDiskGiB"),
]

# (list that owns the reference, field, index) -> a reference that resolves nowhere.
DANGLING: list[Path] = [
    ("workloads", "inference", 0, "namespace"),
    ("workloads", "batch", 0, "namespace"),
    ("workloads", "inference", 0, "gpu", "nodeGroup"),
    ("workloads", "training", 0, "gpu", "nodeGroup"),
    ("workloads", "inference", 0, "gpu", "pool"),
    ("workloads", "training", 0, "gpu", "pool"),
    ("workloads", "inference", 0, "autoscaling", "customMetrics", 0, "name"),
    ("secrets", 0, "namespace"),
]

# Lists whose elements carry unique names: a duplicated element is always an error.
NAMED_LISTS: list[Path] = [
    ("namespaces",),
    ("secrets",),
    ("nodeGroups", "gpu"),
    ("compute", "pools"),
    ("observability", "customMetrics"),
    ("workloads", "inference"),
    ("workloads", "training"),
    ("workloads", "batch"),
]

REQUIRED_SECTIONS = ("environment", "cluster", "charts")


@st.composite
def invalid_configs(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    """(stack, what was done, config) where the config is always invalid."""
    stack, config = draw(stack_and_config())
    kind = draw(
        st.sampled_from(
            [
                "unknown-key",
                "missing-section",
                "section-wrong-type",
                "bad-name",
                "out-of-range",
                "dangling",
                "duplicate",
                "huge-duplicates",
            ]
        )
    )
    if kind == "unknown-key":
        path = draw(st.sampled_from([(), *model_dict_paths(config)]))
        key = draw(st.sampled_from(["replicaCount", "🔥", "名前", "x" * 200, "Name", "NAME", "nam"]))
        get(config, path)[key] = draw(junk)
        done = f"unknown key {key!r} at {path}"
    elif kind == "missing-section":
        section = draw(st.sampled_from(REQUIRED_SECTIONS))
        del config[section]
        done = f"missing {section}"
    elif kind == "section-wrong-type":
        section = draw(st.sampled_from(sorted(config)))
        value = config[section]
        wrong = draw(
            junk.filter(
                lambda v, value=value: (
                    type(v) is not type(value) and not (isinstance(value, str) and v in ("dev", "prod"))
                )
            )
        )
        config[section] = wrong
        done = f"{section} = {wrong!r}"
    elif kind == "bad-name":
        path = draw(st.sampled_from(name_paths(config)))
        set_at(config, path, draw(bad_names))
        done = f"{path} = {get(config, path)!r}"
    elif kind == "out-of-range":
        path = draw(st.sampled_from([p for p in BOUNDED_INTS if _exists(config, p)]))
        set_at(config, path, draw(st.sampled_from([-1, -(10**30), 10**30, 2**64])))
        done = f"{path} = {get(config, path)!r}"
    elif kind == "dangling":
        path = draw(st.sampled_from([p for p in DANGLING if _exists(config, p)]))
        set_at(config, path, draw(st.sampled_from(["nowhere", "ghost-ns", "missing_metric_zz"])))
        done = f"{path} dangles"
    elif kind == "duplicate":
        path = draw(st.sampled_from([p for p in NAMED_LISTS if _exists(config, p) and get(config, p)]))
        items = get(config, path)
        items.append(copy.deepcopy(draw(st.sampled_from(items))))
        done = f"duplicate element of {path}"
    else:
        path = draw(st.sampled_from([p for p in NAMED_LISTS if _exists(config, p) and get(config, p)]))
        items = get(config, path)
        items.extend(copy.deepcopy(items[0]) for _ in range(draw(st.integers(200, 1000))))
        done = f"{len(items)} elements in {path}"
    return stack, done, config


def _exists(config: Any, path: Path) -> bool:
    try:
        get(config, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True
