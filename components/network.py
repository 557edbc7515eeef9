"""The platform's VPC: public and private subnets across availability zones, NAT, routes, flow logs.

Two halves:

* ``plan_subnets`` is pure: it splits the VPC CIDR into subnets and can be tested without the engine.
* ``Network`` creates the resources from that plan. ``ExistingNetwork`` stands in for it when the
  VPC is brought by the user; both expose ``vpc_id``, ``public_subnet_ids`` and ``private_subnet_ids``,
  so the cluster component accepts either.

Layout of a VPC of prefix ``/p`` (``10.0.0.0/16`` shown)::

    slot 0..5  (/p+3, /19)  private subnet of AZ 0..5      10.0.0.0/19 ... 10.0.160.0/19
    slot 6     (/p+3, /19)  reserved (never allocated)     10.0.192.0/19
    slot 7     (/p+3, /19)  public subnets, /p+8 (/24)     10.0.224.0/24 ... 10.0.229.0/24

A subnet's CIDR depends only on the VPC CIDR and its AZ index, never on ``az_count``: growing from
2 to 3 AZs adds subnets without replacing the existing ones.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import pulumi
import pulumi_aws as aws

from .errors import ArgumentsError, Problem, require, type_problems
from .iam import allow, policy_document, service_trust_policy
from .validation import is_eks_cluster_name, log_retention_days

NatGatewayMode = Literal["single", "per-az"]

MIN_AZ_COUNT = 2
MAX_AZ_COUNT = 6
# AWS allows VPCs between /16 and /28; the platform needs room for pod IPs (VPC CNI).
LARGEST_VPC_PREFIX = 16
SMALLEST_VPC_PREFIX = 20
# The VPC is cut into 8 equal slots: 6 private subnets, 1 reserved, 1 split into public subnets.
PRIVATE_PREFIX_DELTA = 3
PUBLIC_PREFIX_DELTA = 8
# Load balancers want at least a /27 per subnet; never plan public subnets smaller than that.
SMALLEST_PUBLIC_PREFIX = 27
# The smallest private subnet the planner produces (a /20 VPC): 512 addresses.
SMALLEST_PRIVATE_PREFIX = SMALLEST_VPC_PREFIX + PRIVATE_PREFIX_DELTA

FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"

ELB_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"
# EKS cluster names: 1-100 characters, alphanumerics, '-' and '_', starting with an alphanumeric.


def cluster_tag_key(cluster_name: str) -> str:
    """The tag that lets the cluster's controllers discover a subnet (``.../cluster/<name>``)."""
    return f"kubernetes.io/cluster/{cluster_name}"


# --------------------------------------------------------------------------------------------------
# Pure planning
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubnetPlan:
    """Where each subnet goes: index ``i`` of each tuple belongs to availability zone ``i``."""

    vpc_cidr: str
    public_cidrs: tuple[str, ...]
    private_cidrs: tuple[str, ...]
    reserved_cidr: str

    @property
    def az_count(self) -> int:
        return len(self.private_cidrs)


def _parse_vpc_cidr(vpc_cidr: str) -> tuple[ipaddress.IPv4Network | None, str | None]:
    """The network, or the reason it can't be a VPC CIDR for this platform."""
    try:
        network = ipaddress.ip_network(vpc_cidr, strict=True)
    except (TypeError, ValueError) as exc:
        return None, f"{vpc_cidr!r} is not a valid IPv4 CIDR ({exc})"
    if not isinstance(network, ipaddress.IPv4Network):
        return None, f"{vpc_cidr!r} must be IPv4"
    if network.prefixlen < LARGEST_VPC_PREFIX:
        return None, (
            f"{vpc_cidr} is larger than AWS allows (/{LARGEST_VPC_PREFIX} at most): "
            f"use /{LARGEST_VPC_PREFIX} to /{SMALLEST_VPC_PREFIX}"
        )
    if network.prefixlen > SMALLEST_VPC_PREFIX:
        private = network.prefixlen + PRIVATE_PREFIX_DELTA
        return None, (
            f"{vpc_cidr} is too small: private subnets would be /{private}, too few pod IPs; "
            f"use /{SMALLEST_VPC_PREFIX} or larger (/{LARGEST_VPC_PREFIX} recommended)"
        )
    return network, None


def _az_count_error(az_count: object) -> str | None:
    if isinstance(az_count, bool) or not isinstance(az_count, int):
        return f"must be an integer, got {az_count!r}"
    if not MIN_AZ_COUNT <= az_count <= MAX_AZ_COUNT:
        return f"must be between {MIN_AZ_COUNT} and {MAX_AZ_COUNT}, got {az_count}"
    return None


