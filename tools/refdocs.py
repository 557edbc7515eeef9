"""Reference pages of the components, generated from their code: ``python -m tools.refdocs`` (make docs).

One page per component in ``docs/reference/``: what it creates (the class docstring), its type token,
and a table per argument type (the ``...Args`` dataclass and the dataclasses its fields use): every
field with its type as written, its default, and its meaning. A field's meaning is its own doc in the
source (a ``#`` comment on or just above it, or a string just below it), else the sentences of the
class docstring that name it (``name``), else the same from the class it is inherited from; a
``Literal`` type's values follow. Then an Outputs table: the component's declared attributes with their
comments. The contracts in ``CONTRACTS`` (``PlatformOutputs``) get a page of their methods and fields.

``tests/test_refdocs.py`` fails when a committed page differs from what this script writes.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import re
import sys
import tokenize
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pydantic

from tools import syntax

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = PROJECT_ROOT / "docs" / "reference"
PACKAGE = "aiplatform"
# The platform's layer order, which the pages follow. Every module defining a ComponentResource gets
# pages (``component_modules``): one not named here comes before the platform's, by name.
LAYER_ORDER = (
    "network",
    "cluster",
    "compute.node_groups",
    "compute.karpenter",
    "compute.auto_mode",
    "addons.gpu",
    "compute.autoscaler",
    "iam",
    "addons.secrets",
    "addons.ingress",
    "addons.observability",
    "addons.alerts",
    "storage",
    "tenancy",
    "workloads.inference",
    "workloads.training",
    "workloads.batch",
    "workloads.shared_gpu",
    "platform",
)
# The typed contracts a team's program reads (not components): a page each.
CONTRACTS = ("outputs.PlatformOutputs",)
UNDOCUMENTED = "(undocumented)"


# -- reading the code ----------------------------------------------------------------------------


def _defined_components(module: Any) -> list[type[pulumi.ComponentResource]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
    ]


def component_modules() -> list[str]:
    """Every module of the package that defines a component (the offline plan has none, and its
    ``__main__`` runs a plan when imported), in the layer order."""
    package = importlib.import_module(PACKAGE)
    found = [
        info.name.removeprefix(f"{PACKAGE}.")
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}.")
        if not info.name.startswith(f"{PACKAGE}.plan")
        and _defined_components(importlib.import_module(info.name))
    ]
    platform = LAYER_ORDER.index("platform")
    return sorted(
        found, key=lambda name: (LAYER_ORDER.index(name) if name in LAYER_ORDER else platform - 0.5, name)
    )


def components() -> list[type[pulumi.ComponentResource]]:
    found = []
    for name in component_modules():
        found += _defined_components(importlib.import_module(f"{PACKAGE}.{name}"))
    return found


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def markdown(doc: str) -> str:
    """A docstring as Markdown: each reST literal block (a paragraph ending in ``::``, then an indented
    block) becomes a fenced Python block, which ``tests/test_doc_examples.py`` runs."""
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            block_end = i + 2
            while block_end < len(lines) and (
                not lines[block_end].strip() or lines[block_end].startswith(" ")
            ):
                block_end += 1
            code = "\n".join(lines[i + 2 : block_end]).rstrip()
            out += [line[:-1], "", "```python", inspect.cleandoc(code), "```"]
            if block_end < len(lines):
                out.append("")
            i = block_end
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


# Every example on the reference pages runs as written after this start (tests/test_doc_examples.py
# runs each under the offline plan's mock engine): the names the examples share.
PREAMBLE = """\
from aiplatform.addons.ingress import IngressController, IngressControllerArgs
from aiplatform.addons.secrets import ExternalSecrets, ExternalSecretsArgs, SecretSpec
from aiplatform.catalog.registry import AWS_LOAD_BALANCER_CONTROLLER, EXTERNAL_SECRETS
from aiplatform.cluster import EksCluster, EksClusterArgs
from aiplatform.compute.node_groups import NodeGroups, NodeGroupsArgs, NodeGroupSpec

