"""Secrets Manager -> IAM -> ClusterSecretStore -> ExternalSecret.

Secret values live in AWS Secrets Manager (encrypted with a customer-managed KMS key). The External
Secrets Operator reads exactly those secrets with a role that can read nothing else, and syncs them
into Kubernetes Secrets in the workloads' namespaces. Pods only ever see a normal Kubernetes Secret.

The pure builders (``eso_policy``, ``cluster_secret_store_spec``, ``external_secret_spec``) and the
args' ``problems()`` are testable without the engine; ``ExternalSecrets`` wires them to resources.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as kubernetes

from ..catalog.helm import helm_release
from ..catalog.registry import EXTERNAL_SECRETS
from ..errors import Problem, path, require, type_problems, under
from ..iam import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    allow,
    policy_document,
)
from ..inputs import checked_fields, field_problems
from ..validation import (
    KMS_DELETION_WINDOW_DAYS,
    config_key,
    duration,
    go_duration,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_exact_version,
)

ESO_API_VERSION = "external-secrets.io/v1"
ESO_NAMESPACE = "external-secrets"
ESO_SERVICE_ACCOUNT = "external-secrets"
DEFAULT_STORE_NAME = "aws-secrets-manager"

SECRET_READ_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")

DEFAULT_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "256Mi"},
}

# A full secret ARN, including the 6-character suffix Secrets Manager appends: IAM matches the
# policy's Resource against the full ARN, so a partial ARN would silently grant nothing.
SECRET_ARN_PATTERN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$"
)
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")


def secret_arn_reason(value: object) -> str | None:
    if isinstance(value, str) and SECRET_ARN_PATTERN.fullmatch(value):
        return None
    return (
        f"{value!r} is not a full Secrets Manager secret ARN "
        "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 chars>)"
    )


def kms_key_arn_reason(value: object) -> str | None:
    return (
        None
        if isinstance(value, str) and _KMS_KEY_ARN.fullmatch(value)
        else f"{value!r} is not a KMS key ARN"
    )


# The arguments of a secret managed elsewhere, which may come from other resources, and their rules.
EXISTING_INPUTS = {"existing_arn": secret_arn_reason, "existing_kms_key_arn": kms_key_arn_reason}


@dataclass(frozen=True)
class SecretSpec:
    """One Kubernetes Secret synced from one Secrets Manager secret (a JSON object of ``keys``).

    ``initial_value`` is a Pulumi *secret* JSON string ``{key: value}`` (e.g. from
    ``config.require_secret``); it seeds the Secrets Manager secret once and is then left alone (see
    ``ExternalSecrets``). ``existing_arn`` points at a secret managed elsewhere (full ARN with its
    6-character suffix); ``existing_kms_key_arn`` names the CMK that encrypts it, if it isn't the
    AWS-managed ``aws/secretsmanager`` key, so the operator may decrypt it. Both may be other
    resources' outputs (a ``Secret``'s ``arn``, a ``Key``'s ``arn``): plain values are checked at
    once, ``Output`` values when they resolve (see ``components.inputs``).
    """

    name: str  # the Kubernetes Secret's name (and the Secrets Manager secret's, below the stack's prefix)
    namespace: str  # where the Kubernetes Secret is synced to
    keys: tuple[str, ...]
    description: str = ""  # the Secrets Manager secret's description
    existing_arn: pulumi.Input[str] | None = None  # a secret managed elsewhere (its full ARN)
    initial_value: pulumi.Input[str] | None = field(default=None, compare=False, hash=False, repr=False)
    refresh_interval: str = "1h"  # how often the operator re-reads the secret (a duration, e.g. 1h)
    existing_kms_key_arn: pulumi.Input[str] | None = None  # the key encrypting that secret, if a CMK

    def problems(self) -> list[Problem]:
        """Every problem of this spec alone (``specs`` checks the names across specs)."""
        problems: list[Problem] = []
        if not is_dns1123_subdomain(self.name):
            problems.append(("name", f"{self.name!r} is not a DNS-1123 name (lowercase, digits, '-', '.')"))
        if not is_dns1123_label(self.namespace or ""):
            problems.append(("namespace", f"{self.namespace!r} is not a DNS-1123 label"))
        if not self.keys:
            problems.append(("keys", "list at least one key"))
        if isinstance(self.keys, str):
            problems.append(("keys", f"must be a tuple of keys, not the string {self.keys!r}"))
        else:
            bad = [k for k in self.keys if config_key(k)]
            if bad:
                problems.append(("keys", f"{bad} are not valid Secret keys ([-._a-zA-Z0-9]+)"))
            dupes = sorted({k for k in self.keys if list(self.keys).count(k) > 1})
            if dupes:
                problems.append(("keys", f"duplicated {dupes}"))
        if duration(self.refresh_interval or ""):
            problems.append(
                ("refresh_interval", f"{self.refresh_interval!r} is not a duration like '1h' or '15m'")
            )
        problems += field_problems(self, EXISTING_INPUTS)
        if self.existing_arn is not None and self.initial_value is not None:
            problems.append(
                ("", "existing_arn and initial_value are exclusive (the value is managed elsewhere)")
            )
        if self.existing_kms_key_arn is not None and self.existing_arn is None:
            problems.append(("existing_kms_key_arn", "only applies together with existing_arn"))
        if isinstance(self.initial_value, str):
            problems += [("initial_value", e) for e in _initial_value_errors(self.initial_value, self.keys)]
        return problems


@dataclass
class ExternalSecretsArgs:
    """Inputs of ``ExternalSecrets``; the defaults are the production-safe choices."""

    stack_name: str  # the platform stack's name: prefixes the secrets' names and the KMS key's alias
    region: str  # the AWS region of the secrets (the SecretStore reads there)
    identity: WorkloadIdentity  # how the operator's pod gets its IAM role
    provider: kubernetes.Provider  # the cluster's Kubernetes provider
    chart_version: str  # the external-secrets chart's exact version
    # where the chart comes from (its repository or a mirror)
    chart_repository: str = EXTERNAL_SECRETS.repository
    specs: Sequence[SecretSpec] = ()  # the secrets to keep in Secrets Manager and sync into the cluster
    namespace: str = ESO_NAMESPACE  # the operator's namespace
    # the ClusterSecretStore's name (every ExternalSecret reads through it)
    store_name: str = DEFAULT_STORE_NAME
    protect: bool = True  # protect and retain the secrets and their KMS key (a destroy leaves them)
    recovery_window_in_days: int = 30  # days a deleted secret can still be restored (0: at once; else 7-30)
    kms_deletion_window_in_days: int = 30  # days before a deleted KMS key is gone (7-30)
    # the operator's pods' requests and limits, as the chart's ``resources`` values
    resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on the secrets, the key and the role
    # What the operator and the ExternalSecrets wait for: schedulable nodes, the tenant namespaces.
    depends_on: Sequence[pulumi.Resource] = ()

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for i, spec in enumerate(self.specs):
            problems += under(path("specs", i), spec.problems())
            if spec.name in seen:
                problems.append(
                    (path("specs", i, "name"), f"{spec.name!r} is already used by specs[{seen[spec.name]}]")
                )
            seen.setdefault(spec.name, i)
        if not is_exact_version(self.chart_version):
            problems.append(
                ("chart_version", f"{self.chart_version!r} must be an exact version such as '2.1.0'")
            )
        if not (self.recovery_window_in_days == 0 or 7 <= self.recovery_window_in_days <= 30):
            problems.append(("recovery_window_in_days", f"{self.recovery_window_in_days} must be 0 or 7..30"))
        if self.kms_deletion_window_in_days not in KMS_DELETION_WINDOW_DAYS:
            problems.append(
                ("kms_deletion_window_in_days", f"{self.kms_deletion_window_in_days} must be 7..30")
            )
        if self.protect and self.recovery_window_in_days == 0:
            problems.append(
                ("recovery_window_in_days", "0 (delete immediately) is not allowed when protect=True")
            )
        if not re.fullmatch(r"^[A-Za-z0-9/_+=.@-]+$", self.stack_name or ""):
            problems.append(
                ("stack_name", f"{self.stack_name!r} may only contain letters, digits and /_+=.@-")
            )
        if not is_dns1123_label(self.namespace or ""):
            problems.append(("namespace", f"{self.namespace!r} is not a DNS-1123 label"))
        if not is_dns1123_subdomain(self.store_name):
            problems.append(("store_name", f"{self.store_name!r} is not a DNS-1123 name"))
        return problems


# -- pure builders --------------------------------------------------------------------------------


def secret_name(stack_name: str, spec: SecretSpec) -> str:
    """The Secrets Manager name of a secret this component creates: ``<stack>/<spec.name>``."""
    return f"{stack_name}/{spec.name}"


def remote_key(stack_name: str, spec: SecretSpec) -> pulumi.Input[str]:
    """What the ExternalSecret asks the store for: the existing ARN, or the created secret's name."""
    return spec.existing_arn if spec.existing_arn is not None else secret_name(stack_name, spec)


