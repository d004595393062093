"""End to end against localstripe: submit, approve, execute, then read the
change back from Stripe and from the stored result."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.billing import queue
from halo_stripe_pipeline.billing.execution import Executor, trial_end_after_extension
from halo_stripe_pipeline.billing.models import Submission, ValidationError
from halo_stripe_pipeline.stripe_client import StripeApi, StripeApiError

from .conftest import AGENT, PLAN_AMOUNT, StripeWorld


def submission(customer_id: str, request_type: str, **fields: Any) -> Submission:
    return Submission(
        request_type=request_type,
        customer_id=customer_id,
        reason="customer asked on chat",
        summary="The customer says the product did not work for them this month.",
        requested_by=AGENT,
        **fields,
    )


def executor(db: psycopg.Connection, api: StripeApi, **options: Any) -> Executor:
    return Executor(db, stripe_api_for=lambda conn, account: api, **options)


def submit_and_approve(db: psycopg.Connection, item: Submission) -> int:
    request = queue.submit(db, item)
    assert request.status == "pending"
    approved = queue.approve(db, request.id, by="ana@halo.test", note="looks right")
    assert approved.status == "approved"
    return request.id


def test_refund_full_charge(db, world: StripeWorld, stripe_api, enabled_agent):
    customer = world.customer(charge_amount=5000)
    request_id = submit_and_approve(
        db, submission(customer.id, "refund", charge_id=customer.charge_id)
    )

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "succeeded"
    assert done.amount_minor == 5000
    charge = stripe_api.get(f"/v1/charges/{customer.charge_id}")
    assert charge["amount_refunded"] == 5000
    assert charge["refunded"] is True
    refunds = stripe_api.get("/v1/refunds", {"charge": customer.charge_id})["data"]
    assert len(refunds) == 1
    assert done.result["refund"]["id"] == refunds[0]["id"]
    assert done.result["refund"]["amount"] == 5000
    assert refunds[0]["metadata"]["halo_billing_request"] == done.request_key


def test_partial_refund(db, world: StripeWorld, stripe_api, enabled_agent):
    customer = world.customer(charge_amount=5000)
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "refund",
            charge_id=customer.charge_id,
            amount="12.50",
            currency="usd",
        ),
    )

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "succeeded"
    assert done.amount_minor == 1250
    charge = stripe_api.get(f"/v1/charges/{customer.charge_id}")
    assert charge["amount_refunded"] == 1250
    assert charge["refunded"] is False
    assert done.result["refund"]["amount"] == 1250
    assert done.result["refund"]["charge"] == customer.charge_id


def test_cancel_at_period_end(db, world: StripeWorld, stripe_api, enabled_agent):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "cancel_at_period_end",
            subscription_id=customer.subscription_id,
        ),
    )

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "succeeded"
    subscription = stripe_api.get(f"/v1/subscriptions/{customer.subscription_id}")
    assert subscription["cancel_at_period_end"] is True
    assert subscription["status"] == "active"
    assert done.result["cancel_at_period_end"]["cancel_at_period_end"] is True
    assert done.result["cancel_at_period_end"]["id"] == customer.subscription_id


def test_cancel_immediately_with_refund(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "cancel_immediately",
            subscription_id=customer.subscription_id,
            refund_latest_payment=True,
        ),
    )
    request = queue.get_request(db, request_id)
    assert request.charge_id == customer.subscription_charge_id
    assert request.amount_minor == PLAN_AMOUNT

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "succeeded"
    subscription = stripe_api.get(f"/v1/subscriptions/{customer.subscription_id}")
    assert subscription["status"] == "canceled"
    charge = stripe_api.get(f"/v1/charges/{customer.subscription_charge_id}")
    assert charge["amount_refunded"] == PLAN_AMOUNT
    assert done.result["cancel_subscription"]["status"] == "canceled"
    assert done.result["refund"]["amount"] == PLAN_AMOUNT
    assert done.result["refund"]["charge"] == customer.subscription_charge_id


def test_extend_trial(db, world: StripeWorld, stripe_api, enabled_agent):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "extend_trial",
            subscription_id=customer.trial_subscription_id,
            days=7,
        ),
    )

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "succeeded"
    expected = customer.trial_end + 7 * 86_400
    subscription = stripe_api.get(f"/v1/subscriptions/{customer.trial_subscription_id}")
    assert subscription["trial_end"] == expected
    assert done.result["extend_trial"]["trial_end"] == expected
    step = done.execution_plan["steps"][0]
    assert step["params"]["trial_end"] == expected
    assert "proration_behavior" not in step["params"]


def test_trial_end_counts_from_now_after_trial_ended():
    now = 1_800_000_000
    assert trial_end_after_extension(now - 86_400, 3, now) == now + 3 * 86_400
    assert trial_end_after_extension(None, 1, now) == now + 86_400
    assert trial_end_after_extension(now + 86_400, 2, now) == now + 3 * 86_400


def test_extend_trial_sends_no_proration_to_stripe(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "extend_trial",
            subscription_id=customer.trial_subscription_id,
            days=1,
        ),
    )
    request = queue.transition(db, request_id, to_status="executing", actor="tests")

    live_like = executor(db, stripe_api, send_proration_behavior=True)
    plan = live_like._build_plan(request, stripe_api, None)

    assert plan["steps"][0]["params"]["proration_behavior"] == "none"
    assert plan["steps"][0]["params"]["trial_end"] == customer.trial_end + 86_400


class Crash(RuntimeError):
    pass


def crash_once() -> Any:
    calls = []

    def hook(request, step, response):
        calls.append(step["name"])
        if len(calls) == 1:
            raise Crash("executor stopped after the Stripe call")

    return hook, calls


def test_crash_after_refund_call_does_not_refund_twice(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer(charge_amount=4000)
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "refund",
            charge_id=customer.charge_id,
            amount="10.00",
            currency="usd",
        ),
    )
    hook, calls = crash_once()

    with pytest.raises(Crash):
        executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    stuck = queue.get_request(db, request_id)
    assert stuck.status == "executing"
    assert stuck.execution_plan["steps"][0]["response"] is None

    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded"
    refunds = stripe_api.get("/v1/refunds", {"charge": customer.charge_id})["data"]
    assert len(refunds) == 1
    assert (
        stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 1000
    )
    assert done.result["refund"]["id"] == refunds[0]["id"]
    assert calls == ["refund"]


def test_crash_after_trial_call_keeps_planned_trial_end(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "extend_trial",
            subscription_id=customer.trial_subscription_id,
            days=5,
        ),
    )
    hook, calls = crash_once()

    with pytest.raises(Crash):
        executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded"
    expected = customer.trial_end + 5 * 86_400
    assert (
        stripe_api.get(f"/v1/subscriptions/{customer.trial_subscription_id}")[
            "trial_end"
        ]
        == expected
    )
    assert calls == ["extend_trial", "extend_trial"]


def test_stripe_error_fails_then_retry_succeeds(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer(charge_amount=3000)
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "refund",
            charge_id=customer.charge_id,
            amount="5.00",
            currency="usd",
        ),
    )
    attempts = []

    def refuse_first(conn, account):
        attempts.append(account)
        if len(attempts) == 1:
            return StripeApi(
                api_key="sk_test_billing",
                api_base=stripe_api.api_base + "/missing",
                requests_per_second=1000,
                retry=stripe_api.retry,
            )
        return stripe_api

    [failed] = Executor(db, stripe_api_for=refuse_first).run([request_id])
    assert failed.status == "failed"
    assert "404" in failed.error or "Not Found" in failed.error
    assert stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 0

    retried = queue.retry(db, request_id, by="ana@halo.test")
    assert retried.status == "approved"
    assert retried.execution_generation == 2
    [done] = Executor(db, stripe_api_for=refuse_first).run([request_id])

    assert done.status == "succeeded"
    assert done.error is None
    assert done.execution_plan["steps"][0]["idempotency_key"].endswith("/2/refund")
    assert stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 500


def test_refund_elsewhere_after_approval_fails(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer(charge_amount=2000)
    request_id = submit_and_approve(
        db, submission(customer.id, "refund", charge_id=customer.charge_id)
    )
    stripe_api.post("/v1/refunds", {"charge": customer.charge_id, "amount": 500})

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "failed"
    assert "only 15.00 USD left to refund" in done.error
    assert stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 500


def test_cancel_after_external_cancellation_fails(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "cancel_at_period_end",
            subscription_id=customer.subscription_id,
        ),
    )
    stripe_api.delete(f"/v1/subscriptions/{customer.subscription_id}")

    [done] = executor(db, stripe_api).run([request_id])

    assert done.status == "failed"
    assert "was canceled after the request was approved" in done.error
    events = [event["to_status"] for event in queue.list_events(db, request_id)]
    assert events == ["pending", "approved", "executing", "failed"]


def test_claimed_request_is_skipped(
    db, world: StripeWorld, stripe_api, enabled_agent, warehouse_url
):
    from halo_stripe_pipeline.billing.execution import ADVISORY_LOCK_NAMESPACE
    from halo_stripe_pipeline.warehouse import connect

    customer = world.customer()
    request_id = submit_and_approve(
        db, submission(customer.id, "refund", charge_id=customer.charge_id)
    )
    with connect(warehouse_url, autocommit=True) as other:
        other.execute(
            "select pg_advisory_lock(%s, %s)", (ADVISORY_LOCK_NAMESPACE, request_id)
        )
        assert executor(db, stripe_api).run([request_id]) == []
        assert queue.get_request(db, request_id).status == "approved"
        other.execute(
            "select pg_advisory_unlock(%s, %s)", (ADVISORY_LOCK_NAMESPACE, request_id)
        )
    [done] = executor(db, stripe_api).run([request_id])
    assert done.status == "succeeded"


def test_synced_refund_is_counted_once(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    """After the webhook or sync stores the refund and the updated charge,
    the refund counts once against what remains refundable."""
    customer = world.customer(charge_amount=5000)
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "refund",
            charge_id=customer.charge_id,
            amount="10.00",
            currency="usd",
        ),
    )
    executor(db, stripe_api).run([request_id])
    world.load_customer(customer.id)
    world.upsert(
        "refunds", stripe_api.get("/v1/refunds", {"charge": customer.charge_id})["data"]
    )

    assert executor(db, stripe_api).run([request_id]) == []
    with pytest.raises(ValidationError, match="exceeds the 40.00 USD still refundable"):
        queue.submit(
            db,
            submission(
                customer.id, "refund", charge_id=customer.charge_id, amount="40.01"
            ),
        )
    follow_up = queue.submit(
        db,
        submission(customer.id, "refund", charge_id=customer.charge_id, amount="40.00"),
    )
    assert follow_up.amount_minor == 4000


def test_missing_stripe_key_leaves_request_approved(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    from halo_stripe_pipeline.config import ConfigError

    customer = world.customer()
    request_id = submit_and_approve(
        db, submission(customer.id, "refund", charge_id=customer.charge_id)
    )

    def no_key(conn, account):
        raise ConfigError("STRIPE_API_KEY is not set")

    with pytest.raises(ConfigError):
        Executor(db, stripe_api_for=no_key).run([request_id])

    assert queue.get_request(db, request_id).status == "approved"


def lost_response_once() -> Any:
    """A hook that turns the first successful call into a Stripe error, as
    when the response of an applied call times out."""
    calls = []

    def hook(request, step, response):
        calls.append(step["name"])
        if len(calls) == 1:
            raise StripeApiError(f"{step['path']} failed: Read timed out")

    return hook, calls


def test_retry_after_lost_trial_response(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "extend_trial",
            subscription_id=customer.trial_subscription_id,
            days=3,
        ),
    )
    hook, calls = lost_response_once()

    [failed] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    assert failed.status == "failed"
    assert "Read timed out" in failed.error
    queue.retry(db, request_id, by="ana@halo.test")
    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded"
    expected = customer.trial_end + 3 * 86_400
    assert (
        stripe_api.get(f"/v1/subscriptions/{customer.trial_subscription_id}")[
            "trial_end"
        ]
        == expected
    )
    assert done.result["extend_trial"]["trial_end"] == expected


def test_retry_after_lost_cancel_response(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "cancel_at_period_end",
            subscription_id=customer.subscription_id,
        ),
    )
    hook, calls = lost_response_once()

    [failed] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    assert failed.status == "failed"
    queue.retry(db, request_id, by="ana@halo.test")
    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded"
    assert (
        stripe_api.get(f"/v1/subscriptions/{customer.subscription_id}")[
            "cancel_at_period_end"
        ]
        is True
    )


def test_retry_after_lost_cancellation_response(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer()
    request_id = submit_and_approve(
        db,
        submission(
            customer.id,
            "cancel_immediately",
            subscription_id=customer.subscription_id,
            refund_latest_payment=True,
        ),
    )
    hook, calls = lost_response_once()

    [failed] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    assert failed.status == "failed"
    assert (
        stripe_api.get(f"/v1/subscriptions/{customer.subscription_id}")["status"]
        == "canceled"
    )
    queue.retry(db, request_id, by="ana@halo.test")
    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded"
    assert done.result["cancel_subscription"]["status"] == "canceled"
    assert (
        stripe_api.get(f"/v1/charges/{customer.subscription_charge_id}")[
            "amount_refunded"
        ]
        == PLAN_AMOUNT
    )
    assert calls == ["cancel_subscription", "refund"]


def test_retry_after_lost_full_refund(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    customer = world.customer(charge_amount=3000)
    request_id = submit_and_approve(
        db, submission(customer.id, "refund", charge_id=customer.charge_id)
    )
    hook, calls = lost_response_once()

    [failed] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])
    assert failed.status == "failed"
    assert (
        stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 3000
    )
    queue.retry(db, request_id, by="ana@halo.test")
    [done] = executor(db, stripe_api, after_stripe_call=hook).run([request_id])

    assert done.status == "succeeded", done.error
    refunds = stripe_api.get("/v1/refunds", {"charge": customer.charge_id})["data"]
    assert len(refunds) == 1
    assert done.result["refund"]["id"] == refunds[0]["id"]
    assert calls == ["refund"]


def test_disconnected_account_fails_only_its_request(
    db, world: StripeWorld, stripe_api, enabled_agent
):
    from halo_stripe_pipeline.connect.secrets import AccountDisconnected

    first = world.customer()
    second = world.customer()
    first_id = submit_and_approve(
        db, submission(first.id, "refund", charge_id=first.charge_id)
    )
    second_id = submit_and_approve(
        db, submission(second.id, "refund", charge_id=second.charge_id)
    )
    calls = []

    def disconnected_once(conn, account):
        calls.append(account)
        if len(calls) == 1:
            raise AccountDisconnected(f"Stripe account `{account}` is disconnected")
        return stripe_api

    handled = Executor(db, stripe_api_for=disconnected_once).run(
        [first_id, second_id]
    )

    statuses = {request.id: request.status for request in handled}
    assert statuses == {first_id: "failed", second_id: "succeeded"}
    failed = queue.get_request(db, first_id)
    assert "is disconnected" in failed.error
    assert stripe_api.get(f"/v1/charges/{first.charge_id}")["amount_refunded"] == 0
