"""Apply pending events from `stripe_raw.webhook_events` to the raw tables.

One call takes a batch of pending events, skipping accounts whose
`ingest_enabled` is off. It resolves each object's final state with the
rules in `plan.py`, re-reads from Stripe what cannot be ordered, writes with
`bulk.upsert_objects` and marks the events. All of it runs in one
transaction, so a database error leaves every event of the batch pending.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.actions import ACTIONS
from halo_stripe_pipeline.events.plan import (
    Decision,
    ObjectState,
    RefundListing,
    StoredState,
    resolve_object,
    states_from_event,
)
from halo_stripe_pipeline.events.types import ACTION_EVENT_TYPES
from halo_stripe_pipeline.ingest.object_types import (
    OBJECT_TYPES_BY_NAME,
)
from halo_stripe_pipeline.stripe_client import StripeApiError
from halo_stripe_pipeline.warehouse import bulk

log = logging.getLogger(__name__)

# An event whose application failed this many times stays `failed` until
# someone looks at it (`halo-stripe events retry` resets it).
MAX_ATTEMPTS = 5
DEFAULT_BATCH_LIMIT = 20_000

ObjectKey = tuple[str, str, str]  # (account id, object type name, object id)


@dataclass(frozen=True)
class PendingEvent:
    id: str
    seq: int
    account_id: str
    type: str
    created: int
    payload: Mapping[str, Any]


@dataclass
class ApplyReport:
    """Counts of one application, for logs and materialization metadata."""

    events_applied: int = 0
    events_superseded: int = 0
    events_failed: int = 0
    objects_fetched: int = 0
    # (account id, table) -> events applied to it / rows written to it.
    events_by_table: dict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    objects_changed: dict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    # (event id, account id) of each applied event, in arrival order.
    applied_events: list[tuple[str, str]] = field(default_factory=list)
    max_seq: int | None = None

    @property
    def accounts(self) -> list[str]:
        return sorted({account for account, _ in self.events_by_table})

    @property
    def total_objects_changed(self) -> int:
        return sum(self.objects_changed.values())

    @property
    def events_seen(self) -> int:
        return self.events_applied + self.events_superseded + self.events_failed


def _table(object_type: str) -> str:
    return OBJECT_TYPES_BY_NAME[object_type].table


def load_pending(
    conn: psycopg.Connection,
    resolver: AccountResolver,
    *,
    up_to_seq: int | None = None,
    limit: int = DEFAULT_BATCH_LIMIT,
) -> list[PendingEvent]:
    """Lock and return pending events of accounts with ingest on, in arrival order.

    Must run inside a transaction; `skip locked` lets two runs work side by
    side without applying one event twice.
    """
    has_platform_events = conn.execute(
        "select exists (select 1 from stripe_raw.webhook_events"
        " where account_id is null and status in ('pending', 'failed'))"
    ).fetchone()[0]
    platform = resolver.platform_account_id() if has_platform_events else None
    rows = conn.execute(
        """
        select e.id, e.seq, coalesce(e.account_id, %(platform)s), e.type,
               extract(epoch from e.created_at)::bigint, e.payload
        from stripe_raw.webhook_events e
        left join halo.integration_settings s
            on s.account_id = coalesce(e.account_id, %(platform)s)
        where (e.status = 'pending' or (e.status = 'failed' and e.attempts < %(max_attempts)s))
          and (%(up_to_seq)s::bigint is null or e.seq <= %(up_to_seq)s::bigint)
          and (coalesce(s.ingest_enabled, true) or e.type = any(%(action_types)s))
          and coalesce(e.account_id, %(platform)s) is not null
        order by e.seq
        limit %(limit)s
        for update of e skip locked
        """,
        {
            "platform": platform,
            "max_attempts": MAX_ATTEMPTS,
            "up_to_seq": up_to_seq,
            "limit": limit,
            "action_types": list(ACTION_EVENT_TYPES),
        },
    ).fetchall()
    return [PendingEvent(*row) for row in rows]


def count_held_by_ingest_switch(conn: psycopg.Connection) -> int:
    """Return how many pending events wait because their account's ingest is off."""
    row = conn.execute(
        """
        select count(*) from stripe_raw.webhook_events e
        join halo.integration_settings s on s.account_id = e.account_id
        where e.status = 'pending' and not s.ingest_enabled
        """
    ).fetchone()
    return int(row[0])


