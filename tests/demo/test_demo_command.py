"""`halo-stripe demo` ends with the sample account in `stripe_raw`."""

from __future__ import annotations

import psycopg
import pytest

from halo_stripe_pipeline.demo.sample import DEMO_ACCOUNT_ID, Scenario, build_sample
from halo_stripe_pipeline.demo.summary import COUNTED_TYPES, count_emulator, count_warehouse
from tests.demo.demo_run import DEMO_CUSTOMERS, DEMO_SEED, DemoRun

# Scenarios whose subscription gets a first invoice (and so a charge attempt);
# localstripe bills nothing for a trial.
INVOICED = {s for s in Scenario if s not in (Scenario.NO_SUBSCRIPTION, Scenario.TRIAL)}


def _expected_counts() -> dict[str, int]:
    """Derive each object count from the sample definition and localstripe's billing."""
    sample = build_sample(DEMO_CUSTOMERS, DEMO_SEED)
    customers = sample.customers
    # One invoice per invoiced subscription, plus the failed plan change's.
    invoices = sum(c.scenario in INVOICED for c in customers) + sum(
        c.scenario is Scenario.PAST_DUE for c in customers
    )
    return {
        "customers": len(customers),
        "subscriptions": sum(c.scenario is not Scenario.NO_SUBSCRIPTION for c in customers),
        # Every invoice is charged once, and one-off charges come on top.
        "charges": invoices + sum(len(c.charges) for c in customers),
        "refunds": sum(c.invoice_refund is not None for c in customers)
        + sum(charge.refund is not None for c in customers for charge in c.charges),
        "invoices": invoices,
        "products": len(sample.products),
        "plans": len(sample.plans),
        "coupons": len(sample.coupons),
    }


@pytest.mark.parametrize("table", [table for table, _, _ in COUNTED_TYPES])
def test_demo_stores_sample_counts(demo_run: DemoRun, db: psycopg.Connection, table: str) -> None:
    expected = _expected_counts()[table]

    assert count_warehouse(db, table, DEMO_ACCOUNT_ID) == expected


@pytest.mark.parametrize("table", [table for table, _, _ in COUNTED_TYPES])
def test_demo_counts_equal_emulator(demo_run: DemoRun, db: psycopg.Connection, table: str) -> None:
    endpoint, filters = next((e, f) for t, e, f in COUNTED_TYPES if t == table)

    emulator = count_emulator(demo_run.api(), endpoint, filters)

    assert count_warehouse(db, table, DEMO_ACCOUNT_ID) == emulator


def test_demo_covers_subscription_statuses(demo_run: DemoRun, db: psycopg.Connection) -> None:
    rows = db.execute(
        "select distinct data->>'status' from stripe_raw.subscriptions where account_id = %s",
        (DEMO_ACCOUNT_ID,),
    ).fetchall()

    statuses = {status for (status,) in rows}

    assert statuses == {"active", "past_due", "incomplete", "incomplete_expired", "canceled"}


def test_demo_stores_cancellations_and_refunds(demo_run: DemoRun, db: psycopg.Connection) -> None:
    scheduled = db.execute(
        "select count(*) from stripe_raw.subscriptions where account_id = %s"
        " and ((data->>'cancel_at_period_end')::boolean or data->>'cancel_at' is not null)",
        (DEMO_ACCOUNT_ID,),
    ).fetchone()
    partial = db.execute(
        "select count(*) from stripe_raw.refunds r join stripe_raw.charges c"
        " on c.account_id = r.account_id and c.id = r.data->>'charge'"
        " where r.account_id = %s and (r.data->>'amount')::int < (c.data->>'amount')::int",
        (DEMO_ACCOUNT_ID,),
    ).fetchone()
    failed = db.execute(
        "select count(*) from stripe_raw.charges where account_id = %s and data->>'status' = 'failed'",
        (DEMO_ACCOUNT_ID,),
    ).fetchone()

    assert scheduled is not None and scheduled[0] >= 2
    assert partial is not None and partial[0] >= 2
    assert failed is not None and failed[0] >= 4


def test_demo_writes_companies(demo_run: DemoRun, db: psycopg.Connection) -> None:
    sample = build_sample(DEMO_CUSTOMERS, DEMO_SEED)
    companies = db.execute(
        "select count(*) from halo.companies where workspace_id = 'demo'"
    ).fetchone()
    settings = db.execute(
        "select workspace_id from halo.integration_settings where account_id = %s",
        (DEMO_ACCOUNT_ID,),
    ).fetchone()

    assert companies is not None and companies[0] == len(sample.companies)
    assert settings == ("demo",)


def test_demo_prints_count_table(demo_run: DemoRun) -> None:
    assert "object type" in demo_run.stdout
    assert "<- differs" not in demo_run.stdout
    assert f"Created {DEMO_CUSTOMERS} customers" in demo_run.stdout


def test_demo_guide_lists_named_companies(demo_run: DemoRun) -> None:
    companies = {c["id"]: c for c in demo_run.guide["named_companies"]}
    ember = companies["demo_ember"]["matches_by"]

    assert len(companies) == 20
    assert demo_run.guide["account_id"] == DEMO_ACCOUNT_ID
    assert [m["email"] for m in ember["email"]] == ["tokyo@emberfoods.example"]
    assert len(ember["domain"]) == 2
    assert companies["demo_tundra"]["matches_by"]["domain"] == []
    assert all(c["shows"] for c in companies.values())
