"""A loopback stand-in for Stripe's customer balance transaction endpoints,
which localstripe lacks.

It serves `GET /v1/customers/{id}`, and `POST`/`GET`
`/v1/customers/{id}/balance_transactions` with form-encoded parameters, and
replays the stored response for a repeated `Idempotency-Key` the way Stripe
does.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CUSTOMER_PATH = re.compile(r"^/v1/customers/(?P<customer>[^/]+)$")
TRANSACTIONS_PATH = re.compile(
    r"^/v1/customers/(?P<customer>[^/]+)/balance_transactions$"
)


@dataclass
class StandInState:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    transactions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idempotent_responses: dict[str, tuple[int, dict[str, Any]]] = field(
        default_factory=dict
    )
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_customer(
        self, customer_id: str, currency: str | None, balance: int = 0
    ) -> None:
        self.customers[customer_id] = {
            "id": customer_id,
            "object": "customer",
            "currency": currency,
            "balance": balance,
        }
        self.transactions[customer_id] = []


def form_fields(body: str) -> dict[str, Any]:
    """Decode `a=1&metadata[k]=v` into `{"a": "1", "metadata": {"k": "v"}}`."""
    fields: dict[str, Any] = {}
    for name, values in parse_qs(body, keep_blank_values=True).items():
        match = re.match(r"^(\w+)\[(\w+)\]$", name)
        if match:
            fields.setdefault(match.group(1), {})[match.group(2)] = values[-1]
        else:
            fields[name] = values[-1]
    return fields


class Handler(BaseHTTPRequestHandler):
    state: StandInState

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(
            status, {"error": {"type": "invalid_request_error", "message": message}}
        )

    def _authorized(self) -> bool:
        if not self.headers.get("Authorization", "").startswith(
            ("Bearer sk_test_", "Basic ")
        ):
            self._error(401, "Invalid API Key provided")
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = urlsplit(self.path).path
        if match := CUSTOMER_PATH.match(path):
            customer = self.state.customers.get(match["customer"])
            if customer is None:
                return self._error(404, f"No such customer: '{match['customer']}'")
            return self._send(200, customer)
        if match := TRANSACTIONS_PATH.match(path):
            data = list(reversed(self.state.transactions.get(match["customer"], [])))
            return self._send(
                200, {"object": "list", "data": data, "has_more": False, "url": path}
            )
        self._error(404, f"Unrecognized request URL (GET: {path})")

    def do_POST(self) -> None:
        if not self._authorized():
            return
        path = urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        key = self.headers.get("Idempotency-Key")
        with self.state.lock:
            self.state.posts.append(
                {"path": path, "idempotency_key": key, "body": body}
            )
            if key and key in self.state.idempotent_responses:
                status, stored = self.state.idempotent_responses[key]
                return self._send(status, stored)
            status, response = self._create(path, form_fields(body))
            if key:
                self.state.idempotent_responses[key] = (status, response)
        self._send(status, response)

    def _create(self, path: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        match = TRANSACTIONS_PATH.match(path)
        if not match:
            return 404, {
                "error": {"message": f"Unrecognized request URL (POST: {path})"}
            }
        customer = self.state.customers.get(match["customer"])
        if customer is None:
            return 404, {
                "error": {"message": f"No such customer: '{match['customer']}'"}
            }
        currency = fields.get("currency", "").lower()
        if customer["currency"] and currency != customer["currency"]:
            return 400, {
                "error": {"message": f"currency must be {customer['currency']}"}
            }
        amount = int(fields["amount"])
        customer["currency"] = currency
        customer["balance"] += amount
        transaction = {
            "id": f"cbtxn_{uuid.uuid4().hex[:14]}",
            "object": "customer_balance_transaction",
            "amount": amount,
            "currency": currency,
            "customer": customer["id"],
            "description": fields.get("description"),
            "ending_balance": customer["balance"],
            "metadata": fields.get("metadata", {}),
            "type": "adjustment",
        }
        self.state.transactions[customer["id"]].append(transaction)
        return 200, transaction


class BalanceStandIn:
    """The stand-in served on a loopback port in a thread."""

    def __init__(self) -> None:
        self.state = StandInState()
        handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
