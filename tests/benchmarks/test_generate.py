"""The account generator: deterministic, Stripe-ordered, realistic in shape."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from benchmarks.generate import LISTED_TYPES, ensure_account, read_meta
from benchmarks.harness import subscriptions_with_more_items
from tests.benchmarks.conftest import TINY_CUSTOMERS, TINY_SEED


def _digest(path: Path) -> dict[str, str]:
    digests = {}
    with sqlite3.connect(path) as conn:
        for name in (*LISTED_TYPES, "subscription_items", "companies"):
            digest = hashlib.sha256()
            for row in conn.execute(f"select * from {name} order by rowid"):
                digest.update(repr(row).encode())
            digests[name] = digest.hexdigest()
    return digests


def test_generation_same_seed_same_bytes(tiny_account: Path, tmp_path: Path) -> None:
    again = ensure_account(TINY_CUSTOMERS, TINY_SEED, tmp_path)

    assert _digest(again) == _digest(tiny_account)


def test_generation_other_seed_differs(tiny_account: Path, tmp_path: Path) -> None:
    other = ensure_account(TINY_CUSTOMERS, TINY_SEED + 1, tmp_path)

    assert read_meta(other)["account_id"] != read_meta(tiny_account)["account_id"]
    assert _digest(other)["charges"] != _digest(tiny_account)["charges"]


def test_generation_reuses_existing_file(
    tiny_account: Path, tiny_data_dir: Path
) -> None:
    before = tiny_account.stat().st_mtime_ns

    again = ensure_account(TINY_CUSTOMERS, TINY_SEED, tiny_data_dir)

    assert again == tiny_account
    assert again.stat().st_mtime_ns == before


def test_account_counts_per_customer(tiny_account: Path) -> None:
    counts = read_meta(tiny_account)["counts"]

    assert counts["customers"] == TINY_CUSTOMERS
    assert TINY_CUSTOMERS <= counts["subscriptions"] <= 2 * TINY_CUSTOMERS
    assert 8 * TINY_CUSTOMERS <= counts["charges"] <= 16 * TINY_CUSTOMERS
    assert 0 < counts["refunds"] < counts["charges"] // 10
    assert 0 < counts["invoices"] < counts["charges"]
    assert counts["plans"] == counts["prices"]
    assert counts["coupons"] == 5


def test_lists_newest_first_ties_by_id(tiny_account: Path) -> None:
    with sqlite3.connect(tiny_account) as conn:
        for name in LISTED_TYPES:
            rows = conn.execute(
                f"select seq, id, created from {name} order by seq"
            ).fetchall()
            keys = [(created, object_id) for _, object_id, created in rows]

            assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1)), name
            assert keys == sorted(keys, reverse=True), name


def test_many_charges_share_one_second(tiny_account: Path) -> None:
    with sqlite3.connect(tiny_account) as conn:
        busiest_charge_second = conn.execute(
            "select count(*) from charges group by created order by 1 desc limit 1"
        ).fetchone()[0]
        busiest_customer_second = conn.execute(
            "select count(*) from customers group by created order by 1 desc limit 1"
        ).fetchone()[0]

    assert busiest_charge_second >= 5
    assert busiest_customer_second >= 2


def test_subscription_embeds_ten_items(tiny_account: Path) -> None:
    big = subscriptions_with_more_items(tiny_account)
    subscription_id, item_count = next(iter(big.items()))
    with sqlite3.connect(tiny_account) as conn:
        body = conn.execute(
            "select body from subscriptions where id = ?", (subscription_id,)
        ).fetchone()[0]
    items = json.loads(body)["items"]

    assert item_count > 10
    assert len(items["data"]) == 10
    assert items["has_more"] is True
    assert items["url"] == f"/v1/subscription_items?subscription={subscription_id}"


def test_objects_carry_price_shapes(tiny_account: Path) -> None:
    with sqlite3.connect(tiny_account) as conn:
        subscription = json.loads(
            conn.execute("select body from subscriptions limit 1").fetchone()[0]
        )
        invoice = json.loads(
            conn.execute("select body from invoices limit 1").fetchone()[0]
        )
        charge = json.loads(
            conn.execute("select body from charges limit 1").fetchone()[0]
        )
    item = subscription["items"]["data"][0]

    assert item["price"]["object"] == "price"
    assert item["plan"]["id"] == item["price"]["id"]
    assert item["current_period_end"] > item["current_period_start"]
    assert invoice["parent"]["subscription_details"]["subscription"].startswith("sub_")
    assert invoice["lines"]["data"][0]["pricing"]["type"] == "price_details"
    assert "invoice" not in charge