subnets = ["subnet-0a1b2c3d", "subnet-0e5f6a7b", "subnet-0c8d9e0f"]
cluster = EksCluster(
    "ai",
    EksClusterArgs(
        name="ai", vpc_id="vpc-0123", subnet_ids=subnets, admin_role_arns=["arn:aws:iam::123456789012:role/admin"]
    ),
)
gpu_nodes = NodeGroups(
    "ai-nodes",
    NodeGroupsArgs(
        cluster_name=cluster.name,
        subnet_ids=subnets,
        specs=(
            NodeGroupSpec(name="system", instance_types=("m6i.xlarge",), min_size=2, desired_size=2, max_size=4),
            NodeGroupSpec(name="gpu-inference", role="gpu", instance_types=("g5.2xlarge",), min_size=0, max_size=4),
            NodeGroupSpec(name="gpu-training", role="gpu", instance_types=("g6e.xlarge",), min_size=0, max_size=4),
        ),
    ),
)
ingress = IngressController(
    "edge",
    IngressControllerArgs(
        provider=cluster.provider,
        cluster_name=cluster.name,
        region="us-east-1",
        vpc_id="vpc-0123",
        identity=cluster.identity,
        alb_chart_version=AWS_LOAD_BALANCER_CONTROLLER.version,
        certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab",
    ),
)
secrets = ExternalSecrets(
    "secrets",
    ExternalSecretsArgs(
        stack_name="ai",
        region="us-east-1",
        identity=cluster.identity,
        provider=cluster.provider,
        chart_version=EXTERNAL_SECRETS.version,
        specs=[
            SecretSpec(
                name="hf-secret",
                namespace="ai",
                keys=("token",),
                existing_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:shared/hf-AbC123",
            )
        ],
    ),
)
"""


def _namespace(cls: type) -> dict[str, Any]:
    return vars(sys.modules[cls.__module__])


def _resolve(name: str, cls: type) -> type | None:
    value = _namespace(cls).get(name)
    return value if inspect.isclass(value) else None


def args_type(component: type) -> type | None:
    """The dataclass the component's constructor takes as ``args``."""
    parameter = inspect.signature(component.__init__).parameters.get("args")
    if parameter is None or parameter.annotation is inspect.Parameter.empty:
        return None
    annotation = (
        parameter.annotation if isinstance(parameter.annotation, str) else parameter.annotation.__name__
    )
    found = _resolve(annotation, component)
    return found if found is not None and dataclasses.is_dataclass(found) else None


def _field_types(cls: type) -> Iterator[type]:
    """Dataclasses of this package named in the annotations of ``cls``'s fields."""
    for f in dataclasses.fields(cls):
        for name in re.findall(r"\b[A-Z]\w*", str(f.type)):
            found = _resolve(name, cls)
            if found is not None and dataclasses.is_dataclass(found) and found.__module__.startswith(PACKAGE):
                yield found


def argument_types(root: type) -> list[type]:
    """``root`` and every dataclass its fields use, transitively, in order of first use."""
    order: list[type] = []
    pending = [root]
    while pending:
        cls = pending.pop(0)
        if cls not in order:
            order.append(cls)
            pending += [t for t in _field_types(cls) if t not in order]
    return order


def _comments(source: str) -> dict[int, str]:
    """Line number -> text of the ``#`` comment on that line."""
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string.lstrip("#").strip()
    return found


@cache
def _class_source(cls: type) -> str:
    try:
        return inspect.cleandoc("\n" + inspect.getsource(cls))
    except (OSError, TypeError):
        return ""


@cache
def _comment_blocks(cls: type) -> list[str]:
    """The class body's comment-only lines, joined into blocks of consecutive lines (a comment trailing
    a field is that field's own doc, never part of a block)."""
    source = _class_source(cls)
    lines = source.splitlines()
    blocks: list[list[str]] = []
    last = -2
    for line, text in sorted(_comments(source).items()):
        if not lines[line - 1].lstrip().startswith("#"):
            continue
        if line != last + 1:
            blocks.append([])
        blocks[-1].append(text)
        last = line
    return [" ".join(block) for block in blocks]


@cache
def _source_docs(cls: type) -> dict[str, str]:
    """Field name -> its doc written next to it in the class body."""
    source = _class_source(cls)
    if not source:
        return {}
    tree = syntax.parse(source)
    comments = _comments(source)
    lines = source.splitlines()
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for index, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        parts = []
        above = node.lineno - 1
        block: list[str] = []
        while above >= 1 and above in comments and lines[above - 1].lstrip().startswith("#"):
            block.insert(0, comments[above])
            above -= 1
        parts += block
        if node.end_lineno in comments and not lines[node.end_lineno - 1].lstrip().startswith("#"):
            parts.append(comments[node.end_lineno])
        following = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            parts.append(inspect.cleandoc(following.value.value))
        if parts:
            docs[node.target.id] = " ".join(parts)
    return docs


def _sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text).strip()
    return [s.strip() for s in re.split(r"(?<=[.;:])\s+(?=[A-Z`(])", flat) if s.strip()]


