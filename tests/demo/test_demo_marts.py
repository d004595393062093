"""The demo account, synced from localstripe, gives the hand-computed mart values.

One module fixture walks four settings phases on the shared demo run. Each
phase changes settings with `halo-stripe settings set`, rebuilds the marts'
models and keeps a snapshot of the marts:

- `subscription`: the demo's own build (mrr_mode stripe_subscription,
  customer_id_field email, health_statuses active);
- `manual`: mrr_mode manual, customer_id_field domain, health_statuses
  active,past_due;
- `previous_month`: mrr_mode previous_month_charges, customer_id_field
  email, built as of the first instant of the month after the demo's
  charges, so "the previous month" is the month localstripe stamped them in;
- `previous_month_now`: the same mode as of now (every charge is in the
  current month, so nothing counts), customer_id_field stripe_customer_id.

Expected values come from the sample definition and the metric rules, with
the arithmetic in comments; money is in major units. Subscription periods
and `cancel_at` are read from `stripe_raw` because localstripe stamps them
from the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from halo_stripe_pipeline import cli
from halo_stripe_pipeline.demo.sample import DEMO_ACCOUNT_ID
from halo_stripe_pipeline.marts import build_marts
from halo_stripe_pipeline.warehouse import connect
from tests.demo.demo_run import DemoRun

# Excluded from the phase rebuilds: the demo's own build already ran them.
DBT_TESTS = "resource_type:test resource_type:unit_test"
NAMED = (
    "demo_acme", "demo_birchwood", "demo_cobalt", "demo_dune", "demo_ember",
    "demo_fjord", "demo_granite", "demo_harbor", "demo_iris", "demo_juniper",
    "demo_kestrel", "demo_lumen", "demo_maple", "demo_northwind_a",
    "demo_northwind_b", "demo_olive", "demo_pine", "demo_rowan", "demo_sable",
    "demo_tundra",
)


def _halo_stripe(*args: str) -> None:
    """Run one `halo-stripe` command in this process, on the session warehouse.

    In-process, because each subprocess would pay the Dagster import again.
    """
    assert cli.main(list(args)) == 0, f"halo-stripe {' '.join(args)} failed"


def _set(key: str, value: str) -> None:
    _halo_stripe("settings", "set", key, value, "--account", DEMO_ACCOUNT_ID)


def _rebuild_marts(db_url: str, as_of: str | None = None) -> None:
    """Rebuild the dbt models of the marts, without the tests."""
    build_marts(db_url, as_of=as_of, exclude=DBT_TESTS)


@dataclass(frozen=True)
class Marts:
    """The marts rows of the named companies after one build."""

    billing: dict[str, dict[str, Any]]
    renewals: dict[str, dict[str, Any]]
    health: dict[str, dict[str, Any]]
    conflicts: list[dict[str, Any]]
    unmatched_customer_emails: set[str]
    customers_by_email: dict[str, dict[str, Any]]
    prompts: dict[str, str]


def _rows_by_company(conn: psycopg.Connection, table: str) -> dict[str, dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        rows = cursor.execute(
            f"select * from analytics.{table} where company_id = any(%s)", (list(NAMED),)
        ).fetchall()
    return {row["company_id"]: row for row in rows}


def _snapshot(conn: psycopg.Connection) -> Marts:
    with conn.cursor(row_factory=dict_row) as cursor:
        conflicts = cursor.execute(
            "select * from analytics.company_match_conflicts where company_id = any(%s)",
            (list(NAMED),),
        ).fetchall()
        customers = cursor.execute(
            "select * from analytics.stripe_customers where account_id = %s",
            (DEMO_ACCOUNT_ID,),
        ).fetchall()
        prompts = cursor.execute(
            "select company_id, prompt_context from analytics.company_prompt_context"
            " where company_id = any(%s)",
            (list(NAMED),),
        ).fetchall()
    return Marts(
        billing=_rows_by_company(conn, "company_billing"),
        renewals=_rows_by_company(conn, "company_renewals"),
        health=_rows_by_company(conn, "company_payment_health"),
        conflicts=list(conflicts),
        unmatched_customer_emails={c["email"] for c in customers if c["company_id"] is None},
        customers_by_email={c["email"]: c for c in customers},
        prompts={row["company_id"]: row["prompt_context"] for row in prompts},
    )


def _month_after_charges(conn: psycopg.Connection) -> str:
    """Return the first instant of the month after the demo's charges, ISO 8601."""
    row = conn.execute(
        "select min(created_at), max(created_at) from stripe_raw.charges where account_id = %s",
        (DEMO_ACCOUNT_ID,),
    ).fetchone()
    assert row is not None and row[0] is not None
    first: datetime = row[0].astimezone(timezone.utc)
    last: datetime = row[1].astimezone(timezone.utc)
    assert (first.year, first.month) == (last.year, last.month), (
        "the demo's charges straddle a month boundary; rerun the tests"
    )
    year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00Z"


