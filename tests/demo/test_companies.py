"""Resetting the demo account before a run touches that account only."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from halo_stripe_pipeline.demo.companies import reset_demo_account

# Distinct from the demo's own account, so this test never races the shared run.
RESET_ACCOUNT = "acct_demo_reset_check"
OTHER_ACCOUNT = "acct_demo_reset_other"


def _insert_customer(db: psycopg.Connection, account_id: str, customer_id: str) -> None:
    db.execute(
        "insert into stripe_raw.customers (account_id, id, data, observed_at)"
        " values (%s, %s, %s, now())",
        (account_id, customer_id, Jsonb({"id": customer_id, "object": "customer"})),
    )


def _count(db: psycopg.Connection, account_id: str) -> int:
    row = db.execute(
        "select count(*) from stripe_raw.customers where account_id = %s", (account_id,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_reset_deletes_only_that_account(db: psycopg.Connection) -> None:
    _insert_customer(db, RESET_ACCOUNT, "cus_reset_1")
    _insert_customer(db, RESET_ACCOUNT, "cus_reset_2")
    _insert_customer(db, OTHER_ACCOUNT, "cus_other_1")

    deleted = reset_demo_account(db, RESET_ACCOUNT)

    assert deleted == 2
    assert _count(db, RESET_ACCOUNT) == 0
    assert _count(db, OTHER_ACCOUNT) == 1
    db.execute("delete from stripe_raw.customers where account_id = %s", (OTHER_ACCOUNT,))
