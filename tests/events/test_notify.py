"""Slack notifications: message text, the outbox switch, retries, dedupe."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import psycopg
import pytest

from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.apply import apply_pending_events
from halo_stripe_pipeline.notify.messages import Party, render_message
from halo_stripe_pipeline.notify.outbox import (
    enqueue_for_events,
    send_pending,
    set_enabled,
)
from tests.events.conftest import StubServer, store_event
from tests.receiver.support import load_sample

WEBHOOK_PATH = "/services/T000/B000/XXXX"
LATER = timedelta(days=1)


def party(company: str | None = "Acme Corp") -> Party:
    return Party("cus_1", "Fake Customer", "fake@example.com", company)


def test_message_names_company_customer_amount_id() -> None:
    charge = {"id": "ch_1", "object": "charge", "amount": 1250, "currency": "usd"}

    text = render_message("charge.succeeded", charge, party())

    assert (
        text
        == "*Payment received*: Fake Customer (fake@example.com) at Acme Corp — 12.50 USD `ch_1`"
    )


def test_zero_decimal_currency_amount() -> None:
    charge = {"id": "ch_2", "object": "charge", "amount": 1000, "currency": "jpy"}

    assert "1000 JPY" in render_message("charge.succeeded", charge, party())


def test_three_decimal_currency_amount() -> None:
    invoice = {
        "id": "in_1",
        "object": "invoice",
        "amount_due": 12345,
        "currency": "kwd",
    }

    assert "12.345 KWD" in render_message(
        "invoice.payment_failed", invoice, party(None)
    )


def test_refund_message_shows_refunded_part() -> None:
    charge = {
        "id": "ch_3",
        "object": "charge",
        "amount": 1250,
        "amount_refunded": 500,
        "currency": "eur",
    }

    text = render_message("charge.refunded", charge, party())

    assert "5.00 EUR of 12.50 EUR" in text


def test_subscription_message_sums_items() -> None:
    subscription = load_sample("payfuzz/customer.subscription.deleted.json")["data"][
        "object"
    ]

    text = render_message("customer.subscription.deleted", subscription, party(None))

    item = subscription["items"]["data"][0]
    total = item["price"]["unit_amount"] * item["quantity"]
    assert text.startswith("*Subscription canceled*: Fake Customer")
    assert f"{total / 100:.2f} USD/{item['price']['recurring']['interval']}" in text
    assert subscription["id"] in text


def subscription_with(*prices: dict) -> dict:
    items = [{"id": f"si_{n}", "quantity": 1, "price": p} for n, p in enumerate(prices)]
    return {
        "id": "sub_1",
        "object": "subscription",
        "currency": "usd",
        "items": {"data": items},
    }


def test_subscription_message_names_interval_count() -> None:
    quarterly = {
        "unit_amount": 30000,
        "recurring": {"interval": "month", "interval_count": 3},
    }

    text = render_message(
        "customer.subscription.created", subscription_with(quarterly), party(None)
    )

    assert "300.00 USD/3 months" in text


def test_subscription_message_legacy_plan_interval() -> None:
    plan = {"amount": 1000, "interval": "week", "interval_count": 2}
    subscription = {
        "id": "sub_2",
        "object": "subscription",
        "currency": "usd",
        "items": {"data": [{"id": "si_1", "quantity": 1, "plan": plan}]},
    }

    text = render_message("customer.subscription.created", subscription, party(None))

    assert "10.00 USD/2 weeks" in text


def test_subscription_message_mixed_periods_no_suffix() -> None:
    monthly = {
        "unit_amount": 1000,
        "recurring": {"interval": "month", "interval_count": 1},
    }
    yearly = {
        "unit_amount": 12000,
        "recurring": {"interval": "year", "interval_count": 1},
    }

    text = render_message(
        "customer.subscription.created", subscription_with(monthly, yearly), party(None)
    )

    assert "130.00 USD `sub_1`" in text


def test_message_escapes_slack_markup() -> None:
    customer = {"id": "cus_9", "object": "customer"}

    text = render_message(
        "customer.created", customer, Party("cus_9", "<!channel> & co", None, None)
    )

    assert "&lt;!channel&gt; &amp; co" in text


@pytest.fixture
def slack(
    stub_server: StubServer, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection
) -> StubServer:
    """Slack's incoming webhook stood in by a local server, and the switch on."""
    stub_server.routes[WEBHOOK_PATH] = "ok"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", stub_server.url + WEBHOOK_PATH)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    set_enabled(db, True)
    yield stub_server
    set_enabled(db, False)


def posted_texts(server: StubServer) -> list[str]:
    return [
        json.loads(body)["text"]
        for method, _, body in server.requests
        if method == "POST"
    ]


def apply_and_queue(db: psycopg.Connection) -> int:
    report = apply_pending_events(db, AccountResolver(db))
    with db.transaction():
        return enqueue_for_events(db, report.applied_events)