@pytest.fixture(scope="module")
def phases(demo_run: DemoRun, warehouse_url: str) -> Iterator[dict[str, Marts]]:
    snapshots: dict[str, Marts] = {}
    with connect(warehouse_url, autocommit=True) as conn:
        # The demo prints the named companies' rows only after a good marts build.
        assert "analytics.company_billing of the named companies" in demo_run.stdout, (
            f"the demo's marts build failed:\n{demo_run.stdout[-3000:]}"
        )
        snapshots["subscription"] = _snapshot(conn)
        try:
            _set("mrr_mode", "manual")
            _set("customer_id_field", "domain")
            _set("health_statuses", "active,past_due")
            _rebuild_marts(warehouse_url)
            snapshots["manual"] = _snapshot(conn)

            _set("mrr_mode", "previous_month_charges")
            _set("customer_id_field", "email")
            _set("health_statuses", "active")
            _rebuild_marts(warehouse_url, as_of=_month_after_charges(conn))
            snapshots["previous_month"] = _snapshot(conn)

            _set("customer_id_field", "stripe_customer_id")
            _rebuild_marts(warehouse_url)
            snapshots["previous_month_now"] = _snapshot(conn)
        finally:
            _set("mrr_mode", "stripe_subscription")
            _set("customer_id_field", "email")
            _set("health_statuses", "active")
        yield snapshots


@pytest.fixture(scope="module")
def periods(demo_run: DemoRun, warehouse_url: str) -> dict[str, dict[str, date | None]]:
    """Read each named customer's period end and cancel_at dates from stripe_raw."""
    with connect(warehouse_url, autocommit=True) as conn:
        rows = conn.execute(
            "select data->>'customer', (data->>'current_period_end')::bigint,"
            " (data->>'cancel_at')::bigint from stripe_raw.subscriptions"
            " where account_id = %s",
            (DEMO_ACCOUNT_ID,),
        ).fetchall()

    def to_date(epoch: int | None) -> date | None:
        return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).date()

    by_customer = {customer: (period_end, cancel_at) for customer, period_end, cancel_at in rows}
    result = {}
    for company in demo_run.guide["named_companies"]:
        for match in company["matches_by"]["email"]:
            period_end, cancel_at = by_customer.get(match["id"], (None, None))
            result[company["id"]] = {
                "period_end": to_date(period_end),
                "cancel_at": to_date(cancel_at),
            }
    return result


# mrr_mode stripe_subscription, customer_id_field email -------------------------

