"""One end-to-end run: the local cluster, the simulated cloud, the chart repository and a Pulumi stack of
the real program, driven by the real engine through the Automation API (program run inline).

    with E2eRun(binaries, stack="dev") as run:
        run.stack.preview(...)

Layers, each replaceable by the real thing: ``toolchain`` (binaries), ``cluster`` (a control plane on
127.0.0.1), ``cloud`` (AWS simulated: provider plugin, ``aws`` CLI, node groups as kwok nodes, the
controllers AWS-facing add-ons run, moto for the AWS APIs real operators call), ``operators`` (the real
external-secrets operator and Karpenter, where the stack installs their charts) and the scenarios,
which see only ``E2eRun``.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from tools.e2e.charts import ChartRepository, write_repository
from tools.e2e.cloud.controllers import SimulatedControllers
from tools.e2e.cloud.moto_server import HARNESS_ACCESS_KEY, HARNESS_SECRET_KEY, MotoServer
from tools.e2e.cloud.store import STATE_ENV, CloudStore, ClusterAccess
from tools.e2e.cluster import LocalCluster, free_port
from tools.e2e.control_plane import ControlPlaneOperator
from tools.e2e.crds import CrdSet, ensure_crds
from tools.e2e.operators.run import RealOperators
from tools.e2e.stacks import PROJECT, PROJECT_ROOT, kubernetes_minor, stack_config
from tools.e2e.toolchain import (
    Binary,
    ToolchainError,
    control_plane,
    ensure_control_plane,
    kwok_stage_dir,
)

OUT = PROJECT_ROOT / "build" / "e2e"
# Recognisable, so a scenario can prove the value never appears in plain text.
SECRET_MARKER = "e2e-DO-NOT-LEAK"


def program() -> None:
    """The repository's program, unchanged, run inline by the engine."""
    runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")


