"""The Kubernetes version calendar: one row per EKS minor the platform runs, and what is coupled to it.

Each row holds the minor's dates on EKS (release, end of standard support, end of extended support)
and the pins that follow the minor: the EKS managed add-on versions the stacks use, the
cluster-autoscaler chart minors that ship it, the first Karpenter minor that supports it and the EKS
AL2023 AMI release the stacks boot. Every fact names its source; a fact that could not be checked
against its source says so (``unverified: ...``) in ``notes``.

Everything else derives from this table: the supported versions (``validation``, the config models,
the simulated EKS API of the offline plan), the default version, the autoscaler's chart table,
Karpenter's minimum per minor, and the plan's lifecycle report (``lifecycle``). A foundation: it
imports nothing of the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Literal

# EKS: "A minor version is under standard support in Amazon EKS for the first 14 months after it's
# released. Once a version is past the end of standard support date, it enters extended support for
# the next 12 months." (https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)
AWS_CALENDAR = (
    "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html#kubernetes-release-calendar"
)
KUBE_PROXY_VERSIONS = "https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html"
COREDNS_VERSIONS = "https://docs.aws.amazon.com/eks/latest/userguide/managing-coredns.html"
AUTOSCALER_CHARTS = (
    "https://github.com/kubernetes/autoscaler (tags cluster-autoscaler-chart-9.x, Chart.yaml appVersion)"
)
KARPENTER_MATRIX = "https://karpenter.sh/docs/upgrading/compatibility/#compatibility-matrix"
AMI_RELEASES = "https://github.com/awslabs/amazon-eks-ami/releases"

# How far ahead the plan warns that standard support ends.
STANDARD_ENDING_DAYS = 90

# Dynamic Resource Allocation's API, resource.k8s.io/v1, is GA from this minor, and AWS recommends the
# NVIDIA DRA driver for new deployments from it (``DEVICE_MANAGEMENT``).
DRA_GA = "1.34"
DEVICE_MANAGEMENT = (
    "https://docs.aws.amazon.com/eks/latest/userguide/device-management-nvidia-dra-device-plugin.html"
)


@dataclass(frozen=True)
class KubernetesVersion:
    """One EKS minor: its dates (UTC days, as AWS's calendar gives them) and the pins coupled to it."""

    version: str  # the minor, "1.36"
    eks_release: date  # first day it can be created on EKS
    end_of_standard: date  # extended support (and its fee) starts this day
    end_of_extended: date  # from this day EKS creates no cluster on it and upgrades existing ones
    # The EKS managed add-on versions the stacks pin for this minor (add-on name -> version).
    addons: Mapping[str, str]
    # cluster-autoscaler chart minors whose appVersion is this Kubernetes minor.
    autoscaler_chart_minors: tuple[str, ...]
    # The chart the stacks pin and the component defaults to on this minor.
    autoscaler_chart: str
    # The autoscaler image the chart runs when no published chart ships this minor yet: the chart's
    # templates with the image of the autoscaler built for this minor (None: the chart's own image).
    autoscaler_image: str | None
    karpenter_minimum: tuple[int, int]  # the first Karpenter minor that supports it
    ami_alias: str  # the EKS AL2023 AMI release the stacks boot on it (al2023@vYYYYMMDD)
    sources: tuple[str, ...]  # where each fact comes from (URL: what it says)
    notes: tuple[str, ...] = field(default=())  # what could not be verified, said so

    @property
    def standard_months(self) -> int:
        return _months_between(self.eks_release, self.end_of_standard)


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _addons(kube_proxy: str, coredns: str) -> Mapping[str, str]:
    # vpc-cni, aws-ebs-csi-driver, eks-pod-identity-agent and metrics-server are not built per
    # Kubernetes minor; kube-proxy always is, CoreDNS per range of minors.
    return MappingProxyType(
        {
            "vpc-cni": "v1.22.3-eksbuild.1",
            "coredns": coredns,
            "kube-proxy": kube_proxy,
            "aws-ebs-csi-driver": "v1.66.0-eksbuild.1",
            "eks-pod-identity-agent": "v1.3.10-eksbuild.3",
            "metrics-server": "v0.9.0-eksbuild.7",
        }
    )


_UNVERIFIED_MINOR_FREE_ADDONS = (
    "unverified: vpc-cni v1.22.3-eksbuild.1, aws-ebs-csi-driver v1.66.0-eksbuild.1, "
    "eks-pod-identity-agent v1.3.10-eksbuild.3 and metrics-server v0.9.0-eksbuild.7 are the stacks' "
    "earlier pins; their compatibility with this minor was not found in the add-on version pages at hand "
    "(check with aws eks describe-addon-versions --kubernetes-version <minor>)"
)

CALENDAR: tuple[KubernetesVersion, ...] = (
    KubernetesVersion(
        version="1.33",
        eks_release=date(2025, 5, 29),
        end_of_standard=date(2026, 7, 29),
        end_of_extended=date(2027, 7, 29),
        addons=_addons(kube_proxy="v1.33.10-eksbuild.13", coredns="v1.12.4-eksbuild.18"),
        autoscaler_chart_minors=("9.47", "9.48", "9.49", "9.50", "9.51"),
        autoscaler_chart="9.51.0",
        autoscaler_image=None,
        karpenter_minimum=(1, 5),
        ami_alias="al2023@v20260714",
        sources=(
            f"{AWS_CALENDAR}: 1.33, Amazon EKS release May 29, 2025, end of standard support July 29, 2026, "
            "end of extended support July 29, 2027",
            f"{KUBE_PROXY_VERSIONS}: 1.33 -> v1.33.10-eksbuild.13; {COREDNS_VERSIONS}: 1.33 -> v1.12.4-eksbuild.18",
            f"{KARPENTER_MATRIX}: Kubernetes 1.33 needs Karpenter >= 1.5",
            f"{AMI_RELEASES}: v20260714 ships AL2023 for Kubernetes 1.33-1.36",
        ),
        notes=(
            "unverified: the chart minors 9.47-9.51 (appVersion 1.33) and chart 9.51.0 carry over from the "
            "earlier table; the chart tags read here only start naming appVersion at 9.52.0",
            _UNVERIFIED_MINOR_FREE_ADDONS,
        ),
    ),
    KubernetesVersion(
        version="1.34",
        eks_release=date(2025, 10, 2),
        end_of_standard=date(2026, 12, 2),
        end_of_extended=date(2027, 12, 2),
        addons=_addons(kube_proxy="v1.34.6-eksbuild.13", coredns="v1.13.2-eksbuild.4"),
        autoscaler_chart_minors=("9.52", "9.53"),
        autoscaler_chart="9.53.0",
        autoscaler_image=None,
        karpenter_minimum=(1, 6),
        ami_alias="al2023@v20260714",
        sources=(
            f"{AWS_CALENDAR}: 1.34, Amazon EKS release October 2, 2025, end of standard support December 2, "
            "2026, end of extended support December 2, 2027",
            f"{KUBE_PROXY_VERSIONS}: 1.34 -> v1.34.6-eksbuild.13; {COREDNS_VERSIONS}: 1.33-1.35 -> "
            "v1.13.2-eksbuild.4 (a later revision lists v1.13.2-eksbuild.11 for 1.34)",
            f"{AUTOSCALER_CHARTS}: chart 9.52.0 (2025-10-15) appVersion 1.34.1, 9.53.0 (2025-12-03) 1.34.2",
            f"{KARPENTER_MATRIX}: Kubernetes 1.34 needs Karpenter >= 1.6",
            f"{AMI_RELEASES}: v20260714 ships AL2023 for Kubernetes 1.33-1.36",
        ),
        notes=(_UNVERIFIED_MINOR_FREE_ADDONS,),
    ),
    KubernetesVersion(
        version="1.35",
        eks_release=date(2026, 1, 27),
        end_of_standard=date(2027, 3, 27),
        end_of_extended=date(2028, 3, 27),
        addons=_addons(kube_proxy="v1.35.3-eksbuild.13", coredns="v1.14.3-eksbuild.3"),
        autoscaler_chart_minors=("9.54", "9.55", "9.56", "9.57", "9.58", "9.59"),
        autoscaler_chart="9.59.0",
        autoscaler_image=None,
        karpenter_minimum=(1, 9),
        ami_alias="al2023@v20260714",
        sources=(
            f"{AWS_CALENDAR}: 1.35, Amazon EKS release January 27, 2026, end of standard support March 27, "
            "2027, end of extended support March 27, 2028 (as quoted from the AWS table by a third party)",
            f"{KUBE_PROXY_VERSIONS}: 1.35 -> v1.35.3-eksbuild.13; {COREDNS_VERSIONS}: 1.35 -> v1.14.3-eksbuild.3",
            f"{AUTOSCALER_CHARTS}: charts 9.54.0 (2025-12-09) to 9.59.0 (2026-07-21) all appVersion 1.35.0",
            f"{KARPENTER_MATRIX}: Kubernetes 1.35 needs Karpenter >= 1.9",
            f"{AMI_RELEASES}: v20260714 ships AL2023 for Kubernetes 1.33-1.36",
        ),
        notes=(
            "unverified: the 1.35 dates were not read on the AWS page itself (its revision at hand ends at "
            "1.34); endoflife.date gives the same ends with a release on January 28, 2026",
            _UNVERIFIED_MINOR_FREE_ADDONS,
        ),
    ),
    KubernetesVersion(
        version="1.36",
        eks_release=date(2026, 6, 2),
        end_of_standard=date(2027, 8, 2),
        end_of_extended=date(2028, 8, 2),
        addons=_addons(kube_proxy="v1.36.0-eksbuild.14", coredns="v1.14.3-eksbuild.3"),
        # No published chart ships 1.36: the newest, 9.59.0 (2026-07-21), has appVersion 1.35.0; the
        # pull requests that would publish one (kubernetes/autoscaler#10091, #10169) were not merged.
        autoscaler_chart_minors=(),
        autoscaler_chart="9.59.0",
        # cluster-autoscaler-1.36.1, tagged 2026-07-22: the chart's image.tag value is how its
        # maintainers run an autoscaler the chart's appVersion does not name yet.
        autoscaler_image="v1.36.1",
        karpenter_minimum=(1, 13),
        ami_alias="al2023@v20260714",
        sources=(
            f"{AWS_CALENDAR}: standard support 14 months from the EKS release, extended 12 more",
            "https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions-standard.html: "
            "'Kubernetes 1.36 is now available in Amazon EKS'",
            f"{KUBE_PROXY_VERSIONS}: 1.36 -> v1.36.0-eksbuild.14; {COREDNS_VERSIONS}: 1.36 -> v1.14.3-eksbuild.3",
            f"{AUTOSCALER_CHARTS}: tag cluster-autoscaler-1.36.1 (2026-07-22); no chart with appVersion 1.36",
            f"{KARPENTER_MATRIX}: Kubernetes 1.36 needs Karpenter >= 1.13",
            f"{AMI_RELEASES}: v20260714 ships AL2023 for Kubernetes 1.33-1.36",
        ),
        notes=(
            "unverified: the EKS release day June 2, 2026 is a third party's (devopsdreams.blogspot.com, "
            "2026-08-16); the ends are that day plus AWS's 14 and 26 months, not read in AWS's calendar",
            "unverified: Karpenter >= 1.13 for 1.36 carries over from the earlier table; the matrix revision "
            "at hand ends before 1.36",
            _UNVERIFIED_MINOR_FREE_ADDONS,
        ),
    ),
)

BY_VERSION: Mapping[str, KubernetesVersion] = MappingProxyType({row.version: row for row in CALENDAR})
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(row.version for row in CALENDAR)
# The minor a new cluster gets: the newest the calendar holds.
DEFAULT_VERSION: str = CALENDAR[-1].version

# cluster-autoscaler chart minors of Kubernetes minors the platform no longer runs: only so that a
# message can say which minor such a chart ships.
RETIRED_AUTOSCALER_CHARTS: Mapping[str, str] = MappingProxyType(
    {**dict.fromkeys(("9.43", "9.44"), "1.31"), **dict.fromkeys(("9.45", "9.46"), "1.32")}
)


def autoscaler_chart_minors() -> Mapping[str, str]:
    """cluster-autoscaler chart minor -> the Kubernetes minor of the autoscaler it ships."""
    table = dict(RETIRED_AUTOSCALER_CHARTS)
    for row in CALENDAR:
        table.update(dict.fromkeys(row.autoscaler_chart_minors, row.version))
    return MappingProxyType(table)


def karpenter_minimums() -> Mapping[str, tuple[int, int]]:
    """Kubernetes minor -> the first Karpenter minor that supports it."""
    return MappingProxyType({row.version: row.karpenter_minimum for row in CALENDAR})


Status = Literal["upcoming", "standard", "standard-ending", "extended", "unsupported"]


@dataclass(frozen=True)
class Lifecycle:
    """Where a minor stands on a given day."""

    version: str
    today: date
    status: Status
    eks_release: date | None = None
    end_of_standard: date | None = None
    end_of_extended: date | None = None

    @property
    def days_to_end_of_standard(self) -> int | None:
        return (self.end_of_standard - self.today).days if self.end_of_standard else None

    @property
    def billed_extended(self) -> bool:
        """EKS bills the extended-support rate for a cluster on this minor on this day."""
        return self.status == "extended"


def lifecycle(version: str, today: date) -> Lifecycle:
    """The support status of ``version`` on ``today``.

    upcoming: not on EKS yet; standard; standard-ending: standard support ends within
    ``STANDARD_ENDING_DAYS`` days; extended: past standard support, billed at the extended rate;
    unsupported: past extended support, or a minor the calendar does not hold.
    """
    row = BY_VERSION.get(version)
    if row is None:
        return Lifecycle(version, today, "unsupported")
    dates = {
        "eks_release": row.eks_release,
        "end_of_standard": row.end_of_standard,
        "end_of_extended": row.end_of_extended,
    }
    if today < row.eks_release:
        status: Status = "upcoming"
    elif today >= row.end_of_extended:
        status = "unsupported"
    elif today >= row.end_of_standard:
        status = "extended"
    elif row.end_of_standard - today <= timedelta(days=STANDARD_ENDING_DAYS):
        status = "standard-ending"
    else:
        status = "standard"
    return Lifecycle(version, today, status, **dates)


def calendar_markdown() -> str:
    """The calendar as a Markdown table (the README's copy is generated from it)."""
    lines = [
        "| minor | on EKS | standard support ends | extended support ends | kube-proxy | coredns "
        "| cluster-autoscaler chart | Karpenter at least | AMI alias |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in CALENDAR:
        chart = row.autoscaler_chart + (f" with image {row.autoscaler_image}" if row.autoscaler_image else "")
        lines.append(
            f"| {row.version} | {row.eks_release} | {row.end_of_standard} | {row.end_of_extended} "
            f"| {row.addons['kube-proxy']} | {row.addons['coredns']} | {chart} "
            f"| {row.karpenter_minimum[0]}.{row.karpenter_minimum[1]} | {row.ami_alias} |"
        )
    return "\n".join(lines)


def minor_key(version: str) -> tuple[int, int]:
    """``"1.36"`` -> ``(1, 36)``, for ordering minors (string order puts 1.4 after 1.36)."""
    major, _, minor = version.partition(".")
    return int(major), int(minor)


def upgrade_problem(current: str, target: str) -> str | None:
    """Why EKS refuses to move a cluster from minor ``current`` to ``target`` in one change, or None.

    EKS's UpdateClusterVersion moves the control plane one minor at a time and never down: 1.35 -> 1.36
    is an upgrade, 1.34 -> 1.36 is refused (upgrade to 1.35 first), 1.36 -> 1.35 is refused (a cluster
    cannot be downgraded; a new one at the older minor can). Staying on the same minor is no change.
    Sources: https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html ("Once you upgrade a
    cluster, you can't downgrade to a previous version"); eksctl's cluster-upgrade page ("Control plane
    version upgrades must be done for one minor version at a time").
    """
    if current == target:
        return None
    (cur_major, cur_minor), (new_major, new_minor) = minor_key(current), minor_key(target)
    if (new_major, new_minor) < (cur_major, cur_minor):
        return (
            f"cluster.kubernetesVersion: EKS cannot downgrade a cluster ({current} -> {target}); "
            f"keep {current}, or create a new cluster at {target}"
        )
    if new_major != cur_major or new_minor != cur_minor + 1:
        step = f"{cur_major}.{cur_minor + 1}"
        return (
            f"cluster.kubernetesVersion: EKS upgrades a cluster one minor at a time, {current} -> {target} "
            f"skips a minor; set {step}, run up, then move on to {target}"
        )
    return None


def node_group_skew_problem(current: str, node_groups: Mapping[str, str]) -> str | None:
    """Why EKS refuses to upgrade a cluster at ``current`` whose managed node groups (name -> minor) do
    not all run ``current``, or None: "all of your node groups' Kubernetes versions must match the
    cluster's Kubernetes version in order to update the cluster to a new Kubernetes version"
    (https://docs.aws.amazon.com/cli/latest/reference/eks/update-cluster-version.html). A failed node
    roll leaves groups behind: finish it (``up`` again at the same minor) before the next step."""
    behind = {name: minor for name, minor in sorted(node_groups.items()) if minor != current}
    if not behind:
        return None
    listed = ", ".join(f"{name} at {minor}" for name, minor in behind.items())
    return (
        f"cluster.kubernetesVersion: EKS upgrades a cluster only when its managed node groups run its "
        f"minor {current}, and {listed}; run up at {current} until they do, then move on"
    )