# company: (subscription_status, plan_name, mrr, currency, lifetime_value)
SUBSCRIPTION_MODE = {
    # Business yearly 1,200.00 x 3 seats = 3,600.00 a year; / 12 = 300.00.
    # Lifetime: the first invoice, 3,600.00.
    "demo_acme": ("active", "Business", "300.00", "usd", "3600.00"),
    # Weekly 10.00: 10.00 x 52 / 12 = 43.333... -> 43.33. Lifetime 10.00.
    "demo_cobalt": ("active", "Priority support", "43.33", "usd", "10.00"),
    # Pro monthly 79.00 x 2 = 158.00 EUR; a scheduled cancellation still counts.
    "demo_dune": ("active", "Pro", "158.00", "eur", "158.00"),
    # By email only Ember KK: 12,000 JPY a year / 12 = 1,000 JPY (no decimals).
    "demo_ember": ("active", "Pro", "1000", "jpy", "12000"),
    # past_due counts: Growth quarterly 300.00 / 3 = 100.00. Lifetime: only the
    # 49.00 Starter invoice succeeded; the 251.00 plan-change charge failed.
    "demo_fjord": ("past_due", "Growth", "100.00", "usd", "49.00"),
    # incomplete does not count; its only charge was declined.
    "demo_granite": ("incomplete", "Team", "0", "usd", "0"),
    # canceled: MRR 0. Lifetime 99.00 - 25.00 refunded = 74.00.
    "demo_harbor": ("canceled", "Team", "0", "usd", "74.00"),
    # The trial stays incomplete in localstripe and was never charged.
    "demo_iris": ("incomplete", "Team", "0", "usd", "0"),
    # Starter 49.00. Lifetime 49.00 + (500.00 - 500.00) + (200.00 - 50.00) = 199.00.
    "demo_juniper": ("active", "Starter", "49.00", "usd", "199.00"),
    # Volume, 6 seats: all in the open tier, 6 x 6.50 = 39.00.
    "demo_kestrel": ("active", "Seats", "39.00", "usd", "39.00"),
    # Graduated, 6 seats: 5 x 7.00 + 1 x 6.50 = 41.50. localstripe charged
    # every seat at the first tier, 6 x 7.00 = 42.00, which is the lifetime value.
    "demo_lumen": ("active", "Seats", "41.50", "usd", "42.00"),
    # A future cancel_at keeps Starter 49.00 in MRR.
    "demo_maple": ("active", "Starter", "49.00", "usd", "49.00"),
    # The Northwind customer goes to the lower company id: Team 99.00.
    "demo_northwind_a": ("active", "Team", "99.00", "usd", "99.00"),
    # Starter 49.00; the declined 120.00 add-on adds nothing.
    "demo_olive": ("active", "Starter", "49.00", "usd", "49.00"),
    # Team 99.00; lifetime 99.00 + 99.00 retry = 198.00 (the declined try adds nothing).
    "demo_pine": ("active", "Team", "99.00", "usd", "198.00"),
    # incomplete_expired: ended, MRR 0, never paid.
    "demo_rowan": ("incomplete_expired", "Team", "0", "usd", "0"),
    # No subscription; one 150.00 charge.
    "demo_sable": (None, None, "0", "usd", "150.00"),
}


@pytest.mark.parametrize("company_id", sorted(SUBSCRIPTION_MODE))
def test_subscription_mode_billing(phases: dict[str, Marts], company_id: str) -> None:
    status, plan, mrr, currency, lifetime = SUBSCRIPTION_MODE[company_id]
    row = phases["subscription"].billing[company_id]

    assert row["subscription_status"] == status
    assert row["plan_name"] == plan
    assert row["mrr"] == Decimal(mrr)
    assert row["currency"] == currency
    assert row["lifetime_value"] == Decimal(lifetime)
    assert row["mrr_mode"] == "stripe_subscription"


def test_subscription_mode_unmatched_companies(phases: dict[str, Marts]) -> None:
    billing = phases["subscription"].billing

    # Birchwood has only a domain; Tundra has no customer; Northwind B loses
    # the shared customer to Northwind A.
    assert "demo_birchwood" not in billing
    assert "demo_tundra" not in billing
    assert "demo_northwind_b" not in billing


def test_unmatched_customer_has_no_company(phases: dict[str, Marts]) -> None:
    assert "hello@quartz-consulting.example" in phases["subscription"].unmatched_customer_emails


def test_northwind_conflict_goes_to_lower_id(phases: dict[str, Marts]) -> None:
    conflicts = [
        c for c in phases["subscription"].conflicts
        if c["reason"] == "customer_matches_several_companies"
    ]

    assert len(conflicts) == 1
    assert conflicts[0]["company_id"] == "demo_northwind_a"
    assert {c["company_id"] for c in conflicts[0]["candidates"]} == {
        "demo_northwind_a", "demo_northwind_b",
    }
    assert {c["match_kind"] for c in conflicts[0]["candidates"]} == {"email"}


def test_display_fields_reach_customers_and_prompts(phases: dict[str, Marts]) -> None:
    marts = phases["subscription"]
    acme = marts.customers_by_email["billing@acme-analytics.example"]

    # The demo sets display_fields to metadata.tier,email on its new account.
    assert acme["company_id"] == "demo_acme"
    assert acme["display_fields"]["metadata.tier"] == "enterprise"
    assert acme["display_fields"]["email"] == "billing@acme-analytics.example"
    assert "enterprise" in marts.prompts["demo_acme"]


