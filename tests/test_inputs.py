"""Components chain: arguments that come from other resources of the same program (``pulumi.Output``)."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime import settings as pulumi_settings

from aiplatform.addons.ingress import RouteSettings
from aiplatform.addons.secrets import SecretSpec
from aiplatform.errors import ArgumentsError
from aiplatform.iam import ServiceAccountRole, ServiceAccountRoleArgs
from aiplatform.inputs import checked, derived, is_known, plain_problems
from aiplatform.routing import IngressRoute
from aiplatform.storage import ModelBucket, ModelBucketArgs, SharedFileSystem
from aiplatform.tenancy import TeamNamespace, TeamNamespaceArgs
from aiplatform.workloads import InferenceService, ModelSource, SecretFiles, SharedVolume, TrainingJob
from tests import test_ingress, test_secrets, test_storage
from tests.conftest import _sync_await, resolve, run_pulumi_func  # type: ignore[attr-defined]
from tests.workloads import test_inference, test_training
from tests.workloads.helpers import IRSA, container, volumes

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"
ALB_HEALTH_CHECK = "alb.ingress.kubernetes.io/healthcheck-path"


def fetch_args(monitor) -> list[str]:
    pod = test_inference.pod_of(monitor)
    return container(pod, "fetch-model")["args"]


# -- the pure helpers ------------------------------------------------------------------------------


def test_plain_values_are_checked_now_and_outputs_left_for_later():
    def reason(value: object) -> str | None:
        return None if value == "good" else f"{value!r} is bad"

    assert plain_problems("x", "good", reason) == []
    assert plain_problems("x", "evil", reason) == [("x", "'evil' is bad")]
    assert plain_problems("x", 3, reason) == [("x", "3 is bad")]  # not a str: checked as given
    assert plain_problems("x", pulumi.Output.from_input("evil"), reason) == []
    assert is_known("a") and not is_known(pulumi.Output.from_input("a"))
    assert checked("C 'c'", "x", "evil", reason) == "evil"  # plain: the caller checked it already


def test_derived_values_stay_plain_for_plain_inputs(build):
    assert derived(lambda a, b: f"{a}/{b}", "ns", "sa") == "ns/sa"
    out = derived(lambda a, b: f"{a}/{b}", pulumi.Output.from_input("ns"), "sa")
    assert isinstance(out, pulumi.Output) and resolve(out) == "ns/sa"


# -- ModelSource(bucket=<ModelBucket.bucket>) --------------------------------------------------------


def test_a_model_source_takes_the_bucket_of_a_model_bucket_in_the_same_program(build, monitor):
    def program():
        models = ModelBucket("models", ModelBucketArgs())
        source = ModelSource(bucket=models.bucket, prefix="models/m", kms_key_arn=models.kms_key_arn)
        InferenceService("llama", test_inference.args(model=source))
        return models

    models = build(program)
    bucket, key_arn = resolve(models.bucket), resolve(models.kms_key_arn)
    assert bucket.startswith("models-bucket-")  # the name the engine gave the bucket
    assert fetch_args(monitor)[:3] == ["s3", "sync", f"s3://{bucket}/models/m"]
    policy = json.loads(monitor.named("llama-aws-policy").inputs["policy"])
    assert [s["Resource"] for s in policy["Statement"]] == [
        [f"arn:aws:s3:::{bucket}/models/m/*"],
        [f"arn:aws:s3:::{bucket}"],
        [key_arn],
    ]


def test_a_bucket_output_that_resolves_to_a_bad_name_fails_naming_the_argument(build_fails, monitor):
    source = ModelSource(bucket=pulumi.Output.from_input("Not_A_Bucket"), prefix="models/m")
    failure = build_fails(lambda: InferenceService("llama", test_inference.args(model=source)))
    assert "InferenceService 'llama':\n  - model.bucket: 'Not_A_Bucket' is not an S3 bucket name" in failure
    registered = {r.name for r in monitor.registrations}
    # Nothing is created with the bad name: neither the pods that fetch from it nor its policy.
    assert "llama-deployment" not in registered and "llama-aws-policy" not in registered


def test_a_plain_bad_bucket_still_fails_before_anything_is_registered(build, monitor):
    source = ModelSource(bucket="Not_A_Bucket", prefix="models/m")
    with pytest.raises(ArgumentsError, match=r"model\.bucket: 'Not_A_Bucket' is not an S3 bucket name"):
        build(lambda: InferenceService("llama", test_inference.args(model=source)))
    assert not [r for r in monitor.registrations if r.type.startswith("aiplatform:")]


def test_an_unknown_bucket_in_preview_is_not_checked(monitor):
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(monitor.mocks, project="aiplatform", stack="test", preview=True, monitor=monitor)

    def program():
        models = ModelBucket("models", ModelBucketArgs(bucket_prefix="team-models"))
        InferenceService("llama", test_inference.args(model=ModelSource(bucket=models.bucket, prefix="m")))

    _sync_await(run_pulumi_func(program))
    assert monitor.named("llama-deployment")


# -- namespaces, Secret and claim names ------------------------------------------------------------


def test_a_workload_goes_to_the_namespace_a_namespace_resource_names(build, monitor):
    def program():
        namespace = k8s.core.v1.Namespace("team", metadata={"name": "team-a"})
        InferenceService("llama", test_inference.args(namespace=namespace.metadata.name))

    build(program)
    for name in ("llama-deployment", "llama-service", "llama-sa", "llama-ingress"):
        assert monitor.named(name).inputs["metadata"]["namespace"] == "team-a", name
    role = monitor.named("llama-aws-role").inputs
    subject = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:team-a:llama" in subject.values()
    assert role["description"] == "Assumed by team-a/llama (irsa)"


def test_a_namespace_output_that_resolves_to_a_bad_name_fails_naming_the_argument(build_fails):
    bad = pulumi.Output.from_input("Team_A")
    failure = build_fails(lambda: InferenceService("llama", test_inference.args(namespace=bad)))
    assert "InferenceService 'llama':\n  - namespace: 'Team_A' is not a valid namespace name" in failure


def test_secret_names_may_come_from_other_resources(build, monitor):
    secret = pulumi.Output.from_input("hf-token")
    build(
        lambda: InferenceService(
            "llama",
            test_inference.args(
                secret_env=[("HF_TOKEN", secret, "token")],
                secret_files=[SecretFiles(secret, "/etc/hf")],
            ),
        )
    )
    pod = test_inference.pod_of(monitor)
    server = container(pod, "server")
    refs = {e["name"]: e["valueFrom"].get("secretKeyRef") for e in server["env"] if "valueFrom" in e}
    assert refs["HF_TOKEN"] == {"name": "hf-token", "key": "token"}
    assert volumes(pod)["secret-0"]["secret"]["secretName"] == "hf-token"


def test_a_secret_file_output_that_resolves_to_a_bad_name_fails_naming_the_argument(build_fails):
    files = [SecretFiles(pulumi.Output.from_input("Bad_Secret"), "/etc/hf")]
    failure = build_fails(lambda: InferenceService("llama", test_inference.args(secret_files=files)))
    assert "secret_files[0].secret: 'Bad_Secret' is not a Secret name" in failure


def test_a_training_job_mounts_the_claim_another_resource_names(build, build_fails, monitor):
    claim = pulumi.Output.from_input("shared-training")
    build(lambda: TrainingJob("train", test_training.args(shared_volume=SharedVolume(claim_name=claim))))
    pod = monitor.named("train-job").inputs["spec"]["template"]["spec"]
    assert volumes(pod)["shared"]["persistentVolumeClaim"]["claimName"] == "shared-training"

    empty = SharedVolume(claim_name=pulumi.Output.from_input(""))
    failure = build_fails(lambda: TrainingJob("train2", test_training.args(shared_volume=empty)))
    assert "TrainingJob 'train2':\n  - shared_volume.claim_name: must not be empty" in failure


def test_a_role_takes_its_namespace_and_managed_policies_from_other_resources(build, monitor):
    def program():
        ServiceAccountRole(
            "reader",
            ServiceAccountRoleArgs(
                identity=IRSA,
                namespace=pulumi.Output.from_input("team-a"),
                service_account="reader",
                managed_policy_arns=[pulumi.Output.from_input("arn:aws:iam::123456789012:policy/read")],
            ),
        )

    build(program)
    trust = json.loads(monitor.named("reader-role").inputs["assumeRolePolicy"])
    assert (
        "system:serviceaccount:team-a:reader" in trust["Statement"][0]["Condition"]["StringEquals"].values()
    )
    attachment = monitor.named("reader-managed-0").inputs
    assert attachment["policyArn"] == "arn:aws:iam::123456789012:policy/read"


# -- the ALB health check follows the readiness path -----------------------------------------------


def alb_route(**extra: str) -> IngressRoute:
    settings = RouteSettings(controller="alb", certificate_arn=CERT)
    return settings.route("llama.example.com", **extra)


def ingress_annotations(monitor) -> dict[str, str]:
    return monitor.named("llama-ingress").inputs["metadata"].get("annotations") or {}


def test_an_alb_route_checks_the_readiness_path_unless_it_names_its_own(build, monitor):
    build(
        lambda: InferenceService("llama", test_inference.args(route=alb_route(), readiness_path="/v1/ready"))
    )
    assert ingress_annotations(monitor)[ALB_HEALTH_CHECK] == "/v1/ready"


def test_an_explicit_health_check_path_wins_over_the_readiness_path(build, monitor):
    route = alb_route(health_check_path="/healthz")
    build(lambda: InferenceService("llama", test_inference.args(route=route, readiness_path="/v1/ready")))
    assert ingress_annotations(monitor)[ALB_HEALTH_CHECK] == "/healthz"


def test_an_nginx_route_gets_no_health_check_annotation(build, monitor):
    route = RouteSettings(controller="nginx", tls_secret_name="llama-tls").route("llama.example.com")
    build(lambda: InferenceService("llama", test_inference.args(route=route)))
    assert not [key for key in ingress_annotations(monitor) if "healthcheck" in key]


# -- the ingress controller's certificate and TLS Secret, a route's host -----------------------------


def test_routes_take_the_certificate_of_a_certificate_in_the_same_program(build, monitor):
    """An ACM certificate made by the same program: its ARN reaches every route's Ingress."""

    def program():
        import pulumi_aws as aws

        certificate = aws.acm.Certificate("edge", domain_name="*.example.com", validation_method="DNS")
        controller = test_ingress.make(certificate_arn=certificate.arn)
        InferenceService("llama", test_inference.args(route=controller.route("llama.example.com")))
        return certificate

    certificate = build(program)
    arn = resolve(certificate.arn)
    assert arn.startswith("arn:aws:acm:")
    assert ingress_annotations(monitor)["alb.ingress.kubernetes.io/certificate-arn"] == arn


