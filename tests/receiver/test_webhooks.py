"""The webhook endpoint over real HTTP: verify, store, acknowledge."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from halo_stripe_pipeline.events import secrets as webhook_secrets
from tests.receiver.support import (
    LiveReceiver,
    encode,
    load_sample,
    signed_headers,
)


def stored_ids(db: psycopg.Connection) -> list[str]:
    return [
        row[0]
        for row in db.execute("select id from stripe_raw.webhook_events order by seq")
    ]


def test_health_reports_ok(receiver: LiveReceiver) -> None:
    import httpx

    response = httpx.get(receiver.base_url + "/health", timeout=10)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_valid_delivery_is_stored(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    event = load_sample("hookdeck-webhook-samples/customer.created.json")
    body = encode(event)

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    row = events_table.execute(
        "select account_id, type, api_version, extract(epoch from created_at)::bigint,"
        " object_type, object_id, status, source, payload, applied_at"
        " from stripe_raw.webhook_events where id = %s",
        (event["id"],),
    ).fetchone()
    assert row is not None
    (
        account_id,
        event_type,
        api_version,
        created,
        object_type,
        object_id,
        status,
        source,
        payload,
        applied_at,
    ) = row
    assert account_id is None
    assert event_type == "customer.created"
    assert api_version == "2022-11-15"
    assert created == event["created"]
    assert object_type == "customer"
    assert object_id == "cus_NSPHp4fOlXGw8P"
    assert status == "pending"
    assert source == "webhook"
    assert payload == event
    assert applied_at is None


def test_bad_signature_is_rejected(
    receiver: LiveReceiver,
    webhook_secret: str,
    events_table: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = encode(load_sample("stripe-ruby-mock/customer.created.json"))
    caplog.set_level(logging.WARNING, logger="webhook_receiver.webhooks")

    response = receiver.post(body, signed_headers(body, "whsec_wrong"))

    assert response.status_code == 400
    assert response.json() == {"error": "no signature matches the payload"}
    assert stored_ids(events_table) == []
    assert "webhook rejected reason='no signature matches the payload'" in caplog.text


def test_missing_signature_is_rejected(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    body = encode(load_sample("stripe-ruby-mock/customer.created.json"))

    response = receiver.post(body, {"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"error": "missing Stripe-Signature header"}
    assert stored_ids(events_table) == []


def test_stale_timestamp_is_rejected(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    body = encode(load_sample("stripe-ruby-mock/customer.created.json"))

    response = receiver.post(
        body, signed_headers(body, timestamp=int(time.time()) - 301)
    )

    assert response.status_code == 400
    assert response.json() == {"error": "timestamp outside the tolerance"}
    assert stored_ids(events_table) == []


def test_rotated_secret_accepts_both(
    receiver: LiveReceiver,
    monkeypatch: pytest.MonkeyPatch,
    events_table: psycopg.Connection,
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_new, whsec_old")
    old = load_sample("stripe-ruby-mock/customer.created.json")
    new = load_sample("hookdeck-webhook-samples/customer.created.json")
    old_body, new_body = encode(old), encode(new)

    old_response = receiver.post(old_body, signed_headers(old_body, "whsec_old"))
    new_response = receiver.post(
        new_body, signed_headers(new_body, ["whsec_new", "whsec_old"])
    )
    retired_response = receiver.post(
        old_body, signed_headers(old_body, "whsec_retired")
    )

    assert old_response.status_code == 200
    assert new_response.status_code == 200
    assert retired_response.status_code == 400
    assert stored_ids(events_table) == [old["id"], new["id"]]


def test_duplicate_delivery_changes_nothing(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    event = load_sample("stripe-ruby-mock/customer.updated.json")
    body = encode(event)
    first = receiver.post(body, signed_headers(body))
    received_at = events_table.execute(
        "select received_at from stripe_raw.webhook_events where id = %s",
        (event["id"],),
    ).fetchone()[0]

    second = receiver.post(body, signed_headers(body))

    assert first.json() == {"received": True, "duplicate": False}
    assert second.status_code == 200
    assert second.json() == {"received": True, "duplicate": True}
    assert stored_ids(events_table) == [event["id"]]
    assert (
        events_table.execute(
            "select received_at from stripe_raw.webhook_events where id = %s",
            (event["id"],),
        ).fetchone()[0]
        == received_at
    )


def test_unknown_type_is_stored_and_ignored(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    event = load_sample("hookdeck-webhook-samples/payment_method.attached.json")
    body = encode(event)

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 200
    status = events_table.execute(
        "select status from stripe_raw.webhook_events where id = %s", (event["id"],)
    ).fetchone()[0]
    assert status == "ignored"


def test_object_without_id_is_stored_and_ignored(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    # An upcoming invoice has no id; built from a real invoice event.
    event = load_sample("stripe-ruby-mock/invoice.paid.json")
    event["id"] = "evt_upcoming_invoice"
    event["type"] = "invoice.upcoming"
    del event["data"]["object"]["id"]
    body = encode(event)

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 200
    row = events_table.execute(
        "select status, object_id from stripe_raw.webhook_events where id = %s",
        (event["id"],),
    ).fetchone()
    assert row == ("ignored", None)


def test_malformed_body_is_rejected(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    body = b'{"id": "evt_broken", "object": "event", '

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON"}
    assert stored_ids(events_table) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "body is not a Stripe event"),
        ({"object": "customer", "id": "cus_1"}, "body is not a Stripe event"),
        (
            {
                "object": "event",
                "type": "customer.created",
                "created": 1,
                "data": {"object": {}},
            },
            "event has no id",
        ),
        (
            {"object": "event", "id": "evt_1", "created": 1, "data": {"object": {}}},
            "event has no type",
        ),
        (
            {
                "object": "event",
                "id": "evt_1",
                "type": "x",
                "created": "1",
                "data": {"object": {}},
            },
            "event has no integer created time",
        ),
        (
            {
                "object": "event",
                "id": "evt_1",
                "type": "customer.created",
                "created": 300_000_000_000,
                "data": {"object": {"id": "cus_1", "object": "customer"}},
            },
            "event created time is out of range",
        ),
        (
            {
                "object": "event",
                "id": "evt_1",
                "type": "customer.created",
                "created": 100_000_000_000_000,
                "data": {"object": {"id": "cus_1", "object": "customer"}},
            },
            "event created time is out of range",
        ),
        (
            {"object": "event", "id": "evt_1", "type": "x", "created": 1, "data": {}},
            "event has no data.object",
        ),
    ],
)
def test_body_that_is_not_an_event_is_rejected(
    receiver: LiveReceiver,
    webhook_secret: str,
    events_table: psycopg.Connection,
    payload: object,
    message: str,
) -> None:
    body = json.dumps(payload).encode()

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert stored_ids(events_table) == []


def test_missing_secret_configuration_returns_500(
    receiver: LiveReceiver,
    monkeypatch: pytest.MonkeyPatch,
    events_table: psycopg.Connection,
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    body = encode(load_sample("stripe-ruby-mock/customer.created.json"))

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 500
    assert response.json() == {"error": "no webhook signing secret is configured"}
    assert stored_ids(events_table) == []


def test_stored_secret_verifies_account_endpoint(
    receiver: LiveReceiver,
    monkeypatch: pytest.MonkeyPatch,
    events_table: psycopg.Connection,
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_platform")
    hints: list[str | None] = []

    def provider(conn: psycopg.Connection, account_id_hint: str | None) -> list[str]:
        hints.append(account_id_hint)
        return ["whsec_stored_acct_hint"] if account_id_hint == "acct_hint" else []

    webhook_secrets.register_secret_provider(provider)
    try:
        event = load_sample("stripe-ruby-mock/customer.created.json")
        body = encode(event)
        accepted = receiver.post(
            body, signed_headers(body, "whsec_stored_acct_hint"), "?account=acct_hint"
        )
        other = receiver.post(
            body, signed_headers(body, "whsec_stored_acct_hint"), "?account=acct_other"
        )
    finally:
        webhook_secrets.unregister_secret_provider(provider)

    assert accepted.status_code == 200
    assert other.status_code == 400
    assert hints == ["acct_hint", "acct_other"]
    assert (
        events_table.execute(
            "select account_id from stripe_raw.webhook_events where id = %s",
            (event["id"],),
        ).fetchone()[0]
        == "acct_hint"
    )


def test_event_account_must_match_endpoint(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    event = load_sample("stripe-ruby-mock/customer.created.json")
    event["account"] = "acct_someone_else"
    body = encode(event)

    response = receiver.post(body, signed_headers(body), "/acct_endpoint")

    assert response.status_code == 400
    assert response.json() == {"error": "event account does not match the endpoint"}
    assert stored_ids(events_table) == []


def test_connect_event_keeps_its_account(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    event = load_sample("stripe-ruby-mock/customer.created.json")
    event["account"] = "acct_connected"
    body = encode(event)

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 200
    assert (
        events_table.execute(
            "select account_id from stripe_raw.webhook_events where id = %s",
            (event["id"],),
        ).fetchone()[0]
        == "acct_connected"
    )


def test_concurrent_deliveries_are_all_stored(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    template = load_sample("stripe-ruby-mock/customer.created.json")
    bodies = []
    for index in range(60):
        event = json.loads(json.dumps(template))
        event["id"] = f"evt_concurrent_{index:03d}"
        bodies.append(encode(event))
    # Every body is sent twice, so group commits also see duplicates.
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(
            pool.map(
                lambda body: receiver.post(body, signed_headers(body)), bodies + bodies
            )
        )

    assert all(response.status_code == 200 for response in responses)
    assert sum(not response.json()["duplicate"] for response in responses) == 60
    assert len(stored_ids(events_table)) == 60


def test_nul_character_is_stored(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    # jsonb rejects \u0000; the event must still be stored, not retried forever.
    event = load_sample("hookdeck-webhook-samples/customer.created.json")
    event["id"] = "evt_with_nul_character"
    event["data"]["object"]["description"] = "before\u0000after"
    body = encode(event)
    assert b"\\u0000" in body

    response = receiver.post(body, signed_headers(body))

    assert response.status_code == 200
    description = events_table.execute(
        "select payload->'data'->'object'->>'description'"
        " from stripe_raw.webhook_events where id = %s",
        (event["id"],),
    ).fetchone()[0]
    assert description == "before\ufffdafter"


def test_platform_secret_ignores_endpoint_account(
    receiver: LiveReceiver, webhook_secret: str, events_table: psycopg.Connection
) -> None:
    # STRIPE_WEBHOOK_SECRET is the platform's; it proves nothing about acct_c.
    event = load_sample("stripe-ruby-mock/customer.created.json")
    event["id"] = "evt_platform_signed_to_account_path"
    body = encode(event)

    response = receiver.post(body, signed_headers(body), "/acct_c")

    assert response.status_code == 200
    account_id = events_table.execute(
        "select account_id from stripe_raw.webhook_events where id = %s", (event["id"],)
    ).fetchone()[0]
    assert account_id is None
