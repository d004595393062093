"""Each benchmark end to end on a tiny account, with no latency, so the harness
keeps working. The figures are not checked against targets here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.backfill import print_backfill, run_backfill
from benchmarks.generate import read_meta
from benchmarks.harness import SyncLimits, page_bound, write_result
from benchmarks.load import print_load, run_load
from benchmarks.report import summarise
from tests.benchmarks.conftest import TINY_CUSTOMERS, TINY_SEED, UNLIMITED


def test_page_bound_takes_longer_limit() -> None:
    meta = {
        "counts": {
            "customers": 1000,
            "subscriptions": 1500,
            "charges": 12_000,
            "refunds": 250,
            "invoices": 3000,
            "prices": 40,
            "products": 10,
            "plans": 40,
            "coupons": 5,
        }
    }

    bound = page_bound(meta, SyncLimits(100, 25), items_pages=3)

    assert bound["pages"]["charges"] == 120
    assert bound["pages"]["refunds"] == 3
    assert bound["total_pages"] == 10 + 15 + 120 + 3 + 30 + 1 + 1 + 1 + 1 + 3
    assert bound["slowest_type"] == "charges"
    assert bound["seconds"] == pytest.approx(120 / 25)


def test_page_bound_account_rate_dominates() -> None:
    meta = {
        "counts": {
            "customers": 2500,
            "subscriptions": 2500,
            "charges": 2500,
            "refunds": 2500,
            "invoices": 2500,
            "prices": 0,
            "products": 0,
            "plans": 0,
            "coupons": 0,
        }
    }

    bound = page_bound(meta, SyncLimits(100, 25), items_pages=0)

    assert bound["seconds"] == pytest.approx(125 / 100)
    assert bound["all_pages_seconds"] > bound["slowest_type_seconds"]


def test_backfill_smoke(
    tiny_account: Path,
    tiny_data_dir: Path,
    bench_server: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_backfill(
        TINY_CUSTOMERS,
        seed=TINY_SEED,
        latency_ms=0,
        rate=UNLIMITED,
        endpoint_rate=UNLIMITED,
        data_dir=tiny_data_dir,
    )
    counts = read_meta(tiny_account)["counts"]
    check = result["exactly_once"]

    assert check["passed"] is True
    assert check["subscriptions_missing_items"] == 0
    assert result["sync"]["objects"] >= sum(counts.values())
    for name, expected in counts.items():
        assert check["types"][name]["stored"] == expected, name
        assert check["types"][name]["missing"] == 0, name
    assert result["sync"]["peak_rss_mib"] > 0
    assert result["stand_in"]["rate_limited"] == {}

    print_backfill(result)
    path = write_result("backfill-smoke", result, results_dir=tmp_path)
    assert json.loads(path.read_text())["customers"] == TINY_CUSTOMERS
    assert "exactly once" in capsys.readouterr().out

    # The same result under two sizes: the summary compares them.
    write_result(f"backfill-{TINY_CUSTOMERS}", result, results_dir=tmp_path)
    write_result(f"backfill-{TINY_CUSTOMERS * 10}", result, results_dir=tmp_path)
    summary = summarise(TINY_CUSTOMERS, TINY_CUSTOMERS * 10, results_dir=tmp_path)
    assert summary["memory"]["growth"] == 0
    assert summary["memory"]["meets_target"] is True
    assert summary["backfill"]["exactly_once"] is True
    assert summary["backfill"]["objects"] == result["sync"]["objects"]


def test_load_smoke(
    tiny_account: Path,
    tiny_data_dir: Path,
    bench_server: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run_load(TINY_CUSTOMERS, seed=TINY_SEED, data_dir=tiny_data_dir)
    generated = sum(read_meta(tiny_account)["counts"].values())

    assert result["exactly_once"]["passed"] is True
    assert result["bare_copy"]["rows"] == generated
    assert result["bare_copy"]["seconds"] > 0
    assert result["ratio_to_copy"] > 0

    print_load(result)
    assert "bare COPY rows/s" in capsys.readouterr().out


def test_dbt_build_smoke(tiny_data_dir: Path, bench_server: str) -> None:
    pytest.importorskip("halo_stripe_pipeline.marts.build")
    from benchmarks.dbt_build import run_dbt_benchmark

    result = run_dbt_benchmark(TINY_CUSTOMERS, seed=TINY_SEED, data_dir=tiny_data_dir)
    dbt = result["dbt"]
    built = dbt if dbt["status"] == "success" else dbt["models_only"]

    assert result["exactly_once"] is True
    assert built["status"] == "success", built.get("error")
    assert built["seconds"] > 0
    assert dbt["rows"]["analytics.stripe_customers"] == TINY_CUSTOMERS