def test_a_certificate_output_that_resolves_to_a_bad_arn_fails_naming_the_argument(build_fails, monitor):
    def program():
        controller = test_ingress.make(certificate_arn=pulumi.Output.from_input("arn:aws:iam::1:role/x"))
        InferenceService("llama", test_inference.args(route=controller.route("llama.example.com")))

    failure = build_fails(program)
    assert (
        "IngressController 'edge':\n  - certificate_arn: 'arn:aws:iam::1:role/x' is not an ACM certificate ARN"
    ) in failure
    assert "llama-ingress" not in {r.name for r in monitor.registrations}


def test_a_plain_bad_certificate_or_tls_secret_fails_before_anything_is_registered(build, monitor):
    with pytest.raises(ArgumentsError) as caught:
        build(lambda: test_ingress.make(certificate_arn="arn:x", tls_secret_name="Bad_Secret"))
    assert caught.value.problems == [
        ("certificate_arn", "'arn:x' is not an ACM certificate ARN"),
        ("tls_secret_name", "'Bad_Secret' is not a DNS-1123 name"),
    ]
    assert [r.type for r in monitor.registrations] == ["pulumi:providers:kubernetes"]  # the test's own


def test_an_nginx_route_serves_the_tls_secret_another_resource_names(build, monitor):
    def program():
        secret = k8s.core.v1.Secret("tls", metadata={"name": "wildcard-tls", "namespace": "ai"})
        controller = test_ingress.make("nginx", tls_secret_name=secret.metadata.name)
        InferenceService("llama", test_inference.args(route=controller.route("llama.example.com")))

    build(program)
    (tls,) = monitor.named("llama-ingress").inputs["spec"]["tls"]
    assert tls == {"hosts": ["llama.example.com"], "secretName": "wildcard-tls"}