def offline_plan(config_file: Path, stack: str, out: Path) -> subprocess.CompletedProcess[str]:
    """The offline plan of a stack file into ``out`` (its exit code and output; its files in ``out``)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "aiplatform.plan",
            "--stack",
            stack,
            "--config-file",
            str(config_file),
            "--out",
            str(out),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )


def planned_charts(config_file: Path, stack: str, out: Path) -> dict[str, str]:
    """``{chart: version}`` of the Helm releases the program registers, from its offline plan."""
    offline_plan(config_file, stack, out)
    resources = out / "resources.json"
    if not resources.exists():
        return {}  # an invalid stack: nothing is planned, and the engine will say why
    charts = {}
    for r in json.loads(resources.read_text()):
        if r["type"] == "kubernetes:helm.sh/v3:Release":
            # An OCI reference (oci://host/path/karpenter) names the chart last; the run's mirror
            # serves it by that name.
            charts[r["inputs"]["chart"].rsplit("/", 1)[-1]] = r["inputs"]["version"]
    return charts


def secret_config(config: dict[str, Any]) -> dict[str, str]:
    """A recognisable value for every secret the stack reads from its config (``valueFrom`` keys)."""
    values = {}
    for spec in config.get(f"{PROJECT}:secrets") or []:
        key = spec.get("valueFrom") if isinstance(spec, dict) else None
        if key:
            values[key] = json.dumps(
                {k: f"{SECRET_MARKER}-{k}-{secrets.token_hex(4)}" for k in spec.get("keys", [])}
            )
    return values


def terminate_run_processes(markers: tuple[str, ...], keep: set[int] = frozenset()) -> None:
    """Stop the processes of a run that still live: the Pulumi CLI and its plugins, whose command line
    names the run's folder or whose environment names its simulated cloud (also once orphaned)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in keep or int(entry.name) == me:
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(marker.encode() in seen for marker in markers):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGTERM)


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    """Make ``path`` anew beside it and rename it into place: a command run meanwhile (two engine
    operations at once) finds the old file or the new one, never none or half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.unlink(missing_ok=True)
    make(tmp)
    os.replace(tmp, path)


def _launcher(path: Path, module: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m {module} "$@"\n')
        tmp.chmod(0o755)

    _replace(path, write)


@dataclass
class Timings:
    entries: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str):
        timings = self

        class _Timer:
            def __enter__(self):
                self.start = time.monotonic()

            def __exit__(self, *exc):
                timings.entries[name] = round(time.monotonic() - self.start, 1)

        return _Timer()


class E2eRun:
    def __init__(
        self,
        binaries: dict[str, Binary],
        stack: str = "dev",
        config_file: Path | None = None,
        overrides: dict[str, Any] | None = None,
        out: Path = OUT,
        engine_env: dict[str, str] | None = None,
    ):
        self.binaries = binaries
        self.engine_env = engine_env or {}  # e.g. PULUMI_SKIP_CHECKPOINTS for the figures
        self.stack_name = stack
        self.config_file = config_file or PROJECT_ROOT / f"Pulumi.{stack}.yaml"
        self.overrides = overrides or {}
        stamp = time.strftime("%Y%m%dT%H%M%S")
        self.run_dir = out / "runs" / f"{stack}-{stamp}-{os.getpid()}"
        self.timings = Timings()
        self._private = Path(tempfile.mkdtemp(prefix="aiplatform-e2e-"))  # state, secrets: never under build/
        self.passphrase = secrets.token_urlsafe(24)
        self.config = stack_config(self.config_file)
        # The control plane runs the stack's Kubernetes minor, as EKS would.
        self.kubernetes_minor = kubernetes_minor(self.config, self.overrides)
        self.secret_values = secret_config(self.config)
        self.cluster: LocalCluster | None = None
        self.charts_served: dict[str, str] = {}
        self.crds: CrdSet | None = None  # the real CRDs the stand-in charts install
        self.charts: ChartRepository | None = None
        self.controllers: SimulatedControllers | None = None
        self.operator: ControlPlaneOperator | None = None
        self.moto: MotoServer | None = None
        self.operators: RealOperators | None = None
        self.stack: auto.Stack | None = None
        self.log_path = self.run_dir / "logs" / "pulumi.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> E2eRun:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        # An engine operation cut short (a signal, a timeout) must not outlive the run.
        keep = {p.pid for p in self.cluster.processes.values()} if self.cluster else set()
        if self.operators:  # after the teardown: their finalizers were served while the stack went
            self.operators.__exit__(None, None, None)
            self.operators = None
        terminate_run_processes((str(self.run_dir), str(self._private)), keep)
        if self.operator:
            self.operator.__exit__(None, None, None)
            self.operator = None
        if self.controllers:
            self.controllers.__exit__(None, None, None)
            self.controllers = None
        if self.charts:
            self.charts.stop()
            self.charts = None
        if self.moto:
            self.moto.stop()
            self.moto = None
        if self.cluster:
            self.cluster.stop()
            self.cluster = None
        shutil.rmtree(self._private, ignore_errors=True)

    def _start(self) -> None:
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        with self.timings.measure("cluster_start"):
            self.cluster = LocalCluster(
                self.run_dir, {**self.binaries, **self.control_plane(self.kubernetes_minor)}, kwok_stage_dir()
            )
            self.cluster.__enter__()
        self.store = CloudStore(self._private / "cloud")
        self.store.set_cluster(
            ClusterAccess(self.cluster.server, self.cluster.api.token, self.cluster.api.ca_file)
        )
        # Secrets Manager and STS on moto: what the program creates there, the operator reads.
        self.moto = MotoServer(self._private / "moto", free_port())
        self.moto.__enter__()
        endpoints = {"secretsmanager": self.moto.endpoint, "sts": self.moto.endpoint}
        self.store.set_services(endpoints, HARNESS_ACCESS_KEY, HARNESS_SECRET_KEY)
        self.charts_served = planned_charts(self.config_file, self.stack_name, self.run_dir / "plan")
        with self.timings.measure("crds"):
            self.crds = ensure_crds(log=lambda line: print(line, file=sys.stderr, flush=True))
        self.charts = ChartRepository(
            write_repository(self.run_dir / "charts", self.charts_served, self.crds.manifests)
        )
        self.charts.__enter__()
        self.controllers = SimulatedControllers(
            self.cluster.api, self.store, autoscaler="cluster-autoscaler" in self.charts_served
        )
        self.controllers.__enter__()
        self.operators = RealOperators(
            self.run_dir,
            self._private,
            self.cluster,
            self.store,
            self.moto,
            self.binaries,
            self.charts_served,
        )
        self.operators.__enter__()
        # An EKS version update in the simulated cloud restarts the servers here, at the new minor.
        self.operator = ControlPlaneOperator(self.store, self._restart_at, self.served_minor)
        self.operator.__enter__()
        self.stack = self._create_stack()

    def aws_client(self, service: str):
        """A client of the AWS service the run serves (moto), as a person with access to the account
        would use it (a rotation, say)."""
        return self.moto.client(service)

    def served_minor(self) -> str:
        """The minor the local API server reports at ``/version`` ("1.36")."""
        version = self.cluster.server_version()
        return f"{version['major']}.{version['minor'].rstrip('+')}"

    def _restart_at(self, minor: str) -> None:
        with self.timings.measure(f"control_plane_restart_{minor}"):
            self.cluster.restart_control_plane(self.control_plane(minor))

    def control_plane(self, minor: str) -> dict[str, Binary]:
        """The control plane of ``minor``, by command name; built now if the run was not given it."""
        try:
            return control_plane(self.binaries, minor)
        except ToolchainError:
            self.binaries = {
                **self.binaries,
                **ensure_control_plane(minor, log=lambda line: print(line, file=sys.stderr, flush=True)),
            }
            return control_plane(self.binaries, minor)

    # -- the Pulumi side -------------------------------------------------------------------------
    def _bin_dir(self) -> Path:
        bin_dir = self.run_dir / "bin"
        bin_dir.mkdir(exist_ok=True)
        for name in ("pulumi", "pulumi-resource-kubernetes"):
            _replace(bin_dir / name, lambda tmp, name=name: tmp.symlink_to(self.binaries[name].path))
        _launcher(bin_dir / "pulumi-resource-aws", "tools.e2e.cloud.provider")
        _launcher(bin_dir / "aws", "tools.e2e.cloud.aws_cli")
        return bin_dir

    def env(self) -> dict[str, str]:
        bin_dir = self._bin_dir()
        helm = self._private / "helm"
        return {
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(PROJECT_ROOT),
            "PULUMI_BACKEND_URL": f"file://{self._private / 'backend'}",
            "PULUMI_HOME": str(self._private / "pulumi-home"),
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            STATE_ENV: str(self.store.root),
            "HELM_CACHE_HOME": str(helm / "cache"),
            "HELM_CONFIG_HOME": str(helm / "config"),
            "HELM_DATA_HOME": str(helm / "data"),
            "KUBECONFIG": "/dev/null",  # only the program's own kubeconfig may be used
            **self.engine_env,
        }

    def _create_stack(self) -> auto.Stack:
        (self._private / "backend").mkdir(parents=True, exist_ok=True)
        work_dir = self._private / "project"
        work_dir.mkdir()
        shutil.copy(PROJECT_ROOT / "Pulumi.yaml", work_dir / "Pulumi.yaml")
        return self.new_stack(self.stack_name, self.config_file, self.secret_values, self.overrides)

    def new_stack(
        self,
        name: str,
        config_file: Path,
        secret_values: dict[str, str] | None = None,
        overrides: dict[str, Any] | None = None,
        program: Callable[[], None] = program,
        project: str | None = None,
        engine_env: dict[str, str] | None = None,
    ) -> auto.Stack:
        """A stack of ``program`` (the repository's, by default) in this run's backend and cluster, in the
        repository's project, or in a bare project named ``project`` for another program; ``engine_env``
        adds to the run's environment of the engine for this stack only."""
        work_dir = self._private / "project"
        if project is not None:
            work_dir = self._private / "projects" / project
            work_dir.mkdir(parents=True, exist_ok=True)
            (work_dir / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
        shutil.copy(config_file, work_dir / f"Pulumi.{name}.yaml")
        env = {**self.env(), **(engine_env or {})}
        os.environ.update({k: env[k] for k in (STATE_ENV,)})
        workspace = auto.LocalWorkspace(
            work_dir=str(work_dir),
            program=program,
            env_vars=env,
            secrets_provider="passphrase",
            pulumi_home=env["PULUMI_HOME"],
            pulumi_command=auto.PulumiCommand(root=str(self.run_dir)),
        )
        stack = auto.Stack.create(name, workspace)
        for key, value in (secret_values or {}).items():
            stack.set_config(f"{PROJECT}:{key}", auto.ConfigValue(value, secret=True))
        if stack_config(config_file).get(f"{PROJECT}:charts"):
            stack.set_config(f"{PROJECT}:charts.mirror", auto.ConfigValue(self.charts.url), path=True)
        for key, value in (overrides or {}).items():
            stack.set_config(key, auto.ConfigValue(value), path=True)
        return stack

    def pulumi(self, *args: str) -> subprocess.CompletedProcess:
        """The Pulumi CLI on this run's stack, as a user would type it (``pulumi state unprotect ...``)."""
        env = {**os.environ, **self.env()}
        result = subprocess.run(
            [str(self.run_dir / "bin" / "pulumi"), *args, "--stack", self.stack_name, "--non-interactive"],
            cwd=self._private / "project",
            env=env,
            capture_output=True,
            text=True,
        )
        self.log(f"$ pulumi {' '.join(args)}  (exit {result.returncode})\n{result.stderr}")
        return result

    def log(self, line: str) -> None:
        with open(self.log_path, "a") as handle:
            handle.write(line.rstrip("\n") + "\n")
