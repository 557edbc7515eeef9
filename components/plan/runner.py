"""Run the real Pulumi program in-process under the mock engine, with a stack's config.

Used by the offline plan and by the tests, so both exercise exactly what ``pulumi up`` would run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import runpy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func

from .. import sdk
from .mock_engine import SECRET_PLACEHOLDER, PlatformMocks, RecordingMonitor

PROJECT_NAME = "aiplatform"

# What a `secure:` value plans as. The ciphertext is never decrypted, and the program sees a
# Pulumi secret, exactly as in a real deployment.
SECURE_PLACEHOLDER = "planned-secret-value"


class StackFileError(Exception):
    """The stack file cannot be read or is not a Pulumi stack config."""


class _StackFileLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI reads stack files: dates stay strings, binary values are refused."""


_StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _refuse_binary(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, "binary values are not config values", node.start_mark
    )


_StackFileLoader.add_constructor("tag:yaml.org,2002:binary", _refuse_binary)


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem}{where}"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a ``Pulumi.<stack>.yaml`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read the stack file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise StackFileError(f"{path}: not UTF-8 text") from None
    try:
        document = yaml.load(text, Loader=_StackFileLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: a stack file is a mapping with a 'config:' key")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: 'config:' must be a mapping of 'namespace:key' to values")
    return config


@dataclass(frozen=True)
class Project:
    """What ``Pulumi.yaml`` says about the program: its name, its entry point, its declared config."""

    name: str
    program: Path
    config: Mapping[str, Any] = field(default_factory=dict)  # key -> {description, default, ...}

    def stack_config(self, stack: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """The stack's config as the Pulumi CLI hands it to the program: a declared key the stack file
        leaves out takes its ``default``, and one without a default is an error before the program runs."""
        result = dict(config)
        for key, spec in self.config.items():
            if key in result:
                continue
            if isinstance(spec, Mapping) and "default" in spec:
                result[key] = spec["default"]
            else:
                raise StackFileError(
                    f"validating stack config: Stack '{stack}' is missing configuration value '{key}'"
                )
        return result


def read_project(project_dir: Path) -> Project:
    """The project in ``project_dir``: ``name``, and ``main`` (a folder with ``__main__.py``, or a file)."""
    path = project_dir / "Pulumi.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read the project file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise StackFileError(f"{path}: a project file is a mapping with a 'name:'")
    main = project_dir / str(document.get("main") or ".")
    declared = document.get("config") or {}
    if not isinstance(declared, dict):
        raise StackFileError(f"{path}: 'config:' must be a mapping of config keys to their declarations")
    return Project(
        name=document["name"],
        program=main / "__main__.py" if main.suffix != ".py" else main,
        config=declared,
    )


def read_stack_outputs(path: Path) -> dict[str, Any]:
    """Stack outputs as the plan writes them (``outputs.json``), to answer a StackReference."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StackFileError(f"{path}: cannot read the stack outputs ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise StackFileError(f"{path}: not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path}: stack outputs are a JSON object of output names to values")
    return document


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def runtime_config(config: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Turn stack-file config into the string map the Pulumi runtime holds, plus its secret keys.

    Objects and lists travel as JSON, like the Pulumi CLI passes them; ``secure:`` values become a
    placeholder that the program can only read as a secret.
    """
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        key = str(key)
        if _is_secure(value):
            values[key] = SECURE_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            try:
                values[key] = json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise StackFileError(f"{key}: not a config value ({exc})") from None
    return values, secret_keys


def region_of(config: Mapping[str, Any]) -> str:
    region = config.get("aws:region", "us-east-1")
    return region if isinstance(region, str) else "us-east-1"


@dataclass
class ProgramRun:
    """Everything the program registered and exported."""

    stack: str
    monitor: RecordingMonitor
    outputs: dict[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)  # the stack config it ran with

    @property
    def registrations(self):
        return self.monitor.registrations


def _redacted_outputs(stack_outputs: Mapping[str, Any]) -> dict[str, Any]:
    async def resolve() -> dict[str, Any]:
        resolved: dict[str, Any] = {}
        for name, value in stack_outputs.items():
            output = pulumi.Output.from_input(value)
            resolved[name] = SECRET_PLACEHOLDER if await output.is_secret() else await output.future()
        return resolved

    return sdk.wait(resolve())


async def _finish_pending_tasks() -> None:
    """Let fire-and-forget work finish, such as log messages attached to a resource."""
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)


def run_program(
    config: Mapping[str, Any],
    stack: str,
    program: Path = Path("__main__.py"),
    preview: bool = False,
    logger: logging.Logger | None = None,
    monitor: RecordingMonitor | None = None,
    project: str = PROJECT_NAME,
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProgramRun:
    """Run ``program`` of ``project`` under the mock engine with ``config``; raise what it raises.

    ``stack_outputs`` answer the program's StackReferences (see ``PlatformMocks``). Pass ``monitor`` to
    inspect what was registered even when the program fails.
    """
    values, secret_keys = runtime_config(config)
    set_all_config(values, secret_keys)
    monitor = monitor or RecordingMonitor(
        PlatformMocks(region=region_of(config), stack_outputs=dict(stack_outputs or {}))
    )
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=preview, monitor=monitor, logger=logger
    )
    if str(program.parent) not in sys.path:
        sys.path.insert(0, str(program.parent))

    sdk.wait(run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
    sdk.wait(_finish_pending_tasks())
    root = pulumi_settings.get_root_resource()
    outputs = _redacted_outputs(getattr(root, "outputs", {}) or {})
    return ProgramRun(stack=stack, monitor=monitor, outputs=outputs, config=dict(config))
