"""Every validation error at submission, against rows written into the warehouse."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.billing import policy, queue
from halo_stripe_pipeline.billing.models import Submission, ValidationError
from halo_stripe_pipeline.warehouse import bulk

from .conftest import AGENT


class Warehouse:
    """Writes synthetic Stripe objects of one account into `stripe_raw`."""

    def __init__(self, conn: psycopg.Connection, account_id: str) -> None:
        self.conn = conn
        self.account_id = account_id
        self.suffix = uuid.uuid4().hex[:8]

    def put(
        self, table: str, obj: dict[str, Any], account_id: str | None = None
    ) -> dict[str, Any]:
        bulk.upsert_objects(
            self.conn,
            table,
            account_id or self.account_id,
            [obj],
            observed_at=datetime.now(timezone.utc),
        )
        return obj

    def customer(
        self, name: str = "cus", currency: str | None = "usd", **fields: Any
    ) -> str:
        customer_id = f"{name}_{self.suffix}"
        self.put(
            "customers",
            {
                "id": customer_id,
                "object": "customer",
                "currency": currency,
                "email": f"{customer_id}@example.com",
                "created": 1_700_000_000,
                **fields,
            },
        )
        return customer_id

    def charge(
        self, customer_id: str, amount: int = 5000, name: str = "ch", **fields: Any
    ) -> str:
        charge_id = f"{name}_{self.suffix}"
        self.put(
            "charges",
            {
                "id": charge_id,
                "object": "charge",
                "customer": customer_id,
                "amount": amount,
                "amount_refunded": 0,
                "currency": "usd",
                "status": "succeeded",
                "paid": True,
                "created": 1_700_000_100,
                **fields,
            },
        )
        return charge_id

    def subscription(self, customer_id: str, name: str = "sub", **fields: Any) -> str:
        subscription_id = f"{name}_{self.suffix}"
        self.put(
            "subscriptions",
            {
                "id": subscription_id,
                "object": "subscription",
                "customer": customer_id,
                "status": "active",
                "cancel_at_period_end": False,
                "cancel_at": None,
                "created": 1_700_000_000,
                **fields,
            },
        )
        return subscription_id


@pytest.fixture
def warehouse(db: psycopg.Connection, account_id: str) -> Warehouse:
    return Warehouse(db, account_id)


def ask(customer_id: str, request_type: str, **fields: Any) -> Submission:
    values: dict[str, Any] = {
        "reason": "customer asked",
        "summary": "chat summary",
        "requested_by": AGENT,
        **fields,
    }
    return Submission(request_type=request_type, customer_id=customer_id, **values)


def rejected(db: psycopg.Connection, submission: Submission) -> str:
    with pytest.raises(ValidationError) as error:
        queue.submit(db, submission)
    return str(error.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reason": " "}, "--reason is required"),
        ({"summary": ""}, "--summary is required"),
        ({"requested_by": ""}, "--requested-by is required"),
    ],
)
def test_common_fields_required(db, warehouse, enabled_agent, fields, message):
    customer = warehouse.customer()
    charge = warehouse.charge(customer)
    assert message in rejected(db, ask(customer, "refund", charge_id=charge, **fields))


def test_customer_required(db, enabled_agent):
    assert "--customer is required" in rejected(db, ask("", "refund", charge_id="ch_1"))


def test_unknown_type(db, warehouse, enabled_agent):
    assert "invalid request type `refund_all`" in rejected(
        db, ask(warehouse.customer(), "refund_all")
    )


@pytest.mark.parametrize(
    ("request_type", "fields", "message"),
    [
        ("refund", {}, "--charge is required for refund"),
        (
            "cancel_at_period_end",
            {},
            "--subscription is required for cancel_at_period_end",
        ),
        ("cancel_immediately", {}, "--subscription is required for cancel_immediately"),
        (
            "extend_trial",
            {"subscription_id": "sub_x"},
            "--days is required for extend_trial",
        ),
        ("extend_trial", {"days": 3}, "--subscription is required for extend_trial"),
        ("apply_credit", {"currency": "usd"}, "--amount is required for apply_credit"),
        ("apply_credit", {"amount": "5"}, "--currency is required for apply_credit"),
        ("refund", {"charge_id": "ch_x", "days": 3}, "--days does not apply to refund"),
        (
            "cancel_at_period_end",
            {"subscription_id": "sub_x", "amount": "5"},
            "--amount does not apply",
        ),
        (
            "apply_credit",
            {"amount": "5", "currency": "usd", "charge_id": "ch_x"},
            "--charge does not apply",
        ),
        (
            "cancel_immediately",
            {
                "subscription_id": "sub_x",
                "charge_id": "ch_x",
                "refund_latest_payment": True,
            },
            "either --charge or --refund-latest-payment",
        ),
        (
            "cancel_immediately",
            {"subscription_id": "sub_x", "amount": "5"},
            "needs --charge or --refund-latest-payment",
        ),
        (
            "extend_trial",
            {"subscription_id": "sub_x", "days": 0},
            "between 1 and 730 days",
        ),
        (
            "extend_trial",
            {"subscription_id": "sub_x", "days": 731},
            "between 1 and 730 days",
        ),
    ],
)
def test_fields_per_type(db, warehouse, enabled_agent, request_type, fields, message):
    assert message in rejected(db, ask(warehouse.customer(), request_type, **fields))


def test_agent_without_billing_enabled(db, warehouse):
    customer = warehouse.customer()
    charge = warehouse.charge(customer)
    message = rejected(
        db, ask(customer, "refund", charge_id=charge, requested_by="new-bot")
    )
    assert "agent `new-bot` does not have billing requests enabled" in message

    policy.set_agent_enabled(db, "off-bot", False, changed_by="tests")
    message = rejected(
        db, ask(customer, "refund", charge_id=charge, requested_by="off-bot")
    )
    assert "agent `off-bot` does not have billing requests enabled" in message


def test_customer_not_in_warehouse(db, enabled_agent):
    assert "customer `cus_nowhere` not found in the warehouse" in rejected(
        db, ask("cus_nowhere", "refund", charge_id="ch_x")
    )


def test_customer_of_another_account(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer)
    message = rejected(
        db, ask(customer, "refund", charge_id=charge, account_id="acct_other")
    )
    assert f"customer `{customer}` not found in account `acct_other`" in message


def test_customer_in_two_accounts_needs_account(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    warehouse.put(
        "customers",
        {"id": customer, "object": "customer"},
        account_id=f"acct_2_{warehouse.suffix}",
    )
    assert "pass --account" in rejected(db, ask(customer, "refund", charge_id="ch_x"))


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "usd", "the amount must be positive"),
        ("-5", "usd", "the amount must be positive"),
        ("12.505", "usd", "USD allows at most 2 decimal places"),
        ("ten", "usd", "invalid amount `ten`"),
        ("5", "eur", "invalid currency `eur`: charge"),
        ("5", "dollars", "invalid currency `dollars`"),
    ],
)
def test_refund_amount_errors(db, warehouse, enabled_agent, amount, currency, message):
    customer = warehouse.customer()
    charge = warehouse.charge(customer)
    assert message in rejected(
        db, ask(customer, "refund", charge_id=charge, amount=amount, currency=currency)
    )


def test_zero_decimal_currency_rejects_decimals(db, warehouse, enabled_agent):
    customer = warehouse.customer(currency="jpy")
    assert "JPY allows at most 0 decimal places" in rejected(
        db, ask(customer, "apply_credit", amount="100.5", currency="jpy")
    )


def test_refund_larger_than_refundable(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000, amount_refunded=1000)
    message = rejected(
        db, ask(customer, "refund", charge_id=charge, amount="40.01", currency="usd")
    )
    assert "refund of 40.01 USD exceeds the 40.00 USD still refundable" in message


def test_refund_counts_stored_refunds(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    warehouse.put(
        "refunds",
        {
            "id": f"re_{warehouse.suffix}",
            "object": "refund",
            "charge": charge,
            "amount": 3000,
            "status": "succeeded",
            "created": 1_700_000_200,
        },
    )
    message = rejected(db, ask(customer, "refund", charge_id=charge, amount="25.00"))
    assert "exceeds the 20.00 USD still refundable" in message


def test_refund_of_fully_refunded_charge(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(
        customer, amount=5000, amount_refunded=5000, refunded=True
    )
    assert "already fully refunded" in rejected(
        db, ask(customer, "refund", charge_id=charge)
    )


def test_refund_of_failed_charge(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, status="failed", paid=False)
    assert "only a succeeded charge can be refunded" in rejected(
        db, ask(customer, "refund", charge_id=charge)
    )


def test_charge_of_another_customer(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    other = warehouse.customer(name="cus_other")
    charge = warehouse.charge(other)
    message = rejected(db, ask(customer, "refund", charge_id=charge))
    assert f"charge `{charge}` does not belong to customer `{customer}`" in message


def test_charge_of_another_account(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge_id = f"ch_elsewhere_{warehouse.suffix}"
    warehouse.put(
        "charges",
        {
            "id": charge_id,
            "customer": customer,
            "amount": 100,
            "currency": "usd",
            "status": "succeeded",
        },
        account_id="acct_elsewhere",
    )
    message = rejected(db, ask(customer, "refund", charge_id=charge_id))
    assert (
        f"charge `{charge_id}` not found in account `{warehouse.account_id}`" in message
    )


def test_subscription_of_another_customer(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    other = warehouse.customer(name="cus_other")
    subscription = warehouse.subscription(other)
    message = rejected(
        db, ask(customer, "cancel_at_period_end", subscription_id=subscription)
    )
    assert "does not belong to customer" in message


def test_subscription_not_found(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    message = rejected(
        db, ask(customer, "extend_trial", subscription_id="sub_missing", days=3)
    )
    assert "subscription `sub_missing` not found" in message


@pytest.mark.parametrize("request_type", ["cancel_at_period_end", "cancel_immediately"])
def test_cancel_of_canceled_subscription(db, warehouse, enabled_agent, request_type):
    customer = warehouse.customer()
    subscription = warehouse.subscription(customer, status="canceled")
    message = rejected(db, ask(customer, request_type, subscription_id=subscription))
    assert "is already canceled" in message


@pytest.mark.parametrize("request_type", ["cancel_at_period_end", "cancel_immediately"])
def test_cancel_of_subscription_set_to_cancel(
    db, warehouse, enabled_agent, request_type
):
    customer = warehouse.customer()
    subscription = warehouse.subscription(customer, cancel_at_period_end=True)
    message = rejected(db, ask(customer, request_type, subscription_id=subscription))
    assert "is already set to cancel" in message


def test_extend_trial_of_canceled_subscription(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    subscription = warehouse.subscription(customer, status="incomplete_expired")
    assert "is already canceled" in rejected(
        db, ask(customer, "extend_trial", subscription_id=subscription, days=3)
    )


def test_extend_trial_accepts_limits(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    subscription = warehouse.subscription(customer, status="trialing")
    request = queue.submit(
        db, ask(customer, "extend_trial", subscription_id=subscription, days=730)
    )
    assert request.days == 730


def test_credit_in_another_currency_than_customer(db, warehouse, enabled_agent):
    customer = warehouse.customer(currency="eur")
    message = rejected(db, ask(customer, "apply_credit", amount="5.00", currency="usd"))
    assert "is billed in eur" in message


def test_refund_latest_payment_without_payment(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    subscription = warehouse.subscription(customer)
    message = rejected(
        db,
        ask(
            customer,
            "cancel_immediately",
            subscription_id=subscription,
            refund_latest_payment=True,
        ),
    )
    assert "has no succeeded payment to refund" in message


def test_second_open_request_for_same_object(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    first = queue.submit(db, ask(customer, "refund", charge_id=charge, amount="10.00"))

    message = rejected(db, ask(customer, "refund", charge_id=charge, amount="5.00"))
    assert f"request {first.id} is already open for refund of `{charge}`" in message

    queue.reject(db, first.id, by="ana", note="duplicate")
    second = queue.submit(db, ask(customer, "refund", charge_id=charge, amount="5.00"))
    assert second.status == "pending"


def test_second_cancellation_with_refund(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    subscription = warehouse.subscription(customer)
    first = queue.submit(
        db,
        ask(
            customer,
            "cancel_immediately",
            subscription_id=subscription,
            charge_id=charge,
        ),
    )

    message = rejected(
        db, ask(customer, "cancel_immediately", subscription_id=subscription)
    )

    assert (
        f"request {first.id} is already open for cancel_immediately of "
        f"`{subscription}`" in message
    )


def test_refund_defaults_to_remaining_amount(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000, amount_refunded=1500)
    request = queue.submit(db, ask(customer, "refund", charge_id=charge))
    assert request.amount_minor == 3500
    assert request.currency == "usd"


def test_company_resolved_and_checked(db, warehouse, enabled_agent):
    customer = warehouse.customer()
    charge = warehouse.charge(customer)
    company_id = f"co_{warehouse.suffix}"
    db.execute(
        "insert into halo.companies (id, name, stripe_customer_id) values (%s, 'Acme', %s)",
        (company_id, customer),
    )
    request = queue.submit(db, ask(customer, "refund", charge_id=charge, amount="1.00"))
    assert request.company_id == company_id

    other = warehouse.customer(name="cus_b")
    other_charge = warehouse.charge(other, name="ch_b")
    message = rejected(
        db, ask(other, "refund", charge_id=other_charge, company_id=company_id)
    )
    assert f"company `{company_id}` is not linked to customer `{other}`" in message
