"""The aiplatform guardrails: CrossGuard policies over what the program registers.

Every policy reads the resource ``props`` in camelCase (the engine's input properties, which is what
pulumi-policy passes and what the offline plan records). Importing this module starts nothing: the
policy server only starts when ``policy/__main__.py`` constructs the ``PolicyPack``.

Enforcement per environment has ONE source of truth, :func:`policies_for`: each policy carries its
level outside prod, and ``PROD_LEVELS`` raises some of them in prod. Both the pack
(``policy/__main__.py`` in the platform's repository) and the offline plan (``plan/policy_report.py``)
call it.

The module depends on pulumi-policy alone, not on the components it checks, so the few rules it shares
with ``validation.py`` (image references, durations, exact versions) are re-stated here;
``tests/test_guardrails.py`` checks that both agree.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

PACK_NAME = "aiplatform-guardrails"
ADVISORY, MANDATORY = EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY

# ------------------------------------------------------------------------------------------------
# Pure helpers (props may be plain dicts/lists or pulumi-policy's read-only Mapping/Sequence proxies)
# ------------------------------------------------------------------------------------------------


def _is_map(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def dig(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...``, or ``None`` as soon as a step is missing or not a mapping."""
    for key in path:
        if not _is_map(value):
            return None
        value = value.get(key)
    return value


def as_list(value: Any) -> list:
    """A list for a list, ``[value]`` for a single value (IAM's "Action": "s3:GetObject"), [] for None."""
    if value is None:
        return []
    return list(value) if _is_list(value) else [value]


def is_set(value: Any, key: str) -> bool:
    """``value[key]`` is set: to a non-empty value, or to one unknown until the update (a preview's id).

    Reading an unknown value raises in pulumi-policy's proxy, and a raising policy is skipped for the
    whole resource; so where only the presence of a reference matters, check presence, not the value.
    """
    if not _is_map(value) or key not in list(value):  # iterating the proxy reads no value
        return False
    try:
        return bool(value[key])
    except UnknownValueError:
        return True


def kind_of(resource_type: str) -> str:
    """``kubernetes:apps/v1:Deployment`` -> ``Deployment``; '' for a non-Kubernetes type."""
    if not resource_type.startswith("kubernetes:"):
        return ""
    return resource_type.rsplit(":", 1)[-1]


# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def pod_spec(resource_type: str, props: Mapping) -> Mapping | None:
    """The pod spec of a workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod)."""
    path = POD_SPEC_PATHS.get(kind_of(resource_type))
    if path is None:
        return None
    spec = dig(props, *path)
    return spec if _is_map(spec) else None


def containers(spec: Mapping | None) -> list[Mapping]:
    """Every container of a pod spec: init containers (native sidecars included) then containers."""
    if not spec:
        return []
    found: list[Mapping] = []
    for key in ("initContainers", "containers"):
        found += [c for c in as_list(spec.get(key)) if _is_map(c)]
    return found


