"""The price table: every price has dated evidence, every instance type a stack may start has a price,
and the plan warns when the table is more than six months old."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from aiplatform.compute.instance_types import INSTANCE_TYPES
from aiplatform.compute.node_groups import NodeGroupSpec
from aiplatform.config.infrastructure import SystemNodeGroupSettings
from aiplatform.config.settings import valid_sections
from aiplatform.plan.cost import (
    evidence,
    load_pricing,
    months_later,
    price_keys,
    stale_prices,
    staleness_warning,
    unverified_prices,
)
from tests.stacks import EXAMPLE_STACKS, STACKS, sections

PRICING = load_pricing()
ALL_STACKS = STACKS + EXAMPLE_STACKS


def allowed_instance_types(stack: str) -> set[str]:
    """Every type the stack's node groups and pools may start (pool families expanded)."""
    valid = valid_sections(sections(stack))
    groups, compute = valid["nodeGroups"], valid["compute"]
    found = set(groups.system.instanceTypes)
    for group in groups.gpu:
        found |= set(group.instanceTypes)
    for pool in compute.pools:
        found |= set(pool.allowed_types)
    return found


def default_instance_types() -> set[str]:
    spec_default = next(f.default for f in dataclasses.fields(NodeGroupSpec) if f.name == "instance_types")
    return {*spec_default, *SystemNodeGroupSettings().instanceTypes}


def missing_prices(types: set[str]) -> list[str]:
    return sorted(t for t in types if t not in PRICING["ec2_on_demand_hour"])


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_every_instance_type_a_stack_allows_has_a_price(stack):
    types = allowed_instance_types(stack)
    assert types, stack
    missing = missing_prices(types)
    assert not missing, f"Pulumi.{stack}.yaml allows {missing}: add them to components/plan/pricing.json"


def test_the_default_instance_types_have_a_price():
    assert {"m7i.large", "m6i.large"} <= default_instance_types()
    missing = missing_prices(default_instance_types())
    assert not missing, f"default types {missing} have no price in components/plan/pricing.json"


def test_every_type_of_the_instance_table_has_a_price():
    """A pool's instanceFamilies may start any size the table knows, so the table and the prices agree."""
    missing = missing_prices(set(INSTANCE_TYPES))
    assert not missing, f"{missing} are in the instance type table but not in components/plan/pricing.json"


def test_the_karpenter_example_pool_family_expands_to_every_g6e_size():
    assert {"g6e.xlarge", "g6e.48xlarge"} <= allowed_instance_types("prod-karpenter")


def test_every_price_has_dated_evidence():
    found = evidence(PRICING)
    keys = price_keys(PRICING)
    assert "eks_extended_support_hour" in keys and "ec2_on_demand_hour" in keys
    assert sorted(set(keys) - set(found)) == []
    assert sorted(set(found) - set(keys)) == []
    for key, e in found.items():
        assert e.url.startswith("https://"), key
        assert date(2024, 1, 1) <= e.seen <= date(2026, 12, 6), key
        assert e.note, key
        if e.status == "unverified":
            assert e.note.startswith("not verified"), key


def test_as_of_is_the_oldest_verified_evidence():
    seen = [e.seen for e in evidence(PRICING).values() if e.status == "verified"]
    assert date.fromisoformat(PRICING["as_of"]) == min(seen)


def test_refreshed_prices():
    assert PRICING["eks_control_plane_hour"] == 0.10
    assert PRICING["eks_extended_support_hour"] == 0.60
    assert PRICING["ec2_on_demand_hour"]["m7i.large"] == 0.1008
    assert PRICING["ec2_on_demand_hour"]["p4d.24xlarge"] == 21.957642


def test_unverified_prices_are_listed():
    assert unverified_prices(PRICING) == [
        "spot_discount",
        "eks_auto_mode_fee_fraction",
        "ebs_gp3_gb_month",
        "s3_standard_gb_month",
    ]
    assert unverified_prices({"as_of": "2026-01-01", "kms_key_month": 1.0}) == ["kms_key_month"]


def test_a_bad_evidence_status_names_the_key():
    with pytest.raises(ValueError, match=r"evidence\.kms_key_month\.status is 'maybe'"):
        evidence(
            {"evidence": {"kms_key_month": {"status": "maybe", "url": "u", "seen": "2026-01-01", "note": ""}}}
        )


# -- six months -----------------------------------------------------------------------------------


def test_months_later_keeps_the_day_or_takes_the_last_of_the_month():
    assert months_later(date(2026, 2, 24), 6) == date(2026, 8, 24)
    assert months_later(date(2026, 8, 31), 6) == date(2027, 2, 28)
    assert months_later(date(2026, 9, 20), 6) == date(2027, 3, 20)


def test_a_table_six_months_old_is_current_and_one_day_more_is_stale():
    as_of = date(2026, 6, 1)
    assert staleness_warning(as_of, date(2026, 6, 1)) is None
    assert staleness_warning(as_of, date(2026, 12, 1)) is None
    warning = staleness_warning(as_of, date(2026, 12, 2))
    assert warning is not None
    assert "2026-06-01" in warning and "2026-12-02" in warning
    assert "components/plan/pricing.json" in warning and "'Pricing'" in warning


def test_the_warning_names_the_lines_whose_evidence_is_too_old():
    pricing = {
        "as_of": "2026-02-24",
        "kms_key_month": 1.0,
        "alb_hour": 0.0225,
        "evidence": {
            "kms_key_month": {"status": "verified", "url": "u", "seen": "2026-06-13", "note": ""},
            "alb_hour": {"status": "verified", "url": "u", "seen": "2026-02-24", "note": ""},
        },
    }
    today = date(2026, 12, 6)
    stale = stale_prices(pricing, today)
    assert stale == {"alb_hour": date(2026, 2, 24)}
    warning = staleness_warning(date(2026, 2, 24), today, stale)
    assert warning is not None and "older than that: alb_hour (2026-02-24)" in warning
    assert "kms_key_month" not in warning


def test_the_committed_table_is_stale_a_year_on():
    as_of = date.fromisoformat(PRICING["as_of"])
    assert staleness_warning(as_of, date(2027, 12, 1)) is not None
    assert staleness_warning(as_of, as_of) is None
