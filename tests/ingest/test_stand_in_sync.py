"""The backfill against real Stripe samples served by the list stand-in."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.ingest.loader import IngestDisabledError, IngestError, LoadOptions
from halo_stripe_pipeline.ingest.sync import run_full_sync
from halo_stripe_pipeline.settings import set_setting
from tests.ingest.conftest import load_sample, stand_in_api
from tests.ingest.stripe_lists import StripeLists

SLICED = LoadOptions(range_slicing=True, workers_per_type=4)
ONE_WORKER = LoadOptions(range_slicing=True, workers_per_type=1)
YEAR_2025 = 1_735_689_600


def _customers(count: int, first_created: int, step: int, prefix: str = "cus_t") -> list[dict]:
    customers = []
    for index in range(count):
        customer = load_sample("openapi-fixtures-current/customer.json")
        customer["id"] = f"{prefix}{index:06d}"
        customer["email"] = f"customer{index}@example.com"
        customer["created"] = first_created + index * step
        customers.append(customer)
    return customers


def _copies(sample: str, prefix: str, count: int, first_created: int) -> list[dict]:
    objects = []
    for index in range(count):
        obj = load_sample(sample)
        obj["id"] = f"{prefix}{index:04d}"
        obj["created"] = first_created + index * 3_600
        objects.append(obj)
    return objects


def _subscription_with_items(item_count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The basil sample subscription with `item_count` items, the list embedding 10."""
    subscription = load_sample("openapi-fixtures-2025-03-31.basil/subscription.json")
    subscription["id"] = "sub_many_items"
    subscription["created"] = YEAR_2025 + 5_000
    items = []
    for index in range(item_count):
        item = load_sample("openapi-fixtures-2025-03-31.basil/subscription_item.json")
        item["id"] = f"si_many{index:03d}"
        item["subscription"] = subscription["id"]
        item["created"] = YEAR_2025 + 5_000 + index
        items.append(item)
    subscription["items"] = {
        "object": "list",
        "data": items[:10],
        "has_more": item_count > 10,
        "total_count": item_count,
        "url": f"/v1/subscription_items?subscription={subscription['id']}",
    }
    return subscription, items


def _rows(db: psycopg.Connection, table: str, account_id: str) -> dict[str, dict]:
    query = f"select id, data from stripe_raw.{table} where account_id = %s"
    return {row[0]: row[1] for row in db.execute(query, (account_id,)).fetchall()}


def _fill_with_samples(lists: StripeLists) -> dict[str, int]:
    many, items = _subscription_with_items(13)
    past_due = load_sample("fxa/subscription_past_due.json")
    trialing = load_sample("fxa/subscription_trialing.json")
    canceled = load_sample("openapi-fixtures-2025-03-31.basil/subscription.json")
    canceled["id"] = "sub_canceled"
    canceled["status"] = "canceled"
    canceled["created"] = YEAR_2025 + 9_000
    lists.add("/v1/customers", *_customers(230, YEAR_2025, 60))
    lists.add("/v1/subscriptions", many, past_due, trialing, canceled)
    lists.add("/v1/subscription_items", *items)
    lists.add("/v1/charges", *_copies("openapi-fixtures-current/charge.json", "ch_t", 120, YEAR_2025))
    lists.add("/v1/refunds", *_copies("openapi-fixtures-current/refund.json", "re_t", 7, YEAR_2025))
    lists.add("/v1/invoices", *_copies("openapi-fixtures-current/invoice.json", "in_t", 15, YEAR_2025))
    lists.add("/v1/prices", *_copies("openapi-fixtures-current/price.json", "price_t", 3, YEAR_2025))
    lists.add("/v1/products", *_copies("openapi-fixtures-current/product.json", "prod_t", 2, YEAR_2025))
    lists.add("/v1/plans", *_copies("openapi-fixtures-current/plan.json", "plan_t", 2, YEAR_2025))
    lists.add("/v1/coupons", *_copies("openapi-fixtures-current/coupon.json", "co_t", 1, YEAR_2025))
    return {
        "customers": 230, "subscriptions": 4, "charges": 120, "refunds": 7, "invoices": 15,
        "prices": 3, "products": 2, "plans": 2, "coupons": 1,
    }


