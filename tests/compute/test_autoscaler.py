import json

import pulumi_kubernetes as k8s
import pytest

from aiplatform.catalog.registry import CLUSTER_AUTOSCALER
from aiplatform.compute.autoscaler import (
    CHART_KUBERNETES_MINOR,
    ClusterAutoscaler,
    ClusterAutoscalerArgs,
    autoscaler_policy,
    chart_version_problem,
)
from aiplatform.iam import IRSA_ROLE_ANNOTATION, WorkloadIdentity
from tests.conftest import resolve

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC123"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC123"
DESCRIBE = [
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
]
MUTATING = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
CONDITION = {
    "StringEquals": {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/ai": "owned",
        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
    }
}


def irsa() -> WorkloadIdentity:
    return WorkloadIdentity(
        mode="irsa", cluster_name="ai", oidc_provider_arn=PROVIDER_ARN, oidc_issuer_url=ISSUER
    )


def autoscaler(**extra):
    def program():
        p = k8s.Provider("k8s", kubeconfig="{}")
        ca = ClusterAutoscaler(
            "ca",
            ClusterAutoscalerArgs(
                cluster_name="ai", region="us-east-1", identity=irsa(), provider=p, **extra
            ),
        )
        return p, ca

    return program


def test_policy_is_least_privilege():
    policy = autoscaler_policy("ai")
    assert policy["Statement"] == [
        {"Effect": "Allow", "Action": DESCRIBE, "Resource": "*"},
        {"Effect": "Allow", "Action": MUTATING, "Resource": "*", "Condition": CONDITION},
    ]


