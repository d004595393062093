"""The Slack outbox: which events post, who they are about, and the switch.

Messages are queued in `halo.slack_outbox` by the job that applies the
events, in its transaction, one row per event id; `slack.py` posts them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from halo_stripe_pipeline.notify.messages import HEADLINES, NOTIFICATION_TYPE, Party, render_message
from halo_stripe_pipeline.notify.slack import slack_configured

log = logging.getLogger(__name__)


def is_enabled(conn: psycopg.Connection, notification_type: str = NOTIFICATION_TYPE) -> bool:
    row = conn.execute(
        "select is_enabled from halo.notification_settings where notification_type = %s",
        (notification_type,),
    ).fetchone()
    return bool(row and row[0])


def set_enabled(conn: psycopg.Connection, enabled: bool, notification_type: str = NOTIFICATION_TYPE) -> None:
    """Switch a notification type on or off."""
    conn.execute(
        "insert into halo.notification_settings (notification_type, is_enabled) values (%s, %s)"
        " on conflict (notification_type) do update set is_enabled = excluded.is_enabled,"
        " updated_at = now()",
        (notification_type, enabled),
    )


def _customer_id(obj: Mapping[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        return customer.get("id")
    return customer if isinstance(customer, str) else None


def _stored_customer(conn: psycopg.Connection, account_id: str, customer_id: str) -> Mapping[str, Any]:
    row = conn.execute(
        "select data from stripe_raw.customers where account_id = %s and id = %s",
        (account_id, customer_id),
    ).fetchone()
    return row[0] if row else {}


# The company field each `customer_id_field` setting compares, and the
# customer value it is compared with (see halo_stripe_pipeline/settings.py).
_MATCH_SQL = {
    "email": "lower(c.email) = lower(%(email)s)",
    "domain": "lower(c.domain) = lower(split_part(%(email)s, '@', 2))",
    "name": "lower(c.name) = lower(%(name)s)",
    "id": "c.id = %(customer_id)s",
    "stripe_customer_id": "c.stripe_customer_id = %(customer_id)s",
}


def match_company(
    conn: psycopg.Connection, account_id: str, customer_id: str | None, email: str | None, name: str | None
) -> str | None:
    """Return the name of the company the account's settings match to the customer.

    Only companies of the workspace in the account's settings row match;
    with no settings row nothing matches.
    """
    settings = conn.execute(
        "select workspace_id, customer_id_field from halo.integration_settings where account_id = %s",
        (account_id,),
    ).fetchone()
    if settings is None:
        return None
    workspace_id, field = settings
    params = {"workspace": workspace_id, "email": email, "name": name, "customer_id": customer_id}
    if field in _MATCH_SQL:
        condition = _MATCH_SQL[field]
    elif field.startswith("traits."):
        condition = "c.traits ->> %(trait)s = %(customer_id)s"
        params["trait"] = field.removeprefix("traits.")
    else:
        log.warning("unknown customer_id_field %r for account %s; no company matched", field, account_id)
        return None
    row = conn.execute(
        f"select c.name from halo.companies c where c.workspace_id = %(workspace)s and {condition}"
        " order by c.id limit 1",
        params,
    ).fetchone()
    return row[0] if row else None


def party_for(conn: psycopg.Connection, account_id: str, obj: Mapping[str, Any]) -> Party:
    """Collect the customer and company an event's object is about."""
    customer_id = _customer_id(obj)
    customer = obj if obj.get("object") == "customer" else {}
    if not customer and customer_id:
        customer = _stored_customer(conn, account_id, customer_id)
    billing = obj.get("billing_details") if isinstance(obj.get("billing_details"), Mapping) else {}
    name = customer.get("name") or obj.get("customer_name") or billing.get("name")
    email = customer.get("email") or obj.get("customer_email") or billing.get("email") or obj.get("receipt_email")
    company = match_company(conn, account_id, customer_id, email, name)
    return Party(customer_id=customer_id, customer_name=name, customer_email=email, company_name=company)


def enqueue_for_events(conn: psycopg.Connection, events: Sequence[tuple[str, str]]) -> int:
    """Queue a message for each applied event that posts; return how many were new.

    `events` holds (event id, account id) pairs. Nothing is queued while the
    `stripe_event` type is off or Slack is not configured, so switching
    either on later does not flood the channel with old events.
    """
    if not events or not is_enabled(conn) or not slack_configured():
        return 0
    accounts = dict(events)
    rows = conn.execute(
        "select id, type, payload -> 'data' -> 'object'"
        " from stripe_raw.webhook_events where id = any(%s) and type = any(%s) order by seq",
        (list(accounts), list(HEADLINES)),
    ).fetchall()
    queued = 0
    for event_id, event_type, obj in rows:
        account_id = accounts[event_id]
        text = render_message(event_type, obj, party_for(conn, account_id, obj))
        cursor = conn.execute(
            "insert into halo.slack_outbox"
            " (notification_type, dedupe_key, account_id, event_id, object_id, text)"
            " values (%s, %s, %s, %s, %s, %s) on conflict (dedupe_key) do nothing",
            (NOTIFICATION_TYPE, event_id, account_id, event_id, obj.get("id"), text),
        )
        queued += cursor.rowcount
    if queued:
        log.info("queued %d Slack messages", queued)
    return queued
