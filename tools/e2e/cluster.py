"""A Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (simulated kubelets: nodes Ready, pods Running and Ready, Job pods complete).

    with LocalCluster(run_dir, binaries, kwok_stages) as cluster:
        cluster.api.list("Node")
        cluster.restart_control_plane(other_minor_binaries)   # same etcd data, another minor

``binaries`` name each server by its command (``kube-apiserver`` ...): the control plane of one
Kubernetes minor (``toolchain.control_plane``).

Everything a run needs lives under its own ``run_dir`` (certificates, etcd data, kubeconfigs, logs) and
every port is picked free at start, so two harnesses never share a port or a data folder. The cluster is
stopped when the ``with`` block ends, whatever ended it; ``stop()`` is idempotent and also runs at exit.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.e2e.kubeapi import KubeApi, wait_for
from tools.e2e.processes import signal_group
from tools.e2e.toolchain import CONTROL_PLANE, Binary

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
NODE_LEASE_SECONDS = 200
# kwok manages only the nodes that carry this annotation; the simulated cloud creates them with it.
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
# The API server's audit log keeps who deleted or evicted which pod (tools/e2e/disruptions.py), nothing else.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],
    "rules": [
        {
            "level": "Metadata",
            "verbs": ["delete", "deletecollection"],
            "resources": [{"group": "", "resources": ["pods"]}],
        },
        {
            "level": "Metadata",
            "verbs": ["create"],
            "resources": [{"group": "", "resources": ["pods/eviction"]}],
        },
        {"level": "None"},
    ],
}


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate and the service-account signing key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=pki)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2",
        "-subj", "/CN=aiplatform-e2e-ca", "-out", "ca.crt", cwd=pki,
    )  # fmt: skip
    _openssl("genrsa", "-out", "apiserver.key", "2048", cwd=pki)
    (pki / "apiserver.ext").write_text(
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "req",
        "-new",
        "-key",
        "apiserver.key",
        "-subj",
        "/CN=kube-apiserver",
        "-out",
        "apiserver.csr",
        cwd=pki,
    )
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", "apiserver.ext", "-out", "apiserver.crt", cwd=pki,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in pki.glob("*.key"):
        key.chmod(0o600)


@dataclass
class Identity:
    """A static-token identity of the cluster and its kubeconfig file."""

    user: str
    groups: tuple[str, ...]
    token: str = field(default_factory=lambda: secrets.token_hex(24))


def kubeconfig(server: str, ca_file: Path, token: str, user: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
        "current-context": "e2e",
    }


class LocalCluster:
    def __init__(self, run_dir: Path, binaries: dict[str, Binary], kwok_stages: Path):
        self.run_dir = run_dir
        self.binaries = binaries
        self.kwok_stages = kwok_stages
        self.pki = run_dir / "pki"
        self.logs = run_dir / "logs"
        self.ports = {
            name: free_port()
            for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler")
        }
        self.server = f"https://127.0.0.1:{self.ports['apiserver']}"
        self.identities = {
            "admin": Identity("e2e-admin", ("system:masters",)),
            "controller-manager": Identity("system:kube-controller-manager", ()),
            "scheduler": Identity("system:kube-scheduler", ()),
            "kwok": Identity("kwok-controller", ("system:masters",)),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self._previous_handlers: dict[int, Any] = {}
        self._log_files: list = []
        self.api = KubeApi(self.server, self.identities["admin"].token, str(self.pki / "ca.crt"))
        self.audit_log = self.logs / "audit.log"

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LocalCluster:
        atexit.register(self.stop)
        # A harness stopped by a signal unwinds like one that failed, so its cluster stops too (the
        # servers run in their own sessions: a signal meant for the harness does not reach them).
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                self._previous_handlers[signum] = signal.signal(signum, _exit_on_signal)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        make_certificates(self.pki)
        self._write_tokens_and_kubeconfigs()
        (self.run_dir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        self._start_etcd()
        self._start_control_plane()
        self._start_kwok()
        # The service-account controller must be running before pods can be admitted anywhere.
        wait_for(
            lambda: self.api.get("ServiceAccount", "default", "default"),
            timeout=120,
            what="the default service account (kube-controller-manager)",
        )

    def _start_control_plane(self) -> None:
        self._start_apiserver()
        wait_for(self._ready, timeout=120, what="kube-apiserver /readyz")
        self._start_controller_manager()
        self._start_scheduler()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self._stop_process(name)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()
        for handle in self._log_files:
            handle.close()
        self._log_files.clear()
        shutil.rmtree(self.run_dir / "etcd", ignore_errors=True)

    def restart_control_plane(self, binaries: Mapping[str, Binary]) -> None:
        """Stop kube-scheduler, kube-controller-manager and kube-apiserver and start them again from
        ``binaries`` (another minor's, for an upgrade), on the same etcd data, ports and certificates;
        kwok and etcd keep running. Returns once the new API server is ready and serves again."""
        missing = [c for c in CONTROL_PLANE if c not in binaries]
        if missing:
            raise ValueError(f"restart_control_plane: no binary for {', '.join(missing)}")
        for name in reversed(CONTROL_PLANE):
            self._stop_process(name)
        self.binaries = {**self.binaries, **{c: binaries[c] for c in CONTROL_PLANE}}
        self._start_control_plane()

    def server_version(self) -> dict[str, str]:
        """What the API server reports at ``/version`` (``major``, ``minor``, ``gitVersion`` ...)."""
        return self.api.request("GET", "/version")

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.logs / (name + '.log')}")

    # -- helpers ---------------------------------------------------------------------------------
    def kubeconfig_path(self, identity: str = "admin") -> Path:
        return self.run_dir / f"{identity}.kubeconfig"

    def _ready(self) -> bool:
        self.check_alive()
        try:
            self.api.request("GET", "/readyz", timeout=5)
        except Exception:  # noqa: BLE001 - not up yet, whatever the reason
            return False
        return True

    def _write_tokens_and_kubeconfigs(self) -> None:
        lines = []
        for i, identity in enumerate(self.identities.values()):
            groups = ",".join(identity.groups)
            lines.append(
                f'{identity.token},{identity.user},uid-{i},"{groups}"'
                if groups
                else f"{identity.token},{identity.user},uid-{i}"
            )
        tokens = self.pki / "tokens.csv"
        tokens.write_text("\n".join(lines) + "\n")
        tokens.chmod(0o600)
        for name, identity in self.identities.items():
            path = self.kubeconfig_path(name)
            path.write_text(
                yaml.safe_dump(kubeconfig(self.server, self.pki / "ca.crt", identity.token, identity.user))
            )
            path.chmod(0o600)

    def _stop_process(self, name: str) -> None:
        proc = self.processes.pop(name, None)
        if proc is not None and proc.poll() is None:
            signal_group(proc, signal.SIGTERM)
            # kube-apiserver's graceful termination ends when it stops listening, but the process can
            # linger 15 s more: its data is in etcd by then, so it gets a second, not the full grace.
            port = self.ports["apiserver"] if name == "kube-apiserver" else None
            deadline, closed_at = time.monotonic() + 15, None
            while proc.poll() is None and time.monotonic() < deadline:
                if port is not None and closed_at is None and not _listening(port):
                    closed_at = time.monotonic()
                if closed_at is not None and time.monotonic() - closed_at > 1:
                    break
                time.sleep(0.1)
            if proc.poll() is None:
                signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=15)

    def _spawn(self, name: str, args: list[str]) -> None:
        # Appended to: a server restarted (restart_control_plane) keeps its earlier log above.
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - closed in stop()
        self._log_files.append(log)
        self.processes[name] = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.run_dir,
            # A new session: a Ctrl-C meant for the harness reaches it first, and stop() ends these.
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")},
        )

    def _bin(self, name: str) -> str:
        return self.binaries[name].path

    def _start_etcd(self) -> None:
        client, peer = self.ports["etcd"], self.ports["etcd-peer"]
        self._spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=e2e",
                f"--data-dir={self.run_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=e2e=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync",  # a throwaway store: speed over durability
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self) -> None:
        pki = self.pki
        self._spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # The default admission chain (NamespaceLifecycle, LimitRanger, ServiceAccount,
                # PodSecurity, ResourceQuota, DefaultStorageClass, ...) stays on, as on EKS.
                f"--audit-policy-file={self.run_dir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--profiling=false",
                "--v=1",
            ],
        )

    def _start_controller_manager(self) -> None:
        kubeconfig_file = self.kubeconfig_path("controller-manager")
        self._spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                f"--kubeconfig={kubeconfig_file}",
                f"--authentication-kubeconfig={kubeconfig_file}",
                f"--authorization-kubeconfig={kubeconfig_file}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['controller-manager']}",
                f"--service-account-private-key-file={self.pki / 'sa.key'}",
                f"--root-ca-file={self.pki / 'ca.crt'}",
                "--use-service-account-credentials=true",
                f"--node-monitor-grace-period={NODE_LEASE_SECONDS + 60}s",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        kubeconfig_file = self.kubeconfig_path("scheduler")
        self._spawn(
            "kube-scheduler",
            [
                self._bin("kube-scheduler"),
                f"--kubeconfig={kubeconfig_file}",
                f"--authentication-kubeconfig={kubeconfig_file}",
                f"--authorization-kubeconfig={kubeconfig_file}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
                # Each pod it cannot place yet, with the reason, and each binding: what a stalled rollout
                # is read from (the logs outlive the run, the events do not).
                "--v=2",
            ],
        )

    def _start_kwok(self) -> None:
        stages = self.run_dir / "kwok-stages.yaml"
        documents = []
        # kwok's own "fast" stage set: nodes become Ready and keep a lease, pods become Running and
        # Ready at once, pods owned by a Job complete, deleted pods go away.
        for part in ("node/fast", "node/heartbeat-with-lease", "pod/fast"):
            for path in sorted((self.kwok_stages / part).glob("*.yaml")):
                if path.name != "kustomization.yaml":
                    documents.append(path.read_text())
        stages.write_text("\n---\n".join(documents))
        key, value = KWOK_NODE_ANNOTATION
        self._spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--config={stages}",
                f"--kubeconfig={self.kubeconfig_path('kwok')}",
                f"--manage-nodes-with-annotation-selector={key}={value}",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                # Leases renew at a quarter of their duration: a longer one keeps hundreds of simulated
                # nodes from flooding etcd (the controller-manager's grace period is set to match).
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            ],
        )
