"""Storing verified events in `stripe_raw.webhook_events`.

The receiver and `halo-stripe catch-up` both write through `event_row` and
`INSERT_EVENTS_SQL`, so an event read back from the API and the same event
delivered by webhook collapse into one row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from halo_stripe_pipeline.events.types import (
    event_account,
    event_object,
    is_processed,
    object_id,
)

# One statement for any number of events: arrays in, new ids out. A
# redelivered id (or the same id twice in one batch) is skipped, not updated.
# The arrays go in binary format (`%b`): in text format psycopg escapes each
# element with a regular expression, which cost about a fifth of the
# receiver's CPU per event in a profile of 5,000 deliveries.
INSERT_EVENTS_SQL = """
insert into stripe_raw.webhook_events (
    id, account_id, type, api_version, created_at, livemode,
    object_type, object_id, payload, source, status
)
select
    id, account_id, type, api_version, to_timestamp(created), livemode,
    object_type, object_id, payload::jsonb, source, status
from unnest(
    %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], %b::boolean[],
    %b::text[], %b::text[], %b::text[], %b::text[], %b::text[]
) as incoming(
    id, account_id, type, api_version, created, livemode,
    object_type, object_id, payload, source, status
)
on conflict (id) do nothing
returning id
"""


@dataclass(frozen=True)
class EventRow:
    id: str
    account_id: str | None
    type: str
    api_version: str | None
    created: int
    livemode: bool | None
    object_type: str | None
    object_id: str | None
    payload: str
    source: str
    status: str


def event_row(
    event: Mapping[str, Any],
    payload: str,
    *,
    source: str = "webhook",
    account_id: str | None = None,
) -> EventRow:
    """Describe a checked event for storage; `payload` is its JSON text.

    The status starts as `pending` for a type the product applies and as
    `ignored` for any other type or an object without an id.
    """
    obj = event_object(event)
    livemode = event.get("livemode")
    api_version = event.get("api_version")
    return EventRow(
        id=event["id"],
        account_id=event_account(event) or account_id,
        type=event["type"],
        api_version=api_version if isinstance(api_version, str) else None,
        created=int(event["created"]),
        livemode=livemode if isinstance(livemode, bool) else None,
        object_type=obj.get("object") if isinstance(obj.get("object"), str) else None,
        object_id=object_id(event),
        payload=_jsonb_safe(payload, event),
        source=source,
        status="pending" if is_processed(event) else "ignored",
    )


def _jsonb_safe(payload: str, event: Mapping[str, Any]) -> str:
    """Return `payload`, re-encoded without NUL characters if it has any.

    PostgreSQL's jsonb rejects `\\u0000`, and a delivery that fails to store
    would be retried by Stripe for days; each NUL becomes U+FFFD instead.
    """
    if "\\u0000" not in payload:
        return payload
    return json.dumps(_replace_nul(event), separators=(",", ":"), ensure_ascii=False)


def _replace_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_replace_nul(key): _replace_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_nul(item) for item in value]
    return value


def insert_params(rows: Sequence[EventRow]) -> list[list[Any]]:
    return [
        [row.id for row in rows],
        [row.account_id for row in rows],
        [row.type for row in rows],
        [row.api_version for row in rows],
        [row.created for row in rows],
        [row.livemode for row in rows],
        [row.object_type for row in rows],
        [row.object_id for row in rows],
        [row.payload for row in rows],
        [row.source for row in rows],
        [row.status for row in rows],
    ]


def insert_events(conn: psycopg.Connection, rows: Sequence[EventRow]) -> set[str]:
    """Insert `rows`, skipping ids already stored; return the ids inserted."""
    if not rows:
        return set()
    cursor = conn.execute(INSERT_EVENTS_SQL, insert_params(rows))
    return {record[0] for record in cursor.fetchall()}
