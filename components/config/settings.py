"""``PlatformSettings``: every section, and the rules that relate them."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from .. import validation
from ..observability import MONITORING_NAMESPACE
from ._base import Model, Violation, raise_violations, unique_names
from .infrastructure import (
    ChartSettings,
    ClusterSettings,
    NetworkSettings,
    NodeGroupsSettings,
)
from .services import (
    MAX_CLUSTER_NAME_FOR_BUCKET,
    IngressSettings,
    NamespaceSettings,
    ObservabilitySettings,
    SecretSettings,
    StorageSettings,
)
from .workloads import InferenceSettings, TrainingSettings, WorkloadsSettings

# -- the whole platform ----------------------------------------------------------------------------


class PlatformSettings(Model):
    environment: Literal["dev", "prod"]
    network: NetworkSettings = NetworkSettings()
    cluster: ClusterSettings
    nodeGroups: NodeGroupsSettings = NodeGroupsSettings()
    charts: ChartSettings
    secrets: list[SecretSettings] = Field(default_factory=list)
    ingress: IngressSettings = IngressSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    storage: StorageSettings = StorageSettings()
    namespaces: list[NamespaceSettings] = Field(default_factory=list)
    workloads: WorkloadsSettings = WorkloadsSettings()
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @model_validator(mode="after")
    def _cross_section(self) -> PlatformSettings:
        found: list[Violation] = []
        found += [(("secrets", *p), m) for p, m in unique_names(self.secrets, "secret")]
        found += [(("namespaces", *p), m) for p, m in unique_names(self.namespaces, "namespace")]
        found += self._reference_rules()
        found += self._ingress_rules()
        if self.is_prod:
            found += self._prod_rules()
        raise_violations(found)
        return self

    def _reference_rules(self) -> list[Violation]:
        found: list[Violation] = []
        namespaces = {n.name for n in self.namespaces}
        gpu_groups = {g.name: g for g in self.nodeGroups.gpu}
        secrets = {(s.namespace, s.name): s for s in self.secrets}
        served = {m.name for m in self.observability.customMetrics} if self.observability.enabled else set()
        for i, secret in enumerate(self.secrets):
            if secret.namespace == MONITORING_NAMESPACE and not self.observability.enabled:
                found.append(
                    (
                        ("secrets", i, "namespace"),
                        f"'{MONITORING_NAMESPACE}' exists only with observability.enabled: true",
                    )
                )
            elif secret.namespace not in namespaces and secret.namespace != MONITORING_NAMESPACE:
                found.append(
                    (("secrets", i, "namespace"), f"'{secret.namespace}' is not declared in namespaces")
                )
        found += self._alert_receiver_rules(secrets)
        for kind, i, w in self.workloads.all():
            at = ("workloads", kind, i)
            if w.namespace not in namespaces:
                found.append(((*at, "namespace"), f"'{w.namespace}' is not declared in namespaces"))
            if w.gpu:
                group = gpu_groups.get(w.gpu.nodeGroup)
                if group is None:
                    found.append(((*at, "gpu", "nodeGroup"), f"no GPU node group named '{w.gpu.nodeGroup}'"))
                elif w.gpu.count > group.gpu_count:
                    found.append(
                        (
                            (*at, "gpu", "count"),
                            f"must be <= {group.gpu_count} (GPUs per node of '{group.name}')",
                        )
                    )
            for j, ref in enumerate(w.secretEnv):
                secret = secrets.get((w.namespace, ref.secret))
                if secret is None:
                    found.append(
                        (
                            (*at, "secretEnv", j, "secret"),
                            f"no secret '{ref.secret}' in namespace '{w.namespace}'",
                        )
                    )
                elif ref.key not in secret.keys:
                    found.append(
                        ((*at, "secretEnv", j, "key"), f"secret '{ref.secret}' has no key '{ref.key}'")
                    )
            for j, files in enumerate(w.secretFiles):
                secret = secrets.get((w.namespace, files.secret))
                if secret is None:
                    found.append(
                        (
                            (*at, "secretFiles", j, "secret"),
                            f"no secret '{files.secret}' in namespace '{w.namespace}'",
                        )
                    )
                    continue
                found += [
                    ((*at, "secretFiles", j, "keys"), f"secret '{files.secret}' has no key '{key}'")
                    for key in files.keys
                    if key not in secret.keys
                ]
            if isinstance(w, TrainingSettings) and w.sharedStorageMountPath:
                shared = self.storage.sharedFileSystem
                if not shared.enabled:
                    found.append(((*at, "sharedStorageMountPath"), "enable storage.sharedFileSystem first"))
                elif shared.namespace != w.namespace:
                    found.append(((*at, "namespace"), f"the shared volume lives in '{shared.namespace}'"))
            if isinstance(w, InferenceSettings) and w.autoscaling:
                for j, metric in enumerate(w.autoscaling.customMetrics):
                    if metric.name not in served:
                        found.append(
                            (
                                (*at, "autoscaling", "customMetrics", j, "name"),
                                f"no observability.customMetrics rule serves '{metric.name}' (the HPA would never scale)",
                            )
                        )
        # The generated bucket name <cluster>-models-<12-digit account>-<region> must fit in 63.
        if self.storage.modelBucket.name is None and len(self.cluster.name) > MAX_CLUSTER_NAME_FOR_BUCKET:
            found.append(
                (
                    ("storage", "modelBucket", "name"),
                    "name the bucket: the cluster name is too long to derive one",
                )
            )
        if (
            self.storage.sharedFileSystem.enabled
            and self.storage.sharedFileSystem.namespace not in namespaces
        ):
            found.append((("storage", "sharedFileSystem", "namespace"), "is not declared in namespaces"))
        return found

    def _alert_receiver_rules(self, secrets: dict[tuple[str, str], SecretSettings]) -> list[Violation]:
        """The receiver's URL reaches Alertmanager as a secret synced into the metrics namespace."""
        alerting = self.observability.alerting
        receiver = alerting.receiver
        if not alerting.enabled or receiver is None:
            return []
        at = ("observability", "alerting", "receiver")
        secret = secrets.get((MONITORING_NAMESPACE, receiver.secret))
        if secret is None:
            return [
                (
                    (*at, "secret"),
                    f"no secret '{receiver.secret}' in namespace '{MONITORING_NAMESPACE}': declare it under "
                    f"secrets with namespace: {MONITORING_NAMESPACE}",
                )
            ]
        if receiver.key not in secret.keys:
            return [((*at, "key"), f"secret '{receiver.secret}' has no key '{receiver.key}'")]
        return []

    def _ingress_rules(self) -> list[Violation]:
        found: list[Violation] = []
        routed = [(i, w) for i, w in enumerate(self.workloads.inference) if w.ingress]
        hosts = Counter((w.ingress.host, w.ingress.path) for _, w in routed)
        for i, w in routed:
            at = ("workloads", "inference", i, "ingress")
            if hosts[(w.ingress.host, w.ingress.path)] > 1:
                found.append(((*at, "host"), f"'{w.ingress.host}{w.ingress.path}' is routed twice"))
            if w.ingress.tls and self.ingress.controller == "alb" and not self.ingress.certificateArn:
                found.append(
                    (
                        ("ingress", "certificateArn"),
                        f"TLS for '{w.ingress.host}' needs an ACM certificate ARN",
                    )
                )
            if w.ingress.tls and self.ingress.controller == "nginx":
                found += self._nginx_tls_secret(w)
        return list(dict.fromkeys(found))

    def _nginx_tls_secret(self, w: InferenceSettings) -> list[Violation]:
        """ingress-nginx reads the certificate from a Secret in the Ingress's own namespace."""
        name = self.ingress.tlsSecret
        assert w.ingress is not None
        if not name:
            return [(("ingress", "tlsSecret"), f"TLS for '{w.ingress.host}' needs tlsSecret")]
        secret = next((s for s in self.secrets if s.name == name and s.namespace == w.namespace), None)
        if secret is None:
            return [
                (
                    ("ingress", "tlsSecret"),
                    f"declare secret '{name}' in namespace '{w.namespace}' under secrets",
                )
            ]
        missing = [k for k in ("tls.crt", "tls.key") if k not in secret.keys]
        if missing:
            return [(("ingress", "tlsSecret"), f"secret '{name}' needs the keys {', '.join(missing)}")]
        return []

    def _prod_rules(self) -> list[Violation]:
        found: list[Violation] = []
        for kind, i, w in self.workloads.all():
            for path, image in w.images():
                if not validation.is_digest_pinned(image):
                    found.append(
                        (
                            ("workloads", kind, i, *path),
                            f"prod runs images by digest (a tag can be moved in the registry): pin "
                            f"'{image}' as <image>@sha256:<digest>",
                        )
                    )
        for i, w in enumerate(self.workloads.inference):
            at = ("workloads", "inference", i)
            if w.ingress and self.ingress.scheme == "internet-facing" and not w.ingress.tls:
                found.append(((*at, "ingress", "tls"), "a public ingress in prod must use TLS"))
            floor = w.autoscaling.minReplicas if w.autoscaling else w.replicas
            if floor < 2:
                key = ("autoscaling", "minReplicas") if w.autoscaling else ("replicas",)
                found.append(((*at, *key), "prod inference needs at least 2 replicas"))
        if not self.observability.alerting.enabled:
            found.append(
                (
                    ("observability", "alerting", "enabled"),
                    "prod must deliver its alerts: enable alerting with a receiver (Slack or PagerDuty)",
                )
            )
        endpoint = self.cluster.endpoint
        if "0.0.0.0/0" in endpoint.publicAccessCidrs:
            found.append(
                (("cluster", "endpoint", "publicAccessCidrs"), "prod must not open the API to 0.0.0.0/0")
            )
        return found