def test_a_route_host_may_come_from_another_resource_and_is_checked_when_it_resolves(
    build, build_fails, monitor
):
    host = pulumi.Output.from_input("llama.example.com")
    build(lambda: InferenceService("llama", test_inference.args(route=alb_route_for(host))))
    (rule,) = monitor.named("llama-ingress").inputs["spec"]["rules"]
    assert rule["host"] == "llama.example.com"

    bad = pulumi.Output.from_input("Not A Host")
    failure = build_fails(lambda: InferenceService("other", test_inference.args(route=alb_route_for(bad))))
    assert "IngressController.route:\n  - host: 'Not A Host' is not a valid DNS name" in failure
    with pytest.raises(ArgumentsError, match=r"host: 'Not A Host' is not a valid DNS name"):
        alb_route_for("Not A Host")  # a plain host: at once


def alb_route_for(host: pulumi.Input[str]) -> IngressRoute:
    return RouteSettings(controller="alb", certificate_arn=CERT).route(host)


# -- a secret managed elsewhere in the same program ---------------------------------------------------


def test_an_existing_secret_and_its_key_may_come_from_resources_of_the_same_program(build, monitor):
    """The operator syncs a secret another part of the program made, and may decrypt it with its key."""

    def program():
        import pulumi_aws as aws

        key = aws.kms.Key("hf-key")
        secret = aws.secretsmanager.Secret("hf", name="shared/hf", kms_key_id=key.arn)
        spec = SecretSpec(
            name="hf-secret",
            namespace="ml",
            keys=("token",),
            existing_arn=secret.arn,
            existing_kms_key_arn=key.arn,
        )
        return secret, key, test_secrets.make(specs=[spec])

    secret, key, eso = build(program)
    secret_arn, key_arn = resolve(secret.arn), resolve(key.arn)
    external = monitor.named("eso-ml-hf-secret").inputs["spec"]
    assert {d["remoteRef"]["key"] for d in external["data"]} == {secret_arn}
    statements = json.loads(monitor.named("eso-controller-policy").inputs["policy"])["Statement"]
    assert statements[0]["Resource"] == [secret_arn]
    assert statements[1]["Resource"] == sorted([resolve(eso.kms_key_arn), key_arn])


