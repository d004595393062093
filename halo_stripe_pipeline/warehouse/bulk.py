"""Bulk writes into `stripe_raw`: COPY into a staging table, then one upsert.

A batch costs one COPY and one `insert ... on conflict` whatever its size, and
nothing but the batch is held in memory, so a loader that writes a page at a
time stays flat however large the account is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

RAW_SCHEMA = "stripe_raw"

try:  # orjson is a Dagster dependency and serialises several times faster.
    import orjson

    def _dumps(value: Any) -> str:
        return orjson.dumps(value).decode()

except ImportError:  # pragma: no cover - orjson ships with Dagster

    def _dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True)
class UpsertResult:
    received: int
    written: int


def _created_at(obj: Mapping[str, Any]) -> datetime | None:
    created = obj.get("created")
    if isinstance(created, (int, float)):
        return datetime.fromtimestamp(created, tz=timezone.utc)
    return None


def upsert_objects(
    conn: psycopg.Connection,
    table: str,
    account_id: str,
    objects: Iterable[Mapping[str, Any]],
    *,
    observed_at: datetime,
    deleted: bool = False,
) -> UpsertResult:
    """Write `objects` into `stripe_raw.<table>` for `account_id`.

    A row is replaced only when `observed_at` is not older than the state it
    already holds, and a row flagged deleted stays deleted. Duplicate ids in
    one batch keep the last object. Returns how many rows were written.
    """
    with conn.transaction():
        return _copy_and_upsert(conn, table, account_id, objects, observed_at, deleted)


def _copy_and_upsert(
    conn: psycopg.Connection,
    table: str,
    account_id: str,
    objects: Iterable[Mapping[str, Any]],
    observed_at: datetime,
    deleted: bool,
) -> UpsertResult:
    staging = sql.Identifier(f"_staging_{table}")
    target = sql.Identifier(RAW_SCHEMA, table)
    received = 0
    conn.execute(
        sql.SQL(
            "create temp table if not exists {staging} ("
            " ord bigint, id text, created_at timestamptz, data jsonb"
            ") on commit delete rows"
        ).format(staging=staging)
    )
    conn.execute(sql.SQL("truncate {staging}").format(staging=staging))
    copy_sql = sql.SQL("copy {staging} (ord, id, created_at, data) from stdin").format(
        staging=staging
    )
    with conn.cursor().copy(copy_sql) as copy:
        for obj in objects:
            copy.write_row((received, obj["id"], _created_at(obj), _dumps(obj)))
            received += 1
    if received == 0:
        return UpsertResult(received=0, written=0)

    upsert = sql.SQL(
        """
        insert into {target} as t
            (account_id, id, created_at, data, is_deleted, observed_at, synced_at)
        select distinct on (id)
            %(account_id)s, id, created_at, data, %(deleted)s, %(observed_at)s, now()
        from {staging}
        order by id, ord desc
        on conflict (account_id, id) do update set
            created_at = coalesce(excluded.created_at, t.created_at),
            data = case
                when t.is_deleted and not excluded.is_deleted then t.data
                when excluded.data ->> 'deleted' = 'true' then t.data
                else excluded.data end,
            is_deleted = t.is_deleted or excluded.is_deleted,
            observed_at = excluded.observed_at,
            synced_at = excluded.synced_at
        where excluded.observed_at >= t.observed_at
        """
    ).format(target=target, staging=staging)
    cursor = conn.execute(
        upsert,
        {"account_id": account_id, "deleted": deleted, "observed_at": observed_at},
    )
    return UpsertResult(received=received, written=cursor.rowcount)


def mark_deleted(
    conn: psycopg.Connection,
    table: str,
    account_id: str,
    ids: Iterable[str],
    *,
    observed_at: datetime,
) -> int:
    """Flag rows deleted without dropping them; returns how many changed."""
    cursor = conn.execute(
        sql.SQL(
            "update {target} set is_deleted = true, observed_at = greatest(observed_at, %s),"
            " synced_at = now()"
            " where account_id = %s and id = any(%s) and not is_deleted"
        ).format(target=sql.Identifier(RAW_SCHEMA, table)),
        (observed_at, account_id, list(ids)),
    )
    return cursor.rowcount


def mark_not_observed_since(
    conn: psycopg.Connection, table: str, account_id: str, since: datetime
) -> int:
    """Flag deleted every row of `account_id` whose state is older than `since`.

    After a complete listing that started at `since`, such a row was not in
    the listing (a deleted Stripe customer) and no newer webhook touched it.
    Returns how many rows changed; rows are never dropped.
    """
    cursor = conn.execute(
        sql.SQL(
            "update {target} set is_deleted = true, synced_at = now()"
            " where account_id = %s and observed_at < %s and not is_deleted"
        ).format(target=sql.Identifier(RAW_SCHEMA, table)),
        (account_id, since),
    )
    return cursor.rowcount