def test_last_payment_skips_fully_refunded(
    phases: dict[str, Marts], warehouse_url: str
) -> None:
    with connect(warehouse_url, autocommit=True) as conn:
        row = conn.execute(
            "select created_at from stripe_raw.charges"
            " where account_id = %s and data->>'description' = 'Extra storage'",
            (DEMO_ACCOUNT_ID,),
        ).fetchone()
    assert row is not None
    juniper = phases["subscription"].billing["demo_juniper"]

    # The 500.00 onboarding charge came a second later but was fully
    # refunded, so the partly refunded 200.00 charge is the last payment.
    assert juniper["last_payment_at"] == row[0]


# company: (renewal_status, contract_term, which date is the renewal date)
RENEWALS = {
    "demo_acme": ("renewing", "annual", "period_end"),
    "demo_cobalt": ("renewing", "1 week", "period_end"),
    # cancel_at_period_end without cancel_at: the period end.
    "demo_dune": ("set_to_cancel", "monthly", "period_end"),
    "demo_ember": ("renewing", "annual", "period_end"),
    # localstripe ends every period one interval after the start, whatever the
    # count, so this quarterly period ends a month out. The rule reads it as stored.
    "demo_fjord": ("renewing", "quarterly", "period_end"),
    "demo_granite": ("pending", "monthly", None),
    "demo_iris": ("pending", "monthly", None),
    # Only ended subscriptions: no primary subscription, so `none`.
    "demo_harbor": ("none", None, None),
    "demo_rowan": ("none", None, None),
    "demo_sable": ("none", None, None),
    "demo_maple": ("set_to_cancel", "monthly", "cancel_at"),
    "demo_kestrel": ("renewing", "monthly", "period_end"),
}


@pytest.mark.parametrize("company_id", sorted(RENEWALS))
def test_subscription_mode_renewals(
    phases: dict[str, Marts],
    periods: dict[str, dict[str, date | None]],
    company_id: str,
) -> None:
    status, term, date_source = RENEWALS[company_id]
    row = phases["subscription"].renewals[company_id]
    expected_date = periods[company_id][date_source] if date_source else None

    assert row["renewal_status"] == status
    assert row["contract_term"] == term
    assert row["renewal_date"] == expected_date


# company: (is_scored, payment_signal, payment_score); scored statuses: active.
HEALTH_ACTIVE_ONLY = {
    "demo_acme": (True, "healthy", 100),
    # The latest attempt, the declined add-on, came after the paid invoice.
    "demo_olive": (True, "failing", 0),
    # A declined charge in the window, then a successful retry.
    "demo_pine": (True, "at_risk", 50),
    # past_due and incomplete are not scored by default.
    "demo_fjord": (False, None, None),
    "demo_granite": (False, None, None),
    # No subscription at all.
    "demo_sable": (False, None, None),
}


@pytest.mark.parametrize("company_id", sorted(HEALTH_ACTIVE_ONLY))
def test_subscription_mode_payment_health(phases: dict[str, Marts], company_id: str) -> None:
    scored, signal, score = HEALTH_ACTIVE_ONLY[company_id]
    row = phases["subscription"].health[company_id]

    assert row["is_scored"] is scored
    assert row["payment_signal"] == signal
    assert row["payment_score"] == score


# mrr_mode manual, customer_id_field domain --------------------------------------

# company: MRR from the `mrr` trait in the reporting currency (usd), or None
# when the company has no trait.
MANUAL_MODE = {
    "demo_acme": "310.50",
    # Matched by domain now that the field is `domain`.
    "demo_birchwood": "95.00",
    "demo_cobalt": None,
    "demo_fjord": None,
    "demo_granite": None,
    "demo_harbor": "0",
    "demo_iris": None,
    "demo_juniper": "60.00",
    "demo_kestrel": "40.00",
    "demo_lumen": "45.50",
    "demo_maple": "49.00",
    "demo_northwind_a": "99.00",
    "demo_olive": "49.00",
    "demo_pine": "120.25",
    "demo_rowan": None,
    "demo_sable": None,
}


@pytest.mark.parametrize("company_id", sorted(MANUAL_MODE))
def test_manual_mode_reads_trait(phases: dict[str, Marts], company_id: str) -> None:
    expected = MANUAL_MODE[company_id]
    row = phases["manual"].billing[company_id]

    assert row["mrr_mode"] == "manual"
    if expected is None:
        assert row["mrr"] is None
    else:
        assert row["mrr"] == Decimal(expected)
        assert row["currency"] == "usd"


