"""Every stack's AWS resources, as its offline plan registers them, replayed against moto: AWS's answers
from an emulator with rules of its own. Nothing may be refused; and defects planted in a copy of a
stack, which the project's own rules let through, must be."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.aws.conftest import OUT, REPLAYS
from tests.program import planned
from tests.stacks import EXAMPLE_STACKS, STACKS
from tools.moto_replay import NOT_IMPLEMENTED, ReplayError, replay


def plan_entries(stack: str) -> list[dict[str, Any]]:
    """The stack's ``resources.json``, as the offline plan writes it."""
    return [r.as_plan_entry() for r in planned(stack).monitor.registrations]


@pytest.mark.parametrize("stack", [*STACKS, *EXAMPLE_STACKS])
def test_moto_accepts_every_aws_resource_of_the_stack(moto: str, stack: str) -> None:
    entries = plan_entries(stack)
    result = replay(moto, entries, stack)
    REPLAYS.append(result)
    (OUT / f"{stack}.json").write_text(json.dumps(result.as_dict(), indent=2))
    aws = [e for e in entries if e["custom"] and e["type"].startswith("aws:")]
    assert len(result.verdicts) == len(aws)
    assert not result.refused, "\n".join(v.line() for v in result.refused)
    # Only the types moto lacks go unchecked, and they are named.
    assert set(result.not_checked) <= set(NOT_IMPLEMENTED)
    assert result.with_status("accepted")


@dataclass(frozen=True)
class Defect:
    what: str
    resource: str  # the dev resource it is planted in
    plant: Callable[[dict[str, Any], list[dict[str, Any]]], None]  # changes its inputs (and the plan's)
    code: str  # the error moto answers with
    # the resources that may be refused for it, the first refused among them: siblings register in no
    # fixed order (two mount targets: whichever comes second conflicts)
    refused_as: tuple[str, ...] = ()


def _policy(inputs: dict, key: str, edit: Callable[[dict], None]) -> None:
    document = json.loads(inputs[key])
    edit(document)
    inputs[key] = json.dumps(document)


def _unprefixed_action(inputs: dict, entries: list[dict]) -> None:
    def edit(document: dict) -> None:
        document["Statement"][0]["Action"] = [a.split(":", 1)[1] for a in document["Statement"][0]["Action"]]

    _policy(inputs, "policy", edit)


def _misspelled_operator(inputs: dict, entries: list[dict]) -> None:
    def edit(document: dict) -> None:
        (condition,) = [
            s["Condition"] for s in document["Statement"] if "StringEquals" in s.get("Condition", {})
        ]
        condition["StringEqual"] = condition.pop("StringEquals")

    _policy(inputs, "policy", edit)


def _same_subnet_as_the_other_mount(inputs: dict, entries: list[dict]) -> None:
    (other,) = [e for e in entries if e["name"] == "aiplatform-shared-fs-mount-1"]
    inputs["subnetId"] = other["inputs"]["subnetId"]


DEFECTS = (
    Defect(
        "an IAM action without its service prefix",
        "aiplatform-cluster-cluster-kms",
        _unprefixed_action,
        "MalformedPolicyDocument",
    ),
    Defect(
        "a misspelled condition operator",
        "aiplatform-secrets-controller-policy",
        _misspelled_operator,
        "MalformedPolicyDocument",
    ),
    Defect(
        "a subnet outside its VPC",
        "aiplatform-network-public-0",
        lambda inputs, _: inputs.update(cidrBlock="10.99.0.0/24"),
        "InvalidSubnet.Range",
    ),
    Defect(
        "two EFS mount targets in one zone",
        "aiplatform-shared-fs-mount-0",
        _same_subnet_as_the_other_mount,
        "MountTargetConflict",
        ("aiplatform-shared-fs-mount-0", "aiplatform-shared-fs-mount-1"),
    ),
    Defect(
        "a managed policy that does not exist",
        "aiplatform-cluster-cluster-policy",
        lambda inputs, _: inputs.update(policyArn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicyV2"),
        "NoSuchEntity",
    ),
)


@pytest.mark.parametrize("defect", DEFECTS, ids=lambda d: d.what)
def test_moto_refuses_a_planted_defect(moto: str, defect: Defect) -> None:
    entries = copy.deepcopy(plan_entries("dev"))
    (target,) = [e for e in entries if e["name"] == defect.resource]
    defect.plant(target["inputs"], entries)
    result = replay(moto, entries, f"dev with {defect.what}")
    assert result.refused, f"moto accepted {defect.what}"
    # The planted resource is the first refused: what fails after it depends on it.
    first = result.refused[0]
    assert first.name in (defect.refused_as or (defect.resource,)), first.line()
    assert first.detail.startswith(defect.code), first.line()


def test_an_input_the_replay_does_not_send_fails_it(moto: str) -> None:
    entries = copy.deepcopy(plan_entries("dev"))
    (vpc,) = [e for e in entries if e["type"] == "aws:ec2/vpc:Vpc"]
    vpc["inputs"]["ipv6CidrBlock"] = "2600:1f18::/56"
    with pytest.raises(ReplayError, match=r"aws:ec2/vpc:Vpc 'aiplatform-network-vpc': .*\['ipv6CidrBlock'\]"):
        replay(moto, entries, "dev with an input the replay does not know")
    vpc["type"] = "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation"
    with pytest.raises(ReplayError, match="no recipe"):
        replay(moto, entries, "dev with a type the replay does not know")
