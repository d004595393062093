"""dbt benchmark: the time of `dbt build` over every model on a loaded account.

A full sync from the stand-in (no latency, no rate limit) loads the account,
and the generated companies go into `halo.companies`. Then `build_marts`
runs `dbt build` (models, data tests and unit tests) with `as_of` fixed at
the end of the generated history. The script records its wall time and the
row count of each mart.

    python -m benchmarks.dbt_build --customers 10000

writes `benchmarks/results/dbt-10000.json`. `python -m benchmarks.backfill
--dbt` times the same build after the rate-limited backfill instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.backfill import run_backfill
from benchmarks.generate import ACCOUNT_END, DATA_DIR
from halo_stripe_pipeline.warehouse import connect

MART_SCHEMAS = ("stripe_staging", "stripe_intermediate", "analytics")
UNLIMITED = 1_000_000.0
MODELS_ONLY = "resource_type:model"


def load_companies(database_url: str, data: Path) -> int:
    """COPY the generated companies into `halo.companies`; return how many."""
    with (
        connect(database_url) as conn,
        sqlite3.connect(f"file:{data}?mode=ro", uri=True) as source,
    ):
        with conn.cursor().copy(
            "copy halo.companies (id, name, domain, email, stripe_customer_id) from stdin"
        ) as copy:
            for row in source.execute(
                "select id, name, domain, email, stripe_customer_id from companies"
            ):
                copy.write_row(row)
        conn.commit()
        return conn.execute("select count(*) from halo.companies").fetchone()[0]


def relation_rows(database_url: str) -> dict[str, int]:
    """Return the row count of every table dbt built, keyed `schema.table`."""
    counts: dict[str, int] = {}
    with connect(database_url) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema = any(%s) and table_type = 'BASE TABLE'"
            " order by table_schema, table_name",
            (list(MART_SCHEMAS),),
        ).fetchall()
        for schema, table in tables:
            counts[f"{schema}.{table}"] = conn.execute(
                f'select count(*) from "{schema}"."{table}"'
            ).fetchone()[0]
    return counts


def time_dbt_build(database_url: str, data: Path, account_id: str) -> dict[str, Any]:
    """Load the companies, run `dbt build` of every model and time it.

    A failed build is recorded with its message rather than raised, and is
    followed by a timed build of the models alone (`resource_type:model`),
    because dbt skips every model downstream of a failing data test.
    """
    companies = load_companies(database_url, data)
    as_of = datetime.fromtimestamp(ACCOUNT_END, timezone.utc)
    outcome = _timed_build(database_url, as_of, select=None)
    if outcome["status"] != "success":
        outcome["models_only"] = _timed_build(database_url, as_of, select=MODELS_ONLY)
    outcome.update(
        {
            "companies": companies,
            "account_id": account_id,
            "as_of": as_of.isoformat(),
            "rows": relation_rows(database_url),
        }
    )
    return outcome


def _timed_build(
    database_url: str, as_of: datetime, select: str | None
) -> dict[str, Any]:
    from halo_stripe_pipeline.marts.build import MartsBuildError, build_marts

    started = time.monotonic()
    saved = os.environ.get("DBT_INDIRECT_SELECTION")
    if select == MODELS_ONLY:
        # Without this, selecting models also selects the tests attached to them.
        os.environ["DBT_INDIRECT_SELECTION"] = "empty"
    try:
        result = build_marts(database_url, as_of=as_of, select=select)
        outcome: dict[str, Any] = {"status": "success", "nodes": result.counts}
    except MartsBuildError as error:
        outcome = {"status": "failed", "error": str(error)}
    finally:
        if saved is None:
            os.environ.pop("DBT_INDIRECT_SELECTION", None)
        else:
            os.environ["DBT_INDIRECT_SELECTION"] = saved
    outcome["seconds"] = time.monotonic() - started
    outcome["select"] = select or "all"
    return outcome


def run_dbt_benchmark(
    customers: int,
    *,
    seed: int = 1,
    database_url: str | None = None,
    data_dir: Path = DATA_DIR,
) -> dict[str, Any]:
    loaded = run_backfill(
        customers,
        seed=seed,
        data_dir=data_dir,
        latency_ms=0.0,
        rate=UNLIMITED,
        endpoint_rate=UNLIMITED,
        database_url=database_url,
        after_sync=time_dbt_build,
    )
    return {
        "benchmark": "dbt",
        "customers": customers,
        "seed": seed,
        "objects_generated": loaded["objects_generated"],
        "objects_loaded": loaded["sync"]["objects"],
        "exactly_once": loaded["exactly_once"]["passed"],
        "dbt": loaded["after_sync"],
        "machine": harness.machine(),
    }


def print_dbt(customers: int, dbt: dict[str, Any]) -> None:
    rows: list[tuple[str, Any]] = [("customers", customers)]
    for build in (dbt, dbt.get("models_only")):
        if build is None:
            continue
        rows.append((f"dbt build --select {build['select']} (s)", build["seconds"]))
        if build["status"] == "success":
            rows.append(
                (
                    "  nodes",
                    ", ".join(f"{k} {v}" for k, v in sorted(build["nodes"].items())),
                )
            )
        else:
            rows.append(("  failed", build["error"].splitlines()[-1].strip()))
    rows += [
        (name, count)
        for name, count in dbt["rows"].items()
        if name.startswith("analytics.")
    ]
    harness.print_table(f"dbt build of {customers:,} customers", rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Time dbt build over a loaded account."
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
    parser.add_argument("--name", help="result file name (default dbt-<customers>)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    result = run_dbt_benchmark(
        args.customers, seed=args.seed, database_url=args.database_url
    )
    result["command"] = "python -m benchmarks.dbt_build " + " ".join(
        argv or sys.argv[1:]
    )
    print_dbt(args.customers, result["dbt"])
    path = harness.write_result(args.name or f"dbt-{args.customers}", result)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
