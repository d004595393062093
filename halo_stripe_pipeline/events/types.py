"""The Stripe event types the product processes, and the object each refers to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Event types applied to `stripe_raw`; every other type is stored and ignored.
PROCESSED_EVENT_TYPES = frozenset(
    {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "charge.succeeded",
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_failed",
    }
)

# Event types that change the integration rather than a raw table (see
# `actions.py`). They apply even while the account's ingest is off.
ACTION_EVENT_TYPES = frozenset({"account.application.deauthorized"})

# Event types whose object no longer exists in Stripe once they are sent.
DELETION_EVENT_TYPES = frozenset({"customer.deleted"})


# The last second of year 9999: Python's datetime, which applies events,
# cannot go past it, so a later `created` would fail every apply run.
MAX_CREATED = 253_402_300_799


class NotAnEventError(ValueError):
    """A verified body that is not a Stripe event; the message is safe to return."""


def check_event(body: Any) -> Mapping[str, Any]:
    """Return `body` if it has the fields of a Stripe event, else raise."""
    if not isinstance(body, dict) or body.get("object") != "event":
        raise NotAnEventError("body is not a Stripe event")
    event_id = body.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise NotAnEventError("event has no id")
    if not isinstance(body.get("type"), str) or not body["type"]:
        raise NotAnEventError("event has no type")
    created = body.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise NotAnEventError("event has no integer created time")
    if not 0 <= created <= MAX_CREATED:
        raise NotAnEventError("event created time is out of range")
    data = body.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise NotAnEventError("event has no data.object")
    return body


def event_object(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event["data"]["object"]  # type: ignore[no-any-return]


def object_id(event: Mapping[str, Any]) -> str | None:
    """Return the id of the event's object; None for objects such as upcoming invoices."""
    value = event_object(event).get("id")
    return value if isinstance(value, str) and value else None


def is_processed(event: Mapping[str, Any]) -> bool:
    """True when the event type is applied and its object has an id."""
    if event["type"] in ACTION_EVENT_TYPES:
        return True
    return event["type"] in PROCESSED_EVENT_TYPES and object_id(event) is not None


def event_account(event: Mapping[str, Any]) -> str | None:
    """Return the connected account of a Connect event, None for the platform's own."""
    account = event.get("account")
    return account if isinstance(account, str) and account else None
