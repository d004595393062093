"""The billing context beside a request, read from the dbt marts after a build."""

from __future__ import annotations

from decimal import Decimal

import httpx

from halo_stripe_pipeline.billing import queue, tokens
from halo_stripe_pipeline.billing.context import load_billing_context
from halo_stripe_pipeline.billing.models import Submission
from halo_stripe_pipeline.marts import build_marts

from .conftest import AGENT, StripeWorld


def test_context_from_marts(
    db, world: StripeWorld, enabled_agent, warehouse_url, receiver_url
):
    customer = world.customer(charge_amount=1000)
    build_marts(
        warehouse_url,
        select="+stripe_customers +company_billing",
        exclude="resource_type:unit_test resource_type:test",
    )
    request = queue.submit(
        db,
        Submission(
            request_type="refund",
            customer_id=customer.id,
            charge_id=customer.charge_id,
            amount="4.00",
            currency="usd",
            reason="r",
            summary="s",
            requested_by=AGENT,
        ),
    )

    context = load_billing_context(db, request)

    mart = context.marts["analytics.stripe_customers"]
    assert mart["customer_id"] == customer.id
    assert mart["mrr"] == Decimal("25.00")
    assert mart["currency"] == "usd"
    assert mart["lifetime_value"] == Decimal("35.00")
    assert "analytics.stripe_customers" not in context.missing_marts
    assert {payment["id"] for payment in context.recent_payments} == {
        customer.charge_id,
        customer.subscription_charge_id,
    }
    assert {sub["id"] for sub in context.subscriptions} == {
        customer.subscription_id,
        customer.trial_subscription_id,
    }

    token = tokens.create_token(
        db, name="ana@halo.test", role="approver", account_id=request.account_id
    )
    page = httpx.get(
        f"{receiver_url}/billing/requests/{request.id}",
        cookies={"halo_billing_session": token},
    )
    assert page.status_code == 200
    assert "analytics.stripe_customers" in page.text
    assert "<dt>lifetime_value</dt><dd>35.00</dd>" in page.text
