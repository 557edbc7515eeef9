"""The Kubernetes cluster autoscaler for EKS managed node groups.

It discovers node groups by the tags that ``components.nodegroups.autoscaler_tags`` (and EKS itself)
put on them, and may only resize or shrink Auto Scaling groups that carry those tags.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from ..catalog.helm import helm_release
from ..catalog.registry import CLUSTER_AUTOSCALER
from ..errors import Problem, require, type_problems
from ..iam import (
    ServiceAccountRole,
    ServiceAccountRoleArgs,
    WorkloadIdentity,
    allow,
    policy_document,
)
from ..kubernetes_versions import BY_VERSION, DEFAULT_VERSION, autoscaler_chart_minors
from .node_groups import AUTOSCALER_TAG_PREFIX, SYSTEM_SELECTOR

# One replica (the chart's replicaCount), on the system nodes; the capacity check counts it.
REPLICAS = 1
RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}}

# The compatibility table: cluster-autoscaler chart minor -> the Kubernetes minor of the autoscaler it
# ships (the chart's appVersion). The autoscaler supports the Kubernetes minor it was built for, so the
# chart follows the cluster's minor. Kept in the version calendar (``aiplatform.kubernetes_versions``),
# with the chart each minor runs: add a row there when a new chart minor is published.
CHART_KUBERNETES_MINOR: Mapping[str, str] = autoscaler_chart_minors()


def _minor(version: str) -> str:
    """``9.53.0`` -> ``9.53``; ``v1.34.2`` -> ``1.34``."""
    return ".".join(version.removeprefix("v").split(".")[:2])


def default_chart_version(kubernetes_version: str | None) -> str:
    """The chart the calendar runs on ``kubernetes_version`` (the default minor's when None)."""
    row = BY_VERSION.get(_minor(kubernetes_version or DEFAULT_VERSION))
    return (row or BY_VERSION[DEFAULT_VERSION]).autoscaler_chart


def calendar_image(chart_version: str, kubernetes_version: str) -> str | None:
    """The autoscaler image the calendar pairs with ``chart_version`` on a minor no published chart
    ships yet (None: the chart's own image is the right one)."""
    row = BY_VERSION.get(_minor(kubernetes_version))
    if row is None or row.autoscaler_image is None:
        return None
    return row.autoscaler_image if _minor(chart_version) == _minor(row.autoscaler_chart) else None


def chart_version_problem(chart_version: str, kubernetes_version: str) -> str | None:
    """Why ``chart_version`` does not fit a cluster on ``kubernetes_version`` (None when it does)."""
    ships = CHART_KUBERNETES_MINOR.get(_minor(chart_version))
    wanted = _minor(kubernetes_version)
    if calendar_image(chart_version, wanted):
        return None  # run with the image of the cluster's minor, as the calendar pairs them
    fitting = [chart for chart, minor in CHART_KUBERNETES_MINOR.items() if minor == wanted]
    row = BY_VERSION.get(wanted)
    if fitting:
        advice = f"use a {fitting[0]}.x-{fitting[-1]}.x chart"
    elif row is not None and row.autoscaler_image:
        advice = (
            f"use a {_minor(row.autoscaler_chart)}.x chart with the {row.autoscaler_image} autoscaler "
            f"(no published chart ships {wanted} yet)"
        )
    else:
        advice = f"no chart for Kubernetes {wanted} is in the compatibility table yet"
    if ships is None:
        return (
            f"chart {chart_version} is not in the compatibility table (components/kubernetes_versions.py): "
            f"add the Kubernetes minor of its appVersion there, or {advice}"
        )
    if ships != wanted:
        return f"chart {chart_version} ships cluster-autoscaler {ships} for a Kubernetes {wanted} cluster: {advice}"
    return None


Expander = Literal["least-waste", "priority", "random", "most-pods", "price"]

# Read-only calls the autoscaler makes to build its view of the groups. None of them supports
# resource-level permissions (the IAM service authorization reference lists them with resource "*"),
# so they cannot be scoped further.
DESCRIBE_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
)
# The only mutating calls; allowed only on Auto Scaling groups tagged as this cluster's.
MUTATING_ACTIONS = (
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
)


