from datetime import datetime, timedelta, timezone

from halo_stripe_pipeline.warehouse.bulk import mark_deleted, upsert_objects
from halo_stripe_pipeline.warehouse.connection import dagster_storage_url, dbt_connection_params


def test_upsert_keeps_newer_state(db):
    now = datetime.now(timezone.utc)
    account = "acct_upsert"
    upsert_objects(db, "customers", account, [{"id": "cus_1", "created": 1, "email": "new@x.com"}], observed_at=now)
    result = upsert_objects(
        db, "customers", account, [{"id": "cus_1", "created": 1, "email": "old@x.com"}],
        observed_at=now - timedelta(seconds=5),
    )
    email = db.execute(
        "select data->>'email' from stripe_raw.customers where account_id = %s and id = 'cus_1'", (account,)
    ).fetchone()[0]
    assert result.written == 0
    assert email == "new@x.com"


def test_upsert_rerun_has_no_duplicates(db):
    now = datetime.now(timezone.utc)
    account = "acct_rerun"
    rows = [{"id": f"ch_{i}", "created": 100 + i} for i in range(250)]
    upsert_objects(db, "charges", account, rows, observed_at=now)
    upsert_objects(db, "charges", account, rows + rows[:3], observed_at=now + timedelta(seconds=1))
    count = db.execute("select count(*) from stripe_raw.charges where account_id = %s", (account,)).fetchone()[0]
    assert count == 250


def test_deleted_row_stays_deleted(db):
    now = datetime.now(timezone.utc)
    account = "acct_deleted"
    upsert_objects(db, "customers", account, [{"id": "cus_9", "email": "a@x.com"}], observed_at=now)
    assert mark_deleted(db, "customers", account, ["cus_9"], observed_at=now) == 1
    upsert_objects(
        db, "customers", account, [{"id": "cus_9", "email": "b@x.com"}], observed_at=now + timedelta(seconds=1)
    )
    deleted, email = db.execute(
        "select is_deleted, data->>'email' from stripe_raw.customers where account_id = %s", (account,)
    ).fetchone()
    assert deleted is True
    assert email == "a@x.com"


def test_url_shapes():
    url = "postgresql://postgres@/halo?host=/tmp/pg&port=5432"
    assert dagster_storage_url(url).startswith("postgresql+psycopg2://")
    params = dbt_connection_params(url)
    assert params == {"host": "/tmp/pg", "port": 5432, "user": "postgres", "password": "", "dbname": "halo"}
    assert dbt_connection_params("postgresql://u:p@127.0.0.1:5433/db")["port"] == 5433