def eso_policy(secret_arns: Sequence[str], kms_key_arns: Sequence[str], region: str) -> dict[str, Any]:
    """Read exactly ``secret_arns`` and decrypt with ``kms_key_arns``, only through Secrets Manager."""
    arns = sorted(set(secret_arns))
    keys = sorted(set(kms_key_arns))
    require(
        "eso_policy",
        [
            (at, f"wildcard ARNs are not allowed: {wildcards}")
            for at, given in (("secret_arns", arns), ("kms_key_arns", keys))
            if (wildcards := [a for a in given if "*" in a or "?" in a])
        ],
    )
    statements = []
    if arns:
        statements.append(allow(SECRET_READ_ACTIONS, arns, Sid="ReadPlatformSecrets"))
    if keys:
        statements.append(
            allow(
                ["kms:Decrypt"],
                keys,
                Sid="DecryptViaSecretsManager",
                Condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            )
        )
    return policy_document(statements)


def cluster_secret_store_spec(
    region: str,
    mode: str,
    service_account: str = ESO_SERVICE_ACCOUNT,
    namespace: str = ESO_NAMESPACE,
) -> dict[str, Any]:
    """The ``ClusterSecretStore`` spec for AWS Secrets Manager.

    IRSA: ``auth.jwt.serviceAccountRef`` makes the operator request a token for its own annotated
    service account (a ClusterSecretStore must name the namespace). Pod Identity: no ``auth`` block;
    the AWS SDK default credential chain picks up the credentials the Pod Identity agent injects.
    """
    aws_provider: dict[str, Any] = {"service": "SecretsManager", "region": region}
    if mode == "irsa":
        aws_provider["auth"] = {
            "jwt": {"serviceAccountRef": {"name": service_account, "namespace": namespace}}
        }
    return {"provider": {"aws": aws_provider}}