def _stored_states(
    conn: psycopg.Connection, keys: Iterable[ObjectKey]
) -> dict[ObjectKey, StoredState]:
    by_table: dict[tuple[str, str], list[str]] = defaultdict(list)
    for account_id, object_type, object_id in keys:
        by_table[(account_id, object_type)].append(object_id)
    stored: dict[ObjectKey, StoredState] = {}
    for (account_id, object_type), ids in by_table.items():
        query = sql.SQL(
            "select id, observed_at, is_deleted from {table}"
            " where account_id = %s and id = any(%s)"
        ).format(table=sql.Identifier(bulk.RAW_SCHEMA, _table(object_type)))
        for object_id, observed_at, is_deleted in conn.execute(
            query, (account_id, ids)
        ):
            stored[(account_id, object_type, object_id)] = StoredState(
                observed_at, is_deleted
            )
    return stored


@dataclass
class _Write:
    objects: list[Mapping[str, Any]] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)


class EventApplier:
    """Apply one batch of events on an open connection (inside a transaction)."""

    def __init__(self, conn: psycopg.Connection, resolver: AccountResolver) -> None:
        self.conn = conn
        self.resolver = resolver
        self.report = ApplyReport()
        # (account, type, observed_at, deleted) -> objects to upsert together.
        self._writes: dict[tuple[str, str, datetime, bool], _Write] = defaultdict(
            _Write
        )
        self._failed: dict[str, str] = {}
        self._superseded_keys: set[ObjectKey] = set()

    def apply(self, events: Sequence[PendingEvent]) -> ApplyReport:
        states_by_key: dict[ObjectKey, list[ObjectState]] = defaultdict(list)
        keys_by_event: dict[str, list[ObjectKey]] = defaultdict(list)
        listings: list[tuple[str, RefundListing]] = []
        for event in events:
            action = ACTIONS.get(event.type)
            if action is not None:
                action(self.conn, event.account_id, event.payload)
                continue
            extracted = states_from_event(event.payload, event.seq)
            for state in extracted.states:
                key = (event.account_id, state.object_type, state.object_id)
                states_by_key[key].append(state)
                keys_by_event[event.id].append(key)
            listings.extend(
                (event.account_id, listing) for listing in extracted.refund_listings
            )

        stored = _stored_states(self.conn, states_by_key)
        for key, states in states_by_key.items():
            self._decide(key, resolve_object(states, stored.get(key)), states)
        for account_id, listing in listings:
            self._list_refunds(account_id, listing)
        self._write_all()
        self._mark_events(events, keys_by_event)
        return self.report

    def _decide(
        self, key: ObjectKey, decision: Decision, states: Sequence[ObjectState]
    ) -> None:
        account_id, object_type, object_id = key
        if decision.action == "skip":
            log.debug("skipping %s %s: %s", object_type, object_id, decision.reason)
            self._superseded_keys.add(key)
            return
        assert decision.state is not None
        if decision.action == "fetch":
            log.info(
                "re-reading %s %s from Stripe: %s",
                object_type,
                object_id,
                decision.reason,
            )
            self._fetch(key, decision.state.created, states)
            return
        data = decision.state.data
        assert data is not None
        observed_at = datetime.fromtimestamp(decision.state.created, tz=timezone.utc)
        try:
            data = self._complete(account_id, object_type, data)
        except (StripeApiError, ConfigError) as error:
            self._fail(states, f"completing {object_type} {object_id} failed: {error}")
            return
        self._queue(
            account_id, object_type, observed_at, data, deleted=decision.deleted
        )

    def _complete(
        self, account_id: str, object_type: str, data: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        spec = OBJECT_TYPES_BY_NAME[object_type]
        if spec.complete is None:
            return data
        items = data.get("items")
        if not isinstance(items, Mapping) or not items.get("has_more"):
            return data
        self.report.objects_fetched += 1
        return spec.complete(self.resolver.api_for(account_id), dict(data))

    def _fetch(
        self, key: ObjectKey, newest_created: int, states: Sequence[ObjectState]
    ) -> None:
        account_id, object_type, object_id = key
        endpoint = OBJECT_TYPES_BY_NAME[object_type].endpoint
        # The read is stored as of the newest event's second, not the local
        # clock: a clock ahead of Stripe's would make later events look older
        # and lose them. An event that arrives late can briefly set an older
        # state, which the object's newer events then replace.
        observed_at = datetime.fromtimestamp(newest_created, tz=timezone.utc)
        try:
            api = self.resolver.api_for(account_id)
            data = api.get(f"{endpoint}/{object_id}")
            self.report.objects_fetched += 1
            deleted = data.get("deleted") is True
            if not deleted:
                data = self._complete(account_id, object_type, data)
        except StripeApiError as error:
            missing = error.code == "resource_missing" or error.http_status == 404
            if missing and object_type == "customers":
                # Stripe returns 200 with `deleted: true` for a deleted
                # customer, but localstripe returns 404.
                self._queue(
                    account_id,
                    object_type,
                    observed_at,
                    {"id": object_id, "deleted": True},
                    deleted=True,
                )
                return
            self._fail(states, f"GET {endpoint}/{object_id} failed: {error}")
            return
        except ConfigError as error:
            self._fail(states, f"cannot re-read {object_type} {object_id}: {error}")
            return
        self._queue(account_id, object_type, observed_at, data, deleted=deleted)

    def _list_refunds(self, account_id: str, listing: RefundListing) -> None:
        observed_at = datetime.fromtimestamp(listing.created, tz=timezone.utc)
        try:
            api = self.resolver.api_for(account_id)
            refunds = [
                refund
                for page in api.list_pages("/v1/refunds", {"charge": listing.charge_id})
                for refund in page
            ]
        except (StripeApiError, ConfigError) as error:
            self._failed[listing.event_id] = (
                f"listing refunds of {listing.charge_id} failed: {error}"
            )
            return
        self.report.objects_fetched += len(refunds)
        for refund in refunds:
            self._queue(account_id, "refunds", observed_at, refund, deleted=False)

    def _queue(
        self,
        account_id: str,
        object_type: str,
        observed_at: datetime,
        data: Mapping[str, Any],
        *,
        deleted: bool,
    ) -> None:
        write = self._writes[(account_id, object_type, observed_at, deleted)]
        write.objects.append(data)
        if deleted:
            write.deleted_ids.append(str(data["id"]))

    def _fail(self, states: Sequence[ObjectState], message: str) -> None:
        log.warning("%s", message)
        for state in states:
            self._failed.setdefault(state.event_id, message)

    def _write_all(self) -> None:
        for (
            account_id,
            object_type,
            observed_at,
            deleted,
        ), write in self._writes.items():
            table = _table(object_type)
            result = bulk.upsert_objects(
                self.conn,
                table,
                account_id,
                write.objects,
                observed_at=observed_at,
                deleted=deleted,
            )
            changed = result.written
            if write.deleted_ids:
                # A deletion wins over any observed_at the row has.
                changed += bulk.mark_deleted(
                    self.conn,
                    table,
                    account_id,
                    write.deleted_ids,
                    observed_at=observed_at,
                )
            self.report.objects_changed[(account_id, table)] += changed

    def _mark_events(
        self,
        events: Sequence[PendingEvent],
        keys_by_event: Mapping[str, list[ObjectKey]],
    ) -> None:
        applied: list[str] = []
        superseded: list[str] = []
        for event in events:
            self.report.max_seq = max(self.report.max_seq or 0, event.seq)
            if event.id in self._failed:
                continue
            keys = keys_by_event.get(event.id, [])
            if keys and all(key in self._superseded_keys for key in keys):
                superseded.append(event.id)
                continue
            applied.append(event.id)
            self.report.applied_events.append((event.id, event.account_id))
            for account_id, object_type, _ in keys:
                self.report.events_by_table[(account_id, _table(object_type))] += 1
        self.conn.execute(
            "update stripe_raw.webhook_events set status = 'applied', applied_at = now(),"
            " attempts = attempts + 1, error = null where id = any(%s)",
            (applied,),
        )
        self.conn.execute(
            "update stripe_raw.webhook_events set status = 'superseded', applied_at = now(),"
            " attempts = attempts + 1, error = null where id = any(%s)",
            (superseded,),
        )
        for event_id, message in self._failed.items():
            self.conn.execute(
                "update stripe_raw.webhook_events set status = 'failed',"
                " attempts = attempts + 1, error = %s where id = %s",
                (message[:2000], event_id),
            )
        self.report.events_applied += len(applied)
        self.report.events_superseded += len(superseded)
        self.report.events_failed += len(self._failed)


def apply_pending_events(
    conn: psycopg.Connection,
    resolver: AccountResolver | None = None,
    *,
    up_to_seq: int | None = None,
    limit: int = DEFAULT_BATCH_LIMIT,
) -> ApplyReport:
    """Apply one batch of pending events and commit; return the counts.

    The batch runs in a transaction of its own, so call this outside any
    transaction on `conn`. Inside one it becomes a savepoint, which commits
    only with the caller's transaction.
    """
    resolver = resolver or AccountResolver(conn)
    with conn.transaction():
        events = load_pending(conn, resolver, up_to_seq=up_to_seq, limit=limit)
        if not events:
            return ApplyReport()
        log.info(
            "applying %d events (seq %d..%d)",
            len(events),
            events[0].seq,
            events[-1].seq,
        )
        report = EventApplier(conn, resolver).apply(events)
    log.info(
        "applied %d events, %d superseded, %d failed; %d rows changed in %d accounts",
        report.events_applied,
        report.events_superseded,
        report.events_failed,
        report.total_objects_changed,
        len(report.accounts),
    )
    if report.events_failed:
        log.warning("%d events failed and will be retried", report.events_failed)
    return report
