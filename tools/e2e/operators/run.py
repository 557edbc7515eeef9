"""The real operators of one run, started beside the simulated cloud and stopped after the teardown
(their finalizers must be served while the stack is destroyed).

Each runs only where the stack installs its chart (the harness serves the charts the program asks
for), as its Deployment would: the external-secrets operator with the ``external-secrets`` chart,
Karpenter with the ``karpenter`` chart. Logs go to the run's ``logs/`` folder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from aiplatform.addons.secrets import ESO_NAMESPACE, ESO_SERVICE_ACCOUNT
from tools.e2e.cloud.loopback_proxy import LoopbackProxy
from tools.e2e.cloud.moto_server import MotoServer
from tools.e2e.cloud.pod_identity import PodIdentityAgent
from tools.e2e.cloud.store import CloudStore
from tools.e2e.cluster import LocalCluster, free_port
from tools.e2e.operators import external_secrets, karpenter
from tools.e2e.operators.netns import UnixToTcp
from tools.e2e.operators.supervisor import Launch, Supervised
from tools.e2e.toolchain import Binary


class RealOperators:
    def __init__(
        self,
        run_dir: Path,
        private_dir: Path,
        cluster: LocalCluster,
        store: CloudStore,
        moto: MotoServer,
        binaries: Mapping[str, Binary],
        charts: Mapping[str, str],
    ):
        self.run_dir = run_dir
        self.private_dir = private_dir
        self.cluster = cluster
        self.store = store
        self.moto = moto
        self.binaries = binaries
        self.charts = charts
        self.pod_identity: PodIdentityAgent | None = None
        self.external_secrets: Supervised | None = None
        # The operator's own path to Secrets Manager, which a fault scenario cuts.
        self.secrets_endpoint: LoopbackProxy | None = None
        self.karpenter: Supervised | None = None
        self.karpenter_zones: list[str] = []
        self._bridge: UnixToTcp | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RealOperators:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    @property
    def running(self) -> dict[str, Supervised]:
        return {s.name: s for s in (self.external_secrets, self.karpenter) if s is not None}

    def _start(self) -> None:
        api = self.cluster.api
        self.pod_identity = self._stack.enter_context(
            PodIdentityAgent(api, self.store, self.moto.client("sts").assume_role)
        )
        logs = self.run_dir / "logs"
        if "external-secrets" in self.charts:
            self.secrets_endpoint = self._stack.enter_context(
                LoopbackProxy(self.moto.port, "the operator's Secrets Manager endpoint")
            )
            self.external_secrets = self._stack.enter_context(
                Supervised(
                    "external-secrets",
                    api,
                    external_secrets.KINDS,
                    self._external_secrets,
                    logs / "external-secrets.log",
                )
            )
        if "karpenter" in self.charts:
            port = self.cluster.ports["apiserver"]
            self._bridge = self._stack.enter_context(UnixToTcp(self.private_dir / "karpenter-api.sock", port))
            self.karpenter = self._stack.enter_context(
                Supervised(
                    "karpenter",
                    api,
                    (karpenter.NODE_POOLS, karpenter.NODE_CLAIMS, karpenter.EC2_NODE_CLASSES),
                    self._karpenter,
                    logs / "karpenter.log",
                )
            )

    def _external_secrets(self) -> Launch:
        credentials = self.pod_identity.environment(
            ESO_NAMESPACE, ESO_SERVICE_ACCOUNT, self.private_dir / "pod-identity"
        )
        return external_secrets.launch(
            self.binaries["external-secrets"].path,
            self.cluster.kubeconfig_path("admin"),
            self.secrets_endpoint.endpoint if self.secrets_endpoint else self.moto.endpoint,
            self.moto.endpoint,
            free_port(),
            free_port(),
            credentials,
        )

    def _karpenter(self) -> Launch:
        types_file = self.run_dir / "karpenter-instance-types.json"
        self.karpenter_zones = karpenter.write_instance_types(types_file, self.store)
        return karpenter.launch(
            self.binaries["karpenter"].path,
            self.cluster.kubeconfig_path("admin"),
            types_file,
            self._bridge.path,
            self.cluster.ports["apiserver"],
        )
