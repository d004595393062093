from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.receiver.support import TEST_SECRET, LiveReceiver, live_receiver


@pytest.fixture(scope="session")
def receiver(warehouse_url: str) -> Iterator[LiveReceiver]:
    """One receiver for the session; tests set the secrets through the environment."""
    with live_receiver(warehouse_url) as server:
        yield server


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", TEST_SECRET)
    return TEST_SECRET


@pytest.fixture
def events_table(db: psycopg.Connection) -> psycopg.Connection:
    """The session warehouse with `stripe_raw.webhook_events` emptied."""
    db.execute("delete from stripe_raw.webhook_events")
    return db
