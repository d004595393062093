"""Applying stored events to the raw tables: ordering, deletions, re-reads."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.emulator import EmulatorProcess
from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.apply import apply_pending_events
from halo_stripe_pipeline.stripe_client import RetryPolicy, StripeApi
from tests.events.conftest import StubServer, event_status, raw_row, store_event
from tests.receiver.support import load_sample

NO_RETRY = {"retry": RetryPolicy(max_attempts=1)}


def apply(conn: psycopg.Connection, **overrides: Any):
    return apply_pending_events(conn, AccountResolver(conn, {**NO_RETRY, **overrides}))


def variant(sample: str, event_id: str, created: int, **fields: Any) -> dict[str, Any]:
    """Return a copy of a sample event with a new id, time and object fields."""
    event = copy.deepcopy(load_sample(sample))
    event["id"] = event_id
    event["created"] = created
    event["data"]["object"].update(fields)
    return event


def test_customer_update_applies(db: psycopg.Connection, account: str) -> None:
    created = variant(
        "stripe-ruby-mock/customer.created.json",
        "evt_c1",
        1_700_000_000,
        email="first@example.com",
    )
    updated = variant(
        "stripe-ruby-mock/customer.updated.json",
        "evt_c2",
        1_700_000_060,
        email="second@example.com",
    )
    store_event(db, created)
    store_event(db, updated)

    report = apply(db)

    customer_id = created["data"]["object"]["id"]
    data, is_deleted, observed_at = raw_row(db, "customers", account, customer_id)
    assert data["email"] == "second@example.com"
    assert is_deleted is False
    assert observed_at == datetime.fromtimestamp(1_700_000_060, tz=timezone.utc)
    assert report.events_applied == 2
    assert report.objects_changed[(account, "customers")] == 1
    assert event_status(db, "evt_c1") == "applied"
    assert event_status(db, "evt_c2") == "applied"


def test_subscription_updates_in_reverse_order(
    db: psycopg.Connection, account: str
) -> None:
    newer = variant(
        "payfuzz/customer.subscription.updated.json",
        "evt_s_new",
        1_700_000_100,
        status="past_due",
    )
    older = variant(
        "payfuzz/customer.subscription.updated.json",
        "evt_s_old",
        1_700_000_050,
        status="active",
    )
    store_event(db, newer)
    store_event(db, older)

    apply(db)

    subscription_id = newer["data"]["object"]["id"]
    data, _, observed_at = raw_row(db, "subscriptions", account, subscription_id)
    assert data["status"] == "past_due"
    assert observed_at == datetime.fromtimestamp(1_700_000_100, tz=timezone.utc)


def test_older_event_in_later_batch_is_superseded(
    db: psycopg.Connection, account: str
) -> None:
    newer = variant(
        "stripe-ruby-mock/customer.subscription.updated.json",
        "evt_b_new",
        1_700_000_200,
        status="canceled",
    )
    older = variant(
        "stripe-ruby-mock/customer.subscription.updated.json",
        "evt_b_old",
        1_700_000_100,
        status="active",
    )
    store_event(db, newer)
    apply(db)
    store_event(db, older)

    report = apply(db)

    data, _, _ = raw_row(db, "subscriptions", account, newer["data"]["object"]["id"])
    assert data["status"] == "canceled"
    assert report.events_superseded == 1
    assert event_status(db, "evt_b_old") == "superseded"


def test_update_after_delete_stays_deleted(
    db: psycopg.Connection, account: str
) -> None:
    deleted = variant(
        "stripe-ruby-mock/customer.deleted.json",
        "evt_d1",
        1_700_000_300,
        email="gone@example.com",
    )
    late_update = variant(
        "stripe-ruby-mock/customer.updated.json",
        "evt_d2",
        1_700_000_400,
        email="revived@example.com",
    )
    store_event(db, deleted)
    apply(db)
    store_event(db, late_update)

    apply(db)

    data, is_deleted, _ = raw_row(
        db, "customers", account, deleted["data"]["object"]["id"]
    )
    assert is_deleted is True
    assert data["email"] == "gone@example.com"
    assert event_status(db, "evt_d2") == "superseded"


def test_delete_wins_within_one_batch(db: psycopg.Connection, account: str) -> None:
    update = variant(
        "stripe-ruby-mock/customer.updated.json",
        "evt_w1",
        1_700_000_500,
        email="late@example.com",
    )
    deleted = variant("stripe-ruby-mock/customer.deleted.json", "evt_w2", 1_700_000_450)
    store_event(db, update)
    store_event(db, deleted)

    apply(db)

    _, is_deleted, _ = raw_row(
        db, "customers", account, deleted["data"]["object"]["id"]
    )
    assert is_deleted is True


def test_unknown_type_is_not_applied(db: psycopg.Connection, account: str) -> None:
    event = load_sample("stripe-ruby-mock/product.created.json")
    store_event(db, event)

    report = apply(db)

    assert event_status(db, event["id"]) == "ignored"
    assert report.events_seen == 0
    assert raw_row(db, "products", account, event["data"]["object"]["id"]) is None


def test_ingest_switch_holds_then_applies(db: psycopg.Connection, account: str) -> None:
    db.execute(
        "insert into halo.integration_settings (account_id, ingest_enabled) values (%s, false)",
        (account,),
    )
    event = variant(
        "stripe-ruby-mock/customer.created.json",
        "evt_i1",
        1_700_000_600,
        email="held@example.com",
    )
    store_event(db, event)

    held = apply(db)

    assert held.events_seen == 0
    assert event_status(db, "evt_i1") == "pending"
    assert raw_row(db, "customers", account, event["data"]["object"]["id"]) is None

    db.execute(
        "update halo.integration_settings set ingest_enabled = true where account_id = %s",
        (account,),
    )
    released = apply(db)

    assert released.events_applied == 1
    assert (
        raw_row(db, "customers", account, event["data"]["object"]["id"])[0]["email"]
        == "held@example.com"
    )


def test_connect_account_switch_is_separate(
    db: psycopg.Connection, account: str
) -> None:
    db.execute(
        "insert into halo.integration_settings (account_id, ingest_enabled)"
        " values ('acct_off_switch', false)"
        " on conflict (account_id) do update set ingest_enabled = false"
    )
    off = variant("stripe-ruby-mock/customer.created.json", "evt_x_off", 1_700_000_700)
    off["account"] = "acct_off_switch"
    on = variant(
        "hookdeck-webhook-samples/customer.created.json", "evt_x_on", 1_700_000_700
    )
    store_event(db, off)
    store_event(db, on)

    apply(db)

    assert event_status(db, "evt_x_off") == "pending"
    assert event_status(db, "evt_x_on") == "applied"


def test_old_and_new_shapes_apply(db: psycopg.Connection, account: str) -> None:
    samples = [
        "drf-stripe-subscription/webhook_subscription_updated_cancel_at_period_end.json",
        "payfuzz/customer.subscription.updated.json",
        "stripe-sync-engine/customer_updated.json",
        "stripe-sync-engine/refund_created.json",
        "stripe-ruby-mock/charge.refunded.json",
        "stripe-ruby-mock/payment_intent.succeeded.json",
        "stripe-ruby-mock/invoice.paid.json",
    ]
    events = [load_sample(name) for name in samples]
    for index, event in enumerate(events):
        # stripe-ruby-mock zeroed its ids, so several samples share one event id.
        event["id"] = f"evt_shape_{index}"
    # ...and charge ids: give the PaymentIntent's embedded charge its own.
    events[5]["data"]["object"]["charges"]["data"][0]["id"] = "ch_embedded_in_intent"
    for event in events:
        store_event(db, event)

    report = apply(db)

    assert report.events_applied == len(samples)
    expectations = [
        (
            "subscriptions",
            events[0]["data"]["object"]["id"],
            "cancel_at_period_end",
            True,
        ),
        ("subscriptions", events[1]["data"]["object"]["id"], "status", "active"),
        (
            "customers",
            events[2]["data"]["object"]["id"],
            "email",
            events[2]["data"]["object"]["email"],
        ),
        ("refunds", "re_1Nispe2eZvKYlo2Cd31jOCgZ", "object", "refund"),
        (
            "refunds",
            "re_000000000000000000000000",
            "charge",
            "ch_000000000000000000000000",
        ),
        ("charges", "ch_000000000000000000000000", "refunded", True),
        ("charges", "ch_embedded_in_intent", "status", "succeeded"),
        ("invoices", events[6]["data"]["object"]["id"], "status", "paid"),
    ]
    for table, object_id, key, value in expectations:
        row = raw_row(db, table, account, object_id)
        assert row is not None, (table, object_id)
        assert row[0][key] == value, (table, object_id, key)


def test_same_second_tie_rereads(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )
    customer = api.post("/v1/customers", {"email": "first@example.com"})
    api.post(f"/v1/customers/{customer['id']}", {"email": "final@example.com"})
    second = 1_700_000_800
    # The newer state arrives first, so taking the last arrival would be wrong.
    for index, email in enumerate(["final@example.com", "first@example.com"]):
        event = variant(
            "stripe-ruby-mock/customer.updated.json", f"evt_tie_{index}", second
        )
        event["data"]["object"] = dict(customer, email=email)
        store_event(db, event)

    report = apply(db)

    data, _, observed_at = raw_row(db, "customers", account, customer["id"])
    assert data["email"] == "final@example.com"
    assert report.objects_fetched == 1
    assert observed_at == datetime.fromtimestamp(second, tz=timezone.utc)


def test_new_payment_intent_fetches_charge(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )
    charge = _create_charge(api, 4200)
    event = load_sample("payfuzz/payment_intent.succeeded.json")
    event["data"]["object"]["latest_charge"] = charge["id"]
    store_event(db, event)

    apply(db)

    data, _, _ = raw_row(db, "charges", account, charge["id"])
    assert data["amount"] == 4200
    assert data["status"] == "succeeded"


def test_new_charge_refunded_lists_refunds(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )
    charge = _create_charge(api, 3000)
    refund = api.post("/v1/refunds", {"charge": charge["id"], "amount": 1000})
    event = load_sample("payfuzz/charge.refunded.json")
    event["data"]["object"]["id"] = charge["id"]
    store_event(db, event)

    apply(db)

    data, _, _ = raw_row(db, "refunds", account, refund["id"])
    assert data["amount"] == 1000
    assert data["charge"] == charge["id"]
    assert raw_row(db, "charges", account, charge["id"])[0]["amount_refunded"] == 100


def test_subscription_items_are_completed(
    db: psycopg.Connection,
    account: str,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_stub")
    monkeypatch.setenv("STRIPE_API_BASE", stub_server.url)
    event = load_sample("payfuzz/customer.subscription.updated.json")
    subscription = event["data"]["object"]
    item = subscription["items"]["data"][0]
    every_item = [dict(item, id=f"si_{index:02d}") for index in range(12)]
    subscription["items"]["data"] = every_item[:10]
    subscription["items"]["has_more"] = True
    stub_server.routes["/v1/subscription_items"] = {
        "object": "list",
        "data": every_item,
        "has_more": False,
        "url": "/v1/subscription_items",
    }
    store_event(db, event)

    apply(db)

    data, _, _ = raw_row(db, "subscriptions", account, subscription["id"])
    assert [entry["id"] for entry in data["items"]["data"]] == [
        f"si_{index:02d}" for index in range(12)
    ]
    assert data["items"]["has_more"] is False
    assert any(
        "subscription=" + subscription["id"] in path
        for _, path, _ in stub_server.requests
    )


def test_failed_reread_marks_events_failed(
    db: psycopg.Connection,
    account: str,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_stub")
    monkeypatch.setenv("STRIPE_API_BASE", stub_server.url)
    stub_server.status = 500
    event = load_sample("payfuzz/payment_intent.succeeded.json")
    store_event(db, event)

    report = apply(db)

    row = db.execute(
        "select status, attempts, error from stripe_raw.webhook_events where id = %s",
        (event["id"],),
    ).fetchone()
    assert report.events_failed == 1
    assert row[0] == "failed"
    assert row[1] == 1
    assert "/v1/charges/ch_3Tsk6D2fVmBzG7em1c1unl2D" in row[2]

    stub_server.status = None
    stub_server.routes["/v1/charges/ch_3Tsk6D2fVmBzG7em1c1unl2D"] = {
        "id": "ch_3Tsk6D2fVmBzG7em1c1unl2D",
        "object": "charge",
        "amount": 2000,
        "currency": "usd",
        "created": event["created"],
    }
    retried = apply(db)

    assert retried.events_applied == 1
    assert (
        raw_row(db, "charges", account, "ch_3Tsk6D2fVmBzG7em1c1unl2D")[0]["amount"]
        == 2000
    )


def _create_charge(api: StripeApi, amount: int) -> dict[str, Any]:
    customer = api.post("/v1/customers", {"email": "payer@example.com"})
    method = api.post(
        "/v1/payment_methods",
        {
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": 12,
            "card[exp_year]": 2030,
            "card[cvc]": "123",
        },
    )
    api.post(f"/v1/payment_methods/{method['id']}/attach", {"customer": customer["id"]})
    intent = api.post(
        "/v1/payment_intents",
        {
            "amount": amount,
            "currency": "usd",
            "customer": customer["id"],
            "payment_method": method["id"],
            "confirm": "true",
        },
    )
    latest = intent["latest_charge"]
    return latest if isinstance(latest, dict) else api.get(f"/v1/charges/{latest}")


def test_deauthorization_disconnects_account(
    db: psycopg.Connection, account: str
) -> None:
    connected = f"{account}_connected"
    db.execute(
        "insert into halo.stripe_connections (account_id, workspace_id, status, connection_type,"
        " access_token_encrypted) values (%s, 'ws_deauth', 'connected', 'oauth', 'sealed')",
        (connected,),
    )
    db.execute(
        "insert into halo.integration_settings (account_id) values (%s)", (connected,)
    )
    event = {
        "id": "evt_deauthorized",
        "object": "event",
        "account": connected,
        "type": "account.application.deauthorized",
        "created": 1_700_001_000,
        "api_version": "2026-10-28.endive",
        "data": {"object": {"id": "ca_halo", "object": "application", "name": "Halo"}},
    }
    store_event(db, event)

    report = apply(db)

    status, token = db.execute(
        "select status, access_token_encrypted from halo.stripe_connections where account_id = %s",
        (connected,),
    ).fetchone()
    ingest_enabled = db.execute(
        "select ingest_enabled from halo.integration_settings where account_id = %s",
        (connected,),
    ).fetchone()[0]
    assert report.events_applied == 1
    assert event_status(db, "evt_deauthorized") == "applied"
    assert status == "disconnected"
    assert token is None
    assert ingest_enabled is False
