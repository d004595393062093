"""Validation of a submitted request against the warehouse.

The warehouse can lag Stripe by a sync interval, so what matters for money
(refundable amount, subscription state) is checked again live from Stripe
when the request executes (see `execution.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg

from halo_stripe_pipeline.billing.models import (
    APPLY_CREDIT,
    CANCEL_AT_PERIOD_END,
    CANCEL_IMMEDIATELY,
    EXTEND_TRIAL,
    MAX_TRIAL_EXTENSION_DAYS,
    MIN_TRIAL_EXTENSION_DAYS,
    REFUND,
    REQUEST_TYPES,
    Submission,
    ValidationError,
)
from halo_stripe_pipeline.money import (
    InvalidAmount,
    format_minor,
    normalize_currency,
    parse_major_amount,
)

# Subscription states Stripe cannot update any more.
ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")

# The optional fields each type needs (`required`) or may carry (`allowed`).
FIELD_RULES: dict[str, dict[str, tuple[str, ...]]] = {
    REFUND: {
        "required": ("charge_id",),
        "allowed": ("charge_id", "amount", "currency"),
    },
    CANCEL_AT_PERIOD_END: {
        "required": ("subscription_id",),
        "allowed": ("subscription_id",),
    },
    CANCEL_IMMEDIATELY: {
        "required": ("subscription_id",),
        "allowed": (
            "subscription_id",
            "charge_id",
            "amount",
            "currency",
            "refund_latest_payment",
        ),
    },
    APPLY_CREDIT: {
        "required": ("amount", "currency"),
        "allowed": ("amount", "currency"),
    },
    EXTEND_TRIAL: {
        "required": ("subscription_id", "days"),
        "allowed": ("subscription_id", "days"),
    },
}

OPTION_NAMES = {
    "charge_id": "--charge",
    "subscription_id": "--subscription",
    "amount": "--amount",
    "currency": "--currency",
    "days": "--days",
    "refund_latest_payment": "--refund-latest-payment",
}


@dataclass(frozen=True)
class ValidRequest:
    """A submission that passed validation, with everything resolved."""

    request_type: str
    account_id: str
    company_id: str | None
    customer_id: str
    charge_id: str | None
    subscription_id: str | None
    amount_minor: int | None
    currency: str | None
    days: int | None
    reason: str
    summary: str
    requested_by: str

    @property
    def target_object(self) -> str:
        # The same order as the unique index of open requests.
        return self.subscription_id or self.charge_id or self.customer_id


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = str(value).strip()
    return stripped or None


def normalize_submission(submission: Submission) -> Submission:
    """Strip text fields and lower-case the type and currency."""
    return replace(
        submission,
        request_type=(_clean(submission.request_type) or "").lower(),
        customer_id=_clean(submission.customer_id) or "",
        reason=_clean(submission.reason) or "",
        summary=_clean(submission.summary) or "",
        requested_by=_clean(submission.requested_by) or "",
        account_id=_clean(submission.account_id),
        company_id=_clean(submission.company_id),
        charge_id=_clean(submission.charge_id),
        subscription_id=_clean(submission.subscription_id),
        amount=_clean(submission.amount),
        currency=(_clean(submission.currency) or "").lower() or None,
    )


def _field_is_set(submission: Submission, name: str) -> bool:
    if name == "amount":
        return submission.amount is not None or submission.amount_minor is not None
    if name == "refund_latest_payment":
        return submission.refund_latest_payment
    return getattr(submission, name) is not None


def check_fields(submission: Submission) -> None:
    """Raise `ValidationError` for a missing or inapplicable field of the type."""
    if submission.request_type not in REQUEST_TYPES:
        raise ValidationError(
            f"invalid request type `{submission.request_type}`: expected one of "
            + ", ".join(REQUEST_TYPES)
        )
    for name, option in (
        ("customer_id", "--customer"),
        ("reason", "--reason"),
        ("summary", "--summary"),
        ("requested_by", "--requested-by"),
    ):
        if not getattr(submission, name):
            raise ValidationError(f"{option} is required for every request")
    rules = FIELD_RULES[submission.request_type]
    for name in rules["required"]:
        if not _field_is_set(submission, name):
            raise ValidationError(
                f"{OPTION_NAMES[name]} is required for {submission.request_type}"
            )
    for name in OPTION_NAMES:
        if _field_is_set(submission, name) and name not in rules["allowed"]:
            raise ValidationError(
                f"{OPTION_NAMES[name]} does not apply to {submission.request_type}"
            )
    if submission.charge_id and submission.refund_latest_payment:
        raise ValidationError(
            "pass either --charge or --refund-latest-payment, not both"
        )
    if submission.request_type == CANCEL_IMMEDIATELY and _field_is_set(
        submission, "amount"
    ):
        if not (submission.charge_id or submission.refund_latest_payment):
            raise ValidationError(
                "--amount for cancel_immediately needs --charge or --refund-latest-payment"
            )
    if submission.days is not None:
        days = submission.days
        if not MIN_TRIAL_EXTENSION_DAYS <= days <= MAX_TRIAL_EXTENSION_DAYS:
            raise ValidationError(
                f"invalid --days {days}: a trial extension must be between "
                f"{MIN_TRIAL_EXTENSION_DAYS} and {MAX_TRIAL_EXTENSION_DAYS} days"
            )


def parse_amount(submission: Submission, currency: str) -> int | None:
    """Return the submitted amount in minor units of `currency`, or None."""
    if submission.amount_minor is not None:
        if isinstance(submission.amount_minor, bool) or not isinstance(
            submission.amount_minor, int
        ):
            raise ValidationError(
                f"invalid amount_minor `{submission.amount_minor}`: expected an integer"
            )
        if submission.amount_minor <= 0:
            raise ValidationError(
                f"invalid amount_minor {submission.amount_minor}: the amount must be positive"
            )
        return submission.amount_minor
    if submission.amount is None:
        return None
    try:
        return parse_major_amount(submission.amount, currency)
    except InvalidAmount as error:
        raise ValidationError(str(error)) from None


def _fetch_object(
    conn: psycopg.Connection, table: str, account_id: str, object_id: str
) -> dict[str, Any] | None:
    row = conn.execute(
        f"select data, is_deleted from stripe_raw.{table} where account_id = %s and id = %s",
        (account_id, object_id),
    ).fetchone()
    if row is None or row[1]:
        return None
    return row[0]  # type: ignore[no-any-return]


def resolve_account(conn: psycopg.Connection, submission: Submission) -> str:
    """Return the account of the customer, checking a given `account_id`."""
    rows = conn.execute(
        "select account_id from stripe_raw.customers where id = %s and not is_deleted order by account_id",
        (submission.customer_id,),
    ).fetchall()
    accounts = [row[0] for row in rows]
    if submission.account_id:
        if submission.account_id not in accounts:
            raise ValidationError(
                f"customer `{submission.customer_id}` not found in account "
                f"`{submission.account_id}`; check the ids or sync the account"
            )
        return submission.account_id
    if not accounts:
        raise ValidationError(
            f"customer `{submission.customer_id}` not found in the warehouse; "
            "check the id or sync its Stripe account"
        )
    if len(accounts) > 1:
        raise ValidationError(
            f"customer `{submission.customer_id}` exists in accounts "
            f"{', '.join(accounts)}; pass --account"
        )
    return accounts[0]


def resolve_company(
    conn: psycopg.Connection, account_id: str, submission: Submission
) -> str | None:
    """Return the Halo company of the customer, checking a given `company_id`.

    A company matches when its `stripe_customer_id` is the customer, or when
    it has none and its email equals the customer's (case-insensitive). Only
    companies in the workspace of the account's integration settings count,
    or any workspace when the account has no settings row yet.
    """
    rows = conn.execute(
        """
        select c.id
        from halo.companies c
        left join halo.integration_settings s on s.account_id = %(account)s
        left join stripe_raw.customers cu
          on cu.account_id = %(account)s and cu.id = %(customer)s
        where (s.account_id is null or s.workspace_id = c.workspace_id)
          and (
            c.stripe_customer_id = %(customer)s
            or (
              c.stripe_customer_id is null
              and lower(c.email) = lower(cu.data ->> 'email')
            )
          )
        order by c.id
        """,
        {"account": account_id, "customer": submission.customer_id},
    ).fetchall()
    companies = [row[0] for row in rows]
    if submission.company_id:
        if submission.company_id not in companies:
            raise ValidationError(
                f"company `{submission.company_id}` is not linked to customer "
                f"`{submission.customer_id}` of account `{account_id}`"
            )
        return submission.company_id
    return companies[0] if len(companies) == 1 else None


def refundable_minor(
    conn: psycopg.Connection, account_id: str, charge: dict[str, Any]
) -> int:
    """Return what remains refundable on a charge according to the warehouse.

    Takes the larger of the charge's `amount_refunded` and the sum of its
    stored refunds, because either may have been synced more recently.
    """
    row = conn.execute(
        """
        select coalesce(sum((data ->> 'amount')::bigint), 0)
        from stripe_raw.refunds
        where account_id = %s and data ->> 'charge' = %s and not is_deleted
          and coalesce(data ->> 'status', 'succeeded') in ('succeeded', 'pending')
        """,
        (account_id, charge["id"]),
    ).fetchone()
    stored_refunds = int(row[0]) if row else 0
    refunded = max(int(charge.get("amount_refunded") or 0), stored_refunds)
    return int(charge.get("amount") or 0) - refunded


def check_refund(
    conn: psycopg.Connection,
    account_id: str,
    customer_id: str,
    charge_id: str,
    submission: Submission,
) -> tuple[int, str]:
    """Validate a refund of `charge_id`; return (amount in minor units, currency)."""
    charge = _fetch_object(conn, "charges", account_id, charge_id)
    if charge is None:
        raise ValidationError(
            f"charge `{charge_id}` not found in account `{account_id}`"
        )
    if charge.get("customer") != customer_id:
        raise ValidationError(
            f"charge `{charge_id}` does not belong to customer `{customer_id}`"
        )
    if charge.get("status") != "succeeded" or charge.get("paid") is False:
        raise ValidationError(
            f"charge `{charge_id}` has status `{charge.get('status')}`; only a succeeded charge can be refunded"
        )
    currency = normalize_currency(charge["currency"])
    if submission.currency and submission.currency != currency:
        raise ValidationError(
            f"invalid currency `{submission.currency}`: charge `{charge_id}` is in {currency}"
        )
    remaining = refundable_minor(conn, account_id, charge)
    if remaining <= 0:
        raise ValidationError(f"charge `{charge_id}` is already fully refunded")
    amount = parse_amount(submission, currency)
    if amount is None:
        amount = remaining
    if amount > remaining:
        raise ValidationError(
            f"refund of {format_minor(amount, currency)} exceeds the "
            f"{format_minor(remaining, currency)} still refundable on charge `{charge_id}`"
        )
    return amount, currency


def check_subscription(
    conn: psycopg.Connection,
    account_id: str,
    customer_id: str,
    subscription_id: str,
    request_type: str,
) -> dict[str, Any]:
    """Validate the subscription a request acts on and return it."""
    subscription = _fetch_object(conn, "subscriptions", account_id, subscription_id)
    if subscription is None:
        raise ValidationError(
            f"subscription `{subscription_id}` not found in account `{account_id}`"
        )
    if subscription.get("customer") != customer_id:
        raise ValidationError(
            f"subscription `{subscription_id}` does not belong to customer `{customer_id}`"
        )
    status = subscription.get("status")
    if status in ENDED_SUBSCRIPTION_STATUSES:
        raise ValidationError(
            f"subscription `{subscription_id}` is already canceled (status `{status}`)"
        )
    if request_type in (CANCEL_AT_PERIOD_END, CANCEL_IMMEDIATELY):
        if subscription.get("cancel_at_period_end") or subscription.get("cancel_at"):
            raise ValidationError(
                f"subscription `{subscription_id}` is already set to cancel"
            )
    return subscription


def latest_payment_of(
    conn: psycopg.Connection, account_id: str, subscription_id: str
) -> str | None:
    """Return the newest succeeded charge paying an invoice of the subscription."""
    row = conn.execute(
        """
        with invoices as (
            select
                data ->> 'payment_intent' as payment_intent_id,
                coalesce(data -> 'charge' ->> 'id', data ->> 'charge') as charge_id,
                id as invoice_id
            from stripe_raw.invoices
            where account_id = %(account)s and data ->> 'subscription' = %(subscription)s
        )
        select ch.id
        from stripe_raw.charges ch
        join invoices i
          on ch.id = i.charge_id
          or ch.data ->> 'invoice' = i.invoice_id
          or ch.data ->> 'payment_intent' = i.payment_intent_id
        where ch.account_id = %(account)s
          and not ch.is_deleted
          and ch.data ->> 'status' = 'succeeded'
        order by ch.created_at desc nulls last, ch.id desc
        limit 1
        """,
        {"account": account_id, "subscription": subscription_id},
    ).fetchone()
    return row[0] if row else None


def check_agent_enabled(conn: psycopg.Connection, agent_id: str) -> None:
    row = conn.execute(
        "select billing_enabled from billing.agents where agent_id = %s", (agent_id,)
    ).fetchone()
    if row is None or not row[0]:
        raise ValidationError(
            f"agent `{agent_id}` does not have billing requests enabled; "
            f"ask the data team to run `halo-stripe billing agents enable {agent_id}`"
        )


def validate(conn: psycopg.Connection, submission: Submission) -> ValidRequest:
    """Check a submission against the warehouse and resolve its ids and amount.

    Raises `ValidationError` with a message naming the field and the fix.
    """
    submission = normalize_submission(submission)
    check_fields(submission)
    if submission.currency:
        try:
            normalize_currency(submission.currency)
        except InvalidAmount as error:
            raise ValidationError(str(error)) from None
    check_agent_enabled(conn, submission.requested_by)
    account_id = resolve_account(conn, submission)
    company_id = resolve_company(conn, account_id, submission)
    customer_id = submission.customer_id
    charge_id = submission.charge_id
    amount: int | None = None
    currency: str | None = None
    kind = submission.request_type

    if kind in (CANCEL_AT_PERIOD_END, CANCEL_IMMEDIATELY, EXTEND_TRIAL):
        assert submission.subscription_id is not None
        check_subscription(
            conn, account_id, customer_id, submission.subscription_id, kind
        )
    if kind == CANCEL_IMMEDIATELY and submission.refund_latest_payment:
        assert submission.subscription_id is not None
        charge_id = latest_payment_of(conn, account_id, submission.subscription_id)
        if charge_id is None:
            raise ValidationError(
                f"subscription `{submission.subscription_id}` has no succeeded payment to refund"
            )
    if kind == REFUND or (kind == CANCEL_IMMEDIATELY and charge_id):
        assert charge_id is not None
        amount, currency = check_refund(
            conn, account_id, customer_id, charge_id, submission
        )
    if kind == APPLY_CREDIT:
        amount, currency = check_credit(conn, account_id, customer_id, submission)

    return ValidRequest(
        request_type=kind,
        account_id=account_id,
        company_id=company_id,
        customer_id=customer_id,
        charge_id=charge_id,
        subscription_id=submission.subscription_id,
        amount_minor=amount,
        currency=currency,
        days=submission.days,
        reason=submission.reason,
        summary=submission.summary,
        requested_by=submission.requested_by,
    )


def check_credit(
    conn: psycopg.Connection, account_id: str, customer_id: str, submission: Submission
) -> tuple[int, str]:
    """Validate a balance credit; the currency must be the customer's, if it has one."""
    customer = _fetch_object(conn, "customers", account_id, customer_id)
    assert customer is not None  # resolve_account found it
    assert submission.currency is not None
    currency = normalize_currency(submission.currency)
    customer_currency = customer.get("currency")
    if customer_currency and normalize_currency(customer_currency) != currency:
        raise ValidationError(
            f"invalid currency `{currency}`: customer `{customer_id}` is billed in "
            f"{customer_currency}, and a balance credit must use that currency"
        )
    amount = parse_amount(submission, currency)
    assert amount is not None
    return amount, currency