def external_secret_spec(
    spec: SecretSpec, key: pulumi.Input[str], store_name: str = DEFAULT_STORE_NAME
) -> dict[str, Any]:
    """The ``ExternalSecret`` spec syncing ``spec.keys`` of the remote JSON secret ``key``.

    ``creationPolicy: Owner`` - the Kubernetes Secret is owned by (and garbage-collected with) the
    ExternalSecret. ``deletionPolicy: Retain`` - if the remote secret disappears, keep the last
    synced Secret rather than breaking running workloads. ``refreshInterval`` in the form the operator
    writes back (``1h`` -> ``1h0m0s``): it updates the whole ExternalSecret to add its finalizer, and a
    value in another form would then be the operator's, and the next ``up`` would conflict with it.
    """
    return {
        "refreshInterval": go_duration(spec.refresh_interval),
        "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
        "target": {"name": spec.name, "creationPolicy": "Owner", "deletionPolicy": "Retain"},
        "data": [{"secretKey": k, "remoteRef": {"key": key, "property": k}} for k in spec.keys],
    }


def helm_values(service_account_annotations: Any, resources: Mapping[str, Any]) -> dict[str, Any]:
    """Chart values: CRDs from the chart, the operator's own annotated service account."""
    return {
        "installCRDs": True,
        "serviceAccount": {
            "create": True,
            "name": ESO_SERVICE_ACCOUNT,
            "annotations": service_account_annotations,
        },
        "resources": dict(resources),
        "webhook": {"resources": dict(resources)},
        "certController": {"resources": dict(resources)},
    }


