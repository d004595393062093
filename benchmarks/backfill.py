"""Backfill benchmark: a full sync against the stand-in at Stripe's limits.

Measures the sync's wall time against the bound, objects per second and the
peak resident memory of the sync process. The bound is the longer of each
object type's pages at the endpoint rate and all pages at the account rate.
It also checks that every generated object is stored exactly once.

    python -m benchmarks.backfill --customers 100000

writes `benchmarks/results/backfill-100000.json`. The defaults are 250 ms
latency, 100 requests/s for the account and 25 per endpoint, on both the
stand-in and the sync's client.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.generate import DATA_DIR, ensure_account

RATIO_TARGET = 1.25


def run_backfill(
    customers: int,
    *,
    seed: int = 1,
    latency_ms: float = 250.0,
    rate: float = 100.0,
    endpoint_rate: float = 25.0,
    database_url: str | None = None,
    data_dir: Path = DATA_DIR,
    after_sync: Any = None,
) -> dict[str, Any]:
    """Run one backfill and return its result (see the module docstring).

    `after_sync`, when given, is called with (database URL, account file,
    account id) while the database still exists, and its return value is
    stored under `after_sync` in the result.
    """
    data = ensure_account(customers, seed, data_dir)
    meta = harness.account_meta(data)
    limits = harness.SyncLimits(rate, endpoint_rate)
    big_subscriptions = harness.subscriptions_with_more_items(data)
    bound = harness.page_bound(meta, limits, items_pages=len(big_subscriptions))
    with (
        harness.StandInProcess(
            data, latency_ms=latency_ms, rate=rate, endpoint_rate=endpoint_rate
        ) as stand_in,
        harness.scratch_database(database_url) as url,
    ):
        sync = harness.run_sync_child(
            stand_in.api_base, url, meta["account_id"], limits
        )
        stats = stand_in.stats()
        check = harness.check_exactly_once(
            url, meta["account_id"], data, stats["served"]
        )
        extra = after_sync(url, data, meta["account_id"]) if after_sync else None
    ratio = sync["seconds"] / bound["seconds"] if bound["seconds"] else None
    return {
        "benchmark": "backfill",
        "customers": customers,
        "seed": seed,
        "objects_generated": meta["counts"],
        "settings": {
            "latency_ms": latency_ms,
            "requests_per_second": rate,
            "endpoint_requests_per_second": endpoint_rate,
        },
        "bound": bound,
        "sync": sync,
        "objects_per_second": sync["objects"] / sync["seconds"],
        "ratio_to_bound": ratio,
        "ratio_target": RATIO_TARGET,
        "meets_target": ratio is not None and ratio <= RATIO_TARGET,
        "exactly_once": check,
        "stand_in": {
            key: stats[key]
            for key in (
                "requests",
                "ok",
                "errors",
                "rate_limited",
                "per_endpoint",
                "max_in_flight",
                "active_seconds",
            )
        },
        "after_sync": extra,
        "machine": harness.machine(),
    }


def print_backfill(result: dict[str, Any]) -> None:
    sync = result["sync"]
    bound = result["bound"]
    check = result["exactly_once"]
    duplicates = sum(
        entry.get("duplicates_delivered", 0) for entry in check["types"].values()
    )
    missing = sum(entry["missing"] for entry in check["types"].values())
    unexpected = sum(entry["unexpected"] for entry in check["types"].values())
    rows = [
        ("customers", result["customers"]),
        ("objects", sync["objects"]),
        ("pages (minimum)", bound["total_pages"]),
        ("requests sent", sync["requests"]),
        ("429 answers", sum(result["stand_in"]["rate_limited"].values())),
        ("bound (s)", bound["seconds"]),
        (
            "  slowest type",
            f"{bound['slowest_type']} ({bound['slowest_type_seconds']:.1f} s)",
        ),
        ("  all pages at account rate (s)", bound["all_pages_seconds"]),
        ("sync wall time (s)", sync["seconds"]),
        ("ratio to bound", result["ratio_to_bound"]),
        ("target", f"<= {result['ratio_target']}"),
        ("objects/s", result["objects_per_second"]),
        ("peak RSS of sync (MiB)", sync["peak_rss_mib"]),
        ("exactly once", "pass" if check["passed"] else "FAIL"),
        ("  missing / unexpected", f"{missing} / {unexpected}"),
        ("  duplicates delivered", duplicates),
        ("  subscriptions missing items", check["subscriptions_missing_items"]),
    ]
    harness.print_table(f"Backfill of {result['customers']:,} customers", rows)
    per_type = [
        (
            name,
            (
                f"{entry['objects']:>9,} objects  {entry['pages']:>7,} pages  "
                f"{entry['seconds']:>7.1f} s  {entry['slices']:>5} slices"
            ),
        )
        for name, entry in sync["types"].items()
    ]
    harness.print_table("Per object type", per_type)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Benchmark a full sync against the stand-in."
    )
    parser.add_argument(
        "--customers", type=int, required=True, help="customers in the account"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="generator seed (default 1)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=250.0, help="latency per response"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="account requests/s")
    parser.add_argument(
        "--endpoint-rate", type=float, default=25.0, help="requests/s per endpoint"
    )
    parser.add_argument(
        "--database-url", help="use this database instead of a scratch one"
    )
    parser.add_argument(
        "--dbt", action="store_true", help="also time a dbt build of every model"
    )
    parser.add_argument(
        "--name", help="result file name (default backfill-<customers>)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    after_sync = None
    if args.dbt:
        from benchmarks.dbt_build import time_dbt_build

        after_sync = time_dbt_build
    started = time.monotonic()
    result = run_backfill(
        args.customers,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate=args.rate,
        endpoint_rate=args.endpoint_rate,
        database_url=args.database_url,
        after_sync=after_sync,
    )
    result["command"] = "python -m benchmarks.backfill " + " ".join(
        argv or sys.argv[1:]
    )
    print_backfill(result)
    path = harness.write_result(args.name or f"backfill-{args.customers}", result)
    print(f"\nwrote {path} ({harness.elapsed(started):.0f} s in all)")


if __name__ == "__main__":
    main()
