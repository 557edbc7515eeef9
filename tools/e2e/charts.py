"""Stand-in Helm charts, served from a chart repository on 127.0.0.1.

For each chart the program installs (the names and versions its Helm releases ask for), a chart of the
same name and version that installs what matters for ordering and placement, as the chart's descriptor
(``aiplatform.catalog.registry``) states it:

- the CustomResourceDefinitions the real chart installs, where it installs them (a ``crds/`` folder,
  which Helm never deletes, or the templates, which it does): the real ones, generated from the
  upstream API modules (``tools/e2e/crds.py``), and an open schema that keeps unknown fields for a kind
  whose module the proxy does not serve at the chart's version (``crds.NOT_GENERATED``);
- the objects of the real chart the program relies on besides (``CHART_OBJECTS``: ingress-nginx's
  IngressClass, rendered from the same values as the real chart renders it);
- one small Deployment (the controller), and for the node agents (device plugin, DRA driver's kubelet
  plugin, DCGM exporter, node exporter) a DaemonSet that takes its tolerations, node selector and
  affinity from the values the program sets, exactly where the real chart reads them, so their
  placement is real scheduling;
- the DRA DeviceClasses the real chart's templates install (the DRA driver's), with its selectors.
- the controller's ServiceAccount, from the values where the real chart reads it (its name and
  annotations: an IRSA role's ARN, which the real external-secrets operator reads from it).

The repository is a folder with ``index.yaml`` and one ``.tgz`` per chart, served by a thread.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import yaml

from aiplatform.catalog.registry import BY_CHART, Crd, DeviceClass


def crd_manifest(crd: Crd, real: Mapping[str, dict] | None = None) -> dict:
    """The real CRD of ``crd`` (from ``real``, by ``plural.group``), else one of its names and versions
    whose schema keeps every field."""
    if real and f"{crd.plural}.{crd.group}" in real:
        return real[f"{crd.plural}.{crd.group}"]
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{crd.plural}.{crd.group}"},
        "spec": {
            "group": crd.group,
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.kind.lower(),
            },
            "scope": "Namespaced" if crd.namespaced else "Cluster",
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "schema": schema,
                    "subresources": {"status": {}},
                }
                for i, v in enumerate(crd.versions)
            ],
        },
    }


def device_class_manifest(device_class: DeviceClass) -> dict:
    """A DeviceClass as the chart's template installs it (its name and its device selector)."""
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "DeviceClass",
        "metadata": {"name": device_class.name},
        "spec": {"selectors": [{"cel": {"expression": device_class.selector}}]},
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


# ingress-nginx 4.15.1's controller-ingressclass.yaml renders this IngressClass from
# controller.ingressClassResource (defaults from its values.yaml); its controller value is what the
# controller claims Ingresses by.
INGRESS_NGINX_CLASS = """\
{{- $class := .Values.controller.ingressClassResource }}
{{- if $class.enabled }}
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: {{ $class.name }}
  labels:
    app.kubernetes.io/name: ingress-nginx
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/component: controller
  {{- if or $class.default $class.annotations }}
  annotations:
    {{- if $class.default }}
    ingressclass.kubernetes.io/is-default-class: "true"
    {{- end }}
    {{- with $class.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  controller: {{ $class.controllerValue }}
  {{- with $class.parameters }}
  parameters:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
"""

# Per chart: the chart's default values the templates below read, and the templates.
CHART_OBJECTS: Mapping[str, tuple[dict, Mapping[str, str]]] = {
    "ingress-nginx": (
        {
            "controller": {
                "ingressClassResource": {
                    "name": "nginx",
                    "enabled": True,
                    "default": False,
                    "annotations": {},
                    "controllerValue": "k8s.io/ingress-nginx",
                    "parameters": {},
                }
            }
        },
        {"templates/controller-ingressclass.yaml": INGRESS_NGINX_CLASS},
    ),
}


def serviceaccount_template(chart: str, values_path: str) -> str:
    """The ServiceAccount the real chart creates unless ``<values_path>.create`` is false, named
    ``<values_path>.name`` (else the release's name) and annotated with ``<values_path>.annotations``."""
    keys = " ".join(f'"{key}"' for key in values_path.split("."))
    return f"""\
# Stand-in for the {chart} chart's ServiceAccount.
{{{{- $sa := dig {keys} (dict) .Values.AsMap }}}}
{{{{- if ne (toString (index $sa "create")) "false" }}}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{{{ (index $sa "name") | default .Release.Name }}}}
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    app.kubernetes.io/name: {chart}
    app.kubernetes.io/instance: {{{{ .Release.Name }}}}
  {{{{- with (index $sa "annotations") }}}}
  annotations: {{{{ toJson . }}}}
  {{{{- end }}}}
{{{{- end }}}}
"""


def chart_archive(name: str, version: str, crds: Mapping[str, dict] | None = None) -> bytes:
    """The stand-in chart as a ``.tgz``; ``crds``: the real CRDs by ``plural.group``."""
    addon = BY_CHART.get(name)
    defaults, templates = CHART_OBJECTS.get(name, ({}, {}))
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
        "values.yaml": yaml.safe_dump(defaults) if defaults else "{}\n",
        "templates/controller.yaml": deployment_template(name),
        **templates,
    }
    if addon is not None and addon.node_agent_values is not None:
        files["templates/node-agent.yaml"] = daemonset_template(name, addon.node_agent_values)
    for device_class in addon.device_classes if addon is not None else ():
        files[f"templates/deviceclass-{device_class.name}.yaml"] = yaml.safe_dump(
            device_class_manifest(device_class), sort_keys=False
        )
    if addon is not None and addon.service_account_values:
        files["templates/serviceaccount.yaml"] = serviceaccount_template(name, addon.service_account_values)
    crd_folder = "templates/crds" if addon is not None and addon.crds_in_templates else "crds"
    for crd in addon.crds if addon is not None else ():
        # JSON is YAML, and the real CRDs are large: compact JSON takes no time to write and keeps the
        # release Helm stores (the chart included, in a Secret of at most 1 MiB) small.
        files[f"{crd_folder}/{crd.plural}.{crd.group}.yaml"] = json.dumps(
            crd_manifest(crd, crds), separators=(",", ":")
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_repository(folder: Path, charts: dict[str, str], crds: Mapping[str, dict] | None = None) -> Path:
    """A chart repository in ``folder`` holding a stand-in for each ``{chart: version}``, installing the
    real CRDs of ``crds`` (by ``plural.group``) where it has them."""
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries: dict[str, list[dict]] = {}
    for name, version in sorted(charts.items()):
        archive = chart_archive(name, version, crds)
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
    """A chart repository served on 127.0.0.1 until ``stop()`` (or the end of the ``with`` block); on
    ``port`` when given (a repository stopped and served again at the URL the stack knows)."""

    def __init__(self, folder: Path, port: int = 0):
        self.folder = folder
        handler = partial(_QuietHandler, directory=str(folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
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
