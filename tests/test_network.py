import ipaddress
import json
from itertools import combinations

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiplatform.errors import ArgumentsError
from aiplatform.network import (
    MAX_AZ_COUNT,
    SMALLEST_PRIVATE_PREFIX,
    ExistingNetwork,
    Network,
    NetworkArgs,
    existing_network_problems,
    plan_subnets,
)
from aiplatform.plan.cloud import ID_PREFIXES, short_hash
from tests.conftest import resolve

PRIVATE_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


@st.composite
def vpc_cidrs(draw, smallest_prefix=20, largest_prefix=16):
    """A /16../20 network anywhere inside one of the RFC 1918 ranges."""
    base = draw(st.sampled_from(PRIVATE_RANGES))
    prefix = draw(st.integers(largest_prefix, smallest_prefix))
    offset = draw(st.integers(0, base.num_addresses - 1))
    return str(ipaddress.ip_network(f"{base.network_address + offset}/{prefix}", strict=False))


az_counts = st.integers(2, MAX_AZ_COUNT)


# -- the planner ----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(vpc_cidrs(), az_counts)
def test_plan_is_disjoint_inside_the_vpc_and_large_enough(vpc_cidr, az_count):
    plan = plan_subnets(vpc_cidr, az_count)
    vpc = ipaddress.ip_network(vpc_cidr)
    public = [ipaddress.ip_network(c) for c in plan.public_cidrs]
    private = [ipaddress.ip_network(c) for c in plan.private_cidrs]

    assert plan.az_count == len(public) == len(private) == az_count
    everything = [*public, *private, ipaddress.ip_network(plan.reserved_cidr)]
    assert all(s.subnet_of(vpc) for s in everything)
    assert not [(a, b) for a, b in combinations(everything, 2) if a.overlaps(b)]
    # Private subnets: 1/8 of the VPC each (a /19 in a /16), never smaller than a /23.
    assert all(s.prefixlen == vpc.prefixlen + 3 <= SMALLEST_PRIVATE_PREFIX for s in private)
    assert all(s.num_addresses >= 512 and s.num_addresses >= vpc.num_addresses // 16 for s in private)
    # Public subnets are small but still fit a load balancer (/27 at least).
    assert all(s.prefixlen == min(vpc.prefixlen + 8, 27) for s in public)
    assert sum(s.num_addresses for s in public) < private[0].num_addresses


@settings(max_examples=100, deadline=None)
@given(vpc_cidrs(), az_counts, az_counts)
def test_plan_is_deterministic_and_stable_when_azs_are_added(vpc_cidr, n, m):
    assert plan_subnets(vpc_cidr, n) == plan_subnets(vpc_cidr, n)
    small, large = plan_subnets(vpc_cidr, min(n, m)), plan_subnets(vpc_cidr, max(n, m))
    assert large.private_cidrs[: small.az_count] == small.private_cidrs
    assert large.public_cidrs[: small.az_count] == small.public_cidrs


def test_plan_of_a_slash_16_across_three_azs():
    plan = plan_subnets("10.0.0.0/16", 3)
    assert plan.private_cidrs == ("10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19")
    assert plan.public_cidrs == ("10.0.224.0/24", "10.0.225.0/24", "10.0.226.0/24")
    assert plan.reserved_cidr == "10.0.192.0/19"


@settings(max_examples=50, deadline=None)
@given(vpc_cidrs(smallest_prefix=28, largest_prefix=21), az_counts)
def test_too_small_vpcs_are_rejected(vpc_cidr, az_count):
    with pytest.raises(ValueError, match=r"too small: private subnets would be /\d+.*use /20 or larger"):
        plan_subnets(vpc_cidr, az_count)


@pytest.mark.parametrize(
    ("vpc_cidr", "az_count", "message"),
    [
        ("10.0.0.0/8", 3, r"larger than AWS allows \(/16 at most\)"),
        ("10.0.0.1/16", 3, "has host bits set"),
        ("10.0.0.0/33", 3, "not a valid IPv4 CIDR"),
        ("not-a-cidr", 3, "not a valid IPv4 CIDR"),
        ("fd00::/56", 3, "must be IPv4"),
        ("10.0.0.0/16", 1, "az_count: must be between 2 and 6, got 1"),
        ("10.0.0.0/16", 7, "az_count: must be between 2 and 6, got 7"),
        ("10.0.0.0/16", True, "az_count: must be an integer"),
    ],
)
def test_bad_plans_are_rejected_with_the_reason(vpc_cidr, az_count, message):
    with pytest.raises(ValueError, match=message):
        plan_subnets(vpc_cidr, az_count)


def test_plan_errors_name_every_problem():
    with pytest.raises(
        ValueError, match=r"vpc_cidr: 10\.0\.0\.0/24 is too small.*\n  - az_count: must be between"
    ):
        plan_subnets("10.0.0.0/24", 9)


# -- args -----------------------------------------------------------------------------------------


def test_args_list_every_bad_field(build, monitor):
    args = NetworkArgs(
        cluster_name="-bad",
        vpc_cidr="10.0.0.0/24",
        az_count=0,
        nat_gateways="two",  # type: ignore[arg-type]
        flow_logs_retention_days=10,
        tags={"aws:owner": "me", "team": 1},  # type: ignore[dict-item]
    )
    with pytest.raises(ArgumentsError) as raised:
        build(lambda: Network("bad", args))
    message = str(raised.value)
    for fragment in (
        "Network 'bad':",
        "cluster_name: '-bad'",
        "vpc_cidr: 10.0.0.0/24 is too small",
        "az_count: must be between 2 and 6, got 0",
        "nat_gateways: must be one of ['single', 'per-az'], got 'two'",
        "flow_logs_retention_days: 10 is not a CloudWatch retention",
        "tags: keys and values must be strings: ['team']",
        "tags: the 'aws:' prefix is reserved by AWS: ['aws:owner']",
    ):
        assert fragment in message
    assert message.count("\n  - ") == 7
    # The engine's InputPropertiesError: each problem at the argument's path.
    assert {"property_path": "az_count", "reason": "must be between 2 and 6, got 0"} in raised.value.errors


def test_args_defaults_are_the_production_shape():
    args = NetworkArgs(cluster_name="ai")
    assert (
        args.vpc_cidr,
        args.az_count,
        args.nat_gateways,
        args.flow_logs,
        args.flow_logs_retention_days,
    ) == (
        "10.0.0.0/16",
        3,
        "per-az",
        True,
        90,
    )


# -- bring your own VPC ---------------------------------------------------------------------------


def test_existing_network_exposes_the_same_attributes():
    existing = ExistingNetwork(
        vpc_id="vpc-0abc", private_subnet_ids=["subnet-01", "subnet-02"], public_subnet_ids=["subnet-03"]
    )
    assert existing.vpc_id == "vpc-0abc"
    assert existing.private_subnet_ids == ("subnet-01", "subnet-02")
    assert existing.public_subnet_ids == ("subnet-03",)
    assert existing.nat_gateway_count == 0


def test_existing_network_errors_list_every_problem():
    assert existing_network_problems("vpc-0abc", ["subnet-01", "subnet-02"]) == []
    with pytest.raises(ValueError) as raised:
        ExistingNetwork(
            vpc_id="vpc0",
            private_subnet_ids=["subnet-01", "subnet-01"],
            public_subnet_ids=["subnet-01", "sn-2"],
        )
    message = str(raised.value)
    for fragment in (
        "vpc_id: 'vpc0' is not a VPC id",
        "private_subnet_ids: listed more than once: ['subnet-01']",
        "public_subnet_ids: not subnet ids (subnet-...): ['sn-2']",
        "private_subnet_ids: EKS needs at least 2 subnets",
        "subnets listed as both public and private: ['subnet-01']",
    ):
        assert fragment in message


# -- resources under the mock engine --------------------------------------------------------------


def ids_of(monitor, typ):
    """Resource name -> id the mock engine gave it (ids are deterministic)."""
    return {r.name: f"{ID_PREFIXES[typ]}-{short_hash(typ, r.name, length=17)}" for r in monitor.of_type(typ)}


def assert_unique_urns(monitor):
    urns = [r.urn for r in monitor.registrations]
    assert len(urns) == len(set(urns))


def test_dev_network_has_two_azs_and_one_nat(build, monitor):
    network = build(
        lambda: Network(
            "dev",
            NetworkArgs(
                cluster_name="ai-dev",
                vpc_cidr="10.20.0.0/16",
                az_count=2,
                nat_gateways="single",
                flow_logs=False,
                tags={"env": "dev"},
            ),
        )
    )
    vpc = monitor.named("dev-vpc").inputs
    assert vpc == {
        "cidrBlock": "10.20.0.0/16",
        "enableDnsHostnames": True,
        "enableDnsSupport": True,
        "tags": {"env": "dev", "Name": "dev-vpc"},
    }
    vpc_id = resolve(network.vpc_id)
    assert vpc_id.startswith("vpc-")

    subnets = {r.name: r.inputs for r in monitor.of_type("aws:ec2/subnet:Subnet")}
    assert subnets == {
        "dev-public-0": {
            "vpcId": vpc_id,
            "cidrBlock": "10.20.224.0/24",
            "availabilityZone": "us-east-1a",
            "mapPublicIpOnLaunch": False,
            "tags": {
                "env": "dev",
                "kubernetes.io/role/elb": "1",
                "kubernetes.io/cluster/ai-dev": "shared",
                "Name": "dev-public-us-east-1a",
            },
        },
        "dev-public-1": {
            "vpcId": vpc_id,
            "cidrBlock": "10.20.225.0/24",
            "availabilityZone": "us-east-1b",
            "mapPublicIpOnLaunch": False,
            "tags": {
                "env": "dev",
                "kubernetes.io/role/elb": "1",
                "kubernetes.io/cluster/ai-dev": "shared",
                "Name": "dev-public-us-east-1b",
            },
        },
        "dev-private-0": {
            "vpcId": vpc_id,
            "cidrBlock": "10.20.0.0/19",
            "availabilityZone": "us-east-1a",
            "mapPublicIpOnLaunch": False,
            "tags": {
                "env": "dev",
                "kubernetes.io/role/internal-elb": "1",
                "kubernetes.io/cluster/ai-dev": "shared",
                "Name": "dev-private-us-east-1a",
            },
        },
        "dev-private-1": {
            "vpcId": vpc_id,
            "cidrBlock": "10.20.32.0/19",
            "availabilityZone": "us-east-1b",
            "mapPublicIpOnLaunch": False,
            "tags": {
                "env": "dev",
                "kubernetes.io/role/internal-elb": "1",
                "kubernetes.io/cluster/ai-dev": "shared",
                "Name": "dev-private-us-east-1b",
            },
        },
    }

    (eip,) = monitor.of_type("aws:ec2/eip:Eip")
    assert eip.inputs["domain"] == "vpc"
    (nat,) = monitor.of_type("aws:ec2/natGateway:NatGateway")
    subnet_ids = ids_of(monitor, "aws:ec2/subnet:Subnet")
    assert nat.inputs["subnetId"] == subnet_ids["dev-public-0"]
    assert network.nat_gateway_count == 1

    # Both private route tables send everything to the single NAT gateway.
    nat_id = ids_of(monitor, "aws:ec2/natGateway:NatGateway")["dev-nat-0"]
    for index in range(2):
        assert monitor.named(f"dev-private-rt-{index}").inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "natGatewayId": nat_id}
        ]
    assert not monitor.of_type("aws:ec2/flowLog:FlowLog")
    assert not monitor.of_type("aws:cloudwatch/logGroup:LogGroup")

    assert resolve(network.availability_zones) == ["us-east-1a", "us-east-1b"]
    assert resolve(network.public_subnet_ids) == [subnet_ids["dev-public-0"], subnet_ids["dev-public-1"]]
    assert resolve(network.private_subnet_ids) == [subnet_ids["dev-private-0"], subnet_ids["dev-private-1"]]
    assert_unique_urns(monitor)