def test_manual_mode_other_currency_companies(phases: dict[str, Marts]) -> None:
    billing = phases["manual"].billing

    # Dune bills in EUR, so its USD trait sits beside the EUR lifetime value.
    assert Decimal(str(billing["demo_dune"]["mrr_by_currency"]["usd"])) == Decimal("150")
    # By domain Ember has both customers, JPY and EUR, and the 80 USD trait.
    assert Decimal(str(billing["demo_ember"]["mrr_by_currency"]["usd"])) == Decimal("80")


def test_domain_field_matches_both_ember_customers(phases: dict[str, Marts]) -> None:
    row = phases["manual"].billing["demo_ember"]
    # Lifetime per currency: Ember KK paid 12,000 JPY, Ember GmbH 420.00 EUR.
    by_currency = {k: Decimal(str(v)) for k, v in row["lifetime_value_by_currency"].items()}

    assert row["customer_count"] == 2
    assert by_currency["jpy"] == Decimal("12000")
    assert by_currency["eur"] == Decimal("420.00")


def test_domain_field_conflict_and_currencies(phases: dict[str, Marts]) -> None:
    reasons = {(c["reason"], c["company_id"]) for c in phases["manual"].conflicts}
    northwind = next(
        c for c in phases["manual"].conflicts
        if c["reason"] == "customer_matches_several_companies"
    )

    assert ("customer_matches_several_companies", "demo_northwind_a") in reasons
    assert ("customers_disagree_on_currency", "demo_ember") in reasons
    assert {c["match_kind"] for c in northwind["candidates"]} == {"domain"}


def test_health_statuses_setting_scores_past_due(phases: dict[str, Marts]) -> None:
    row = phases["manual"].health["demo_fjord"]

    # With past_due scored, a past_due subscription makes the company failing.
    assert row["is_scored"] is True
    assert row["payment_signal"] == "failing"
    assert row["payment_score"] == 0


# mrr_mode previous_month_charges, as of the month after the charges ----------

# company: (net of the month's succeeded charges minus its refunds, currency)
PREVIOUS_MONTH = {
    "demo_acme": ("3600.00", "usd"),  # 3,600.00 invoice
    "demo_cobalt": ("10.00", "usd"),  # 10.00 invoice
    "demo_dune": ("158.00", "eur"),  # 79.00 x 2 invoice
    "demo_ember": ("12000", "jpy"),  # 12,000 JPY invoice
    "demo_fjord": ("49.00", "usd"),  # 49.00 paid; the 251.00 charge failed
    "demo_granite": ("0", "usd"),  # only a declined charge
    "demo_harbor": ("74.00", "usd"),  # 99.00 - 25.00 refund, same month
    "demo_iris": ("0", "usd"),  # never charged
    # 49.00 + 500.00 + 200.00 - 500.00 - 50.00 = 199.00
    "demo_juniper": ("199.00", "usd"),
    "demo_kestrel": ("39.00", "usd"),
    "demo_lumen": ("42.00", "usd"),  # what localstripe charged
    "demo_maple": ("49.00", "usd"),
    "demo_northwind_a": ("99.00", "usd"),
    "demo_olive": ("49.00", "usd"),  # the declined 120.00 adds nothing
    "demo_pine": ("198.00", "usd"),  # 99.00 + 99.00 retry
    "demo_rowan": ("0", "usd"),
    "demo_sable": ("150.00", "usd"),
}


@pytest.mark.parametrize("company_id", sorted(PREVIOUS_MONTH))
def test_previous_month_mode_nets_charges(phases: dict[str, Marts], company_id: str) -> None:
    mrr, currency = PREVIOUS_MONTH[company_id]
    row = phases["previous_month"].billing[company_id]

    assert row["mrr_mode"] == "previous_month_charges"
    assert row["mrr"] == Decimal(mrr)
    assert row["currency"] == currency


def test_previous_month_now_is_zero_by_id(phases: dict[str, Marts]) -> None:
    billing = phases["previous_month_now"].billing

    # Only companies with a stripe_customer_id match by that field, and
    # localstripe cannot backdate, so the previous calendar month is empty.
    assert set(billing) == {"demo_acme", "demo_sable"}
    assert billing["demo_acme"]["mrr"] == Decimal("0")
    assert billing["demo_sable"]["mrr"] == Decimal("0")
    assert billing["demo_acme"]["lifetime_value"] == Decimal("3600.00")
    assert billing["demo_sable"]["lifetime_value"] == Decimal("150.00")