def test_an_existing_secret_arn_output_that_resolves_badly_fails_naming_the_spec(build_fails, monitor):
    spec = SecretSpec(
        name="hf-secret",
        namespace="ml",
        keys=("token",),
        existing_arn=pulumi.Output.from_input("arn:partial"),
    )
    failure = build_fails(lambda: test_secrets.make(specs=[spec]))
    assert (
        "ExternalSecrets 'eso':\n  - specs[0].existing_arn: 'arn:partial' is not a full Secrets Manager"
        in failure
    )
    assert "eso-ml-hf-secret" not in {r.name for r in monitor.registrations}


# -- a tenant namespace on the VPC and add-ons of the same program; the shared claim's namespace --------


def test_a_team_namespace_admits_traffic_from_the_vpc_and_namespaces_of_the_same_program(build, monitor):
    def program():
        import pulumi_aws as aws

        vpc = aws.ec2.Vpc("vpc", cidr_block="10.42.0.0/16")
        monitoring = k8s.core.v1.Namespace("monitoring", metadata={"name": "observability"})
        nginx = k8s.core.v1.Namespace("nginx", metadata={"name": "edge"})
        for sources, extra in (("alb", {}), ("nginx", {"ingress_controller_namespace": nginx.metadata.name})):
            TeamNamespace(
                f"team-{sources}",
                TeamNamespaceArgs(
                    name=f"team-{sources}",
                    provider=k8s.Provider(f"k8s-{sources}", kubeconfig="{}"),
                    vpc_cidr=vpc.cidr_block,
                    ingress_sources=sources,
                    monitoring_namespace=monitoring.metadata.name,
                    **extra,
                ),
            )

    build(program)
    alb = monitor.named("team-alb-allow-ingress-alb").inputs["spec"]["ingress"][0]["from"]
    assert alb == [{"ipBlock": {"cidr": "10.42.0.0/16"}}]
    nginx = monitor.named("team-nginx-allow-ingress-nginx").inputs["spec"]["ingress"][0]["from"]
    assert nginx == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}}}]
    scrape = monitor.named("team-alb-allow-monitoring-scrape").inputs["spec"]["ingress"][0]["from"]
    assert scrape == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ]


def test_a_vpc_cidr_output_that_resolves_badly_fails_naming_the_argument(build_fails):
    def program():
        TeamNamespace(
            "team",
            TeamNamespaceArgs(
                name="team",
                provider=k8s.Provider("k8s", kubeconfig="{}"),
                vpc_cidr=pulumi.Output.from_input("10.0.0.0/33"),
            ),
        )

    failure = build_fails(program)
    assert "TeamNamespace 'team':\n  - vpc_cidr: '10.0.0.0/33' must be an IPv4 CIDR" in failure


def test_the_shared_claim_goes_to_the_namespace_another_resource_names(build, build_fails, monitor):
    def program(namespace: pulumi.Input[str], name: str = "shared"):
        provider = k8s.Provider(f"k8s-{name}", kubeconfig="{}")
        SharedFileSystem(name, test_storage.fs_args(provider, claim_namespace=namespace))

    build(lambda: program(k8s.core.v1.Namespace("training", metadata={"name": "ml-training"}).metadata.name))
    assert monitor.named("shared-claim").inputs["metadata"]["namespace"] == "ml-training"
    failure = build_fails(lambda: program(pulumi.Output.from_input("ML_Training"), "other"))
    assert "SharedFileSystem 'other':\n  - claim_namespace: 'ML_Training' is not a DNS-1123 label" in failure
