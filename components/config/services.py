"""Settings of the platform services: secrets, ingress, observability, storage, tenant namespaces."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .. import validation
from ..addons.ingress import ControllerKind, Scheme
from ..addons.observability import MetricKind, ReceiverKind
from ..fit import NamespaceFit
from ._base import (
    AddonVersion,
    CertificateArn,
    ConfigKey,
    DnsLabel,
    Duration,
    MetricName,
    Model,
    Quantity,
    SecretArn,
    Violation,
    checked,
    duplicates,
    raise_violations,
    unique_names,
)

# -- secrets and ingress ---------------------------------------------------------------------------


class SecretSettings(Model):
    name: DnsLabel = Field(description="name of the Kubernetes Secret the operator keeps in sync")
    namespace: DnsLabel
    keys: list[ConfigKey] = Field(min_length=1)
    description: str = Field(default="", max_length=2048, description="Secrets Manager takes up to 2048")
    existingArn: SecretArn | None = None
    valueFrom: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="config key of a secret JSON object {key: value} used as the initial value",
    )
    refreshInterval: Duration = "1h"

    @model_validator(mode="after")
    def _source(self) -> SecretSettings:
        found: list[Violation] = [(("keys",), f"duplicate key '{k}'") for k in duplicates(self.keys)]
        if self.existingArn and self.valueFrom:
            found.append(
                (("valueFrom",), "an existing secret keeps its own value: drop valueFrom or existingArn")
            )
        raise_violations(found)
        return self


class IngressSettings(Model):
    controller: ControllerKind = "alb"
    scheme: Scheme = "internet-facing"
    certificateArn: CertificateArn | None = None
    tlsSecret: DnsLabel | None = Field(
        default=None, description="nginx: the secret (from secrets) holding tls.crt/tls.key"
    )
    sslPolicy: str = "ELBSecurityPolicy-TLS13-1-2-2021-06"

    @model_validator(mode="after")
    def _tls_source(self) -> IngressSettings:
        found: list[Violation] = []
        if self.controller == "nginx" and self.certificateArn:
            found.append((("certificateArn",), "ingress-nginx terminates TLS in the cluster: use tlsSecret"))
        raise_violations(found)
        return self


# -- observability and storage ---------------------------------------------------------------------


class CustomMetricSettings(Model):
    name: MetricName
    series: MetricName
    kind: MetricKind = "rate"


class AlertReceiverSettings(Model):
    type: ReceiverKind
    secret: DnsLabel = Field(description="a secret under `secrets` in the monitoring namespace")
    key: Annotated[str, Field(pattern=validation.CONFIG_KEY_PATTERN.pattern)] = Field(
        description="the key holding the Slack webhook URL or the PagerDuty routing key"
    )
    channel: Annotated[str, Field(pattern=validation.SLACK_CHANNEL_PATTERN.pattern)] | None = Field(
        default=None, description="slack: the channel to post to (default: the webhook's own)"
    )

    @model_validator(mode="after")
    def _channel(self) -> AlertReceiverSettings:
        if self.channel is not None and self.type != "slack":
            raise_violations([(("channel",), "only a Slack receiver posts to a channel")])
        return self


class AlertingSettings(Model):
    enabled: bool = False
    receiver: AlertReceiverSettings | None = None
    gpuMemoryPercent: int = Field(default=95, ge=50, le=100, description="GpuMemoryNearFull fires above this")

    @property
    def delivery(self) -> AlertReceiverSettings | None:
        """Where Alertmanager delivers; None: no Alertmanager runs."""
        return self.receiver if self.enabled else None

    @model_validator(mode="after")
    def _receiver(self) -> AlertingSettings:
        if self.enabled and self.receiver is None:
            raise_violations(
                [
                    (
                        ("receiver",),
                        "required when alerting is enabled: {type: slack | pagerduty, secret, key} naming "
                        "the secret (namespace: monitoring) that holds the webhook URL or routing key",
                    )
                ]
            )
        return self


class ObservabilitySettings(Model):
    enabled: bool = True
    prometheusRetention: Annotated[str, AfterValidator(checked(validation.prometheus_duration))] = "15d"
    prometheusStorage: Quantity = "50Gi"
    grafana: bool = False
    customMetrics: list[CustomMetricSettings] = Field(default_factory=list)
    alerting: AlertingSettings = AlertingSettings()

    @model_validator(mode="after")
    def _names(self) -> ObservabilitySettings:
        found: list[Violation] = [
            (("customMetrics", *path), msg) for path, msg in unique_names(self.customMetrics, "metric")
        ]
        if self.alerting.enabled and not self.enabled:
            found.append(
                (("alerting", "enabled"), "needs enabled: true (Alertmanager is part of the metrics stack)")
            )
        raise_violations(found)
        return self


# 63 - len("-models-") - 12 (account id) - 1 - 14 (the longest region name)
MAX_CLUSTER_NAME_FOR_BUCKET = 28


class ModelBucketSettings(Model):
    name: (
        Annotated[
            str,
            AfterValidator(
                checked(
                    lambda v: None if validation.is_s3_bucket_name(v) else f"'{v}' is not an S3 bucket name"
                )
            ),
        ]
        | None
    ) = Field(default=None, description="bucket name; generated from the stack when omitted")
    noncurrentVersionDays: int = Field(default=30, ge=1, le=3650)


class SharedFileSystemSettings(Model):
    enabled: bool = False
    namespace: DnsLabel = "ml-training"
    claimName: DnsLabel = "training-shared"
    size: Quantity = "1Ti"
    efsCsiDriverVersion: AddonVersion | None = None

    @model_validator(mode="after")
    def _driver(self) -> SharedFileSystemSettings:
        if self.enabled and not self.efsCsiDriverVersion:
            raise_violations([(("efsCsiDriverVersion",), "pin the aws-efs-csi-driver add-on version")])
        return self


class StorageSettings(Model):
    modelBucket: ModelBucketSettings = ModelBucketSettings()
    sharedFileSystem: SharedFileSystemSettings = SharedFileSystemSettings()


class QuotaSettings(Model):
    cpu: Quantity = "32"
    memory: Quantity = "128Gi"
    gpus: int = Field(default=0, ge=0, le=1024)
    pods: int = Field(default=100, ge=1, le=10000)
    persistentVolumeClaims: int = Field(default=20, ge=0, le=1000)


class NamespaceSettings(Model):
    name: DnsLabel
    quota: QuotaSettings = QuotaSettings()

    def fit(self, ingress_ports: tuple[int, ...] | None = None) -> NamespaceFit:
        """What the namespace admits, as the fit rules read it (``components.fit``)."""
        return NamespaceFit(
            name=self.name,
            ingress_ports=ingress_ports,
            cpu=self.quota.cpu,
            memory=self.quota.memory,
            gpus=self.quota.gpus,
        )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith("kube-") or value in {"default", "external-secrets", "monitoring"}:
            raise PydanticCustomError(
                "value", "{problem}", {"problem": f"'{value}' is reserved for the platform"}
            )
        return value