def field_meaning(cls: type, name: str) -> str:
    for owner in cls.__mro__:
        if name not in getattr(owner, "__annotations__", {}):
            continue
        own = _source_docs(owner).get(name)
        if own:
            return own
        mentions = [b for b in _comment_blocks(owner) if f"``{name}``" in b]
        mentions += [s for s in _sentences(_doc(owner)) if f"``{name}``" in s]
        if mentions:
            return " ".join(mentions)
    return UNDOCUMENTED


def allowed_values(cls: type, annotation: str) -> list[str]:
    """The values of the ``Literal`` aliases an annotation names (``NodeRole``: ``system``, ``gpu``)."""
    values: list[str] = []
    for name in re.findall(r"\b[A-Z]\w*", annotation):
        alias = _namespace(cls).get(name)
        if typing.get_origin(alias) is typing.Literal:
            values += [f"`{value}`" for value in typing.get_args(alias)]
    return values


def _meaning_cell(cls: type, f: dataclasses.Field) -> str:
    meaning = field_meaning(cls, f.name)
    if values := allowed_values(cls, str(f.type)):
        meaning = f"{meaning.rstrip('.')}. One of {', '.join(values)}."
    return _cell(meaning)


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        factory = f.default_factory
        if inspect.isclass(factory) and dataclasses.is_dataclass(factory):
            return f"`{factory.__name__}()`"
        return f"`{factory()!r}`"
    return "required"


# -- writing pages -------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _token(component: type) -> str:
    source = inspect.getsource(component)
    match = re.search(r'super\(\).__init__\(\s*"([^"]+)"', source)
    return match.group(1) if match else ""


def _title(cls: type) -> str:
    return _doc(cls).split("\n\n", 1)[0].replace("\n", " ")


def field_table(cls: type) -> list[str]:
    lines = [f"### `{cls.__name__}`", ""]
    if _doc(cls) and not _doc(cls).startswith(f"{cls.__name__}("):
        lines += [_doc(cls), ""]
    lines += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        lines.append(
            f"| `{f.name}` | `{_cell(str(f.type))}` | {_cell(_default(f))} | {_meaning_cell(cls, f)} |"
        )
    return [*lines, ""]


def outputs_table(component: type) -> list[str]:
    """The component's public attributes, as its class declares them (with their comments)."""
    declared = {
        name: annotation
        for name, annotation in vars(component).get("__annotations__", {}).items()
        if not name.startswith("_")
    }
    if not declared:
        return []
    docs = _source_docs(component)
    lines = ["## Outputs", "", "| attribute | type | meaning |", "| --- | --- | --- |"]
    lines += [
        f"| `{name}` | `{_cell(str(annotation))}` | {_cell(docs.get(name) or UNDOCUMENTED)} |"
        for name, annotation in declared.items()
    ]
    return [*lines, ""]


def page(component: type) -> str:
    module = component.__module__
    lines = [
        "<!-- Generated by `python -m tools.refdocs` (make docs) from the code; do not edit. -->",
        "",
        f"# {component.__name__}",
        "",
        f"`from {module} import {component.__name__}` (type token `{_token(component)}`)",
        "",
        "## What it creates",
        "",
        markdown(_doc(component)) or UNDOCUMENTED,
        "",
    ]
    root = args_type(component)
    if root is None:
        parameters = [
            p for p in inspect.signature(component.__init__).parameters if p not in ("self", "opts")
        ]
        lines += ["## Arguments", "", f"`{component.__name__}({', '.join(parameters)}, opts=None)`", ""]
    else:
        lines += ["## Arguments", "", f"`{component.__name__}(name, {root.__name__}(...), opts=None)`", ""]
        for cls in argument_types(root):
            lines += field_table(cls)
    lines += outputs_table(component)
    return "\n".join(lines).rstrip() + "\n"


def contracts() -> list[type]:
    found = []
    for dotted in CONTRACTS:
        module, _, name = dotted.rpartition(".")
        found.append(getattr(importlib.import_module(f"{PACKAGE}.{module}"), name))
    return found


def _contract_types(root: type) -> list[type]:
    """``root`` and every model of its module its fields use, transitively, in order of first use."""
    order: list[type] = []
    pending = [root]
    while pending:
        cls = pending.pop(0)
        if cls in order:
            continue
        order.append(cls)
        for annotation in vars(cls).get("__annotations__", {}).values():
            for name in re.findall(r"\b[A-Z]\w*", str(annotation)):
                found = _resolve(name, cls)
                if found is not None and issubclass(found, pydantic.BaseModel) and found not in order:
                    pending.append(found)
    return order


