"""Stand-in Helm charts, served from a chart repository on 127.0.0.1.

For each chart the program installs (the names and versions its Helm releases ask for), a chart of the
same name and version that installs what matters for ordering and placement:

- the CustomResourceDefinitions the real chart installs, where it installs them (a ``crds/`` folder,
  which Helm never deletes, or the templates, which it does), with minimal schemas that keep unknown
  fields: the real schemas are the projects' own;
- one small Deployment (the controller), and for the node agents (device plugin, DCGM exporter, node
  exporter) a DaemonSet that takes its tolerations, node selector and affinity from the values the
  program sets, exactly where the real chart reads them, so their placement is real scheduling.

The repository is a folder with ``index.yaml`` and one ``.tgz`` per chart, served by a thread.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Crd:
    group: str
    kind: str
    plural: str
    versions: tuple[str, ...] = ("v1",)
    namespaced: bool = True

    def manifest(self) -> dict:
        schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{self.plural}.{self.group}"},
            "spec": {
                "group": self.group,
                "names": {
                    "kind": self.kind,
                    "listKind": f"{self.kind}List",
                    "plural": self.plural,
                    "singular": self.kind.lower(),
                },
                "scope": "Namespaced" if self.namespaced else "Cluster",
                "versions": [
                    {
                        "name": v,
                        "served": True,
                        "storage": i == 0,
                        "schema": schema,
                        "subresources": {"status": {}},
                    }
                    for i, v in enumerate(self.versions)
                ],
            },
        }


@dataclass(frozen=True)
class StandIn:
    """What the stand-in for one chart installs."""

    crds: tuple[Crd, ...] = ()
    crds_in_templates: bool = False  # the real chart templates its CRDs (Helm deletes them on uninstall)
    node_agent_values: str | None = None  # values path of a node agent's placement ("" = top level)
    extra: dict = field(default_factory=dict)


_ESO = "external-secrets.io"
_MON = "monitoring.coreos.com"

STAND_INS: dict[str, StandIn] = {
    "external-secrets": StandIn(
        crds=(
            Crd(_ESO, "ExternalSecret", "externalsecrets"),
            Crd(_ESO, "SecretStore", "secretstores"),
            Crd(_ESO, "ClusterSecretStore", "clustersecretstores", namespaced=False),
            Crd(_ESO, "ClusterExternalSecret", "clusterexternalsecrets", namespaced=False),
            Crd(_ESO, "PushSecret", "pushsecrets", versions=("v1alpha1",)),
        ),
        crds_in_templates=True,
    ),
    "kube-prometheus-stack": StandIn(
        crds=(
            Crd(_MON, "Alertmanager", "alertmanagers"),
            Crd(_MON, "AlertmanagerConfig", "alertmanagerconfigs", versions=("v1alpha1",)),
            Crd(_MON, "PodMonitor", "podmonitors"),
            Crd(_MON, "Probe", "probes"),
            Crd(_MON, "Prometheus", "prometheuses"),
            Crd(_MON, "PrometheusAgent", "prometheusagents", versions=("v1alpha1",)),
            Crd(_MON, "PrometheusRule", "prometheusrules"),
            Crd(_MON, "ScrapeConfig", "scrapeconfigs", versions=("v1alpha1",)),
            Crd(_MON, "ServiceMonitor", "servicemonitors"),
            Crd(_MON, "ThanosRuler", "thanosrulers"),
        ),
        node_agent_values="prometheus-node-exporter",
    ),
    "aws-load-balancer-controller": StandIn(
        crds=(
            Crd("elbv2.k8s.aws", "TargetGroupBinding", "targetgroupbindings", versions=("v1beta1",)),
            Crd(
                "elbv2.k8s.aws",
                "IngressClassParams",
                "ingressclassparams",
                versions=("v1beta1",),
                namespaced=False,
            ),
        ),
    ),
    "karpenter": StandIn(
        crds=(
            Crd("karpenter.sh", "NodePool", "nodepools", namespaced=False),
            Crd("karpenter.sh", "NodeClaim", "nodeclaims", namespaced=False),
            Crd("karpenter.k8s.aws", "EC2NodeClass", "ec2nodeclasses", namespaced=False),
        ),
    ),
    "nvidia-device-plugin": StandIn(node_agent_values=""),
    "dcgm-exporter": StandIn(node_agent_values=""),
}

_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def _selector(chart: str, component: str, indent: int = 8) -> str:
    labels = {
        "app.kubernetes.io/name": chart,
        "app.kubernetes.io/instance": "{{ .Release.Name }}",
        "app.kubernetes.io/component": component,
    }
    return "\n".join(f"{' ' * indent}{k}: {v}" for k, v in labels.items())


def _pod_template(chart: str, component: str, extra_spec: str = "") -> str:
    return f"""\
    metadata:
      labels:
{_selector(chart, component)}
    spec:
      automountServiceAccountToken: false
      securityContext: {yaml.safe_dump(_POD_SECURITY, default_flow_style=True).strip()}
{extra_spec}      containers:
        - name: stand-in
          image: registry.k8s.io/pause:3.10
          securityContext: {yaml.safe_dump(_CONTAINER_SECURITY, default_flow_style=True).strip()}
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
            limits: {{cpu: 50m, memory: 32Mi}}
