"""The platform's stack outputs as a contract: what the platform exports is what ``PlatformOutputs`` reads."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from aiplatform.outputs import CONTRACT_VERSION, PlatformOutputs, PlatformOutputsError
from aiplatform.plan.mock_engine import ANY_STACK, PlatformMocks, RecordingMonitor
from aiplatform.scheduling import GPU_RESOURCE, GPU_TAINT, Taint
from tests.conftest import is_secret
from tests.program import planned

PROD = "acme/aiplatform/prod"


def prod_outputs() -> dict:
    return copy.deepcopy(planned("prod").outputs)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_contract_name_is_exported_and_only_the_kubeconfig_is_secret(stack):
    outputs = planned(stack).outputs
    assert PlatformOutputs.exported_names() <= set(outputs)
    assert outputs["contractVersion"] == CONTRACT_VERSION
    assert [name for name, value in outputs.items() if value == "[secret]"] == ["kubeconfig"]
    parsed = PlatformOutputs.from_values(stack, outputs, secret_names=["kubeconfig"])
    contract = {k: v for k, v in outputs.items() if k in PlatformOutputs.exported_names() - {"kubeconfig"}}
    assert parsed.export() == contract  # read back unchanged: names and shapes agree on both sides


def test_prod_outputs_read_back_as_typed_values():
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    assert (platform.cluster_name, platform.region, platform.identity_mode) == (
        "ai-prod",
        "us-east-1",
        "irsa",
    )
    assert platform.oidc_provider_arn.startswith(
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1."
    )
    assert platform.oidc_issuer_url.removeprefix("https://") in platform.oidc_provider_arn
    assert sorted(platform.namespaces) == ["ml-serving", "ml-training"]
    assert platform.namespaces["ml-serving"].ingress_ports == (8000, 8080)
    assert platform.model_bucket == "ai-prod-models-123456789012-us-east-1"
    assert platform.model_bucket_kms_key_arn.startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert platform.shared_claim is not None
    assert (platform.shared_claim.namespace, platform.shared_claim.claim_name) == (
        "ml-training",
        "training-shared",
    )
    assert platform.custom_metrics == ("requests_per_second",)
    assert sorted(platform.node_groups) == ["gpu-inference", "gpu-training", "gpu-training-spot", "system"]

    spot = platform.placement("gpu-training-spot")
    assert spot.node_selector == {"aiplatform.io/node-group": "gpu-training-spot"}
    assert [t.key for t in spot.tolerations] == [GPU_TAINT.key, "aiplatform.io/spot"]
    assert all(
        t.tolerates(taint)
        for t, taint in zip(spot.tolerations, [GPU_TAINT, Taint("aiplatform.io/spot", "true")], strict=True)
    )
    assert spot.gpu_resource == GPU_RESOURCE
    assert platform.placement("system").gpu_resource is None


def test_a_route_read_from_the_outputs_is_the_route_the_platform_builds():
    """The platform's own Ingress for llm.example.com and the one a team would build agree exactly."""
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    (ingress,) = [r for r in planned("prod").registrations if r.name == "llama-inference-ingress"]
    route = platform.route("llm.example.com", health_check_path="/health")
    assert route.class_name == ingress.inputs["spec"]["ingressClassName"]
    assert dict(route.annotations) == ingress.inputs["metadata"]["annotations"]