def object_ref(props: Mapping, fallback: str = "") -> str:
    """``namespace/name`` of a Kubernetes object, for messages."""
    name = dig(props, "metadata", "name") or fallback
    namespace = dig(props, "metadata", "namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned: untagged (means :latest) or :latest; a digest is pinned."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image '{image}' has no tag (it means :latest): pin a version or a digest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image '{image}' uses :latest: pin a version or a digest"
    return None


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "ms": Decimal("0.001"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


def duration_seconds(value: Any) -> Decimal | None:
    """A Go duration (``1h30m``, ``15m``, ``0``) in seconds; ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    if value in ("0", "0s"):
        return Decimal(0)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum((Decimal(n) * _UNIT_SECONDS[u] for n, u in parts), Decimal(0))


_EXACT_VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?")


def is_exact_version(value: Any) -> bool:
    return isinstance(value, str) and _EXACT_VERSION.fullmatch(value) is not None


def policy_document(value: Any) -> Mapping | None:
    """An IAM policy document given as JSON text or as a mapping; ``None`` if it cannot be read."""
    if _is_map(value):
        return value
    if isinstance(value, str):
        try:
            document = json.loads(value)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return None


def statements(document: Mapping | None) -> list[Mapping]:
    return [s for s in as_list(dig(document, "Statement")) if _is_map(s)]


def _quantity_positive(value: Any) -> bool:
    try:
        return Decimal(str(value)) > 0
    except ArithmeticError:
        return True  # an unusual quantity ("1k") still asks for the resource


# ------------------------------------------------------------------------------------------------
# Container policies: one check per rule, applied to every container of every workload
# ------------------------------------------------------------------------------------------------

ContainerCheck = Callable[[Mapping, Mapping], "str | None"]


def container_validator(check: ContainerCheck) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    """A resource validation that runs ``check(container, pod_spec)`` on every container of a workload."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        spec = pod_spec(args.resource_type, args.props)
        if spec is None:
            return
        where = f"{kind_of(args.resource_type)} {object_ref(args.props, args.name)}"
        for container in containers(spec):
            problem = check(container, spec)
            if problem:
                report_violation(f"{where}, container '{container.get('name')}': {problem}", None)

    return validate


def pod_validator(check: Callable[[Mapping, Mapping], str | None]):
    """A resource validation that runs ``check(pod_spec, props)`` once per workload."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        spec = pod_spec(args.resource_type, args.props)
        if spec is None:
            return
        problem = check(spec, args.props)
        if problem:
            where = f"{kind_of(args.resource_type)} {object_ref(args.props, args.name)}"
            report_violation(f"{where}: {problem}", None)

    return validate


def _security(container: Mapping, spec: Mapping, key: str) -> Any:
    """A security setting as it applies to the container: its own, else the pod's."""
    own = dig(container, "securityContext", key)
    return own if own is not None else dig(spec, "securityContext", key)


def check_resources(container: Mapping, _spec: Mapping) -> str | None:
    wanted = [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")]
    missing = [f"{a}.{b}" for a, b in wanted if dig(container, "resources", a, b) in (None, "")]
    return f"sets no {', '.join(missing)}" if missing else None


def check_image(container: Mapping, _spec: Mapping) -> str | None:
    return image_problem(container.get("image"))


def check_privileged(container: Mapping, _spec: Mapping) -> str | None:
    return "runs privileged" if dig(container, "securityContext", "privileged") is True else None


def check_privilege_escalation(container: Mapping, _spec: Mapping) -> str | None:
    if dig(container, "securityContext", "allowPrivilegeEscalation") is not False:
        return "does not set securityContext.allowPrivilegeEscalation: false"
    return None


def check_non_root(container: Mapping, spec: Mapping) -> str | None:
    if _security(container, spec, "runAsUser") == 0:
        return "runs as user 0 (root)"
    if _security(container, spec, "runAsNonRoot") is not True:
        return "may run as root: set runAsNonRoot: true on the pod or the container"
    return None


# Linux capabilities the restricted Pod Security Standard lets a container add back.
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})


def check_capabilities(container: Mapping, _spec: Mapping) -> str | None:
    dropped = {str(c).upper() for c in as_list(dig(container, "securityContext", "capabilities", "drop"))}
    if "ALL" not in dropped:
        return "does not drop ALL capabilities"
    added = {str(c).upper() for c in as_list(dig(container, "securityContext", "capabilities", "add"))}
    extra = sorted(added - ALLOWED_ADDED_CAPABILITIES)
    return f"adds capabilities {', '.join(extra)}" if extra else None


ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})


def check_seccomp(container: Mapping, spec: Mapping) -> str | None:
    profile = dig(_security(container, spec, "seccompProfile"), "type")
    if profile not in ALLOWED_SECCOMP:
        shown = profile or "unset"
        return f"seccomp profile is {shown}: use RuntimeDefault on the pod or the container"
    return None


STATIC_AWS_CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


def check_static_credentials(container: Mapping, _spec: Mapping) -> str | None:
    names = sorted(
        {
            str(e.get("name"))
            for e in as_list(container.get("env"))
            if _is_map(e) and e.get("name") in STATIC_AWS_CREDENTIALS
        }
    )
    if names:
        return f"sets {', '.join(names)}: use IRSA or EKS Pod Identity instead of static keys"
    return None


GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}


def requests_gpu(container: Mapping) -> bool:
    return any(
        _quantity_positive(dig(container, "resources", part, GPU_RESOURCE))
        for part in ("requests", "limits")
        if dig(container, "resources", part, GPU_RESOURCE) is not None
    )


def tolerates(toleration: Mapping, taint: Mapping) -> bool:
    """Kubernetes' toleration matching, for one taint."""
    if toleration.get("effect") not in (None, "", taint["effect"]):
        return False
    key = toleration.get("key")
    if toleration.get("operator") == "Exists":
        return key in (None, "", taint["key"])
    return key == taint["key"] and str(toleration.get("value", "")) == taint["value"]


