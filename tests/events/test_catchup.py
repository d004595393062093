"""`catch-up`: listing missed events from the API and applying them."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import psycopg
import pytest

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.emulator import EmulatorProcess
from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.apply import apply_pending_events
from halo_stripe_pipeline.events.catchup import OVERLAP, accounts_to_catch_up, catch_up
from halo_stripe_pipeline.stripe_client import StripeApi
from tests.events.conftest import raw_row, store_event
from tests.receiver.support import load_sample


def test_catch_up_needs_a_start(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    with pytest.raises(ConfigError, match="no applied event for account"):
        catch_up(db, AccountResolver(db), account_id=account)


def test_catch_up_stores_and_applies_missed_events(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    # One event the receiver did get, applied: catch-up starts an hour before it.
    seen = load_sample("stripe-ruby-mock/customer.created.json")
    seen["id"] = "evt_seen_before_gap"
    seen["created"] = int(time.time()) - 60
    store_event(db, seen)
    apply_pending_events(db, AccountResolver(db))
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )
    customer = api.post(
        "/v1/customers", {"email": "missed@example.com", "name": "Missed"}
    )
    api.post(f"/v1/customers/{customer['id']}", {"email": "missed-later@example.com"})

    report = catch_up(db, AccountResolver(db), account_id=account)
    again = catch_up(db, AccountResolver(db), account_id=account)
    applied = apply_pending_events(db, AccountResolver(db))

    assert (
        report.accounts[0].since.timestamp()
        == seen["created"] - OVERLAP.total_seconds()
    )
    assert report.stored >= 2
    assert again.stored == 0
    assert again.listed == report.listed
    sources = {
        row[0]: row[1]
        for row in db.execute(
            "select type, source from stripe_raw.webhook_events where source = 'catch-up'"
        )
    }
    assert sources["customer.created"] == "catch-up"
    assert sources["customer.updated"] == "catch-up"
    assert applied.events_applied >= 2
    data, is_deleted, _ = raw_row(db, "customers", account, customer["id"])
    assert data["email"] == "missed-later@example.com"
    assert is_deleted is False


def test_catch_up_rejects_unreadable_account(
    db: psycopg.Connection, account: str, emulator_env: EmulatorProcess
) -> None:
    # Neither the platform's nor connected: STRIPE_API_KEY would list the
    # platform's events, and they would be stored under this account.
    other = f"{account}_other"

    with pytest.raises(ConfigError, match="nor a connected account"):
        catch_up(
            db, AccountResolver(db), account_id=other, since=datetime.now(timezone.utc)
        )

    stored = db.execute(
        "select count(*) from stripe_raw.webhook_events where account_id = %s", (other,)
    ).fetchone()[0]
    assert stored == 0


def test_default_catch_up_skips_unreadable_accounts(
    db: psycopg.Connection, account: str
) -> None:
    other = f"{account}_other"
    for account_id in (account, other):
        db.execute(
            "insert into halo.integration_settings (account_id, workspace_id)"
            " values (%s, 'ws_catch_up')",
            (account_id,),
        )
    try:
        accounts = accounts_to_catch_up(db, AccountResolver(db))
    finally:
        db.execute(
            "delete from halo.integration_settings where account_id in (%s, %s)",
            (account, other),
        )

    assert account in accounts
    assert other not in accounts
