"""Apply credit against a loopback stand-in of Stripe's balance transactions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from halo_stripe_pipeline.billing import queue
from halo_stripe_pipeline.billing.execution import Executor
from halo_stripe_pipeline.billing.models import Submission
from halo_stripe_pipeline.warehouse import bulk

from .balance_standin import BalanceStandIn
from .conftest import AGENT, fast_api


@pytest.fixture
def standin() -> Iterator[BalanceStandIn]:
    server = BalanceStandIn()
    yield server
    server.stop()


def credit_request(
    db,
    account_id: str,
    standin: BalanceStandIn,
    amount: str = "12.50",
    currency: str = "usd",
    customer_currency: str | None = "usd",
) -> int:
    customer_id = f"cus_{uuid.uuid4().hex[:12]}"
    standin.state.add_customer(customer_id, customer_currency)
    bulk.upsert_objects(
        db,
        "customers",
        account_id,
        [{"id": customer_id, "object": "customer", "currency": customer_currency}],
        observed_at=datetime.now(timezone.utc),
    )
    request = queue.submit(
        db,
        Submission(
            request_type="apply_credit",
            customer_id=customer_id,
            amount=amount,
            currency=currency,
            reason="service outage",
            summary="Customer lost two days of service.",
            requested_by=AGENT,
        ),
    )
    queue.approve(db, request.id, by="ana@halo.test")
    return request.id


def executor(db, standin: BalanceStandIn, **options) -> Executor:
    api = fast_api(standin.api_base)
    return Executor(db, stripe_api_for=lambda conn, account: api, **options)


def test_apply_credit(db, account_id, standin, enabled_agent):
    request_id = credit_request(db, account_id, standin)

    [done] = executor(db, standin).run([request_id])

    assert done.status == "succeeded"
    customer = standin.state.customers[done.customer_id]
    assert customer["balance"] == -1250
    [transaction] = standin.state.transactions[done.customer_id]
    assert transaction["amount"] == -1250
    assert transaction["currency"] == "usd"
    assert done.result["apply_credit"]["id"] == transaction["id"]
    assert done.result["apply_credit"]["amount"] == -1250
    assert done.result["apply_credit"]["ending_balance"] == -1250
    [post] = standin.state.posts
    assert post["idempotency_key"] == f"halo-billing/{done.request_key}/1/apply_credit"


def test_credit_for_customer_without_currency(db, account_id, standin, enabled_agent):
    request_id = credit_request(
        db, account_id, standin, amount="500", currency="jpy", customer_currency=None
    )
    [done] = executor(db, standin).run([request_id])
    assert done.status == "succeeded"
    assert standin.state.customers[done.customer_id]["balance"] == -500


def test_crash_after_credit_call_does_not_credit_twice(
    db, account_id, standin, enabled_agent
):
    request_id = credit_request(db, account_id, standin, amount="7.00")
    crashes = []

    def crash_once(request, step, response):
        if not crashes:
            crashes.append(response["id"])
            raise RuntimeError("executor stopped after the Stripe call")

    with pytest.raises(RuntimeError):
        executor(db, standin, after_stripe_call=crash_once).run([request_id])
    assert queue.get_request(db, request_id).status == "executing"
    [done] = executor(db, standin, after_stripe_call=crash_once).run([request_id])

    assert done.status == "succeeded"
    transactions = standin.state.transactions[done.customer_id]
    assert len(transactions) == 1
    assert standin.state.customers[done.customer_id]["balance"] == -700
    assert done.result["apply_credit"]["id"] == crashes[0]
    assert len(standin.state.posts) == 1


def test_idempotency_key_replays_without_lookup(db, account_id, standin, enabled_agent):
    """With the metadata lookup bypassed, the repeated key alone prevents a second credit."""
    request_id = credit_request(db, account_id, standin, amount="3.00")
    crashes = []

    def crash_once(request, step, response):
        if not crashes:
            crashes.append(response["id"])
            raise RuntimeError("executor stopped after the Stripe call")

    with pytest.raises(RuntimeError):
        executor(db, standin, after_stripe_call=crash_once).run([request_id])
    resumed = executor(db, standin, after_stripe_call=crash_once)
    resumed._lookup = lambda api, step: None  # type: ignore[method-assign]
    [done] = resumed.run([request_id])

    assert done.status == "succeeded"
    assert len(standin.state.posts) == 2
    assert (
        standin.state.posts[0]["idempotency_key"]
        == standin.state.posts[1]["idempotency_key"]
    )
    assert len(standin.state.transactions[done.customer_id]) == 1
    assert done.result["apply_credit"]["id"] == crashes[0]


def test_credit_currency_changed_in_stripe_fails(
    db, account_id, standin, enabled_agent
):
    request_id = credit_request(db, account_id, standin, customer_currency=None)
    customer_id = queue.get_request(db, request_id).customer_id
    standin.state.customers[customer_id]["currency"] = "eur"

    [done] = executor(db, standin).run([request_id])

    assert done.status == "failed"
    assert "is billed in eur, not usd" in done.error
    assert standin.state.posts == []
