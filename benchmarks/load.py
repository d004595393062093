"""Load benchmark: how close the sync writes to a bare COPY of the same rows.

With no latency and no effective rate limit, the sync's rate is bound by
its own work: decoding pages, serialising rows, COPY and upsert. The script
measures objects per second written into `stripe_raw`. It also COPYs the
same rows (the generated JSON, with account id, `created_at` and
`observed_at`) into empty tables of the same shape in the same database and
reports the ratio of the two rates. Only the COPY statements are timed, not
reading the rows from the account file. On a shared machine the rates
drift, so the COPY runs once before and once after the sync, and the ratio
uses their mean.

    python -m benchmarks.load --customers 10000

writes `benchmarks/results/load-10000.json`.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from psycopg import sql

from benchmarks import harness
from benchmarks.generate import DATA_DIR, LISTED_TYPES, ensure_account
from halo_stripe_pipeline.warehouse import connect

UNLIMITED = 1_000_000.0
COPY_BATCH_ROWS = 20_000
COPY_SCHEMA = "bench_copy"


def bare_copy(database_url: str, data: Path, account_id: str) -> dict[str, Any]:
    """COPY every generated object into `bench_copy.<type>` and time the COPYs."""
    observed_at = datetime.now(timezone.utc)
    seconds = 0.0
    rows = 0
    with (
        connect(database_url) as conn,
        sqlite3.connect(f"file:{data}?mode=ro", uri=True) as source,
    ):
        conn.execute(
            sql.SQL("create schema if not exists {}").format(
                sql.Identifier(COPY_SCHEMA)
            )
        )
        for name in LISTED_TYPES:
            target = sql.Identifier(COPY_SCHEMA, name)
            conn.execute(sql.SQL("drop table if exists {}").format(target))
            conn.execute(
                sql.SQL("create table {} (like {} including all)").format(
                    target, sql.Identifier("stripe_raw", name)
                )
            )
            conn.commit()
            cursor = source.execute(
                f"select id, created, body from {name} order by seq"
            )
            while batch := cursor.fetchmany(COPY_BATCH_ROWS):
                prepared = [
                    (
                        account_id,
                        object_id,
                        datetime.fromtimestamp(created, timezone.utc),
                        body.decode(),
                        observed_at,
                    )
                    for object_id, created, body in batch
                ]
                started = time.perf_counter()
                copy_sql = sql.SQL(
                    "copy {} (account_id, id, created_at, data, observed_at) from stdin"
                ).format(target)
                with conn.cursor().copy(copy_sql) as copy:
                    for row in prepared:
                        copy.write_row(row)
                conn.commit()
                seconds += time.perf_counter() - started
                rows += len(prepared)
        conn.execute(
            sql.SQL("drop schema {} cascade").format(sql.Identifier(COPY_SCHEMA))
        )
        conn.commit()
    return {
        "rows": rows,
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds else None,
    }


def run_load(
    customers: int,
    *,
    seed: int = 1,
    database_url: str | None = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, Any]:
    data = ensure_account(customers, seed, data_dir)
    meta = harness.account_meta(data)
    limits = harness.SyncLimits(UNLIMITED, UNLIMITED)
    with (
        harness.StandInProcess(
            data, latency_ms=0.0, rate=UNLIMITED, endpoint_rate=UNLIMITED
        ) as stand_in,
        harness.scratch_database(database_url) as url,
    ):
        copy_before = bare_copy(url, data, meta["account_id"])
        sync = harness.run_sync_child(
            stand_in.api_base, url, meta["account_id"], limits
        )
        copy_after = bare_copy(url, data, meta["account_id"])
        check = harness.check_exactly_once(
            url, meta["account_id"], data, stand_in.stats()["served"]
        )
    copy = {
        "rows": copy_before["rows"],
        "seconds": (copy_before["seconds"] + copy_after["seconds"]) / 2,
        "runs": [copy_before, copy_after],
    }
    copy["rows_per_second"] = (
        copy["rows"] / copy["seconds"] if copy["seconds"] else None
    )
    sync_rate = sync["objects"] / sync["seconds"]
    return {
        "benchmark": "load",
        "customers": customers,
        "seed": seed,
        "objects_generated": meta["counts"],
        "sync": sync,
        "sync_objects_per_second": sync_rate,
        "bare_copy": copy,
        "ratio_to_copy": sync_rate / copy["rows_per_second"]
        if copy["rows_per_second"]
        else None,
        "exactly_once": check,
        "machine": harness.machine(),
    }


def print_load(result: dict[str, Any]) -> None:
    sync = result["sync"]
    copy = result["bare_copy"]
    rows = [
        ("customers", result["customers"]),
        ("objects synced", sync["objects"]),
        ("sync wall time (s)", sync["seconds"]),
        ("sync objects/s", result["sync_objects_per_second"]),
        ("sync CPU time (s)", sync["cpu_seconds"]),
        ("bare COPY rows", copy["rows"]),
        ("bare COPY time (s), mean of 2", copy["seconds"]),
        (
            "  before / after sync (s)",
            " / ".join(f"{run['seconds']:.2f}" for run in copy["runs"]),
        ),
        ("bare COPY rows/s", copy["rows_per_second"]),
        ("sync rate / COPY rate", result["ratio_to_copy"]),
        ("exactly once", "pass" if result["exactly_once"]["passed"] else "FAIL"),
    ]
    harness.print_table(f"Load of {result['customers']:,} customers, no latency", rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Compare the sync's write rate with a bare COPY."
    )
    parser.add_argument(
        "--customers", type=int, required=True, help="customers in the account"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="generator seed (default 1)"
    )
    parser.add_argument(
        "--database-url", help="use this database instead of a scratch one"
    )
    parser.add_argument("--name", help="result file name (default load-<customers>)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    result = run_load(args.customers, seed=args.seed, database_url=args.database_url)
    result["command"] = "python -m benchmarks.load " + " ".join(argv or sys.argv[1:])
    print_load(result)
    path = harness.write_result(args.name or f"load-{args.customers}", result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