def contract_table(cls: type) -> list[str]:
    """A model's fields: the stack output key each is exported as, its type, default and meaning."""
    lines = [f"### `{cls.__name__}`", ""]
    if _doc(cls):
        lines += [_doc(cls), ""]
    lines += ["| field | exported as | type | default | meaning |", "| --- | --- | --- | --- | --- |"]
    annotations = vars(cls).get("__annotations__", {})
    for name, info in cls.model_fields.items():
        if info.exclude:
            continue
        default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
        meaning = field_meaning(cls, name)
        if values := allowed_values(cls, str(annotations.get(name, ""))):
            meaning = f"{meaning.rstrip('.')}. One of {', '.join(values)}."
        lines.append(
            f"| `{name}` | `{info.alias or name}` | `{_cell(str(annotations.get(name, '')))}` | "
            f"{_cell(default)} | {_cell(meaning)} |"
        )
    return [*lines, ""]


def _parameter(parameter: inspect.Parameter) -> str:
    """``name: type = default`` as written in the source (annotations are strings there)."""
    text = ("**" if parameter.kind is parameter.VAR_KEYWORD else "") + parameter.name
    if parameter.annotation is not parameter.empty:
        text += f": {parameter.annotation}"
    if parameter.default is not parameter.empty:
        text += f" = {parameter.default!r}"
    return text


def _methods(cls: type) -> list[str]:
    """The public methods and properties ``cls`` defines, with their signature and first paragraph."""
    lines = ["| method | what it gives |", "| --- | --- |"]
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        function = member.__func__ if isinstance(member, classmethod | staticmethod) else member
        if isinstance(member, property):
            call, doc = name, _doc(member.fget)
        elif inspect.isfunction(function):
            parameters = list(inspect.signature(function).parameters.values())[1:]
            call, doc = f"{name}({', '.join(map(_parameter, parameters))})", _doc(function)
        else:
            continue
        lines.append(f"| `{_cell(call)}` | {_cell(doc.split(chr(10) * 2, 1)[0]) or UNDOCUMENTED} |")
    return [*lines, ""]


def contract_page(contract: type) -> str:
    module = contract.__module__
    lines = [
        "<!-- Generated by `python -m tools.refdocs` (make docs) from the code; do not edit. -->",
        "",
        f"# {contract.__name__}",
        "",
        f"`from {module} import {contract.__name__}`",
        "",
        markdown(inspect.cleandoc(sys.modules[module].__doc__ or "")),
        "",
        "## Methods",
        "",
        *_methods(contract),
        "## Fields",
        "",
    ]
    for cls in _contract_types(contract):
        lines += contract_table(cls)
    return "\n".join(lines).rstrip() + "\n"


def index(found: list[type]) -> str:
    lines = [
        "<!-- Generated by `python -m tools.refdocs` (make docs) from the code; do not edit. -->",
        "",
        "# Component reference",
        "",
        "Every component takes one typed `...Args` object; each page lists what the component creates and",
        "every field of its arguments with type, default and meaning.",
        "",
        "| component | module | what it is |",
        "| --- | --- | --- |",
    ]
    lines += [f"| [{c.__name__}]({c.__name__}.md) | `{c.__module__}` | {_cell(_title(c))} |" for c in found]
    lines += [
        "",
        "A team's program reads the platform through a typed contract:",
        "",
        "| contract | module | what it is |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| [{c.__name__}]({c.__name__}.md) | `{c.__module__}` | {_cell(_title(c))} |" for c in contracts()
    ]
    lines += [
        "",
        "## The examples",
        "",
        "Every example on these pages runs as written after this start, which gives them a cluster, its",
        "node groups, an ingress controller and a synced secret (`tests/test_doc_examples.py` runs each",
        "under the offline plan's mock engine, so none goes stale):",
        "",
        "<!-- example: preamble -->",
        "```python",
        PREAMBLE.rstrip(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """File name -> content of every reference page."""
    found = components()
    return {
        "README.md": index(found),
        **{f"{c.__name__}.md": page(c) for c in found},
        **{f"{c.__name__}.md": contract_page(c) for c in contracts()},
    }


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rendered = pages()
    for stale in set(p.name for p in OUT_DIR.glob("*.md")) - set(rendered):
        (OUT_DIR / stale).unlink()
    for name, content in rendered.items():
        (OUT_DIR / name).write_text(content, encoding="utf-8")
    undocumented = sum(content.count(UNDOCUMENTED) for content in rendered.values())
    print(
        f"wrote {len(rendered)} pages to {OUT_DIR.relative_to(PROJECT_ROOT)}; {undocumented} fields undocumented"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
