"""The sync-request sensor's plan for one tick, computed without Dagster.

Connected accounts get a partition of `stripe_account`, disconnected ones lose
theirs, and every new sync request becomes one run request per account.
Accounts synced with the environment's key are never in
`halo.stripe_connections`, so their partitions are left alone.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

import psycopg

PARTITIONS_NAME = "stripe_account"
ACCOUNT_TAG = "halo/stripe_account"
REASON_TAG = "halo/sync_reason"


@dataclass(frozen=True)
class SyncRun:
    account_id: str
    request_ids: tuple[int, ...]
    reason: str

    @property
    def run_key(self) -> str:
        return f"connect-full-sync-{self.request_ids[-1]}"


@dataclass
class SyncPlan:
    partitions_to_add: list[str] = field(default_factory=list)
    partitions_to_delete: list[str] = field(default_factory=list)
    runs: list[SyncRun] = field(default_factory=list)
    cursor: int = 0


def plan_tick(
    conn: psycopg.Connection, existing_partitions: Collection[str], cursor: int
) -> SyncPlan:
    """Compare stored connections and requests after `cursor` with Dagster's partitions."""
    existing = set(existing_partitions)
    rows = conn.execute(
        "select account_id, status from halo.stripe_connections order by account_id"
    ).fetchall()
    connected = {account_id for account_id, status in rows if status == "connected"}
    plan = SyncPlan(cursor=cursor)
    plan.partitions_to_add = sorted(connected - existing)
    plan.partitions_to_delete = sorted(
        account_id for account_id, status in rows
        if status == "disconnected" and account_id in existing
    )
    requests = conn.execute(
        "select id, account_id, reason from halo.sync_requests"
        " where id > %s and status <> 'cancelled' order by id",
        (cursor,),
    ).fetchall()
    by_account: dict[str, list[tuple[int, str]]] = {}
    for request_id, account_id, reason in requests:
        plan.cursor = max(plan.cursor, int(request_id))
        if account_id in connected:
            by_account.setdefault(account_id, []).append((int(request_id), reason))
    for account_id, entries in by_account.items():
        ids = tuple(request_id for request_id, _ in entries)
        plan.runs.append(SyncRun(account_id, ids, reason=entries[-1][1]))
    return plan


def mark_submitted(conn: psycopg.Connection, runs: list[SyncRun]) -> None:
    for run in runs:
        conn.execute(
            "update halo.sync_requests set status = 'submitted', run_key = %s,"
            " submitted_at = now() where id = any(%s) and status = 'pending'",
            (run.run_key, list(run.request_ids)),
        )
