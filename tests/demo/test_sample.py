"""The sample account definition: size, determinism and coverage."""

from __future__ import annotations

import pytest

from halo_stripe_pipeline.demo.sample import (
    DECLINING_SCENARIOS,
    Scenario,
    build_sample,
    named_customers,
)


def test_sample_has_requested_customer_count() -> None:
    sample = build_sample(60, seed=0)

    assert len(sample.customers) == 60
    assert len({customer.key for customer in sample.customers}) == 60
    assert len({company.id for company in sample.companies}) == len(sample.companies)


def test_same_seed_gives_same_account() -> None:
    assert build_sample(60, seed=7) == build_sample(60, seed=7)


def test_other_seed_changes_filler_only() -> None:
    first = build_sample(60, seed=1)
    second = build_sample(60, seed=2)
    named_first = [c for c in first.companies if c.is_named]
    named_second = [c for c in second.companies if c.is_named]

    assert first.customers != second.customers
    assert named_first == named_second


def test_named_customers_cover_every_scenario() -> None:
    scenarios = {customer.scenario for customer in named_customers()}

    assert scenarios == set(Scenario)


def test_plans_cover_intervals_and_currencies() -> None:
    sample = build_sample(60, seed=0)
    intervals = {(plan.interval, plan.interval_count) for plan in sample.plans}
    currencies = {plan.currency for plan in sample.plans}

    assert {("month", 1), ("month", 3), ("month", 6), ("year", 1), ("week", 1)} <= intervals
    assert currencies == {"usd", "eur", "jpy"}
    assert {plan.tiers_mode for plan in sample.plans} == {None, "graduated", "volume"}


def test_coupons_cover_shapes_and_durations() -> None:
    coupons = build_sample(60, seed=0).coupons

    assert {coupon.duration for coupon in coupons} == {"forever", "once", "repeating"}
    assert any(coupon.percent_off is not None for coupon in coupons)
    assert any(coupon.amount_off is not None for coupon in coupons)


def test_at_least_ten_named_companies() -> None:
    named = [c for c in build_sample(60, seed=0).companies if c.is_named]

    assert len(named) >= 10


def test_declining_customers_only_get_declined_charges() -> None:
    for seed in range(5):
        for customer in build_sample(200, seed=seed).customers:
            if customer.scenario in DECLINING_SCENARIOS:
                assert all(charge.declined for charge in customer.charges), customer.key


def test_too_few_customers_rejected() -> None:
    with pytest.raises(ValueError, match=f"at least {len(named_customers())}"):
        build_sample(10)