def test_prod_network_has_a_nat_per_az_and_flow_logs(build, monitor):
    network = build(
        lambda: Network(
            "prod",
            NetworkArgs(
                cluster_name="ai-prod",
                vpc_cidr="10.30.0.0/16",
                az_count=3,
                nat_gateways="per-az",
                flow_logs=True,
                flow_logs_retention_days=365,
            ),
        )
    )
    subnets = {r.name: r.inputs for r in monitor.of_type("aws:ec2/subnet:Subnet")}
    assert {name: (s["cidrBlock"], s["availabilityZone"]) for name, s in subnets.items()} == {
        "prod-public-0": ("10.30.224.0/24", "us-east-1a"),
        "prod-public-1": ("10.30.225.0/24", "us-east-1b"),
        "prod-public-2": ("10.30.226.0/24", "us-east-1c"),
        "prod-private-0": ("10.30.0.0/19", "us-east-1a"),
        "prod-private-1": ("10.30.32.0/19", "us-east-1b"),
        "prod-private-2": ("10.30.64.0/19", "us-east-1c"),
    }
    assert all(s["tags"]["kubernetes.io/cluster/ai-prod"] == "shared" for s in subnets.values())

    subnet_ids = ids_of(monitor, "aws:ec2/subnet:Subnet")
    eip_ids = ids_of(monitor, "aws:ec2/eip:Eip")
    nat_ids = ids_of(monitor, "aws:ec2/natGateway:NatGateway")
    rtb_ids = ids_of(monitor, "aws:ec2/routeTable:RouteTable")
    igw_id = ids_of(monitor, "aws:ec2/internetGateway:InternetGateway")["prod-igw"]
    assert len(eip_ids) == len(nat_ids) == network.nat_gateway_count == 3

    # Public: one table, default route to the internet gateway, associated with every public subnet.
    assert monitor.named("prod-public-rt").inputs["routes"] == [
        {"cidrBlock": "0.0.0.0/0", "gatewayId": igw_id}
    ]
    associations = {
        r.name: (r.inputs["subnetId"], r.inputs["routeTableId"])
        for r in monitor.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    for index in range(3):
        nat = monitor.named(f"prod-nat-{index}")
        # NAT i sits in public subnet i with EIP i; private subnet i routes through NAT i.
        assert nat.inputs["subnetId"] == subnet_ids[f"prod-public-{index}"]
        assert monitor.named(f"prod-private-rt-{index}").inputs["routes"] == [
            {"cidrBlock": "0.0.0.0/0", "natGatewayId": nat_ids[f"prod-nat-{index}"]}
        ]
        assert associations[f"prod-public-rta-{index}"] == (
            subnet_ids[f"prod-public-{index}"],
            rtb_ids["prod-public-rt"],
        )
        assert associations[f"prod-private-rta-{index}"] == (
            subnet_ids[f"prod-private-{index}"],
            rtb_ids[f"prod-private-rt-{index}"],
        )
    assert len(associations) == 6
    assert {r.name for r in monitor.of_type("aws:ec2/eip:Eip")} == {f"prod-nat-eip-{i}" for i in range(3)}

    # Flow logs: everything in the VPC to one log group, through a role only the service can assume.
    (log_group,) = monitor.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["retentionInDays"] == 365
    (flow_log,) = monitor.of_type("aws:ec2/flowLog:FlowLog")
    assert flow_log.inputs["vpcId"] == resolve(network.vpc_id)
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    log_group_arn = flow_log.inputs["logDestination"]
    assert log_group_arn == resolve(network.flow_log_group.arn)
    role = monitor.named("prod-flow-logs-role")
    assert flow_log.inputs["iamRoleArn"].startswith("arn:aws:iam::123456789012:role/prod-flow-logs-role-")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    policy = json.loads(monitor.named("prod-flow-logs-policy").inputs["policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert statement["Resource"] == [log_group_arn, f"{log_group_arn}:log-stream:*"]
    assert "*" not in statement["Resource"]
    # The flow log waits for its permissions.
    assert monitor.named("prod-flow-logs-policy").urn in flow_log.dependencies

    # Every child hangs under the component.
    component = monitor.named("prod")
    assert component.type == "aiplatform:network:Network"
    assert all(r.parent == component.urn for r in monitor.registrations if r is not component)
    assert_unique_urns(monitor)


def test_network_tolerates_unknowns_in_preview(build, monitor):
    pulumi.runtime.set_mocks(monitor.mocks, project="aiplatform", stack="test", preview=True, monitor=monitor)
    network = build(lambda: Network("pre", NetworkArgs(cluster_name="ai", az_count=2, nat_gateways="single")))
    assert network.nat_gateway_count == 1
    assert len(monitor.of_type("aws:ec2/subnet:Subnet")) == 4
    assert_unique_urns(monitor)


def test_bad_args_create_nothing(build, monitor):
    with pytest.raises(ArgumentsError, match="az_count"):
        build(lambda: Network("bad", NetworkArgs(cluster_name="ai", az_count=7)))
    assert monitor.registrations == []


def test_only_the_private_subnets_carry_the_extra_private_tags(build, monitor):
    from aiplatform.network import Network, NetworkArgs

    build(
        lambda: Network(
            "net",
            NetworkArgs(cluster_name="ai", az_count=2, private_subnet_tags={"karpenter.sh/discovery": "ai"}),
        )
    )
    tags = {r.name: r.inputs["tags"] for r in monitor.of_type("aws:ec2/subnet:Subnet")}
    assert {name: t.get("karpenter.sh/discovery") for name, t in tags.items()} == {
        "net-public-0": None,
        "net-public-1": None,
        "net-private-0": "ai",
        "net-private-1": "ai",
    }