def _initial_value_errors(value: str, keys: Sequence[str]) -> list[str]:
    """Problems with a seed value; messages name keys only, never values."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return ["must be a JSON object of {key: value} (not valid JSON)"]
    if not isinstance(parsed, dict):
        return ["must be a JSON object of {key: value}"]
    missing = sorted(set(keys) - set(parsed))
    extra = sorted(set(parsed) - set(keys))
    errors = []
    if missing:
        errors.append(f"missing keys {missing}")
    if extra:
        errors.append(f"keys {extra} are not listed in keys")
    return errors


# -- the component ---------------------------------------------------------------------------------


class ExternalSecrets(pulumi.ComponentResource):
    """The External Secrets Operator, its AWS secrets, and one ExternalSecret per ``SecretSpec``.

    Creates: a customer-managed KMS key (rotation on) and alias; per spec without ``existing_arn`` a
    Secrets Manager secret ``<stack>/<name>`` (protected and retained on delete when
    ``protect=True``) and, given ``initial_value``, its first version; the operator's namespace; its
    role (``ServiceAccountRole``) that may read only these secrets; the Helm release; a
    ``ClusterSecretStore``; and an ``ExternalSecret`` per spec in ``spec.namespace`` (which must exist).

    ``initial_value`` is a *seed*: the version ignores later changes to ``secret_string``, so a value
    rotated out of band (console, CLI, a rotation Lambda) is not reverted by the next ``pulumi up``.
    To push a new value from config, run ``pulumi up --replace <version urn>`` or rotate in AWS. The
    value stays a Pulumi secret end to end (encrypted in state, ``[secret]`` in previews).

    Workloads consuming a secret should ``depends_on=[component.external_secrets[name]]``.
    """

    secret_arns: dict[str, pulumi.Output[str]]  # each Secrets Manager secret's ARN, by spec name
    secrets: dict[str, aws.secretsmanager.Secret]  # the Secrets Manager secrets it created, by spec name
    # the ExternalSecrets, by spec name (pass one in a workload's ``depends_on``)
    external_secrets: dict[str, kubernetes.apiextensions.CustomResource]
    kms_key: aws.kms.Key  # the key encrypting the secrets
    kms_key_arn: pulumi.Output[str]  # its ARN
    role: ServiceAccountRole  # the operator's IAM role
    release: kubernetes.helm.v3.Release  # the external-secrets Helm release
    cluster_secret_store: kubernetes.apiextensions.CustomResource  # the ClusterSecretStore
    store_name: str  # its name

    def __init__(self, name: str, args: ExternalSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        subject = f"ExternalSecrets {name!r}"
        require(subject, type_problems(args, ExternalSecretsArgs) or args.problems())
        super().__init__("aiplatform:secrets:ExternalSecrets", name, None, opts)
        specs = [
            checked_fields(subject, spec, EXISTING_INPUTS, at=path("specs", i))
            for i, spec in enumerate(args.specs)
        ]
        args = dataclasses.replace(args, specs=specs)
        self._name = name
        self._args = args
        self.store_name = args.store_name
        tags = dict(args.tags)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)
        k8s = pulumi.ResourceOptions(parent=self, provider=args.provider)

        self.kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the {args.stack_name} platform secrets in Secrets Manager",
            enable_key_rotation=True,
            deletion_window_in_days=args.kms_deletion_window_in_days,
            tags=tags,
            opts=stateful,
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.stack_name.replace('/', '-')}-secrets",
            target_key_id=self.kms_key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.kms_key_arn = self.kms_key.arn

        self.secrets = {}
        self.secret_arns = {}
        versions: dict[str, aws.secretsmanager.SecretVersion] = {}
        for spec in args.specs:
            if spec.existing_arn is not None:
                self.secret_arns[spec.name] = pulumi.Output.from_input(spec.existing_arn)
                continue
            secret = aws.secretsmanager.Secret(
                f"{name}-{spec.name}",
                name=secret_name(args.stack_name, spec),
                description=spec.description or f"{spec.namespace}/{spec.name} ({', '.join(spec.keys)})",
                kms_key_id=self.kms_key.arn,
                recovery_window_in_days=args.recovery_window_in_days,
                tags={**tags, "kubernetes-namespace": spec.namespace, "kubernetes-secret": spec.name},
                opts=stateful,
            )
            self.secrets[spec.name] = secret
            self.secret_arns[spec.name] = secret.arn
            if spec.initial_value is not None:
                versions[spec.name] = aws.secretsmanager.SecretVersion(
                    f"{name}-{spec.name}-initial",
                    secret_id=secret.id,
                    secret_string=_checked_seed(spec),
                    opts=pulumi.ResourceOptions.merge(
                        stateful, pulumi.ResourceOptions(ignore_changes=["secret_string"])
                    ),
                )

        # The operator may read exactly these secrets and decrypt with these keys (the platform's and
        # those of existing secrets), once every ARN is known.
        secret_arns = list(self.secret_arns.values())
        keys = [self.kms_key.arn, *(s.existing_kms_key_arn for s in args.specs if s.existing_kms_key_arn)]
        policy = pulumi.Output.all(*secret_arns, *keys).apply(
            lambda v: eso_policy(v[: len(secret_arns)], v[len(secret_arns) :], args.region)
        )
        self.role = ServiceAccountRole(
            f"{name}-controller",
            ServiceAccountRoleArgs(
                identity=args.identity,
                namespace=args.namespace,
                service_account=ESO_SERVICE_ACCOUNT,
                policy=policy,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.namespace = kubernetes.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": args.namespace, "labels": {"app.kubernetes.io/managed-by": "pulumi"}},
            opts=k8s,
        )
        # The role (and, for Pod Identity, its association) must exist before the operator's pods
        # start: Pod Identity credentials are injected at pod creation only.
        self.release = helm_release(
            f"{name}-release",
            chart=EXTERNAL_SECRETS.chart,
            version=args.chart_version,
            repository=args.chart_repository,
            namespace=self.namespace.metadata.name,
            values=helm_values(self.role.service_account_annotations, args.resources),
            opts=pulumi.ResourceOptions.merge(
                k8s, pulumi.ResourceOptions(depends_on=[self.role, *args.depends_on])
            ),
        )

        self.cluster_secret_store = kubernetes.apiextensions.CustomResource(
            f"{name}-store",
            api_version=ESO_API_VERSION,
            kind="ClusterSecretStore",
            metadata={"name": args.store_name},
            spec=cluster_secret_store_spec(args.region, args.identity.mode, namespace=args.namespace),
            opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=[self.release])),
        )

        self.external_secrets = {}
        for spec in args.specs:
            depends: list[pulumi.Resource] = [self.release, self.cluster_secret_store, *args.depends_on]
            if spec.name in versions:
                depends.append(versions[spec.name])
            self.external_secrets[spec.name] = kubernetes.apiextensions.CustomResource(
                f"{name}-{spec.namespace}-{spec.name}",
                api_version=ESO_API_VERSION,
                kind="ExternalSecret",
                metadata={"name": spec.name, "namespace": spec.namespace},
                spec=external_secret_spec(spec, remote_key(args.stack_name, spec), args.store_name),
                opts=pulumi.ResourceOptions.merge(k8s, pulumi.ResourceOptions(depends_on=depends)),
            )

        self.register_outputs(
            {
                "kms_key_arn": self.kms_key_arn,
                "secret_arns": self.secret_arns,
                "store_name": self.store_name,
                "role_arn": self.role.arn,
            }
        )


def _checked_seed(spec: SecretSpec) -> pulumi.Output[str]:
    """The seed as a Pulumi secret, whose keys must match ``spec.keys`` (errors name keys, not values)."""

    def check(value: str) -> str:
        require(
            f"SecretSpec {spec.name!r}",
            [("initial_value", e) for e in _initial_value_errors(value, spec.keys)],
        )
        return value

    return pulumi.Output.secret(spec.initial_value).apply(check)
