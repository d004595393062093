"""The Slack outbox: the switch, queueing applied events, rendering and sending.

The job that applies events queues one `halo.slack_outbox` row per event
that posts, in the same transaction, so a message is neither lost nor
queued twice. The text is rendered when the message is first sent: by then
the marts have usually been rebuilt, so the company match is the one the
marts show.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg

from halo_stripe_pipeline.notify.messages import (
    HEADLINES,
    NOTIFICATION_TYPE,
    Party,
    render_message,
)
from halo_stripe_pipeline.notify.slack import (
    MAX_ATTEMPTS,
    Poster,
    SlackPostError,
    poster_from_env,
    retry_delay,
    slack_configured,
)

log = logging.getLogger(__name__)

# One sender at a time, so two runs never post the same message twice.
_SENDER_LOCK_ID = 0x51AC0B0C


def is_enabled(
    conn: psycopg.Connection, notification_type: str = NOTIFICATION_TYPE
) -> bool:
    row = conn.execute(
        "select is_enabled from halo.notification_settings where notification_type = %s",
        (notification_type,),
    ).fetchone()
    return bool(row and row[0])


def set_enabled(
    conn: psycopg.Connection, enabled: bool, notification_type: str = NOTIFICATION_TYPE
) -> None:
    """Switch a notification type on or off."""
    conn.execute(
        "insert into halo.notification_settings (notification_type, is_enabled) values (%s, %s)"
        " on conflict (notification_type) do update set is_enabled = excluded.is_enabled,"
        " updated_at = now()",
        (notification_type, enabled),
    )


def enqueue_for_events(
    conn: psycopg.Connection, events: Sequence[tuple[str, str]]
) -> int:
    """Queue a message for each applied event that posts; return how many were new.

    `events` contains (event id, account id) pairs. Nothing is queued while the
    `stripe_event` type is off or Slack is not configured, so switching
    either on later does not flood the channel with old events.
    """
    if not events or not is_enabled(conn) or not slack_configured():
        return 0
    accounts = dict(events)
    rows = conn.execute(
        "select id, type, object_id from stripe_raw.webhook_events"
        " where id = any(%s) and type = any(%s) order by seq",
        (list(accounts), list(HEADLINES)),
    ).fetchall()
    queued = 0
    for event_id, event_type, object_id in rows:
        cursor = conn.execute(
            "insert into halo.slack_outbox"
            " (notification_type, dedupe_key, account_id, event_id, event_type, object_id)"
            " values (%s, %s, %s, %s, %s, %s) on conflict (dedupe_key) do nothing",
            (
                NOTIFICATION_TYPE,
                event_id,
                accounts[event_id],
                event_id,
                event_type,
                object_id,
            ),
        )
        queued += cursor.rowcount
    if queued:
        log.info("queued %d Slack messages", queued)
    return queued


def _customer_id(obj: Mapping[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    if isinstance(customer, Mapping):
        return customer.get("id")
    return customer if isinstance(customer, str) else None


def _stored_customer(
    conn: psycopg.Connection, account_id: str, customer_id: str
) -> Mapping[str, Any]:
    row = conn.execute(
        "select data from stripe_raw.customers where account_id = %s and id = %s",
        (account_id, customer_id),
    ).fetchone()
    return row[0] if row else {}


def matched_company(
    conn: psycopg.Connection, account_id: str, customer_id: str | None
) -> str | None:
    """Return the name of the company the marts assign to the customer.

    Reads `analytics.stripe_customers`, so the match follows the account's
    `customer_id_field` setting exactly as the marts apply it. A customer the
    marts do not show yet (or a warehouse without marts) has no company.
    """
    if not customer_id:
        return None
    exists = conn.execute(
        "select to_regclass('analytics.stripe_customers')"
    ).fetchone()[0]
    if exists is None:
        return None
    row = conn.execute(
        "select c.name from analytics.stripe_customers m"
        " join halo.companies c on c.id = m.company_id"
        " where m.account_id = %s and m.customer_id = %s",
        (account_id, customer_id),
    ).fetchone()
    return row[0] if row else None


def party_for(
    conn: psycopg.Connection, account_id: str, obj: Mapping[str, Any]
) -> Party:
    """Collect the customer and company an event's object is about."""
    customer_id = _customer_id(obj)
    customer: Mapping[str, Any] = obj if obj.get("object") == "customer" else {}
    if not customer and customer_id:
        customer = _stored_customer(conn, account_id, customer_id)
    billing = obj.get("billing_details")
    billing = billing if isinstance(billing, Mapping) else {}
    name = customer.get("name") or obj.get("customer_name") or billing.get("name")
    email = (
        customer.get("email")
        or obj.get("customer_email")
        or billing.get("email")
        or obj.get("receipt_email")
    )
    return Party(
        customer_id=customer_id,
        customer_name=name,
        customer_email=email,
        company_name=matched_company(conn, account_id, customer_id),
    )