def test_event_posts_customer_and_id(
    db: psycopg.Connection, account: str, slack: StubServer
) -> None:
    # The marts have not been built for this account, so no company is named;
    # the end-to-end test checks the company after a real dbt build.
    event = load_sample("hookdeck-webhook-samples/customer.created.json")
    store_event(db, event)

    queued = apply_and_queue(db)
    report = send_pending(db)

    assert queued == 1
    assert report.sent == 1
    assert posted_texts(slack) == [
        "*New Stripe customer*: Fake Customer (fake.user4@example.com) `cus_NSPHp4fOlXGw8P`"
    ]


def test_redelivered_event_posts_once(
    db: psycopg.Connection, account: str, slack: StubServer
) -> None:
    event = load_sample("stripe-ruby-mock/charge.succeeded.json")
    store_event(db, event)
    apply_and_queue(db)

    again = enqueue_for_events(db, [(event["id"], account)])
    send_pending(db)
    send_pending(db)

    assert again == 0
    assert len(posted_texts(slack)) == 1


def test_switch_off_queues_nothing(
    db: psycopg.Connection, account: str, slack: StubServer
) -> None:
    set_enabled(db, False)
    store_event(db, load_sample("stripe-ruby-mock/charge.succeeded.json"))

    assert apply_and_queue(db) == 0
    assert db.execute("select count(*) from halo.slack_outbox").fetchone()[0] == 0


def test_slack_down_then_back_loses_nothing(
    db: psycopg.Connection, account: str, slack: StubServer
) -> None:
    samples = [
        "stripe-ruby-mock/charge.succeeded.json",
        "stripe-ruby-mock/invoice.payment_failed.json",
        "stripe-ruby-mock/customer.subscription.created.json",
    ]
    for index, name in enumerate(samples):
        event = load_sample(name)
        event["id"] = f"evt_outage_{index}"
        store_event(db, event)
    assert apply_and_queue(db) == 3
    slack.status = 503

    down = send_pending(db)

    assert down.sent == 0
    assert down.failed == 1
    assert down.pending == 3
    assert len(slack.requests) == 1
    slack.status = None
    # Nothing is due before the retry time, so an early round posts nothing.
    assert send_pending(db).sent == 0

    back = send_pending(db, now=datetime.now(timezone.utc) + LATER)

    assert back.sent == 3
    assert back.pending == 0
    texts = posted_texts(slack)[1:]
    assert [text.split("*")[1] for text in texts] == [
        "Payment received",
        "Invoice payment failed",
        "New subscription",
    ]
    attempts = [
        row[0]
        for row in db.execute("select attempts from halo.slack_outbox order by id")
    ]
    assert attempts == [2, 1, 1]


def test_rejected_message_does_not_block_others(
    db: psycopg.Connection, account: str, slack: StubServer
) -> None:
    for index in range(2):
        event = load_sample("stripe-ruby-mock/charge.succeeded.json")
        event["id"] = f"evt_reject_{index}"
        event["data"]["object"]["id"] = f"ch_reject_{index}"
        store_event(db, event)
    apply_and_queue(db)
    calls = []

    def poster(text: str) -> None:
        from halo_stripe_pipeline.notify.slack import SlackPostError

        calls.append(text)
        if "ch_reject_0" in text:
            raise SlackPostError(
                "incoming webhook returned HTTP 400: invalid_payload", transient=False
            )

    report = send_pending(db, poster)

    assert report.sent == 1
    assert report.failed == 1
    assert len(calls) == 2


def test_bot_token_posts_to_channel(
    db: psycopg.Connection,
    account: str,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stub_server.routes["/api/chat.postMessage"] = {
        "ok": True,
        "channel": "C123",
        "ts": "1.0",
    }
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_CHANNEL", "C123")
    monkeypatch.setenv("SLACK_API_BASE_URL", stub_server.url + "/api/")
    set_enabled(db, True)
    try:
        store_event(db, load_sample("stripe-ruby-mock/charge.succeeded.json"))
        apply_and_queue(db)
        report = send_pending(db)
    finally:
        set_enabled(db, False)

    assert report.sent == 1
    method, path, body = stub_server.requests[0]
    assert (method, path) == ("POST", "/api/chat.postMessage")
    fields = (
        {key: values[0] for key, values in parse_qs(body.decode()).items()}
        if not body.startswith(b"{")
        else json.loads(body)
    )
    assert fields["channel"] == "C123"
    assert "Payment received" in fields["text"]


def test_subscription_message_null_quantity_counts_one() -> None:
    plan = {"amount": 2500, "interval": "month", "interval_count": 1}
    subscription = {
        "id": "sub_3",
        "object": "subscription",
        "currency": "usd",
        "items": {"data": [{"id": "si_1", "quantity": None, "plan": plan}]},
    }

    text = render_message("customer.subscription.created", subscription, party(None))

    assert "25.00 USD/month" in text