def autoscaler_policy(
    cluster_name: str, autoscaling_group_arns: Sequence[str] | None = None
) -> dict[str, Any]:
    """Least privilege as the cluster-autoscaler AWS docs describe it.

    ``autoscaling_group_arns`` narrows the mutating statement to those groups as well (the tag
    conditions always apply).
    """
    return policy_document(
        [
            allow(DESCRIBE_ACTIONS, "*"),
            allow(
                MUTATING_ACTIONS,
                list(autoscaling_group_arns) if autoscaling_group_arns else "*",
                Condition={
                    "StringEquals": {
                        f"aws:ResourceTag/{AUTOSCALER_TAG_PREFIX}/{cluster_name}": "owned",
                        f"aws:ResourceTag/{AUTOSCALER_TAG_PREFIX}/enabled": "true",
                    }
                },
            ),
        ]
    )


def autoscaling_group_arn(name: str, partition: str = "aws") -> str:
    """An ARN pattern for an Auto Scaling group by name (its ARN also holds an unpredictable UUID)."""
    return f"arn:{partition}:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/{name}"


def autoscaler_extra_args(
    expander: str, scale_down_unneeded_time: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Command-line flags of the autoscaler (chart ``extraArgs``); ``extra`` wins."""
    return {
        # GPU groups split per AZ or per instance size scale together instead of filling one AZ.
        "balance-similar-node-groups": "true",
        # Otherwise any node running a kube-system pod (most of them) can never be removed.
        "skip-nodes-with-system-pods": "false",
        "expander": expander,
        "scale-down-unneeded-time": scale_down_unneeded_time,
        **dict(extra or {}),
    }


def autoscaler_values(
    cluster_name: str,
    region: str,
    service_account: str,
    service_account_annotations: Mapping[str, str],
    extra_args: Mapping[str, str],
    expander_priorities: Mapping[int, Sequence[str]] | None = None,
    image_tag: str | None = None,
) -> dict[str, Any]:
    """Helm values of the cluster-autoscaler chart (all plain values: call it inside an apply)."""
    values: dict[str, Any] = {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "fullnameOverride": CLUSTER_AUTOSCALER.chart,
        "rbac": {
            "create": True,
            "serviceAccount": {
                "create": True,
                "name": service_account,
                "annotations": dict(service_account_annotations),
            },
        },
        "extraArgs": dict(extra_args),
        "nodeSelector": dict(SYSTEM_SELECTOR),
        "priorityClassName": "system-cluster-critical",
        # It must not evict itself while draining the node it runs on.
        "podAnnotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        "resources": copy.deepcopy(RESOURCES),
        "podDisruptionBudget": {"maxUnavailable": 1},
    }
    if expander_priorities:
        values["expanderPriorities"] = {str(k): list(v) for k, v in expander_priorities.items()}
    if image_tag:
        values["image"] = {"tag": image_tag}
    return values


@dataclass
class ClusterAutoscalerArgs:
    # the EKS cluster whose node groups it scales (auto-discovery tags name it)
    cluster_name: pulumi.Input[str]
    region: pulumi.Input[str]  # the cluster's AWS region
    identity: WorkloadIdentity  # how the autoscaler's pod gets its IAM role
    provider: k8s.Provider  # the cluster's Kubernetes provider
    # The cluster-autoscaler chart's exact version (it must ship the cluster's minor); None: the version
    # calendar's chart for kubernetes_version.
    chart_version: str | None = None
    # where the chart comes from (its repository or a mirror)
    chart_repository: str = CLUSTER_AUTOSCALER.repository
    namespace: str = "kube-system"  # the namespace the autoscaler runs in
    service_account: str = "cluster-autoscaler"  # the autoscaler's service account (its IAM role trusts it)
    # Names of the node groups' Auto Scaling groups (``NodeGroups.autoscaling_group_names``): when
    # given, the mutating actions are limited to them on top of the tag conditions.
    autoscaling_group_names: Sequence[pulumi.Input[str]] = ()
    partition: str = "aws"  # the AWS partition of the ARNs (``aws``, ``aws-cn``, ``aws-us-gov``)
    expander: Expander = "least-waste"  # how the autoscaler picks the group to grow when several fit
    # Required with expander="priority": priority -> regexes of node group names (higher wins).
    expander_priorities: Mapping[int, Sequence[str]] | None = None
    # how long a node stays unneeded before removal (a duration, e.g. 10m)
    scale_down_unneeded_time: str = "10m"
    # more command-line flags of the autoscaler: flag name -> value
    extra_args: Mapping[str, str] = field(default_factory=dict)
    # The cluster's Kubernetes version ("1.36"): the chart (and image_tag) must ship its minor; None: not
    # checked, and the default chart is the calendar's for its default minor.
    kubernetes_version: str | None = None
    # Overrides the chart's image (e.g. "v1.36.1"); None: the chart's, or the image the calendar pairs
    # with the chart on a minor no published chart ships yet.
    image_tag: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # AWS tags on the autoscaler's IAM role and policy
    # what the release waits for (schedulable nodes, the Pod Identity agent)
    depends_on: Sequence[pulumi.Resource] = ()

    @property
    def chart(self) -> str:
        """The chart version installed: the one given, else the calendar's for the cluster's minor."""
        return (
            self.chart_version
            if self.chart_version is not None
            else default_chart_version(self.kubernetes_version)
        )

    @property
    def minor(self) -> str:
        """The cluster's Kubernetes minor the autoscaler must match."""
        return _minor(self.kubernetes_version or DEFAULT_VERSION)

    @property
    def image(self) -> str | None:
        """The image tag the release sets (None: the chart's own)."""
        return self.image_tag or calendar_image(self.chart, self.minor)

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.chart_version is not None and not self.chart_version:
            problems.append(("chart_version", "pin a chart version"))
        if self.expander not in ("least-waste", "priority", "random", "most-pods", "price"):
            problems.append(("expander", f"unknown expander {self.expander!r}"))
        if self.expander == "priority" and not self.expander_priorities:
            problems.append(("expander_priorities", "required when expander is 'priority'"))
        if self.expander_priorities and self.expander != "priority":
            problems.append(("expander_priorities", "only used with expander 'priority'"))
        if self.kubernetes_version and self.chart:
            problem = chart_version_problem(self.chart, self.minor)
            if problem:
                problems.append(("chart_version", problem))
            if self.image_tag and _minor(self.image_tag) != self.minor:
                problems.append(
                    (
                        "image_tag",
                        f"{self.image_tag} is not a {self.minor} autoscaler "
                        "(the autoscaler's minor follows the cluster's)",
                    )
                )
        return problems


class ClusterAutoscaler(pulumi.ComponentResource):
    """The cluster autoscaler, its least-privilege pod role and its Helm release."""

    role: ServiceAccountRole  # the autoscaler's IAM role
    release: k8s.helm.v3.Release  # its Helm release
    role_arn: pulumi.Output[str]  # the role's ARN
    resources: list[pulumi.Resource]  # everything the component created

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"ClusterAutoscaler '{name}'", type_problems(args, ClusterAutoscalerArgs) or args.problems())
        super().__init__("aiplatform:autoscaler:ClusterAutoscaler", name, None, opts)

        group_arns = pulumi.Output.all(*args.autoscaling_group_names).apply(
            lambda names: [autoscaling_group_arn(n, args.partition) for n in names]
        )
        policy = pulumi.Output.all(args.cluster_name, group_arns).apply(
            lambda v: autoscaler_policy(v[0], v[1])
        )
        self.role = ServiceAccountRole(
            f"{name}-iam",
            ServiceAccountRoleArgs(
                identity=args.identity,
                namespace=args.namespace,
                service_account=args.service_account,
                policy=policy,
                tags=dict(args.tags),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arn = self.role.arn

        extra_args = autoscaler_extra_args(args.expander, args.scale_down_unneeded_time, args.extra_args)
        values = pulumi.Output.all(
            args.cluster_name, args.region, self.role.service_account_annotations
        ).apply(
            lambda v: autoscaler_values(
                cluster_name=v[0],
                region=v[1],
                service_account=args.service_account,
                service_account_annotations=v[2],
                extra_args=extra_args,
                expander_priorities=args.expander_priorities,
                image_tag=args.image,
            )
        )
        self.release = helm_release(
            f"{name}-release",
            chart=CLUSTER_AUTOSCALER.chart,
            version=args.chart,
            repository=args.chart_repository,
            namespace=args.namespace,
            values=values,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                # The role (and its Pod Identity association) must exist before the pod asks for credentials.
                depends_on=[self.role, *args.depends_on],
            ),
        )
        self.resources = [self.role, self.release]
        self.register_outputs({"role_arn": self.role_arn, "release_status": self.release.status})
