"""The sensor's view of the events waiting to be applied."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.apply import MAX_ATTEMPTS
from halo_stripe_pipeline.events.types import ACTION_EVENT_TYPES


@dataclass(frozen=True)
class PendingBatch:
    count: int
    max_seq: int
    oldest_received_seconds: float


def pending_batch(
    conn: psycopg.Connection, resolver: AccountResolver | None = None
) -> PendingBatch | None:
    """Return the events a run would apply now, or None when there are none.

    Events of an account whose `ingest_enabled` is off do not count, so a
    switched-off account does not start empty runs.
    """
    has_platform_events = conn.execute(
        "select exists (select 1 from stripe_raw.webhook_events"
        " where account_id is null and status in ('pending', 'failed'))"
    ).fetchone()[0]
    platform = None
    if has_platform_events:
        try:
            platform = (resolver or AccountResolver(conn)).platform_account_id()
        except ConfigError:
            # Without a platform account the run fails with the same error
            # and reports it, so the account-less events count as waiting.
            platform = None
    row = conn.execute(
        """
        select count(*), max(e.seq),
               extract(epoch from now() - min(e.received_at))
        from stripe_raw.webhook_events e
        left join halo.integration_settings s
            on s.account_id = coalesce(e.account_id, %(platform)s)
        where (e.status = 'pending' or (e.status = 'failed' and e.attempts < %(max_attempts)s))
          and (coalesce(s.ingest_enabled, true) or e.type = any(%(action_types)s))
        """,
        {
            "platform": platform,
            "max_attempts": MAX_ATTEMPTS,
            "action_types": list(ACTION_EVENT_TYPES),
        },
    ).fetchone()
    count, max_seq, oldest = row
    if not count:
        return None
    return PendingBatch(
        count=int(count),
        max_seq=int(max_seq),
        oldest_received_seconds=float(oldest or 0),
    )