def render_queued(
    conn: psycopg.Connection, message_id: int, event_id: str, account_id: str
) -> str:
    """Render and store the text of a queued message from its stored event."""
    row = conn.execute(
        "select type, payload -> 'data' -> 'object' from stripe_raw.webhook_events where id = %s",
        (event_id,),
    ).fetchone()
    if row is None:
        raise LookupError(
            f"event `{event_id}` of Slack message {message_id} is not stored"
        )
    event_type, obj = row
    text = render_message(event_type, obj, party_for(conn, account_id, obj))
    conn.execute(
        "update halo.slack_outbox set text = %s where id = %s", (text, message_id)
    )
    return text


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    pending: int = 0


def send_pending(
    conn: psycopg.Connection,
    poster: Poster | None = None,
    *,
    now: datetime | None = None,
    limit: int = 200,
) -> SendReport:
    """Post due messages in queue order; stop at the first outage.

    After a transient failure the rest wait for the next round, so an outage
    costs one request per round instead of one per message, and messages keep
    their order. A message Slack rejects for itself (HTTP 4xx) is retried
    later without holding up the others. `conn` must be in autocommit mode:
    each outcome commits at once.
    """
    report = SendReport()
    poster = poster or poster_from_env()
    if poster is None:
        log.info("Slack is not configured; leaving queued messages in the outbox")
        return report
    locked = conn.execute(
        "select pg_try_advisory_lock(%s)", (_SENDER_LOCK_ID,)
    ).fetchone()[0]
    if not locked:
        log.info("another sender is posting the Slack outbox; skipping this round")
        return report
    try:
        _send_due(conn, poster, now or datetime.now(timezone.utc), limit, report)
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (_SENDER_LOCK_ID,))
    return report


def _send_due(
    conn: psycopg.Connection,
    poster: Poster,
    current: datetime,
    limit: int,
    report: SendReport,
) -> None:
    due = conn.execute(
        "select id, text, attempts, event_id, coalesce(account_id, '') from halo.slack_outbox"
        " where status = 'pending' and next_attempt_at <= %s order by id limit %s",
        (current, limit),
    ).fetchall()
    for message_id, text, attempts, event_id, account_id in due:
        if text is None:
            text = render_queued(conn, message_id, event_id, account_id)
        try:
            poster(text)
        except SlackPostError as error:
            retry_at = _record_failure(
                conn, message_id, attempts + 1, error, current, report
            )
            if error.transient:
                # Hold the whole queue until the retry, so order is kept.
                conn.execute(
                    "update halo.slack_outbox set next_attempt_at = greatest(next_attempt_at, %s)"
                    " where status = 'pending'",
                    (retry_at,),
                )
                break
            continue
        conn.execute(
            "update halo.slack_outbox set status = 'sent', sent_at = now(),"
            " attempts = attempts + 1, last_error = null where id = %s",
            (message_id,),
        )
        report.sent += 1
    report.pending = conn.execute(
        "select count(*) from halo.slack_outbox where status = 'pending'"
    ).fetchone()[0]
    if report.sent or report.failed:
        log.info(
            "Slack outbox: %d sent, %d failed, %d still pending",
            report.sent,
            report.failed,
            report.pending,
        )


def _record_failure(
    conn: psycopg.Connection,
    message_id: int,
    attempts: int,
    error: SlackPostError,
    now: datetime,
    report: SendReport,
) -> datetime:
    gave_up = attempts >= MAX_ATTEMPTS
    retry_at = now + retry_delay(attempts, error.retry_after)
    conn.execute(
        "update halo.slack_outbox set status = %s, attempts = %s, last_error = %s,"
        " next_attempt_at = %s where id = %s",
        (
            "failed" if gave_up else "pending",
            attempts,
            str(error)[:1000],
            retry_at,
            message_id,
        ),
    )
    report.failed += 1
    if gave_up:
        report.gave_up += 1
        log.error(
            "gave up Slack message %d after %d attempts: %s",
            message_id,
            attempts,
            error,
        )
    else:
        log.warning(
            "posting Slack message %d failed (attempt %d): %s",
            message_id,
            attempts,
            error,
        )
    return retry_at