def check_gpu_toleration(spec: Mapping, _props: Mapping) -> str | None:
    gpu_containers = [str(c.get("name")) for c in containers(spec) if requests_gpu(c)]
    if not gpu_containers:
        return None
    tolerations = [t for t in as_list(spec.get("tolerations")) if _is_map(t)]
    if any(tolerates(t, GPU_TAINT) for t in tolerations):
        return None
    return (
        f"containers {', '.join(gpu_containers)} request {GPU_RESOURCE} but the pod does not tolerate "
        "the nvidia.com/gpu=true:NoSchedule taint (it would stay Pending)"
    )


def check_one_gpu_allocation(spec: Mapping, _props: Mapping) -> str | None:
    """A pod gets GPUs one way: the device plugin's nvidia.com/gpu, or DRA claims (never both: the
    device plugin and the DRA driver never manage the same node's GPUs)."""
    claims = [str(c.get("name")) for c in as_list(spec.get("resourceClaims")) if _is_map(c)]
    gpu_containers = [str(c.get("name")) for c in containers(spec) if requests_gpu(c)]
    if not claims or not gpu_containers:
        return None
    return (
        f"containers {', '.join(gpu_containers)} request {GPU_RESOURCE} and the pod has the DRA claims "
        f"{', '.join(claims)}: get GPUs one way, by claims on a DRA stack or by {GPU_RESOURCE} on a "
        "device-plugin one"
    )


# ------------------------------------------------------------------------------------------------
# AWS resource checks
# ------------------------------------------------------------------------------------------------

WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


