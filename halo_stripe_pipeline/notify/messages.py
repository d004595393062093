"""Render the Slack text for one Stripe event (pure functions).

A message names the company (when one matches), the customer, the amount
with its currency in major units, and the Stripe object id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from halo_stripe_pipeline.money import InvalidAmount, format_minor

# Event type -> headline of its message. These are the events that post.
HEADLINES = {
    "customer.created": "New Stripe customer",
    "customer.subscription.created": "New subscription",
    "customer.subscription.deleted": "Subscription canceled",
    "charge.succeeded": "Payment received",
    "charge.refunded": "Charge refunded",
    "invoice.payment_failed": "Invoice payment failed",
}

NOTIFICATION_TYPE = "stripe_event"


@dataclass(frozen=True)
class Party:
    """The parties an event concerns: the Stripe customer and the matched company."""

    customer_id: str | None
    customer_name: str | None
    customer_email: str | None
    company_name: str | None


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_amount(amount: Any, currency: Any) -> str | None:
    """Return `12.50 USD` (or `1000 JPY`) for minor units, None when either is missing."""
    if (
        not isinstance(amount, int)
        or isinstance(amount, bool)
        or not isinstance(currency, str)
    ):
        return None
    try:
        return format_minor(amount, currency)
    except InvalidAmount:
        return None


def customer_label(party: Party) -> str:
    if party.customer_name and party.customer_email:
        label = f"{party.customer_name} ({party.customer_email})"
    else:
        label = (
            party.customer_name
            or party.customer_email
            or party.customer_id
            or "unknown customer"
        )
    return escape(label)


def _billing_period(price: Mapping[str, Any]) -> str | None:
    """Return `month` or `3 months` for a price or a legacy plan."""
    recurring = price.get("recurring")
    source = recurring if isinstance(recurring, Mapping) else price
    interval = source.get("interval")
    count = source.get("interval_count")
    if not isinstance(interval, str) or not interval:
        return None
    if not isinstance(count, int) or isinstance(count, bool) or count == 1:
        return interval
    return f"{count} {interval}s"


def _subscription_amount(
    subscription: Mapping[str, Any],
) -> tuple[int | None, str | None, str | None]:
    """Return the recurring total, its currency and billing period.

    The period is None when the items bill over different periods, because
    their sum is then not an amount per any one period.
    """
    items = subscription.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    total = 0
    currency = subscription.get("currency")
    periods: set[str | None] = set()
    found = False
    for item in data or []:
        price = (
            item.get("price")
            if isinstance(item.get("price"), Mapping)
            else item.get("plan")
        )
        if not isinstance(price, Mapping):
            continue
        unit = price.get("unit_amount", price.get("amount"))
        # A null quantity bills as 1, as in the MRR rules.
        quantity = item.get("quantity")
        if quantity is None:
            quantity = 1
        if not isinstance(unit, int) or not isinstance(quantity, int):
            continue
        total += unit * quantity
        found = True
        currency = currency or price.get("currency")
        periods.add(_billing_period(price))
    period = periods.pop() if len(periods) == 1 else None
    return (total if found else None), currency, period


def event_amount(event_type: str, obj: Mapping[str, Any]) -> str | None:
    """Return the formatted amount the message for `event_type` shows."""
    currency = obj.get("currency")
    if event_type.startswith("customer.subscription."):
        total, currency, interval = _subscription_amount(obj)
        formatted = format_amount(total, currency)
        return f"{formatted}/{interval}" if formatted and interval else formatted
    if event_type == "charge.succeeded":
        return format_amount(obj.get("amount"), currency)
    if event_type == "charge.refunded":
        refunded = format_amount(obj.get("amount_refunded"), currency)
        total = format_amount(obj.get("amount"), currency)
        return f"{refunded} of {total}" if refunded and total else refunded
    if event_type == "invoice.payment_failed":
        return format_amount(obj.get("amount_due"), currency)
    return None


def render_message(event_type: str, obj: Mapping[str, Any], party: Party) -> str:
    """Return the Slack mrkdwn text for one event."""
    headline = HEADLINES[event_type]
    parts = [f"*{headline}*:", customer_label(party)]
    if party.company_name:
        parts.append(f"at {escape(party.company_name)}")
    amount = event_amount(event_type, obj)
    if amount:
        parts.append(f"— {amount}")
    parts.append(f"`{escape(str(obj.get('id')))}`")
    return " ".join(parts)