def test_samples_sync_every_type(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    expected = _fill_with_samples(stripe_lists)

    report = run_full_sync(warehouse_url, stand_in_api(stripe_lists), account_id, options=SLICED)

    assert report.counts() == expected
    for name, count in expected.items():
        assert len(_rows(db, name, account_id)) == count, name
    assert all(type_report.status == "succeeded" for type_report in report.types)
    state = {
        row[0]: row[1:]
        for row in db.execute(
            "select object_type, status, objects_loaded, pages_loaded, error,"
            " finished_at is not null from stripe_raw.sync_state where account_id = %s",
            (account_id,),
        ).fetchall()
    }
    assert state["customers"] == ("succeeded", 230, report.for_type("customers").pages, None, True)
    assert state["subscriptions"][:2] == ("succeeded", 4)


def test_subscription_items_completed(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    _fill_with_samples(stripe_lists)

    run_full_sync(warehouse_url, stand_in_api(stripe_lists), account_id, options=SLICED)

    stored = _rows(db, "subscriptions", account_id)["sub_many_items"]
    assert sorted(item["id"] for item in stored["items"]["data"]) == [
        f"si_many{index:03d}" for index in range(13)
    ]
    assert stored["items"]["has_more"] is False
    assert stripe_lists.requests_to("/v1/subscription_items")[0]["subscription"] == "sub_many_items"


def test_basil_item_periods_kept(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    _fill_with_samples(stripe_lists)

    run_full_sync(warehouse_url, stand_in_api(stripe_lists), account_id, options=SLICED)

    subscriptions = _rows(db, "subscriptions", account_id)
    basil = subscriptions["sub_many_items"]
    assert "current_period_end" not in basil
    assert basil["items"]["data"][12]["current_period_end"] == 976287773
    assert subscriptions["sub_canceled"]["status"] == "canceled"
    assert subscriptions["sub_FvOedh0SsaUVni"]["status"] == "past_due"
    assert subscriptions["sub_FvOedh0SsaUVni"]["current_period_end"] is not None


def test_rerun_has_no_duplicates(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    expected = _fill_with_samples(stripe_lists)
    api = stand_in_api(stripe_lists)

    run_full_sync(warehouse_url, api, account_id, options=SLICED)
    second = run_full_sync(warehouse_url, api, account_id, options=SLICED)

    assert second.counts() == expected
    for name, count in expected.items():
        total = db.execute(
            f"select count(*), count(distinct id) from stripe_raw.{name} where account_id = %s",
            (account_id,),
        ).fetchone()
        assert total == (count, count), name


def test_rate_limited_request_retried(
    stripe_lists: StripeLists,
    warehouse_url: str,
    db: psycopg.Connection,
    account_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stripe_lists.add("/v1/customers", *_customers(150, YEAR_2025, 60))
    stripe_lists.fail_next("/v1/customers", 429, headers={"Retry-After": "1"})
    api = stand_in_api(stripe_lists)

    with caplog.at_level(logging.WARNING, logger="halo_stripe_pipeline.stripe_client"):
        report = run_full_sync(
            warehouse_url, api, account_id, object_types=["customers"], options=SLICED
        )

    assert report.counts() == {"customers": 150}
    assert len(_rows(db, "customers", account_id)) == 150
    assert api.retry_count == 1
    assert "failed with 429" in caplog.text
    assert "retrying in 1.00s" in caplog.text


def test_server_error_retried(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    stripe_lists.add("/v1/charges", *_copies("openapi-fixtures-current/charge.json", "ch_r", 40, YEAR_2025))
    stripe_lists.fail_next("/v1/charges", 503, times=2)
    api = stand_in_api(stripe_lists)

    report = run_full_sync(warehouse_url, api, account_id, object_types=["charges"], options=SLICED)

    assert report.counts() == {"charges": 40}
    assert len(_rows(db, "charges", account_id)) == 40
    assert api.retry_count == 2


def test_deleted_cursor_does_not_end_backfill(
    stripe_lists: StripeLists,
    warehouse_url: str,
    db: psycopg.Connection,
    account_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stripe_lists.add("/v1/customers", *_customers(250, YEAR_2025, 60))
    deleted: list[str] = []

    def delete_cursor(lists: StripeLists, path: str, params: dict, page: list[dict]) -> None:
        if path == "/v1/customers" and params.get("limit") == "100" and not deleted:
            deleted.append(page[-1]["id"])
            lists.remove(path, page[-1]["id"])

    stripe_lists.page_hooks.append(delete_cursor)

    with caplog.at_level(logging.WARNING, logger="halo_stripe_pipeline.ingest.loader"):
        report = run_full_sync(
            warehouse_url, stand_in_api(stripe_lists), account_id,
            object_types=["customers"], options=ONE_WORKER,
        )

    assert len(deleted) == 1
    assert report.counts() == {"customers": 250}
    assert len(_rows(db, "customers", account_id)) == 250
    assert f"cursor {deleted[0]} of customers was deleted mid-listing" in caplog.text


def test_shared_second_drained_by_slices(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    one_second = _customers(420, YEAR_2025 + 40_000, 0, prefix="cus_same")
    spread = _customers(600, YEAR_2025, 200, prefix="cus_spread")
    stripe_lists.add("/v1/customers", *spread, *one_second)
    options = LoadOptions(range_slicing=True, workers_per_type=8)

    report = run_full_sync(
        warehouse_url, stand_in_api(stripe_lists), account_id,
        object_types=["customers"], options=options,
    )

    customers = report.for_type("customers")
    assert customers.objects == 1_020
    assert len(_rows(db, "customers", account_id)) == 1_020
    assert customers.slices >= 8
    same_second_pages = [
        params for params in stripe_lists.requests_to("/v1/customers")
        if params.get("starting_after", "").startswith("cus_same")
    ]
    assert len(same_second_pages) >= 4


def _is_page_request(params: dict[str, str]) -> bool:
    return params.get("limit") == "100"


def test_failure_names_type_and_cursor(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    stripe_lists.add("/v1/customers", *_customers(20, YEAR_2025, 60))
    stripe_lists.add("/v1/charges", *_copies("openapi-fixtures-current/charge.json", "ch_f", 330, YEAR_2025))
    served: list[int] = []

    def fail_after_two_pages(lists: StripeLists, path: str, params: dict, page: list) -> None:
        if path == "/v1/charges" and params.get("limit") == "100":
            served.append(len(page))
            if len(served) == 2:
                lists.fail_next(path, 500, times=3, only_if=_is_page_request)

    stripe_lists.page_hooks.append(fail_after_two_pages)
    api = stand_in_api(stripe_lists)

    with pytest.raises(IngestError) as failure:
        run_full_sync(
            warehouse_url, api, account_id, object_types=["customers", "charges"],
            options=ONE_WORKER,
        )

    message = str(failure.value)
    assert "sync of `charges` stopped at" in message
    assert "cursor `ch_f" in message
    assert "Rerun the sync" in message
    state = dict(
        (row[0], row[1:])
        for row in db.execute(
            "select object_type, status, pages_loaded, last_cursor from stripe_raw.sync_state"
            " where account_id = %s",
            (account_id,),
        ).fetchall()
    )
    assert state["customers"][0] == "succeeded"
    assert state["charges"][0] == "failed"
    assert state["charges"][1] == 2
    assert state["charges"][2].startswith("ch_f")

    stripe_lists.page_hooks.clear()
    rerun = run_full_sync(warehouse_url, api, account_id, object_types=["charges"], options=ONE_WORKER)

    assert rerun.counts() == {"charges": 330}
    assert len(_rows(db, "charges", account_id)) == 330


def test_deleted_customer_flagged_not_dropped(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    stripe_lists.add("/v1/customers", *_customers(5, YEAR_2025, 60))
    api = stand_in_api(stripe_lists)
    run_full_sync(warehouse_url, api, account_id, object_types=["customers"], options=SLICED)

    stripe_lists.remove("/v1/customers", "cus_t000002")
    report = run_full_sync(warehouse_url, api, account_id, object_types=["customers"], options=SLICED)

    flags = dict(
        db.execute(
            "select id, is_deleted from stripe_raw.customers where account_id = %s",
            (account_id,),
        ).fetchall()
    )
    assert len(flags) == 5
    assert flags["cus_t000002"] is True
    assert sum(flags.values()) == 1
    assert report.for_type("customers").flagged_deleted == 1


def test_account_read_from_api(
    stripe_lists: StripeLists,
    warehouse_url: str,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRIPE_ACCOUNT_ID", raising=False)
    stripe_lists.account = {"id": "acct_1StandInAcct", "object": "account", "livemode": False}

    report = run_full_sync(warehouse_url, stand_in_api(stripe_lists), object_types=["coupons"])

    assert report.account_id == "acct_1StandInAcct"
    stored = db.execute(
        "select data ->> 'object', livemode from stripe_raw.accounts where account_id = %s",
        ("acct_1StandInAcct",),
    ).fetchone()
    assert stored == ("account", False)
    workspace = db.execute(
        "select workspace_id from halo.integration_settings where account_id = %s",
        ("acct_1StandInAcct",),
    ).fetchone()
    assert workspace == ("default",)


def test_account_missing_on_emulator_base(
    stripe_lists: StripeLists, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_ACCOUNT_ID", raising=False)

    with pytest.raises(ConfigError, match="set STRIPE_ACCOUNT_ID"):
        run_full_sync(warehouse_url, stand_in_api(stripe_lists))


def test_missing_endpoint_skipped_on_other_base(
    warehouse_url: str, account_id: str
) -> None:
    lists = StripeLists().start()
    try:
        lists.add("/v1/plans", *_copies("openapi-fixtures-current/plan.json", "plan_s", 2, YEAR_2025))
        report = run_full_sync(
            warehouse_url, stand_in_api(lists), account_id, object_types=["prices", "plans"]
        )
    finally:
        lists.stop()

    assert report.for_type("prices").status == "skipped"
    assert report.counts() == {"prices": 0, "plans": 2}


def test_disabled_ingest_rejected(
    stripe_lists: StripeLists, warehouse_url: str, db: psycopg.Connection, account_id: str
) -> None:
    set_setting(db, account_id, "ingest_enabled", "false")

    with pytest.raises(IngestDisabledError, match="ingest is disabled for account"):
        run_full_sync(warehouse_url, stand_in_api(stripe_lists), account_id)

    assert stripe_lists.requests == []


def test_auto_slicing_probes_created_filters(
    stripe_lists: StripeLists,
    warehouse_url: str,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRIPE_LIST_SLICING", raising=False)
    stripe_lists.add("/v1/customers", *_customers(900, YEAR_2025, 600))

    report = run_full_sync(
        warehouse_url, stand_in_api(stripe_lists), account_id, object_types=["customers"]
    )

    assert report.counts() == {"customers": 900}
    assert report.for_type("customers").slices > 1
    probe = stripe_lists.requests_to("/v1/customers")[0]
    assert probe == {"limit": "1", "created[gte]": "1230768000"}


def test_cli_failed_run_one_line_error(
    stripe_lists: StripeLists,
    warehouse_url: str,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from halo_stripe_pipeline.cli import main
    from halo_stripe_pipeline.ingest import commands

    monkeypatch.setattr(commands, "_build_marts", lambda db_url, as_of: None)
    monkeypatch.setenv("STRIPE_API_KEY", stripe_lists.api_key)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_lists.api_base)
    monkeypatch.setenv("STRIPE_LIST_SLICING", "on")
    stripe_lists.add("/v1/charges", *_copies("openapi-fixtures-current/charge.json", "ch_c", 5, YEAR_2025))
    stripe_lists.fail_next("/v1/charges", 400, times=5, only_if=_is_page_request)

    exit_code = main(["sync", "--account", account_id])

    # The run's own log lines go to stderr before the error line.
    error = [line for line in capsys.readouterr().err.splitlines() if line.startswith("halo-stripe:")]
    assert exit_code != 0
    assert len(error) == 1
    assert error[0].startswith(f"halo-stripe: sync of account `{account_id}` failed in Dagster run")
    assert "sync of `charges` stopped at" in error[0]
    assert "Rerun the sync" in error[0]


def test_objects_before_2009_listed(
    stripe_lists: StripeLists, warehouse_url: str, account_id: str
) -> None:
    stripe_lists.add("/v1/customers", *_customers(150, YEAR_2025, 60))
    stripe_lists.add("/v1/customers", *_customers(120, 1_000_000_000, 60, prefix="cus_old"))

    report = run_full_sync(
        warehouse_url, stand_in_api(stripe_lists), account_id,
        object_types=["customers"], options=SLICED,
    )

    assert report.counts() == {"customers": 270}