def _plan_problems(vpc_cidr: str, az_count: object) -> list[Problem]:
    _, cidr_error = _parse_vpc_cidr(vpc_cidr)
    return [(at, e) for at, e in (("vpc_cidr", cidr_error), ("az_count", _az_count_error(az_count))) if e]


def plan_subnets(vpc_cidr: str, az_count: int) -> SubnetPlan:
    """Split ``vpc_cidr`` into one public and one private subnet per availability zone.

    Private subnets get 1/8 of the VPC each (a /19 in a /16): they hold the pods' IPs. Public
    subnets (load balancers, NAT gateways) are /p+8, at least /27, carved from the last eighth.
    Raises ``ArgumentsError`` for a malformed CIDR, a VPC outside /16../20, or az_count outside 2..6.
    """
    require("plan_subnets", _plan_problems(vpc_cidr, az_count))
    network, _ = _parse_vpc_cidr(vpc_cidr)
    assert network is not None

    slots = list(network.subnets(prefixlen_diff=PRIVATE_PREFIX_DELTA))
    public_prefix = min(network.prefixlen + PUBLIC_PREFIX_DELTA, SMALLEST_PUBLIC_PREFIX)
    public_pool = slots[-1].subnets(new_prefix=public_prefix)
    publics = [str(next(public_pool)) for _ in range(az_count)]
    return SubnetPlan(
        vpc_cidr=str(network),
        public_cidrs=tuple(publics),
        private_cidrs=tuple(str(s) for s in slots[:az_count]),
        reserved_cidr=str(slots[MAX_AZ_COUNT]),
    )


def existing_network_problems(
    vpc_id: str, private_subnet_ids: Sequence[str], public_subnet_ids: Sequence[str] = ()
) -> list[Problem]:
    """Everything wrong with a bring-your-own VPC config (empty when it is usable)."""
    problems: list[Problem] = []
    if not isinstance(vpc_id, str) or not re.fullmatch(r"vpc-[0-9a-f]+", vpc_id):
        problems.append(("vpc_id", f"{vpc_id!r} is not a VPC id (vpc-...)"))
    for field_name, ids in (
        ("private_subnet_ids", private_subnet_ids),
        ("public_subnet_ids", public_subnet_ids),
    ):
        bad = [s for s in ids if not isinstance(s, str) or not re.fullmatch(r"subnet-[0-9a-f]+", s)]
        if bad:
            problems.append((field_name, f"not subnet ids (subnet-...): {bad}"))
        duplicates = sorted({s for s in ids if list(ids).count(s) > 1})
        if duplicates:
            problems.append((field_name, f"listed more than once: {duplicates}"))
    if len(set(private_subnet_ids)) < MIN_AZ_COUNT:
        problems.append(
            ("private_subnet_ids", f"EKS needs at least {MIN_AZ_COUNT} subnets (in different AZs)")
        )
    both = sorted(set(private_subnet_ids) & set(public_subnet_ids))
    if both:
        problems.append(("", f"subnets listed as both public and private: {both}"))
    return problems


# --------------------------------------------------------------------------------------------------
# Args
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkArgs:
    """A new VPC for one EKS cluster. Defaults are the production shape (HA NAT, flow logs on)."""

    cluster_name: str  # the EKS cluster the VPC is for: names its resources and the subnets' cluster tags
    # the VPC's IPv4 CIDR block (split into one public and one private subnet per AZ)
    vpc_cidr: str = "10.0.0.0/16"
    az_count: int = 3  # availability zones to spread the subnets over (2 or more)
    # one NAT gateway for the VPC (cheaper) or one per AZ (survives an AZ outage)
    nat_gateways: NatGatewayMode = "per-az"
    flow_logs: bool = True  # record the VPC's traffic in CloudWatch Logs (VPC flow logs)
    flow_logs_retention_days: int = 90  # days CloudWatch keeps the flow logs (a value CloudWatch accepts)
    # AWS tags on every resource of the network (no 'aws:' prefix)
    tags: Mapping[str, str] = field(default_factory=dict)
    # Extra tags of the private subnets only (Karpenter's discovery tag: its nodes go there).
    private_subnet_tags: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if not is_eks_cluster_name(self.cluster_name):
            problems.append(
                (
                    "cluster_name",
                    f"{self.cluster_name!r}: 1-100 letters, digits, '-' or '_', starting with a letter or digit",
                )
            )
        problems += _plan_problems(self.vpc_cidr, self.az_count)
        if self.nat_gateways not in get_args(NatGatewayMode):
            problems.append(
                (
                    "nat_gateways",
                    f"must be one of {list(get_args(NatGatewayMode))}, got {self.nat_gateways!r}",
                )
            )
        if not isinstance(self.flow_logs, bool):
            problems.append(("flow_logs", f"must be true or false, got {self.flow_logs!r}"))
        if problem := log_retention_days(self.flow_logs_retention_days):
            problems.append(("flow_logs_retention_days", problem))
        if not isinstance(self.tags, Mapping):
            problems.append(("tags", f"must be a mapping of strings, got {type(self.tags).__name__}"))
        else:
            bad = sorted(
                str(k) for k, v in self.tags.items() if not isinstance(k, str) or not isinstance(v, str)
            )
            if bad:
                problems.append(("tags", f"keys and values must be strings: {bad}"))
            reserved = sorted(k for k in self.tags if isinstance(k, str) and k.lower().startswith("aws:"))
            if reserved:
                problems.append(("tags", f"the 'aws:' prefix is reserved by AWS: {reserved}"))
        return problems