def validate_irsa_trust(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:iam/role:Role":
        return
    for i, statement in enumerate(statements(policy_document(args.props.get("assumeRolePolicy")))):
        actions = as_list(statement.get("Action"))
        if statement.get("Effect") != "Allow" or WEB_IDENTITY not in actions:
            continue
        subs = [
            value
            for block in (statement.get("Condition") or {}).values()
            if _is_map(block)
            for key, value in block.items()
            if str(key).endswith(":sub")
        ]
        if not subs:
            report_violation(
                f"role {args.name}: statement {i} allows {WEB_IDENTITY} without a ':sub' condition, "
                "so every service account of the cluster can assume it",
                None,
            )
        elif any(str(v).strip() in ("*", "system:serviceaccount:*") for s in subs for v in as_list(s)):
            report_violation(f"role {args.name}: statement {i} has a wildcard ':sub' condition", None)


IAM_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
# Services whose "Resource": "*" would reach every secret, object or key of the account.
SENSITIVE_SERVICES = ("secretsmanager:", "s3:", "kms:")


def iam_statement_problems(statement: Mapping) -> list[str]:
    if statement.get("Effect") != "Allow":
        return []
    problems: list[str] = []
    actions = [str(a) for a in as_list(statement.get("Action"))]
    wildcards = [a for a in actions if a == "*" or a.endswith(":*")]
    if wildcards:
        problems.append(f"allows wildcard actions {', '.join(wildcards)}")
    if statement.get("NotAction") is not None:
        problems.append("allows NotAction (everything but a list)")
    resources = [str(r) for r in as_list(statement.get("Resource"))]
    if "*" in resources:
        sensitive = [a for a in actions if a.lower().startswith(SENSITIVE_SERVICES)]
        if sensitive:
            problems.append(f"allows {', '.join(sensitive)} on Resource '*'")
    return problems


def validate_iam_wildcards(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in IAM_POLICY_TYPES:
        return
    for i, statement in enumerate(statements(policy_document(args.props.get("policy")))):
        label = statement.get("Sid") or str(i)
        for problem in iam_statement_problems(statement):
            report_violation(f"policy {args.name}, statement {label}: {problem}", None)


WORLD = {ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")}


def _is_world(cidr: Any) -> bool:
    try:
        return ipaddress.ip_network(str(cidr), strict=False) in WORLD
    except ValueError:
        return False


def validate_eks_endpoint(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:eks/cluster:Cluster":
        return
    vpc = args.props.get("vpcConfig") or {}
    if vpc.get("endpointPublicAccess") is False:
        return  # private endpoint only
    cidrs = as_list(vpc.get("publicAccessCidrs"))
    if not cidrs:
        report_violation(
            f"cluster {args.name}: public API endpoint without publicAccessCidrs (open to 0.0.0.0/0)", None
        )
    elif any(_is_world(c) for c in cidrs):
        report_violation(f"cluster {args.name}: public API endpoint open to the world ({cidrs})", None)


def validate_eks_secrets_encryption(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "aws:eks/cluster:Cluster":
        return
    configs = [c for c in as_list(args.props.get("encryptionConfig")) if _is_map(c)]
    if not any("secrets" in as_list(c.get("resources")) and dig(c, "provider", "keyArn") for c in configs):
        report_violation(
            f"cluster {args.name}: Kubernetes Secrets are not envelope-encrypted "
            "(encryptionConfig with resources ['secrets'] and a KMS key)",
            None,
        )


IMDS_TYPES = frozenset({"aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/instance:Instance"})


def _uses_launch_template(props: Mapping) -> bool:
    """A node group names a launch template. Its id is unknown until the template exists (a first
    preview): the reference is what the check needs, not its value."""
    if not is_set(props, "launchTemplate"):
        return False
    try:
        template = props["launchTemplate"]
    except UnknownValueError:
        return True  # the whole reference is computed
    return is_set(template, "id") or is_set(template, "name")


def validate_imdsv2(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in IMDS_TYPES:
        tokens = dig(args.props, "metadataOptions", "httpTokens")
        if tokens != "required":
            report_violation(
                f"{args.name}: metadataOptions.httpTokens is {tokens or 'unset'}: require IMDSv2", None
            )
    elif args.resource_type == "aws:eks/nodeGroup:NodeGroup" and not _uses_launch_template(args.props):
        report_violation(
            f"node group {args.name} has no launch template, so nothing enforces IMDSv2 on its nodes", None
        )


NODE_POOL_TYPE = "kubernetes:karpenter.sh/v1:NodePool"
EC2_NODE_CLASS_TYPE = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"


def validate_node_pool_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A NodePool without limits may start nodes without end: its limits are its spend cap."""
    if args.resource_type != NODE_POOL_TYPE:
        return
    limits = dig(args.props, "spec", "limits")
    name = object_ref(args.props, args.name)
    if not _is_map(limits) or not any(key in limits for key in ("cpu", GPU_RESOURCE)):
        report_violation(f"NodePool {name} sets no cpu or {GPU_RESOURCE} limit: nothing caps its nodes", None)
        return
    taints = as_list(dig(args.props, "spec", "template", "spec", "taints"))
    if any(dig(t, "key") == GPU_RESOURCE for t in taints) and GPU_RESOURCE not in limits:
        report_violation(f"NodePool {name} starts GPU nodes but sets no {GPU_RESOURCE} limit", None)


def validate_ec2_node_class(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Karpenter's nodes require IMDSv2 and boot from encrypted volumes, stated on the node class."""
    if args.resource_type != EC2_NODE_CLASS_TYPE:
        return
    name = object_ref(args.props, args.name)
    spec = args.props.get("spec") or {}
    tokens = dig(spec, "metadataOptions", "httpTokens")
    if tokens != "required":
        report_violation(
            f"EC2NodeClass {name}: metadataOptions.httpTokens is {tokens or 'unset'}: require IMDSv2", None
        )
    mappings = [m for m in as_list(spec.get("blockDeviceMappings")) if _is_map(m)]
    if not mappings:
        report_violation(
            f"EC2NodeClass {name} states no blockDeviceMappings: nothing says its volumes are encrypted", None
        )
    for mapping in mappings:
        if dig(mapping, "ebs", "encrypted") is not True:
            device = mapping.get("deviceName") or "a volume"
            report_violation(f"EC2NodeClass {name}: {device} is not encrypted (ebs.encrypted: true)", None)


# ------------------------------------------------------------------------------------------------
# Kubernetes object checks
# ------------------------------------------------------------------------------------------------


def validate_hpa_bounds(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if kind_of(args.resource_type) != "HorizontalPodAutoscaler":
        return
    spec = args.props.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if high is None:
        report_violation(f"HPA {object_ref(args.props, args.name)} has no maxReplicas", None)
    elif low > high:
        report_violation(
            f"HPA {object_ref(args.props, args.name)}: minReplicas {low} > maxReplicas {high}", None
        )


REFRESH_MIN = Decimal(60)  # 1m: faster polls hammer (and pay for) the Secrets Manager API
REFRESH_MAX = Decimal(24 * 3600)  # 24h: slower, and a rotated secret takes a day to reach pods


def validate_refresh_interval(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if kind_of(args.resource_type) != "ExternalSecret":
        return
    value = dig(args.props, "spec", "refreshInterval")
    if value is None:
        return  # the operator's default (1h)
    seconds = duration_seconds(value)
    where = f"ExternalSecret {object_ref(args.props, args.name)}"
    if seconds is None:
        report_violation(f"{where}: refreshInterval '{value}' is not a duration", None)
    elif seconds == 0:
        report_violation(f"{where}: refreshInterval '{value}' never refreshes (rotations never arrive)", None)
    elif not REFRESH_MIN <= seconds <= REFRESH_MAX:
        report_violation(f"{where}: refreshInterval '{value}' is outside 1m..24h", None)


def validate_helm_version(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "kubernetes:helm.sh/v3:Release":
        return
    chart, version = args.props.get("chart"), args.props.get("version")
    if isinstance(chart, str) and chart.endswith(".tgz"):
        return  # a packaged chart file carries its version
    if not is_exact_version(version):
        shown = f"'{version}'" if version else "no version"
        report_violation(f"release {args.name} (chart {chart}) has {shown}: pin an exact version", None)


ALB_CERTIFICATE = "alb.ingress.kubernetes.io/certificate-arn"


def _host_covered(host: str, tls_hosts: Iterable[str]) -> bool:
    for pattern in tls_hosts:
        if pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and host.count(".") == pattern.count("."):
            return True
    return False


def validate_ingress_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if kind_of(args.resource_type) != "Ingress":
        return
    where = f"Ingress {object_ref(args.props, args.name)}"
    tls = [t for t in as_list(dig(args.props, "spec", "tls")) if _is_map(t)]
    if not tls:
        if dig(args.props, "metadata", "annotations", ALB_CERTIFICATE):
            return  # the ALB terminates TLS with an ACM certificate
        report_violation(f"{where} serves plain HTTP (no spec.tls)", None)
        return
    tls_hosts = [str(h) for t in tls for h in as_list(t.get("hosts"))]
    hosts = [r.get("host") for r in as_list(dig(args.props, "spec", "rules")) if _is_map(r)]
    uncovered = [h for h in hosts if h and not _host_covered(h, tls_hosts)]
    if uncovered:
        report_violation(f"{where}: hosts {', '.join(uncovered)} are not covered by spec.tls", None)


# ------------------------------------------------------------------------------------------------
# Stack policies (cross-resource)
# ------------------------------------------------------------------------------------------------

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
ENCRYPTION_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
SSE_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse", "AES256"})


def _bucket_names(bucket: Any) -> set[str]:
    return {str(v) for v in (bucket.props.get("bucket"), bucket.props.get("id")) if isinstance(v, str)}


def _attached(resource: Any, buckets: list) -> list:
    """The buckets a bucket-level resource configures: by property dependency, else by bucket name."""
    linked = {d.urn for d in (getattr(resource, "property_dependencies", None) or {}).get("bucket", [])}
    by_dependency = [b for b in buckets if b.urn in linked]
    if by_dependency:
        return by_dependency
    name = resource.props.get("bucket")
    return [b for b in buckets if isinstance(name, str) and name in _bucket_names(b)]


def _encrypts(config: Mapping) -> bool:
    rules = [r for r in as_list(config.get("rules") or config.get("rule")) if _is_map(r)]
    return any(dig(r, "applyServerSideEncryptionByDefault", "sseAlgorithm") in SSE_ALGORITHMS for r in rules)


def validate_s3_buckets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    encrypted: set[str] = set()
    private: set[str] = set()
    for resource in args.resources:
        if resource.resource_type in ENCRYPTION_TYPES and _encrypts(resource.props):
            encrypted |= {b.urn for b in _attached(resource, buckets)}
        elif resource.resource_type == PUBLIC_ACCESS_BLOCK and all(
            resource.props.get(flag) is True for flag in PUBLIC_ACCESS_FLAGS
        ):
            private |= {b.urn for b in _attached(resource, buckets)}
    for bucket in buckets:
        inline = dig(bucket.props, "serverSideEncryptionConfiguration")
        if bucket.urn not in encrypted and not (_is_map(inline) and _encrypts(inline.get("rule") or inline)):
            report_violation(f"bucket {bucket.name} has no server-side encryption configuration", bucket.urn)
        if bucket.urn not in private:
            report_violation(
                f"bucket {bucket.name} has no public access block with all four settings true", bucket.urn
            )
        if bucket.props.get("acl") in PUBLIC_ACLS:
            report_violation(
                f"bucket {bucket.name} has the public ACL '{bucket.props.get('acl')}'", bucket.urn
            )


def selects(selector: Any, labels: Mapping) -> bool:
    """Kubernetes label-selector matching (matchLabels and matchExpressions)."""
    if not _is_map(selector):
        return False
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in as_list(selector.get("matchExpressions")):
        key, operator = expression.get("key"), expression.get("operator")
        values = set(as_list(expression.get("values")))
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels.get(key) in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _namespace(props: Mapping) -> str:
    return dig(props, "metadata", "namespace") or "default"


def validate_pdbs(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    by_kind: dict[str, list] = {}
    for r in args.resources:
        by_kind.setdefault(kind_of(r.resource_type), []).append(r)
    scaled = {
        (_namespace(h.props), dig(h.props, "spec", "scaleTargetRef", "name"))
        for h in by_kind.get("HorizontalPodAutoscaler", [])
        if dig(h.props, "spec", "scaleTargetRef", "kind") == "Deployment"
    }
    pdbs = by_kind.get("PodDisruptionBudget", [])
    for deployment in by_kind.get("Deployment", []):
        props = deployment.props
        namespace = _namespace(props)
        name = dig(props, "metadata", "name") or deployment.name
        replicas = dig(props, "spec", "replicas")
        autoscaled = (namespace, name) in scaled
        if not autoscaled and (replicas is None or replicas <= 1):
            continue
        labels = dig(props, "spec", "template", "metadata", "labels") or {}
        if not any(
            _namespace(p.props) == namespace and selects(dig(p.props, "spec", "selector"), labels)
            for p in pdbs
        ):
            why = "is autoscaled" if autoscaled else f"runs {replicas} replicas"
            report_violation(
                f"Deployment {namespace}/{name} {why} but no PodDisruptionBudget selects its pods "
                "(a node drain could take every replica down at once)",
                deployment.urn,
            )


# The DeviceClasses each DRA driver chart installs (kubernetes-sigs/dra-driver-nvidia-gpu 0.4.1, and
# under its name before 0.4.0), and the one EKS Auto Mode's nodes bring from Kubernetes 1.36.
DRA_CHART_DEVICE_CLASSES: dict[str, tuple[str, ...]] = {
    "dra-driver-nvidia-gpu": ("gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com"),
    "nvidia-dra-driver-gpu": ("gpu.nvidia.com", "mig.nvidia.com", "vfio.gpu.nvidia.com"),
}
AUTO_MODE_DEVICE_CLASSES = ("gpu.nvidia.com",)
AUTO_MODE_DRA_SINCE = (1, 36)
CLAIM_KINDS = {"ResourceClaimTemplate": ("spec", "spec", "devices"), "ResourceClaim": ("spec", "devices")}


def _minor(version: Any) -> tuple[int, int]:
    try:
        major, minor = str(version).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return 0, 0


def installed_device_classes(resources: Iterable[Any]) -> set[str] | None:
    """The DeviceClasses the stack installs: its DRA driver releases', its own DeviceClasses, EKS Auto
    Mode's from 1.36. None when the stack has no EKS cluster (a team's program on the platform: the
    classes are the platform's, which this stack cannot see)."""
    found: set[str] = set()
    cluster = False
    for r in resources:
        if r.resource_type == "aws:eks/cluster:Cluster":
            cluster = True
            if (
                dig(r.props, "computeConfig", "enabled")
                and _minor(r.props.get("version")) >= AUTO_MODE_DRA_SINCE
            ):
                found |= set(AUTO_MODE_DEVICE_CLASSES)
        elif r.resource_type == "kubernetes:helm.sh/v3:Release":
            chart = str(r.props.get("chart") or "").rsplit("/", 1)[-1]
            found |= set(DRA_CHART_DEVICE_CLASSES.get(chart, ()))
        elif kind_of(r.resource_type) == "DeviceClass":
            name = dig(r.props, "metadata", "name")
            if isinstance(name, str):
                found.add(name)
    return found if cluster else None


def validate_claim_device_classes(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    installed = installed_device_classes(args.resources)
    if installed is None:
        return
    for r in args.resources:
        path = CLAIM_KINDS.get(kind_of(r.resource_type))
        if path is None:
            continue
        for request in as_list(dig(r.props, *path, "requests")):
            named = [dig(request, "exactly", "deviceClassName")]
            named += [dig(sub, "deviceClassName") for sub in as_list(dig(request, "firstAvailable"))]
            for device_class in (n for n in named if isinstance(n, str)):
                if device_class not in installed:
                    report_violation(
                        f"{kind_of(r.resource_type)} {object_ref(r.props, r.name)} requests devices of "
                        f"DeviceClass '{device_class}', which nothing in this stack installs "
                        f"({', '.join(sorted(installed)) or 'none'}): its claims would never be allocated",
                        r.urn,
                    )


# ------------------------------------------------------------------------------------------------
# The policies
# ------------------------------------------------------------------------------------------------


def _resource(name: str, description: str, validate, level: EnforcementLevel, severity: Severity):
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=level, severity=severity
    )


HIGH, MEDIUM, LOW, CRITICAL = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.CRITICAL

container_resources = _resource(
    "container-resources",
    "Every container (init containers and sidecars too) requests CPU and memory and limits memory.",
    container_validator(check_resources),
    ADVISORY,
    MEDIUM,
)
image_pinned = _resource(
    "image-pinned",
    "Container images are pinned by tag or digest: no :latest, no untagged image.",
    container_validator(check_image),
    ADVISORY,
    MEDIUM,
)
no_privileged = _resource(
    "no-privileged-containers",
    "No container runs privileged.",
    container_validator(check_privileged),
    MANDATORY,
    CRITICAL,
)
no_privilege_escalation = _resource(
    "no-privilege-escalation",
    "Every container sets allowPrivilegeEscalation: false.",
    container_validator(check_privilege_escalation),
    MANDATORY,
    HIGH,
)
run_as_non_root = _resource(
    "run-as-non-root",
    "Pods or containers set runAsNonRoot: true, and none runs as UID 0.",
    container_validator(check_non_root),
    MANDATORY,
    HIGH,
)
drop_all_capabilities = _resource(
    "drop-all-capabilities",
    "Every container drops ALL Linux capabilities (and adds back at most NET_BIND_SERVICE).",
    container_validator(check_capabilities),
    ADVISORY,
    MEDIUM,
)
seccomp_runtime_default = _resource(
    "seccomp-runtime-default",
    "Every container runs under the RuntimeDefault (or a Localhost) seccomp profile, set on the pod or the container.",
    container_validator(check_seccomp),
    ADVISORY,
    MEDIUM,
)
gpu_tolerates_taint = _resource(
    "gpu-pods-tolerate-gpu-taint",
    "Pods that request nvidia.com/gpu tolerate the nvidia.com/gpu=true:NoSchedule taint of the GPU nodes.",
    pod_validator(check_gpu_toleration),
    MANDATORY,
    HIGH,
)
gpu_one_allocation = _resource(
    "gpu-one-allocation",
    "No pod requests nvidia.com/gpu and has DRA resource claims: GPUs come one way, the device plugin's or DRA's.",
    pod_validator(check_one_gpu_allocation),
    MANDATORY,
    HIGH,
)
claims_use_installed_device_classes = StackValidationPolicy(
    name="claims-use-installed-device-classes",
    description="Every ResourceClaimTemplate and ResourceClaim requests devices of a DeviceClass the platform's stack installs (its DRA driver's, its own, or EKS Auto Mode's).",
    validate=validate_claim_device_classes,
    enforcement_level=MANDATORY,
    severity=HIGH,
)
no_static_aws_credentials = _resource(
    "no-static-aws-credentials",
    "No container gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN (as a value or from a secret).",
    container_validator(check_static_credentials),
    MANDATORY,
    CRITICAL,
)
irsa_trust_scoped = _resource(
    "irsa-trust-has-sub-condition",
    "IAM roles assumable with sts:AssumeRoleWithWebIdentity pin the service account with a ':sub' condition.",
    validate_irsa_trust,
    MANDATORY,
    CRITICAL,
)
iam_no_wildcards = _resource(
    "iam-no-wildcards",
    "IAM policies allow no '*' (or 'service:*') actions, and no secretsmanager/s3/kms action on Resource '*'.",
    validate_iam_wildcards,
    MANDATORY,
    HIGH,
)
s3_encrypted_private = StackValidationPolicy(
    name="s3-encrypted-and-private",
    description="Every S3 bucket has a server-side encryption configuration and a public access block with all four settings true.",
    validate=validate_s3_buckets,
    enforcement_level=MANDATORY,
    severity=HIGH,
)
eks_endpoint_restricted = _resource(
    "eks-endpoint-not-public",
    "The EKS API endpoint is private, or public only to listed CIDRs other than 0.0.0.0/0.",
    validate_eks_endpoint,
    ADVISORY,
    HIGH,
)
eks_secrets_encrypted = _resource(
    "eks-secrets-encrypted",
    "EKS clusters envelope-encrypt Kubernetes Secrets with a KMS key.",
    validate_eks_secrets_encryption,
    MANDATORY,
    HIGH,
)
nodes_imdsv2 = _resource(
    "nodes-require-imdsv2",
    "Launch templates (and instances) require IMDSv2; every EKS node group uses a launch template.",
    validate_imdsv2,
    MANDATORY,
    HIGH,
)
node_pools_limited = _resource(
    "node-pools-have-limits",
    "Karpenter NodePools set cpu or nvidia.com/gpu limits (GPU pools: nvidia.com/gpu), the cap on what they start.",
    validate_node_pool_limits,
    MANDATORY,
    HIGH,
)
ec2_node_classes_hardened = _resource(
    "ec2-node-classes-imdsv2-encrypted",
    "Karpenter EC2NodeClasses require IMDSv2 and encrypt every block device they state (at least one).",
    validate_ec2_node_class,
    MANDATORY,
    HIGH,
)
deployments_have_pdb = StackValidationPolicy(
    name="replicated-deployments-have-pdb",
    description="A Deployment with more than one replica, or scaled by an HPA, is selected by a PodDisruptionBudget in its namespace.",
    validate=validate_pdbs,
    enforcement_level=ADVISORY,
    severity=MEDIUM,
)
hpa_bounds = _resource(
    "hpa-min-not-above-max",
    "HorizontalPodAutoscalers have minReplicas <= maxReplicas.",
    validate_hpa_bounds,
    MANDATORY,
    MEDIUM,
)
external_secret_refresh = _resource(
    "external-secret-refresh-interval",
    "ExternalSecrets refresh between every 1m and every 24h.",
    validate_refresh_interval,
    ADVISORY,
    LOW,
)
helm_version_pinned = _resource(
    "helm-release-version-pinned",
    "Helm releases pin an exact chart version.",
    validate_helm_version,
    MANDATORY,
    MEDIUM,
)
ingress_tls = _resource(
    "ingress-tls",
    "Ingresses terminate TLS for every host (spec.tls, or an ACM certificate on an ALB).",
    validate_ingress_tls,
    ADVISORY,
    HIGH,
)

POLICIES: list[Policy] = [
    container_resources,
    image_pinned,
    no_privileged,
    no_privilege_escalation,
    run_as_non_root,
    drop_all_capabilities,
    seccomp_runtime_default,
    gpu_tolerates_taint,
    gpu_one_allocation,
    claims_use_installed_device_classes,
    no_static_aws_credentials,
    irsa_trust_scoped,
    iam_no_wildcards,
    s3_encrypted_private,
    eks_endpoint_restricted,
    eks_secrets_encrypted,
    nodes_imdsv2,
    node_pools_limited,
    ec2_node_classes_hardened,
    deployments_have_pdb,
    hpa_bounds,
    external_secret_refresh,
    helm_version_pinned,
    ingress_tls,
]

# What changes in prod. Every other policy keeps its level in every environment.
PROD_LEVELS: dict[str, EnforcementLevel] = {
    container_resources.name: MANDATORY,
    image_pinned.name: MANDATORY,
    drop_all_capabilities.name: MANDATORY,
    seccomp_runtime_default.name: MANDATORY,
    eks_endpoint_restricted.name: MANDATORY,
    deployments_have_pdb.name: MANDATORY,
    ingress_tls.name: MANDATORY,
}

PROD = "prod"


def is_prod(*names: str | None) -> bool:
    """Prod if any signal says so (the stricter reading wins): ``prod``, ``prod-*`` or ``*-prod``."""
    return any(n and (n == PROD or n.startswith(f"{PROD}-") or n.endswith(f"-{PROD}")) for n in names)


def environment_of(stack: str | None, configured: str | None = None) -> str:
    """The environment whose levels apply: the stack's ``aiplatform:environment`` or its name."""
    return PROD if is_prod(configured, stack) else (configured or stack or "dev")


def environment_from_env(environ: Mapping[str, str]) -> str:
    """The environment of the stack the CLI runs the pack for.

    The Pulumi CLI starts a policy pack with ``PULUMI_STACK`` and ``PULUMI_CONFIG`` (the stack's config
    as JSON) in its environment; ``AIPLATFORM_POLICY_ENVIRONMENT`` overrides both (e.g. to preview a dev
    stack with prod levels).
    """
    override = environ.get("AIPLATFORM_POLICY_ENVIRONMENT")
    if override:
        return override
    try:
        config = json.loads(environ.get("PULUMI_CONFIG") or "{}")
    except ValueError:
        config = {}
    configured = config.get("aiplatform:environment") if isinstance(config, dict) else None
    return environment_of(environ.get("PULUMI_STACK"), configured if isinstance(configured, str) else None)


def level_in(policy: Policy, environment: str) -> EnforcementLevel:
    if is_prod(environment):
        return PROD_LEVELS.get(policy.name, policy.enforcement_level)
    return policy.enforcement_level


def policies_for(environment: str) -> list[Policy]:
    """The pack's policies with the levels of ``environment`` (copies: the module's objects never change)."""
    adjusted: list[Policy] = []
    for policy in POLICIES:
        clone = copy.copy(policy)
        clone.enforcement_level = level_in(policy, environment)
        adjusted.append(clone)
    return adjusted