"""


def deployment_template(chart: str) -> str:
    return f"""\
# Stand-in for the {chart} chart's controller.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ .Release.Name }}}}
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    app.kubernetes.io/name: {chart}
    app.kubernetes.io/instance: {{{{ .Release.Name }}}}
spec:
  replicas: 1
  selector:
    matchLabels:
{_selector(chart, "controller", 6)}
  template:
{_pod_template(chart, "controller")}"""


def daemonset_template(chart: str, values_path: str) -> str:
    """A node agent placed by the values the program sets, read where the real chart reads them."""
    # A missing subchart section renders as an empty map, not a template error.
    values = f'((index .Values "{values_path}") | default dict)' if values_path else ".Values"
    placement = f"""\
      {{{{- with {values}.tolerations }}}}
      tolerations: {{{{ toJson . }}}}
      {{{{- end }}}}
      {{{{- with {values}.nodeSelector }}}}
      nodeSelector: {{{{ toJson . }}}}
      {{{{- end }}}}
      {{{{- with {values}.affinity }}}}
      affinity: {{{{ toJson . }}}}
      {{{{- end }}}}
"""
    return f"""\
# Stand-in for the {chart} chart's node agent.
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{{{ .Release.Name }}}}-node-agent
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    app.kubernetes.io/name: {chart}-node-agent
    app.kubernetes.io/instance: {{{{ .Release.Name }}}}
spec:
  selector:
    matchLabels:
{_selector(chart, "node-agent", 6)}
  template:
{_pod_template(chart, "node-agent", placement)}"""


def chart_archive(name: str, version: str) -> bytes:
    """The stand-in chart as a ``.tgz``."""
    stand_in = STAND_INS.get(name, StandIn())
    files: dict[str, str] = {
        "Chart.yaml": yaml.safe_dump(
            {
                "apiVersion": "v2",
                "name": name,
                "version": version,
                "appVersion": version,
                "description": f"Stand-in for the {name} chart: its CRDs and a minimal controller",
                "type": "application",
            }
        ),
        "values.yaml": "{}\n",
        "templates/controller.yaml": deployment_template(name),
    }
    if stand_in.node_agent_values is not None:
        files["templates/node-agent.yaml"] = daemonset_template(name, stand_in.node_agent_values)
    crd_folder = "templates/crds" if stand_in.crds_in_templates else "crds"
    for crd in stand_in.crds:
        files[f"{crd_folder}/{crd.plural}.{crd.group}.yaml"] = yaml.safe_dump(crd.manifest(), sort_keys=False)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_repository(folder: Path, charts: dict[str, str]) -> Path:
    """A chart repository in ``folder`` holding a stand-in for each ``{chart: version}``."""
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries: dict[str, list[dict]] = {}
    for name, version in sorted(charts.items()):
        archive = chart_archive(name, version)
        filename = f"{name}-{version}.tgz"
        (folder / filename).write_bytes(archive)
        entries[name] = [
            {
                "apiVersion": "v2",
                "name": name,
                "version": version,
                "appVersion": version,
                "urls": [filename],
                "digest": hashlib.sha256(archive).hexdigest(),
                "created": created,
            }
        ]
    (folder / "index.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "entries": entries, "generated": created})
    )
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class ChartRepository:
    """A chart repository served on 127.0.0.1 until ``stop()`` (or the end of the ``with`` block)."""

    def __init__(self, folder: Path):
        self.folder = folder
        handler = partial(_QuietHandler, directory=str(folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="chart-repository", daemon=True
        )

    def __enter__(self) -> ChartRepository:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
