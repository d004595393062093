"""Helpers shared by the receiver and event tests: samples, signing, a live server."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from halo_stripe_pipeline.emulator import free_port
from webhook_receiver.app import create_app
from webhook_receiver.signature import sign_header
from webhook_receiver.webhooks import WEBHOOK_PATH

SAMPLES = (
    Path(__file__).resolve().parent.parent / "fixtures" / "stripe_samples" / "events"
)
TEST_SECRET = "whsec_test_receiver"


def load_sample(relative: str) -> dict[str, Any]:
    """Return a copy of a sample event; hookdeck files wrap the event in `body`."""
    data = json.loads((SAMPLES / relative).read_text(encoding="utf-8"))
    if "body" in data and "headers" in data:
        data = data["body"]
    return copy.deepcopy(data)


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode("utf-8")


def signed_headers(
    body: bytes, secret: str | list[str] = TEST_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    return {
        "Stripe-Signature": sign_header(body, secret, timestamp),
        "Content-Type": "application/json",
    }


class LiveReceiver:
    """The receiver app served by uvicorn on a loopback port, in a thread."""

    def __init__(self, db_url: str) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(db_url),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, name="receiver", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def post(
        self, body: bytes, headers: dict[str, str], path: str = ""
    ) -> httpx.Response:
        return httpx.post(
            self.webhook_url + path, content=body, headers=headers, timeout=10
        )


@contextmanager
def live_receiver(db_url: str) -> Iterator[LiveReceiver]:
    receiver = LiveReceiver(db_url)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


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