def test_role_trusts_the_autoscaler_service_account_and_scopes_mutations_by_tag(build, monitor):
    _, ca = build(autoscaler())
    trust = json.loads(monitor.named("ca-iam-role").inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition["oidc.eks.us-east-1.amazonaws.com/id/ABC123:sub"] == (
        "system:serviceaccount:kube-system:cluster-autoscaler"
    )
    policy = json.loads(monitor.named("ca-iam-policy").inputs["policy"])
    assert policy == autoscaler_policy("ai")
    assert resolve(ca.role_arn).startswith("arn:aws:iam::123456789012:role/ca-iam-role")


def test_mutations_can_be_limited_to_named_auto_scaling_groups(build, monitor):
    build(autoscaler(autoscaling_group_names=["eks-gpu-1"]))
    (_, mutating) = json.loads(monitor.named("ca-iam-policy").inputs["policy"])["Statement"]
    assert mutating["Resource"] == [
        "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-gpu-1"
    ]
    assert mutating["Condition"] == CONDITION


def test_release_values_and_provider(build, monitor):
    p, ca = build(autoscaler(depends_on=()))
    release = monitor.named("ca-release")
    inputs = release.inputs
    # No chart and no version given: the calendar's chart for its default minor (1.36), which no
    # published chart ships yet, so the release runs that minor's autoscaler image.
    assert (inputs["chart"], inputs["version"], inputs["namespace"]) == (
        "cluster-autoscaler",
        "9.59.0",
        "kube-system",
    )
    assert inputs["values"]["image"] == {"tag": "v1.36.1"}
    assert inputs["repositoryOpts"] == {"repo": CLUSTER_AUTOSCALER.repository}
    values = inputs["values"]
    assert values["autoDiscovery"] == {"clusterName": "ai"}
    assert values["awsRegion"] == "us-east-1"
    assert values["cloudProvider"] == "aws"
    assert values["rbac"]["serviceAccount"] == {
        "create": True,
        "name": "cluster-autoscaler",
        "annotations": {IRSA_ROLE_ANNOTATION: resolve(ca.role_arn)},
    }
    assert values["extraArgs"] == {
        "balance-similar-node-groups": "true",
        "skip-nodes-with-system-pods": "false",
        "expander": "least-waste",
        "scale-down-unneeded-time": "10m",
    }
    assert values["nodeSelector"] == {"aiplatform.io/node-role": "system"}
    assert values["podDisruptionBudget"] == {"maxUnavailable": 1}
    assert values["resources"]["requests"]
    assert release.provider_urn == resolve(p.urn)
    # Depending on the role component waits for its children: the role and its permissions.
    assert {monitor.named("ca-iam-role").urn, monitor.named("ca-iam-policy").urn} <= set(release.dependencies)
    assert [r.name for r in monitor.registrations if r.type.startswith("kubernetes:")] == ["ca-release"]


def test_pod_identity_and_priority_expander(build, monitor):
    def program():
        p = k8s.Provider("k8s", kubeconfig="{}")
        return ClusterAutoscaler(
            "ca",
            ClusterAutoscalerArgs(
                cluster_name="ai",
                region="eu-west-1",
                identity=WorkloadIdentity(mode="pod-identity", cluster_name="ai"),
                provider=p,
                chart_version="9.50.1",
                expander="priority",
                expander_priorities={50: [".*gpu-h100.*"], 10: [".*"]},
            ),
        )

    build(program)
    values = monitor.named("ca-release").inputs["values"]
    assert monitor.named("ca-release").inputs["version"] == "9.50.1"
    assert values["rbac"]["serviceAccount"]["annotations"] == {}
    assert values["extraArgs"]["expander"] == "priority"
    assert values["expanderPriorities"] == {"50": [".*gpu-h100.*"], "10": [".*"]}
    association = monitor.named("ca-iam-association").inputs
    assert (association["namespace"], association["serviceAccount"]) == ("kube-system", "cluster-autoscaler")


def test_priority_expander_needs_priorities():
    with pytest.raises(ValueError) as error:
        ClusterAutoscaler(
            "ca",
            ClusterAutoscalerArgs(
                cluster_name="ai",
                region="us-east-1",
                identity=irsa(),
                provider=None,
                expander="priority",  # type: ignore[arg-type]
            ),
        )
    assert str(error.value) == (
        "ClusterAutoscaler 'ca':\n  - expander_priorities: required when expander is 'priority'"
    )


def test_the_compatibility_table_maps_chart_minors_to_kubernetes_minors():
    from aiplatform.validation import SUPPORTED_KUBERNETES_VERSIONS

    charts = {
        version: [chart for chart, minor in CHART_KUBERNETES_MINOR.items() if minor == version]
        for version in SUPPORTED_KUBERNETES_VERSIONS
    }
    assert charts == {
        "1.33": ["9.47", "9.48", "9.49", "9.50", "9.51"],
        "1.34": ["9.52", "9.53"],
        "1.35": ["9.54", "9.55", "9.56", "9.57", "9.58", "9.59"],
        "1.36": [],
    }
    assert chart_version_problem("9.53.0", "1.34") is None
    assert chart_version_problem("9.54.1", "1.35") is None


def test_a_chart_for_another_kubernetes_minor_is_refused_before_anything_is_created(build, monitor):
    with pytest.raises(ValueError) as error:
        build(autoscaler(chart_version="9.50.1", kubernetes_version="1.34", image_tag="v1.33.0"))
    assert str(error.value) == (
        "ClusterAutoscaler 'ca':\n"
        "  - chart_version: chart 9.50.1 ships cluster-autoscaler 1.33 for a Kubernetes 1.34 cluster: "
        "use a 9.52.x-9.53.x chart\n"
        "  - image_tag: v1.33.0 is not a 1.34 autoscaler (the autoscaler's minor follows the cluster's)"
    )
    assert [r.type for r in monitor.registrations] == ["pulumi:providers:kubernetes"]


def test_a_chart_outside_the_table_says_where_to_add_it():
    assert chart_version_problem("9.60.0", "1.36") == (
        "chart 9.60.0 is not in the compatibility table (components/kubernetes_versions.py): add the Kubernetes "
        "minor of its appVersion there, or use a 9.59.x chart with the v1.36.1 autoscaler (no published chart "
        "ships 1.36 yet)"
    )


@pytest.mark.parametrize(
    ("kubernetes_version", "chart", "image"),
    [
        ("1.33", "9.51.0", None),
        ("1.34", "9.53.0", None),
        ("1.35", "9.59.0", None),
        ("1.36", "9.59.0", "v1.36.1"),
    ],
)
def test_the_default_chart_follows_the_kubernetes_version(build, monitor, kubernetes_version, chart, image):
    build(autoscaler(kubernetes_version=kubernetes_version))
    inputs = monitor.named("ca-release").inputs
    assert inputs["version"] == chart
    assert inputs["values"].get("image") == ({"tag": image} if image else None)
    assert chart_version_problem(chart, kubernetes_version) is None


def test_a_chart_of_an_older_minor_is_still_refused_on_a_minor_without_a_chart():
    assert chart_version_problem("9.53.0", "1.36") == (
        "chart 9.53.0 ships cluster-autoscaler 1.34 for a Kubernetes 1.36 cluster: use a 9.59.x chart with the "
        "v1.36.1 autoscaler (no published chart ships 1.36 yet)"
    )
