"""Summarise the committed results: backfill, memory, load, dbt and receiver.

Reads `benchmarks/results/*.json` (written by the other scripts), prints one
table, and writes `benchmarks/results/summary.json`. It measures nothing
itself. Run `python -m benchmarks.report` after the runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import harness

RECEIVER_DIR = Path(__file__).resolve().parent / "receiver"
MEMORY_TARGET = 0.25


def _read(name: str, results_dir: Path) -> dict[str, Any] | None:
    path = results_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _dbt_build(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Return the successful dbt build of a result: the full one, else models only."""
    if result is None:
        return None
    dbt = result.get("dbt") or result.get("after_sync")
    if not dbt:
        return None
    if dbt["status"] == "success":
        return dbt
    models_only = dbt.get("models_only")
    return models_only if models_only and models_only["status"] == "success" else None


def summarise(
    small: int, large: int, results_dir: Path = harness.RESULTS_DIR
) -> dict[str, Any]:
    summary: dict[str, Any] = {"customers": [small, large]}
    backfills = {n: _read(f"backfill-{n}", results_dir) for n in (small, large)}
    large_backfill = backfills[large]
    if large_backfill:
        summary["backfill"] = {
            "customers": large,
            "objects": large_backfill["sync"]["objects"],
            "seconds": large_backfill["sync"]["seconds"],
            "bound_seconds": large_backfill["bound"]["seconds"],
            "ratio_to_bound": large_backfill["ratio_to_bound"],
            "objects_per_second": large_backfill["objects_per_second"],
            "exactly_once": large_backfill["exactly_once"]["passed"],
            "duplicates_delivered": sum(
                entry.get("duplicates_delivered", 0)
                for entry in large_backfill["exactly_once"]["types"].values()
            ),
        }
    if all(backfills.values()):
        small_rss = backfills[small]["sync"]["peak_rss_mib"]
        large_rss = backfills[large]["sync"]["peak_rss_mib"]
        growth = (large_rss - small_rss) / small_rss
        summary["memory"] = {
            "peak_rss_mib": {str(small): small_rss, str(large): large_rss},
            "growth": growth,
            "meets_target": abs(growth) < MEMORY_TARGET,
        }
    load = _read(f"load-{small}", results_dir)
    if load:
        summary["load"] = {
            "customers": small,
            "sync_objects_per_second": load["sync_objects_per_second"],
            "bare_copy_rows_per_second": load["bare_copy"]["rows_per_second"],
            "ratio_to_copy": load["ratio_to_copy"],
        }
    summary["dbt"] = _dbt_summary(small, large, backfills, results_dir)
    summary["receiver"] = _receiver_summary()
    return summary


def _receiver_summary() -> dict[str, Any] | None:
    """Return the key figures of the newest receiver result, if there is one."""
    results = sorted((RECEIVER_DIR / "results").glob("receiver-*.json"))
    if not results:
        return None
    latest = json.loads(results[-1].read_text())
    closed = next(phase for phase in latest["load"] if phase["mode"] == "closed-loop")
    return {
        "file": str(results[-1].relative_to(RECEIVER_DIR.parent)),
        "events_per_second": closed["per_second"],
        "p99_ms": closed["p99_ms"],
        "lost_events": latest["lost_events"],
        "freshness_p95_seconds": (latest.get("freshness") or {}).get("p95_seconds"),
    }


def _dbt_summary(
    small: int, large: int, backfills: dict[int, Any], results_dir: Path
) -> dict[str, Any]:
    builds = {}
    objects = {}
    for n in (small, large):
        source = _read(f"dbt-{n}", results_dir) or backfills[n]
        build = _dbt_build(source)
        if build is not None and source is not None:
            builds[n] = build
            objects[n] = sum(source["objects_generated"].values())
    entry: dict[str, Any] = {
        str(n): {"seconds": build["seconds"], "select": build["select"]}
        for n, build in builds.items()
    }
    if len(builds) == 2:
        time_growth = builds[large]["seconds"] / builds[small]["seconds"]
        data_growth = objects[large] / objects[small]
        entry["time_growth"] = time_growth
        entry["data_growth"] = data_growth
        entry["meets_target"] = time_growth <= data_growth
    return entry


def print_summary(summary: dict[str, Any]) -> None:
    rows = [
        *_backfill_rows(summary.get("backfill")),
        *_memory_rows(summary.get("memory")),
        *_load_rows(summary.get("load")),
        *_dbt_rows(summary["dbt"]),
        *_receiver_rows(summary["receiver"]),
    ]
    harness.print_table("halo-stripe benchmarks", rows)


Rows = list[tuple[str, Any]]


def _backfill_rows(backfill: dict[str, Any] | None) -> Rows:
    if not backfill:
        return []
    return [
        (f"backfill {backfill['customers']:,} customers (s)", backfill["seconds"]),
        ("  bound (s)", backfill["bound_seconds"]),
        ("  ratio to bound (target <= 1.25)", backfill["ratio_to_bound"]),
        ("  objects/s", backfill["objects_per_second"]),
        ("  exactly once", "pass" if backfill["exactly_once"] else "FAIL"),
        ("  duplicates delivered", backfill["duplicates_delivered"]),
    ]


def _memory_rows(memory: dict[str, Any] | None) -> Rows:
    if not memory:
        return []
    rows: Rows = [
        (f"peak RSS at {int(customers):,} customers (MiB)", rss)
        for customers, rss in memory["peak_rss_mib"].items()
    ]
    rows.append(("  growth (target < 25%)", f"{memory['growth']:+.1%}"))
    return rows


def _load_rows(load: dict[str, Any] | None) -> Rows:
    if not load:
        return []
    return [
        (
            f"load {load['customers']:,} customers, objects/s",
            load["sync_objects_per_second"],
        ),
        ("  bare COPY rows/s", load["bare_copy_rows_per_second"]),
        ("  ratio", load["ratio_to_copy"]),
    ]


def _dbt_rows(dbt: dict[str, Any]) -> Rows:
    rows: Rows = [
        (f"dbt build {int(customers):,} customers (s)", build["seconds"])
        for customers, build in dbt.items()
        if isinstance(build, dict)
    ]
    if "time_growth" in dbt:
        growth = f"{dbt['time_growth']:.2f} / {dbt['data_growth']:.2f}"
        rows.append(("  time growth / data growth", growth))
    return rows


def _receiver_rows(receiver: dict[str, Any] | None) -> Rows:
    if not receiver:
        return [("receiver results", "none yet in receiver/results/")]
    return [
        ("receiver events/s (target >= 1,000)", receiver["events_per_second"]),
        ("  p99 (ms, target < 100)", receiver["p99_ms"]),
        ("  lost events", receiver["lost_events"]),
        ("  mart freshness p95 (s, target < 60)", receiver["freshness_p95_seconds"]),
        ("  from", receiver["file"]),
    ]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Summarise the benchmark results.")
    parser.add_argument(
        "--small", type=int, default=10_000, help="smaller account size"
    )
    parser.add_argument(
        "--large", type=int, default=100_000, help="larger account size"
    )
    args = parser.parse_args()
    summary = summarise(args.small, args.large)
    print_summary(summary)
    path = harness.write_result("summary", summary)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
