"""A local stand-in for Stripe's OAuth and webhook endpoint APIs.

localstripe serves neither, so the connect tests run this small HTTP server
on a loopback port. It follows Stripe's documented shapes: the authorize page
redirects with `code` and `state`, `POST /oauth/token` takes the platform key
and returns `stripe_user_id` with the tokens, and `POST /v1/webhook_endpoints`
returns the endpoint with its signing secret once. Like Stripe, it creates a
Connect endpoint only for the platform key and rejects an OAuth token.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class StandinState:
    platform_key: str
    client_id: str
    account_id: str
    account_keys: list[str] = field(default_factory=list)
    codes: dict[str, bool] = field(default_factory=dict)
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    endpoint_keys: list[str] = field(default_factory=list)
    deleted_endpoints: list[str] = field(default_factory=list)
    deauthorized: list[str] = field(default_factory=list)
    token_requests: int = 0
    stripe_versions: list[str] = field(default_factory=list)


def _form(handler: BaseHTTPRequestHandler) -> dict[str, list[str]]:
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length).decode("utf-8")
    return parse_qs(body, keep_blank_values=True)


def _bearer_or_basic(handler: BaseHTTPRequestHandler) -> str | None:
    header = handler.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer":
        return value
    if scheme == "Basic":
        return base64.b64decode(value).decode("utf-8").split(":")[0]
    return None


class _Handler(BaseHTTPRequestHandler):
    state: StandinState

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path != "/oauth/authorize":
            self._json(404, {"error": {"message": f"no route {parts.path}"}})
            return
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if query.get("client_id") != self.state.client_id or query.get("response_type") != "code":
            self._json(400, {"error": "invalid_request"})
            return
        code = f"ac_{secrets.token_hex(12)}"
        self.state.codes[code] = False
        location = query["redirect_uri"] + "?" + urlencode(
            {"scope": query.get("scope", "read_write"), "code": code, "state": query["state"]}
        )
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        form = _form(self)
        key = _bearer_or_basic(self)
        if path == "/oauth/token":
            self._token(form, key)
        elif path == "/oauth/deauthorize":
            if key != self.state.platform_key:
                self._json(401, {"error": "invalid_client"})
                return
            account = form.get("stripe_user_id", [""])[-1]
            self.state.deauthorized.append(account)
            self._json(200, {"stripe_user_id": account})
        elif path == "/v1/webhook_endpoints":
            self._create_endpoint(form, key)
        else:
            self._json(404, {"error": {"message": f"no route {path}"}})

    def do_DELETE(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        endpoint_id = path.rsplit("/", 1)[-1]
        if _bearer_or_basic(self) not in self.state.account_keys:
            self._json(401, {"error": {"type": "invalid_request_error", "message": "bad key"}})
            return
        self.state.deleted_endpoints.append(endpoint_id)
        self._json(200, {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})

    def _token(self, form: dict[str, list[str]], key: str | None) -> None:
        self.state.token_requests += 1
        if key != self.state.platform_key:
            self._json(401, {"error": "invalid_client", "error_description": "bad key"})
            return
        code = form.get("code", [""])[-1]
        if form.get("grant_type", [""])[-1] != "authorization_code" or code not in self.state.codes:
            self._json(400, {"error": "invalid_grant", "error_description": "unknown code"})
            return
        if self.state.codes[code]:
            self._json(400, {"error": "invalid_grant", "error_description": "code used"})
            return
        self.state.codes[code] = True
        access = f"sk_test_conn{secrets.token_hex(16)}"
        refresh = f"rt_{secrets.token_hex(16)}"
        self.state.access_tokens.append(access)
        self.state.refresh_tokens.append(refresh)
        self._json(
            200,
            {
                "access_token": access,
                "livemode": False,
                "refresh_token": refresh,
                "token_type": "bearer",
                "stripe_publishable_key": f"pk_test_{secrets.token_hex(8)}",
                "stripe_user_id": self.state.account_id,
                "scope": "read_write",
            },
        )

    def _create_endpoint(self, form: dict[str, list[str]], key: str | None) -> None:
        connect = form.get("connect", ["false"])[-1] == "true"
        if key in self.state.access_tokens:
            # The error Stripe returns to a platform that tries this with an OAuth token.
            message = (
                "You are not permitted to configure webhook endpoints on a connected "
                "account. Did you mean to create a Connect webhook on your account instead?"
            )
            self._json(400, {"error": {"type": "invalid_request_error", "message": message}})
            return
        allowed = key == self.state.platform_key if connect else key in self.state.account_keys
        if not allowed:
            self._json(
                401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
            )
            return
        self.state.stripe_versions.append(self.headers.get("Stripe-Version", ""))
        events = [
            values[-1]
            for name, values in sorted(form.items(), key=lambda item: _index(item[0]))
            if name.startswith("enabled_events[")
        ]
        endpoint = {
            "id": f"we_{secrets.token_hex(8)}",
            "object": "webhook_endpoint",
            "url": form.get("url", [""])[-1],
            "api_version": form.get("api_version", [None])[-1],
            "enabled_events": events,
            "connect": connect,
            "status": "enabled",
            "secret": f"whsec_{secrets.token_hex(16)}",
            "metadata": {
                name[len("metadata["):-1]: values[-1]
                for name, values in form.items()
                if name.startswith("metadata[")
            },
        }
        self.state.endpoints.append(endpoint)
        self.state.endpoint_keys.append(key or "")
        self._json(200, endpoint)


def _index(name: str) -> tuple[str, int]:
    prefix, _, rest = name.partition("[")
    number = rest.rstrip("]")
    return prefix, int(number) if number.isdigit() else -1


class StripeStandin:
    """Runs the stand-in on 127.0.0.1 in a thread; `base_url` is its address."""

    def __init__(self, *, platform_key: str, client_id: str, account_id: str) -> None:
        self.state = StandinState(platform_key, client_id, account_id)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StripeStandin:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
