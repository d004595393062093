"""The sync, the `sync` command and its Dagster run against localstripe."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import dagster as dg
import psycopg
import pytest

from halo_stripe_pipeline.cli import main
from halo_stripe_pipeline.emulator import EmulatorProcess, start_emulator
from halo_stripe_pipeline.ingest.sync import run_full_sync
from halo_stripe_pipeline.stripe_client import StripeApi, stripe_api_from_env

API_KEY = "sk_test_ingest"
CUSTOMERS = 24
SUBSCRIBED = 10


def _card(api: StripeApi) -> str:
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    return str(api.post("/v1/payment_methods", {"type": "card", "card": card})["id"])


def _populate(api: StripeApi) -> None:
    """Create customers, plans, coupons, subscriptions (some canceled) and a refund."""
    product = api.post("/v1/products", {"name": "Halo seats"})
    for plan_id, interval, amount in (("plan_month", "month", 1_500), ("plan_year", "year", 15_000)):
        api.post(
            "/v1/plans",
            {"id": plan_id, "product": product["id"], "amount": amount,
             "currency": "usd", "interval": interval},
        )
    api.post("/v1/coupons", {"id": "WELCOME", "percent_off": 20, "duration": "once"})
    for index in range(CUSTOMERS):
        payment_method = _card(api)
        customer = api.post(
            "/v1/customers",
            {"email": f"buyer{index}@example.com", "payment_method": payment_method,
             "invoice_settings": {"default_payment_method": payment_method}},
        )
        if index >= SUBSCRIBED:
            continue
        items = [{"plan": "plan_month", "quantity": 1 + index % 3}]
        subscription = api.post("/v1/subscriptions", {"customer": customer["id"], "items": items})
        if index % 4 == 0:
            api.delete(f"/v1/subscriptions/{subscription['id']}")
    charge = api.get("/v1/charges", {"limit": 1})["data"][0]
    api.post("/v1/refunds", {"charge": charge["id"], "amount": 500})


def _emulator_count(api: StripeApi, path: str, params: dict[str, Any] | None = None) -> int:
    body = api.get(path, {"limit": 100, **(params or {})})
    assert body["has_more"] is False
    return len(body["data"])


@pytest.fixture(scope="module")
def populated_emulator() -> Iterator[EmulatorProcess]:
    """One localstripe filled once for the whole module."""
    emulator = start_emulator()
    try:
        api = StripeApi(API_KEY, api_base=emulator.api_base,
                        requests_per_second=1_000, endpoint_requests_per_second=1_000)
        _populate(api)
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def emulator_api(
    populated_emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> StripeApi:
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", populated_emulator.api_base)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")
    monkeypatch.delenv("STRIPE_ACCOUNT_ID", raising=False)
    return stripe_api_from_env()


def _expected_counts(api: StripeApi) -> dict[str, int]:
    return {
        "customers": _emulator_count(api, "/v1/customers"),
        "subscriptions": _emulator_count(api, "/v1/subscriptions", {"status": "all"}),
        "charges": _emulator_count(api, "/v1/charges"),
        "refunds": _emulator_count(api, "/v1/refunds"),
        "invoices": _emulator_count(api, "/v1/invoices"),
        "prices": 0,
        "products": _emulator_count(api, "/v1/products"),
        "plans": _emulator_count(api, "/v1/plans"),
        "coupons": _emulator_count(api, "/v1/coupons"),
    }


def _table_counts(db: psycopg.Connection, account_id: str) -> dict[str, int]:
    counts = {}
    for table in ("customers", "subscriptions", "charges", "refunds", "invoices",
                  "prices", "products", "plans", "coupons"):
        row = db.execute(
            f"select count(*) from stripe_raw.{table} where account_id = %s", (account_id,)
        ).fetchone()
        counts[table] = row[0] if row else 0
    return counts


def test_counts_equal_emulator(
    emulator_api: StripeApi, warehouse_url: str, db: psycopg.Connection
) -> None:
    account_id = f"acct_local{uuid.uuid4().hex[:8]}"
    expected = _expected_counts(emulator_api)

    report = run_full_sync(warehouse_url, emulator_api, account_id)
    rerun = run_full_sync(warehouse_url, emulator_api, account_id)

    assert expected["customers"] == CUSTOMERS
    assert expected["subscriptions"] == SUBSCRIBED
    assert expected["refunds"] == 1
    assert report.counts() == expected
    assert rerun.counts() == expected
    assert _table_counts(db, account_id) == expected
    canceled = db.execute(
        "select count(*) from stripe_raw.subscriptions"
        " where account_id = %s and data ->> 'status' = 'canceled'",
        (account_id,),
    ).fetchone()
    assert canceled == (3,)
    assert report.for_type("prices").status == "skipped"
    assert report.for_type("customers").slices == 1


def test_sync_command_records_dagster_run(
    emulator_api: StripeApi,
    warehouse_url: str,
    db: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from halo_stripe_pipeline.ingest import commands
    from halo_stripe_pipeline.instance import get_instance

    # The marts tests run the dbt build; here only its call is checked.
    marts_builds: list[tuple[str, object]] = []
    monkeypatch.setattr(
        commands, "_build_marts", lambda db_url, as_of: marts_builds.append((db_url, as_of))
    )
    account_id = f"acct_cli{uuid.uuid4().hex[:8]}"

    exit_code = main([
        "sync", "--account", account_id, "--workspace", "emea",
        "--as-of", "2026-03-01T00:00:00Z",
    ])

    assert exit_code == 0
    assert marts_builds == [(warehouse_url, datetime(2026, 3, 1, tzinfo=timezone.utc))]
    assert f"synced account {account_id}" in capsys.readouterr().out
    instance = get_instance(warehouse_url)
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name="full_sync", tags={"dagster/partition": account_id})
    )
    assert len(runs) == 1
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(["stripe_raw", "customers"]), asset_partitions=[account_id]
        ),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    assert metadata["rows"].value == CUSTOMERS
    assert metadata["objects_listed"].value == CUSTOMERS
    assert metadata["pages"].value == 1
    assert "objects_per_second" in metadata
    assert _table_counts(db, account_id)["customers"] == CUSTOMERS
    workspace = db.execute(
        "select workspace_id from halo.integration_settings where account_id = %s",
        (account_id,),
    ).fetchone()
    assert workspace == ("emea",)


def test_invalid_key_is_one_line_error(
    emulator_api: StripeApi,
    warehouse_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "rk_wrong")

    exit_code = main(["sync", "--account", "acct_badkey"])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert len(error.splitlines()) == 1
    assert error.startswith("halo-stripe: Stripe rejected the API key")
    assert "STRIPE_API_KEY" in error


def test_emulator_without_account_id_explains(
    emulator_api: StripeApi, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["sync"])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert len(error.splitlines()) == 1
    assert "does not serve GET /v1/account" in error
    assert "set STRIPE_ACCOUNT_ID" in error


def test_invalid_as_of_rejected(
    emulator_api: StripeApi, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["sync", "--account", "acct_asof", "--as-of", "last tuesday"])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert error.startswith("halo-stripe: invalid --as-of `last tuesday`")
