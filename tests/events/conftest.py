from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.emulator import free_port
from halo_stripe_pipeline.events.store import event_row, insert_events
from tests.receiver.support import events_table, receiver, webhook_secret  # noqa: F401 - fixtures


@pytest.fixture
def account(events_table: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """A fresh platform account id, with no events stored and no outbox rows."""
    account_id = f"acct_ev_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("STRIPE_ACCOUNT_ID", account_id)
    events_table.execute("delete from halo.slack_outbox")
    return account_id


def store_event(
    conn: psycopg.Connection, event: dict[str, Any], account_id: str | None = None
) -> None:
    row = event_row(event, json.dumps(event), account_id=account_id)
    with conn.transaction():
        insert_events(conn, [row])


def raw_row(
    conn: psycopg.Connection, table: str, account_id: str, object_id: str
) -> tuple[Any, ...] | None:
    return conn.execute(
        f"select data, is_deleted, observed_at from stripe_raw.{table}"
        " where account_id = %s and id = %s",
        (account_id, object_id),
    ).fetchone()


def event_status(conn: psycopg.Connection, event_id: str) -> str:
    return conn.execute(
        "select status from stripe_raw.webhook_events where id = %s", (event_id,)
    ).fetchone()[0]


class StubServer:
    """A loopback HTTP server that responds from `routes` and records requests.

    Stands in for what has no local emulator: Slack, and Stripe endpoints
    localstripe lacks. `status` forces the HTTP status of every response.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        self.status: int | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append((self.command, self.path, body))
                path = self.path.split("?")[0]
                payload = server.routes.get(path)
                status = server.status or (200 if payload is not None else 404)
                if isinstance(payload, str):
                    text = payload
                elif status >= 400:
                    text = json.dumps(
                        {
                            "error": {
                                "type": "api_error",
                                "message": f"stub status {status}",
                            }
                        }
                    )
                else:
                    text = json.dumps(payload)
                data = text.encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type",
                    "application/json"
                    if not isinstance(payload, str)
                    else "text/plain",
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()