def test_the_identity_trusts_the_platform_oidc_provider():
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    identity = platform.workload_identity
    assert (identity.mode, identity.cluster_name) == ("irsa", "ai-prod")
    (provider,) = [
        r
        for r in planned("prod").registrations
        if r.type == "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    ]
    assert (
        identity.oidc_provider_arn
        == f"arn:aws:iam::123456789012:oidc-provider/{provider.inputs['url'].removeprefix('https://')}"
    )


def test_bucket_access_is_scoped_to_the_prefix():
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    statements = platform.bucket_access("teams/search/", write=True)
    resources = [r for s in statements for r in s["Resource"]]
    bucket = "arn:aws:s3:::ai-prod-models-123456789012-us-east-1"
    assert f"{bucket}/teams/search/*" in resources and bucket in resources
    assert all(
        r.startswith((f"{bucket}/teams/search/", platform.model_bucket_kms_key_arn)) or r == bucket
        for r in resources
    )
    assert {a for s in statements for a in s["Action"]} == {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    assert "s3:PutObject" not in json.dumps(platform.bucket_access("teams/search"))


def test_every_problem_of_a_broken_stack_is_named_at_once():
    outputs = prod_outputs()
    del outputs["clusterName"]
    outputs["nodeGroups"]["gpu-inference"]["taints"][0]["effect"] = "Sometimes"
    outputs["namespaces"] = ["ml-serving"]
    with pytest.raises(PlatformOutputsError) as error:
        PlatformOutputs.from_values(PROD, outputs, secret_names=["kubeconfig"])
    message = str(error.value)
    assert message.startswith(f"stack {PROD}:")
    assert "clusterName: Field required" in message
    assert "nodeGroups.gpu-inference.taints.0.effect:" in message
    assert "namespaces:" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda o: o.clear(), "the stack has no outputs"),
        (lambda o: o.pop("kubeconfig"), "kubeconfig: missing"),
        (lambda o: o.update(contractVersion=CONTRACT_VERSION + 1), "contractVersion: 2, but this library"),
    ],
)
def test_an_unreadable_stack_says_why(change, expected):
    outputs = prod_outputs()
    change(outputs)
    with pytest.raises(PlatformOutputsError, match=expected):
        PlatformOutputs.from_values(PROD, outputs, secret_names=["kubeconfig"])


def test_a_contract_value_that_is_secret_is_refused_rather_than_read_in_clear():
    with pytest.raises(PlatformOutputsError, match="modelBucket: is a secret"):
        PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig", "modelBucket"])


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        (
            lambda p: p.placement("gpu-huge"),
            "node group 'gpu-huge' is not on the platform; it has: gpu-inference",
        ),
        (lambda p: p.metric("tokens_per_second"), "custom metric 'tokens_per_second' is not on the platform"),
        (
            lambda p: p.namespace("default"),
            "namespace 'default' is not on the platform; it has: ml-serving, ml-training",
        ),
        (lambda p: p.shared_volume("ml-serving"), "training-shared lives in namespace 'ml-training'"),
    ],
)
def test_asking_for_what_the_platform_lacks_names_what_it_has(ask, expected):
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    with pytest.raises(PlatformOutputsError, match=expected):
        ask(platform)


def test_from_stack_reads_a_stack_reference_and_keeps_the_kubeconfig_secret(monitor):
    monitor.mocks.stack_outputs = {ANY_STACK: prod_outputs()}
    assert isinstance(monitor.mocks, PlatformMocks) and isinstance(monitor, RecordingMonitor)
    platform = PlatformOutputs.from_stack(PROD)
    assert platform.cluster_name == "ai-prod"
    assert isinstance(platform.kubeconfig, pulumi.Output)
    assert is_secret(platform.kubeconfig)


def test_a_stack_reference_to_an_unknown_stack_has_no_outputs(monitor):
    monitor.mocks.stack_outputs = {"acme/aiplatform/dev": prod_outputs()}
    with pytest.raises(PlatformOutputsError, match="the stack has no outputs"):
        PlatformOutputs.from_stack(PROD)


def test_the_shared_namespace_is_the_claim_s_and_the_same_namespace_object_every_time():
    platform = PlatformOutputs.from_values(PROD, prod_outputs(), secret_names=["kubeconfig"])
    shared = platform.shared_namespace()
    assert shared == "ml-training" and shared is platform.namespace("ml-training")
    assert platform.namespace("ml-serving") is platform.namespace("ml-serving")  # one quota ledger each
    bare = PlatformOutputs.from_values(
        PROD, {**prod_outputs(), "sharedClaim": None}, secret_names=["kubeconfig"]
    )
    with pytest.raises(PlatformOutputsError, match="the platform has no shared file system"):
        bare.shared_namespace()
