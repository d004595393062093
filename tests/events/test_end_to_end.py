"""End to end: localstripe signs and sends webhooks, Dagster applies, marts follow."""

from __future__ import annotations

import json
import time

import dagster as dg
import psycopg
import pytest

from halo_stripe_pipeline.emulator import EmulatorProcess
from halo_stripe_pipeline.events.definitions import (
    apply_stripe_events_job,
    stripe_events_sensor,
)
from halo_stripe_pipeline.instance import get_instance
from halo_stripe_pipeline.notify.outbox import set_enabled
from halo_stripe_pipeline.stripe_client import StripeApi
from tests.events.conftest import StubServer, raw_row
from tests.receiver.support import LiveReceiver

SLACK_PATH = "/services/T000/B000/E2E"


def wait_for_events(
    db: psycopg.Connection, expected: dict[str, int], timeout: float = 30.0
) -> None:
    """Wait until the receiver stored at least `expected` events of each type."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = dict(
            db.execute(
                "select type, count(*) from stripe_raw.webhook_events group by type"
            ).fetchall()
        )
        if all(counts.get(name, 0) >= number for name, number in expected.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"the receiver stored {counts}, expected at least {expected}")


def subscribe(api: StripeApi, customer_id: str, amount: int) -> dict:
    product = api.post("/v1/products", {"name": "Pro"})
    plan = api.post(
        "/v1/plans",
        {
            "product": product["id"],
            "amount": amount,
            "currency": "usd",
            "interval": "month",
        },
    )
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
    api.post(f"/v1/payment_methods/{method['id']}/attach", {"customer": customer_id})
    api.post(
        f"/v1/customers/{customer_id}",
        {"invoice_settings[default_payment_method]": method["id"]},
    )
    return api.post(
        "/v1/subscriptions", {"customer": customer_id, "items[0][plan]": plan["id"]}
    )


def run_sensor_and_job(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = stripe_events_sensor(dg.build_sensor_context(instance=instance))
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    return apply_stripe_events_job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags
    )


@pytest.mark.usefixtures("webhook_secret")
def test_emulator_changes_reach_marts(
    db: psycopg.Connection,
    account: str,
    receiver: LiveReceiver,
    emulator_env: EmulatorProcess,
    stub_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    webhook_secret: str,
) -> None:
    stub_server.routes[SLACK_PATH] = "ok"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", stub_server.url + SLACK_PATH)
    set_enabled(db, True)
    db.execute(
        "insert into halo.integration_settings (account_id, workspace_id, customer_id_field)"
        " values (%s, 'ws_e2e', 'email')",
        (account,),
    )
    db.execute(
        "insert into halo.companies (id, workspace_id, name, email)"
        " values ('co_e2e', 'ws_e2e', 'Globex E2E', 'buyer@globex.example')"
    )
    emulator_env.register_webhook("halo", receiver.webhook_url, webhook_secret)
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )

    kept = api.post(
        "/v1/customers", {"email": "first@globex.example", "name": "Globex Buyer"}
    )
    api.post(f"/v1/customers/{kept['id']}", {"email": "buyer@globex.example"})
    subscription = subscribe(api, kept["id"], 5000)
    removed = api.post(
        "/v1/customers", {"email": "leaving@example.com", "name": "Leaving"}
    )
    api.delete(f"/v1/customers/{removed['id']}")
    wait_for_events(
        db,
        {
            "customer.created": 2,
            "customer.updated": 2,
            "customer.deleted": 1,
            "customer.subscription.created": 1,
        },
    )
    instance = get_instance()

    try:
        result = run_sensor_and_job(instance)
    finally:
        set_enabled(db, False)

    assert result.success
    kept_row = raw_row(db, "customers", account, kept["id"])
    assert kept_row[0]["email"] == "buyer@globex.example"
    assert kept_row[1] is False
    assert raw_row(db, "customers", account, removed["id"])[1] is True
    mart = dict(
        (row[0], row[1:])
        for row in db.execute(
            "select customer_id, email, deleted, company_id, subscription_status"
            " from analytics.stripe_customers"
            " where account_id = %s",
            (account,),
        )
    )
    assert mart[kept["id"]] == ("buyer@globex.example", False, "co_e2e", "active")
    assert mart[removed["id"]][1] is True
    assert (
        raw_row(db, "subscriptions", account, subscription["id"])[0]["status"]
        == "active"
    )
    materialized = {
        m.asset_key.path[-1]
        for m in result.asset_materializations_for_node("apply_events")
    }
    assert materialized == {"customers", "subscriptions", "charges"}
    marts = {
        tuple(m.asset_key.path)
        for m in result.asset_materializations_for_node("refresh_marts")
    }
    assert ("analytics", "stripe_customers") in marts
    assert ("analytics", "company_billing") in marts
    posted = [
        json.loads(body)["text"]
        for method, _, body in stub_server.requests
        if method == "POST"
    ]
    # The message shows the customer as the created event carries it.
    assert (
        f"*New Stripe customer*: Globex Buyer (first@globex.example) at Globex E2E `{kept['id']}`"
        in posted
    )
    assert any(
        text.startswith("*New subscription*: Globex Buyer")
        and "50.00 USD/month" in text
        for text in posted
    )
    assert len(posted) == 3

    api.delete(f"/v1/subscriptions/{subscription['id']}")
    wait_for_events(db, {"customer.subscription.deleted": 1})
    second = run_sensor_and_job(instance)

    assert second.success
    status = db.execute(
        "select subscription_status from analytics.stripe_customers"
        " where account_id = %s and customer_id = %s",
        (account, kept["id"]),
    ).fetchone()[0]
    assert status == "canceled"