# --------------------------------------------------------------------------------------------------
# Resources
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExistingNetwork:
    """A VPC that already exists (bring your own); creates nothing.

    The subnets must already carry the ``kubernetes.io/role/...`` and cluster tags that load
    balancer subnet discovery needs.
    """

    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    public_subnet_ids: tuple[str, ...] = ()
    availability_zones: tuple[str, ...] = ()
    nat_gateway_count: int = 0
    private_egress: tuple[pulumi.Resource, ...] = ()  # the existing VPC's routes are in place already

    def __post_init__(self) -> None:
        # Accept lists from config; store tuples so the object stays immutable.
        object.__setattr__(self, "private_subnet_ids", tuple(self.private_subnet_ids))
        object.__setattr__(self, "public_subnet_ids", tuple(self.public_subnet_ids))
        object.__setattr__(self, "availability_zones", tuple(self.availability_zones))
        require(
            "ExistingNetwork",
            existing_network_problems(self.vpc_id, self.private_subnet_ids, self.public_subnet_ids),
        )


class Network(pulumi.ComponentResource):
    """A VPC for EKS: public and private subnets per AZ, internet and NAT gateways, flow logs.

    Example::

        from aiplatform.network import Network, NetworkArgs

        network = Network("ai", NetworkArgs(cluster_name="ai", az_count=3, nat_gateways="per-az"))
        cluster_subnets = network.private_subnet_ids
    """

    vpc: aws.ec2.Vpc  # the VPC
    public_subnets: list[aws.ec2.Subnet]  # one public subnet per AZ (load balancers, NAT gateways)
    private_subnets: list[aws.ec2.Subnet]  # one private subnet per AZ (nodes, control-plane ENIs)
    nat_gateways: list[aws.ec2.NatGateway]  # the NAT gateways (one, or one per AZ)
    flow_log: aws.ec2.FlowLog | None  # the VPC flow log (None: off)
    flow_log_group: aws.cloudwatch.LogGroup | None  # the flow log's CloudWatch log group (None: off)
    plan: SubnetPlan  # the CIDRs of the VPC and its subnets
    vpc_id: pulumi.Output[str]  # the VPC's id
    public_subnet_ids: pulumi.Output[list[str]]  # the public subnets' ids
    private_subnet_ids: pulumi.Output[list[str]]  # the private subnets' ids
    availability_zones: pulumi.Output[list[str]]  # the AZs the subnets are in
    nat_gateway_count: int  # how many NAT gateways there are

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        require(f"Network {name!r}", type_problems(args, NetworkArgs) or args.problems())
        plan = plan_subnets(args.vpc_cidr, args.az_count)
        super().__init__("aiplatform:network:Network", name, None, opts)
        self._name = name
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self.plan = plan

        zones = self._availability_zones(args.az_count)
        self.vpc = self._create_vpc()
        igw = self._create_internet_gateway()
        self.public_subnets = self._create_subnets("public", plan.public_cidrs, zones)
        self.private_subnets = self._create_subnets("private", plan.private_cidrs, zones)
        self._create_public_routes(igw)
        self.nat_gateways = self._create_nat_gateways(igw)
        self.private_egress = [*self.nat_gateways, *self._create_private_routes()]
        self.flow_log_group = None
        self.flow_log = self._create_flow_logs() if args.flow_logs else None

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])
        self.availability_zones = pulumi.Output.from_input(list(zones))
        self.nat_gateway_count = len(self.nat_gateways)
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "availability_zones": self.availability_zones,
                "nat_gateway_count": self.nat_gateway_count,
            }
        )

    # -- steps --------------------------------------------------------------------------------------
    def _tags(self, name_tag: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self._args.tags, **(extra or {}), "Name": name_tag}

    def _availability_zones(self, count: int) -> list[str]:
        names = list(aws.get_availability_zones(state="available").names or [])
        if len(names) < count:
            raise ArgumentsError(
                f"Network {self._name!r}",
                [("az_count", f"{count}, but the region has only {len(names)} available zones: {names}")],
            )
        return names[:count]

    def _create_vpc(self) -> aws.ec2.Vpc:
        return aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=self.plan.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=self._tags(f"{self._name}-vpc"),
            opts=self._child,
        )

    def _create_internet_gateway(self) -> aws.ec2.InternetGateway:
        return aws.ec2.InternetGateway(
            f"{self._name}-igw", vpc_id=self.vpc.id, tags=self._tags(f"{self._name}-igw"), opts=self._child
        )

    def _create_subnets(
        self, tier: Literal["public", "private"], cidrs: Sequence[str], zones: Sequence[str]
    ) -> list[aws.ec2.Subnet]:
        role_tag = ELB_ROLE_TAG if tier == "public" else INTERNAL_ELB_ROLE_TAG
        discovery = {role_tag: "1", cluster_tag_key(self._args.cluster_name): "shared"}
        if tier == "private":
            discovery.update(self._args.private_subnet_tags)
        return [
            aws.ec2.Subnet(
                f"{self._name}-{tier}-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                # Nodes live in private subnets; nothing should get a public IP by accident.
                map_public_ip_on_launch=False,
                tags=self._tags(f"{self._name}-{tier}-{zone}", discovery),
                opts=self._child,
            )
            for index, (cidr, zone) in enumerate(zip(cidrs, zones, strict=True))
        ]

    def _associate(
        self, tier: str, route_table: aws.ec2.RouteTable, index: int, subnet: aws.ec2.Subnet
    ) -> aws.ec2.RouteTableAssociation:
        return aws.ec2.RouteTableAssociation(
            f"{self._name}-{tier}-rta-{index}",
            route_table_id=route_table.id,
            subnet_id=subnet.id,
            opts=self._child,
        )

    def _create_public_routes(self, igw: aws.ec2.InternetGateway) -> aws.ec2.RouteTable:
        table = aws.ec2.RouteTable(
            f"{self._name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags=self._tags(f"{self._name}-public"),
            opts=self._child,
        )
        for index, subnet in enumerate(self.public_subnets):
            self._associate("public", table, index, subnet)
        return table

    def _create_nat_gateways(self, igw: aws.ec2.InternetGateway) -> list[aws.ec2.NatGateway]:
        count = 1 if self._args.nat_gateways == "single" else len(self.public_subnets)
        after_igw = pulumi.ResourceOptions(parent=self, depends_on=[igw])
        gateways = []
        for index, subnet in enumerate(self.public_subnets[:count]):
            eip = aws.ec2.Eip(
                f"{self._name}-nat-eip-{index}",
                domain="vpc",
                tags=self._tags(f"{self._name}-nat-eip-{index}"),
                opts=after_igw,
            )
            gateways.append(
                aws.ec2.NatGateway(
                    f"{self._name}-nat-{index}",
                    allocation_id=eip.allocation_id,
                    subnet_id=subnet.id,
                    tags=self._tags(f"{self._name}-nat-{index}"),
                    opts=after_igw,
                )
            )
        return gateways

    def _create_private_routes(self) -> list[pulumi.Resource]:
        """Route tables and associations: what private subnets need before their nodes can reach out."""
        routes: list[pulumi.Resource] = []
        for index, subnet in enumerate(self.private_subnets):
            nat = self.nat_gateways[index % len(self.nat_gateways)]
            table = aws.ec2.RouteTable(
                f"{self._name}-private-rt-{index}",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags=self._tags(f"{self._name}-private-{index}"),
                opts=self._child,
            )
            routes += [table, self._associate("private", table, index, subnet)]
        return routes

    def _create_flow_logs(self) -> aws.ec2.FlowLog:
        log_group = self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            retention_in_days=self._args.flow_logs_retention_days,
            tags=self._tags(f"{self._name}-flow-logs"),
            opts=self._child,
        )
        role = aws.iam.Role(
            f"{self._name}-flow-logs-role",
            assume_role_policy=json.dumps(service_trust_policy(FLOW_LOGS_SERVICE)),
            description=f"VPC flow logs of {self._name} -> CloudWatch Logs",
            tags=self._tags(f"{self._name}-flow-logs"),
            opts=self._child,
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-flow-logs-policy",
            role=role.id,
            policy=log_group.arn.apply(lambda arn: json.dumps(flow_logs_policy(arn))),
            opts=self._child,
        )
        return aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags=self._tags(f"{self._name}-flow-logs"),
            # The role must be able to write before the first delivery.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )


def flow_logs_policy(log_group_arn: str) -> dict:
    """Write to one log group and its streams, nothing else."""
    return policy_document(
        [
            allow(
                ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                [log_group_arn, f"{log_group_arn.removesuffix(':*')}:log-stream:*"],
            )
        ]
    )
