"""Mart values of the scenario account, against values computed by hand.

Each expectation states its arithmetic; amounts are in minor units until
the last step. as_of is 2025-07-15T00:00:00Z.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import psycopg
import pytest

from tests.marts import scenario
from tests.marts.conftest import fetch_by_company, rebuild_models


def test_dbt_build_passes(dbt_built) -> None:
    counts = dbt_built.counts
    assert counts.get("success", 0) >= 30
    assert counts.get("pass", 0) > 0
    assert set(counts) <= {"success", "pass"}


MRR_CASES = {
    # 120000 x 3 = 360000 a year, x 0.8 (20% forever) = 288000, / 12 = 24000.
    "marts-01": (Decimal("240.00"), "usd"),
    # 30000 every 3 months, quantity null = 1: 30000 / 3 = 10000.
    "marts-02": (Decimal("100.00"), "usd"),
    # 1000 a week x 52 / 12 = 4333.33...
    "marts-03": (Decimal("43.33"), "usd"),
    # (120000 - 12000 forever amount off) / 12 = 9000.
    "marts-04": (Decimal("90.00"), "usd"),
    # JPY has no minor unit: 12000 / 12 = 1000 yen.
    "marts-05": (Decimal(1000), "jpy"),
    # Trialing counts nothing.
    "marts-06": (Decimal("0.00"), "usd"),
    # past_due counts: plan-only item, 999 a month.
    "marts-08": (Decimal("9.99"), "usd"),
    # Cancelling at period end still counts until then: 2000.
    "marts-09": (Decimal("20.00"), "usd"),
    # Collection paused with `void`: not counted.
    "marts-11": (Decimal("0.00"), "usd"),
    # Collection paused with `keep_as_draft`: counted, 3000.
    "marts-12": (Decimal("30.00"), "usd"),
    # KWD has three decimals: 12345 fils = 12.345.
    "marts-13": (Decimal("12.345"), "kwd"),
    # Graduated: 5 x 700 + 1 x 650 = 4150.
    "marts-14": (Decimal("41.50"), "usd"),
    # Volume: quantity 6 falls in the second tier, 6 x 650 = 3900.
    "marts-15": (Decimal("39.00"), "usd"),
    # transform_quantity 25 seats / 10, rounded up = 3 packs x 1000.
    "marts-16": (Decimal("30.00"), "usd"),
    # Metered item skipped; licensed 1500.
    "marts-17": (Decimal("15.00"), "usd"),
    # A `once` 50% coupon does not reduce MRR: 10000.
    "marts-18": (Decimal("100.00"), "usd"),
}


@pytest.mark.parametrize("company_id", sorted(MRR_CASES))
def test_company_mrr(scenario_conn: psycopg.Connection, company_id: str) -> None:
    billing = fetch_by_company(scenario_conn, "company_billing", "mrr, currency, mrr_mode")
    expected_mrr, expected_currency = MRR_CASES[company_id]
    assert billing[company_id]["mrr"] == expected_mrr
    assert billing[company_id]["currency"] == expected_currency
    assert billing[company_id]["mrr_mode"] == "stripe_subscription"


def test_several_currencies_convert(scenario_conn: psycopg.Connection) -> None:
    billing = fetch_by_company(
        scenario_conn,
        "company_billing",
        "mrr, currency, mrr_by_currency, is_converted, customer_count",
    )["marts-07"]
    # USD 5000 and EUR 4000 a month; 40.00 EUR x 1.1 = 44.00 USD.
    assert billing["mrr_by_currency"] == {"usd": 50.00, "eur": 40.00}
    assert billing["currency"] == "usd"
    assert billing["mrr"] == Decimal("94.00")
    assert billing["is_converted"] is True
    assert billing["customer_count"] == 2


def test_lifetime_value_and_last_payment(scenario_conn: psycopg.Connection) -> None:
    billing = fetch_by_company(
        scenario_conn, "company_billing", "lifetime_value, last_payment_at"
    )
    # 10000 - 2000 refunded + 5000 - 5000 refunded; the July 20 charge is
    # after as_of, the failed and pending ones add nothing.
    assert billing["marts-01"]["lifetime_value"] == Decimal("80.00")
    # The May charge was refunded in full, so June 3 is the last payment.
    assert billing["marts-01"]["last_payment_at"] == datetime(2025, 6, 3, tzinfo=timezone.utc)
    # Last charge (July 8) fully refunded: July 1 is the last payment.
    assert billing["marts-03"]["last_payment_at"] == datetime(2025, 7, 1, tzinfo=timezone.utc)
    assert billing["marts-03"]["lifetime_value"] == Decimal("10.00")


def test_deleted_customer_keeps_history(scenario_conn: psycopg.Connection) -> None:
    billing = fetch_by_company(scenario_conn, "company_billing", "lifetime_value, mrr")
    assert billing["marts-10"]["lifetime_value"] == Decimal("40.00")
    assert billing["marts-10"]["mrr"] == Decimal("0.00")
    deleted = scenario_conn.execute(
        "select deleted, company_id from analytics.stripe_customers"
        " where account_id = %s and customer_id = 'cus_marts_10'",
        (scenario.ACCOUNT_ID,),
    ).fetchone()
    assert deleted == (True, "marts-10")


RENEWAL_CASES = {
    "marts-01": ("renewing", date(2026, 1, 10), "annual"),
    "marts-02": ("renewing", date(2025, 9, 1), "quarterly"),
    "marts-03": ("renewing", date(2025, 7, 20), "1 week"),
    "marts-06": ("trialing", date(2025, 7, 20), "monthly"),
    "marts-08": ("renewing", date(2025, 8, 1), "monthly"),
    "marts-09": ("set_to_cancel", date(2025, 8, 1), "monthly"),
    "marts-10": ("none", None, None),
    "marts-11": ("paused", date(2025, 8, 1), "monthly"),
    "marts-12": ("paused", None, "monthly"),
}


@pytest.mark.parametrize("company_id", sorted(RENEWAL_CASES))
def test_company_renewal(scenario_conn: psycopg.Connection, company_id: str) -> None:
    renewals = fetch_by_company(
        scenario_conn, "company_renewals", "renewal_status, renewal_date, contract_term"
    )
    status, renewal_date, term = RENEWAL_CASES[company_id]
    assert renewals[company_id]["renewal_status"] == status
    assert renewals[company_id]["renewal_date"] == renewal_date
    assert renewals[company_id]["contract_term"] == term


HEALTH_CASES = {
    # Latest attempt pending, but a failed charge on June 25 is in the window.
    "marts-01": (True, "at_risk", 50),
    # Active with no charge history.
    "marts-02": (True, "unknown", None),
    # Succeeded charges only.
    "marts-03": (True, "healthy", 100),
    # Trialing is not among the scored statuses (active, past_due).
    "marts-06": (False, None, None),
    # past_due subscription.
    "marts-08": (True, "failing", 0),
    # Collection paused, no charges.
    "marts-11": (True, "at_risk", 50),
}


@pytest.mark.parametrize("company_id", sorted(HEALTH_CASES))
def test_payment_health(scenario_conn: psycopg.Connection, company_id: str) -> None:
    health = fetch_by_company(
        scenario_conn, "company_payment_health", "is_scored, payment_signal, payment_score"
    )
    is_scored, signal, score = HEALTH_CASES[company_id]
    assert health[company_id]["is_scored"] is is_scored
    assert health[company_id]["payment_signal"] == signal
    assert health[company_id]["payment_score"] == score


def test_payment_health_facts(scenario_conn: psycopg.Connection) -> None:
    health = fetch_by_company(
        scenario_conn,
        "company_payment_health",
        "failed_charges_in_window, latest_attempt_status, is_delinquent",
    )
    assert health["marts-01"]["failed_charges_in_window"] == 1
    assert health["marts-01"]["latest_attempt_status"] == "pending"
    assert health["marts-08"]["is_delinquent"] is True


def test_customer_matching_several_companies(scenario_conn: psycopg.Connection) -> None:
    billing = fetch_by_company(scenario_conn, "company_billing", "stripe_customer_id")
    assert billing["marts-19a"]["stripe_customer_id"] == "cus_marts_19"
    assert "marts-19b" not in billing
    conflict = scenario_conn.execute(
        "select company_id, candidates from analytics.company_match_conflicts"
        " where reason = 'customer_matches_several_companies' and customer_id = 'cus_marts_19'"
    ).fetchone()
    assert conflict is not None
    assert conflict[0] == "marts-19a"
    assert [entry["company_id"] for entry in conflict[1]] == ["marts-19a", "marts-19b"]


def test_customers_disagree_on_currency(scenario_conn: psycopg.Connection) -> None:
    row = scenario_conn.execute(
        "select count(*) from analytics.company_match_conflicts"
        " where reason = 'customers_disagree_on_currency' and company_id = 'marts-07'"
    ).fetchone()
    assert row == (1,)


def test_stripe_customers_row(scenario_conn: psycopg.Connection) -> None:
    cursor = scenario_conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cursor.execute(
        "select * from analytics.stripe_customers where account_id = %s"
        " and customer_id = 'cus_marts_01'",
        (scenario.ACCOUNT_ID,),
    ).fetchone()
    assert row["company_id"] == "marts-01"
    assert row["subscription_status"] == "active"
    assert row["plan_name"] == "Annual Plan"
    assert row["mrr"] == Decimal("240.00")
    assert row["lifetime_value"] == Decimal("80.00")
    assert row["display_fields"] == {"email": "annual@annual.example", "metadata.tier": "gold"}
    unmatched = cursor.execute(
        "select company_id, subscription_status, mrr from analytics.stripe_customers"
        " where account_id = %s"
        " and customer_id = 'cus_marts_unmatched'",
        (scenario.ACCOUNT_ID,),
    ).fetchone()
    assert unmatched["company_id"] is None
    # An unknown status fails only a warning-level test and counts nothing.
    assert unmatched["subscription_status"] == "under_review"
    assert unmatched["mrr"] == Decimal("0.00")


def test_prompt_context_summarises(scenario_conn: psycopg.Connection) -> None:
    context = fetch_by_company(scenario_conn, "company_prompt_context", "prompt_context")
    text = context["marts-01"]["prompt_context"]
    assert "Plan: Annual Plan (annual)" in text
    assert "MRR: 240.00 USD" in text
    assert "Renewal: renewing on 2026-01-10" in text
    assert "Last payment: 2025-06-03" in text
    assert "metadata.tier: gold" in text


def test_segment_attributes_row(scenario_conn: psycopg.Connection) -> None:
    segment = fetch_by_company(
        scenario_conn,
        "company_segment_attributes",
        "subscription_status, mrr, lifetime_value, plan_name, renewal_status, renewal_date",
    )["marts-09"]
    assert segment["subscription_status"] == "active"
    assert segment["mrr"] == Decimal("20.00")
    assert segment["renewal_status"] == "set_to_cancel"
    assert segment["renewal_date"] == date(2025, 8, 1)


def test_settings_change_rebuilds_marts(
    scenario_conn: psycopg.Connection, warehouse_url: str
) -> None:
    try:
        scenario.set_settings(
            scenario_conn, customer_id_field="domain", mrr_mode="previous_month_charges"
        )
        rebuild_models(warehouse_url)
        billing = fetch_by_company(scenario_conn, "company_billing", "mrr, mrr_mode")
        # annual.example is the domain of annual@annual.example. June:
        # 10000 charge - 2000 refund - 5000 refund of a May charge; the
        # failed and pending June charges add nothing.
        assert billing["marts-01"]["mrr"] == Decimal("30.00")
        assert billing["marts-01"]["mrr_mode"] == "previous_month_charges"
        # Only July charges: nothing in June.
        assert billing["marts-03"]["mrr"] == Decimal("0.00")
        # graduated@tiers.example has domain tiers.example, not graduated.example.
        assert "marts-14" not in billing

        scenario.set_settings(scenario_conn, customer_id_field="email", mrr_mode="manual")
        rebuild_models(warehouse_url)
        billing = fetch_by_company(scenario_conn, "company_billing", "mrr, is_mrr_missing")
        assert billing["marts-01"]["mrr"] == Decimal("1234.50")
        assert billing["marts-02"]["mrr"] is None
        assert billing["marts-02"]["is_mrr_missing"] is True
        assert billing["marts-14"]["is_mrr_missing"] is True
    finally:
        # The marts keep the manual-mode build; nothing after this reads them.
        scenario.set_settings(
            scenario_conn, customer_id_field="email", mrr_mode="stripe_subscription"
        )
