import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime.mocks import MockResourceArgs

from aiplatform.plan.cloud import auto_name
from aiplatform.plan.mock_engine import SECRET_PLACEHOLDER, CloudRefusal, PlatformMocks
from tests.conftest import is_secret, resolve


def test_registrations_record_parent_provider_dependencies_and_redact_secrets(build, monitor):
    def program():
        vpc = aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16")
        provider = k8s.Provider("k8s", kubeconfig=pulumi.Output.secret("apiVersion: v1"))
        secret = k8s.core.v1.Secret(
            "creds",
            string_data={"token": pulumi.Output.secret("hunter2-value")},
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[vpc]),
        )
        return vpc, secret

    vpc, secret = build(program)
    record = monitor.named("creds")
    assert record.provider_urn == monitor.named("k8s").urn
    assert record.dependencies == [monitor.named("vpc").urn]
    assert record.inputs["stringData"] == SECRET_PLACEHOLDER
    assert "hunter2-value" not in repr([r.inputs for r in monitor.registrations])
    assert resolve(vpc.id).startswith("vpc-")
    assert resolve(secret.metadata.name) == auto_name("creds")


def test_invokes_answer_like_the_region(build):
    zones = build(lambda: aws.get_availability_zones(state="available"))
    assert zones.names[:3] == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_secret_outputs_stay_secret(build):
    out = build(lambda: pulumi.Output.secret("x"))
    assert is_secret(out)


def test_inputs_aws_refuses_fail_the_plan_with_the_property_and_the_reason():
    policy = '{"Version": "2012-10-17", "Statement": []}'
    too_long = MockResourceArgs(
        "aws:iam/role:Role", "too-long", {"name": "r" * 65, "assumeRolePolicy": policy}
    )
    with pytest.raises(
        CloudRefusal,
        match=r"aws:iam/role:Role 'too-long': AWS would refuse these inputs: "
        r"name: role name must be 1 to 64 characters \(got 65\)",
    ):
        PlatformMocks().new_resource(too_long)
    ident, outputs = PlatformMocks().new_resource(
        MockResourceArgs("aws:iam/role:Role", "ok", {"assumeRolePolicy": policy})
    )
    assert outputs["arn"] == f"arn:aws:iam::123456789012:role/{auto_name('ok')}"


def test_a_public_nat_gateway_needs_the_elastic_ips_allocation_id(build, monitor):
    def program():
        eip = aws.ec2.Eip("nat-ip", domain="vpc")
        return eip, aws.ec2.NatGateway(
            "nat", subnet_id="subnet-0123456789abcdef0", allocation_id=eip.allocation_id
        )

    eip, _ = build(program)
    allocation = resolve(eip.allocation_id)
    assert allocation.startswith("eipalloc-") and allocation == resolve(eip.id)
    assert monitor.named("nat").inputs["allocationId"] == allocation
    with pytest.raises(CloudRefusal, match="allocationId: required"):
        PlatformMocks().new_resource(
            MockResourceArgs("aws:ec2/natGateway:NatGateway", "nat", {"subnetId": "subnet-0123456789abcdef0"})
        )
