"""A local stand-in for Stripe's list endpoints, for what localstripe cannot show.

localstripe lists oldest first, rejects `created` filters on most lists and
has no `/v1/subscription_items?subscription=` or `/v1/account`. This server
follows Stripe's documented list contract instead: newest first (ties in one
second keep a fixed order), `created[gt|gte|lt|lte]`, `limit` up to 100, a
404 `resource_missing` for a `starting_after` object that is gone,
`status=all` for subscriptions, and Stripe's error bodies. Tests script
faults (429 with `Retry-After`, 5xx) per path, hook into each served page,
and can add latency to every request.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PageHook = Callable[["StripeLists", str, dict[str, str], list[dict[str, Any]]], None]


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    only_if: Callable[[dict[str, str]], bool] | None = None


class StripeLists:
    """Objects per list path, served on a loopback port."""

    def __init__(self, api_key: str = "sk_test_stand_in") -> None:
        self.api_key = api_key
        self.account: dict[str, Any] | None = None
        self._objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._order: dict[str, int] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.page_hooks: list[PageHook] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.RLock()
        self.latency_seconds = 0.0
        self._sorted_cache: dict[str, tuple[list[dict[str, Any]], list[tuple[int, int]]]] = {}
        self._server: ThreadingHTTPServer | None = None

    # Contents -------------------------------------------------------------

    def add(self, path: str, *objects: dict[str, Any]) -> None:
        with self.lock:
            store = self._objects[path]
            for obj in objects:
                self._order.setdefault(obj["id"], len(self._order))
                store[obj["id"]] = obj
            self._sorted_cache.pop(path, None)

    def remove(self, path: str, object_id: str) -> None:
        with self.lock:
            self._objects[path].pop(object_id, None)
            self._sorted_cache.pop(path, None)

    def ids(self, path: str) -> set[str]:
        with self.lock:
            return set(self._objects[path])

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        only_if: Callable[[dict[str, str]], bool] | None = None,
    ) -> None:
        """Fail the next `times` requests to `path` (those `only_if` accepts) with `status`."""
        kind = "rate_limit_error" if status == 429 else "api_error"
        body = {"error": {"type": kind, "message": f"scripted {status} from the stand-in"}}
        with self.lock:
            for _ in range(times):
                self._faults[path].append(Fault(status, body, headers or {}, only_if))

    def requests_to(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            return [params for request_path, params in self.requests if request_path == path]

    # Listing --------------------------------------------------------------

    def _sort_key(self, obj: dict[str, Any]) -> tuple[int, int]:
        return (-int(obj.get("created") or 0), -self._order[obj["id"]])

    def _sorted(self, path: str) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
        """Return the path's objects newest first and their sort keys, cached until a change."""
        cached = self._sorted_cache.get(path)
        if cached is None:
            ordered = sorted(self._objects[path].values(), key=self._sort_key)
            cached = (ordered, [self._sort_key(obj) for obj in ordered])
            self._sorted_cache[path] = cached
        return cached

    def list_page(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            store = self._objects.get(path)
            if store is None:
                return 404, _error("invalid_request_error", f"Unrecognized request URL (GET: {path})")
            ordered, keys = self._sorted(path)
            # Keys are (-created, -insertion order), ascending: bisect on created.
            start, end = 0, len(ordered)
            if "created[lt]" in params:
                start = max(start, bisect_left(keys, (-int(params["created[lt]"]) + 1, -(10**12))))
            if "created[lte]" in params:
                start = max(start, bisect_left(keys, (-int(params["created[lte]"]), -(10**12))))
            if "created[gte]" in params:
                end = min(end, bisect_left(keys, (-int(params["created[gte]"]) + 1, -(10**12))))
            if "created[gt]" in params:
                end = min(end, bisect_left(keys, (-int(params["created[gt]"]), -(10**12))))
            cursor = params.get("starting_after")
            if cursor:
                cursor_obj = store.get(cursor)
                if cursor_obj is None:
                    return 404, _error(
                        "invalid_request_error",
                        f"No such object: '{cursor}'",
                        code="resource_missing",
                        param="starting_after",
                    )
                start = max(start, bisect_right(keys, self._sort_key(cursor_obj)))
            limit = min(int(params.get("limit", 10)), 100)
            page: list[dict[str, Any]] = []
            position = start
            while position < end and len(page) <= limit:
                if _matches(path, ordered[position], params):
                    page.append(ordered[position])
                position += 1
            has_more = len(page) > limit
            page = page[:limit]
            body = {"object": "list", "data": page, "has_more": has_more, "url": path}
        for hook in list(self.page_hooks):
            hook(self, path, params, page)
        return 200, body

    # Server ---------------------------------------------------------------

    def start(self) -> StripeLists:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def take_fault(self, path: str, params: dict[str, str]) -> Fault | None:
        with self.lock:
            queue = self._faults.get(path) or deque()
            for fault in queue:
                if fault.only_if is None or fault.only_if(params):
                    queue.remove(fault)
                    return fault
            return None


def _error(kind: str, message: str, *, code: str | None = None, param: str | None = None) -> dict:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _matches(path: str, obj: dict[str, Any], params: dict[str, str]) -> bool:
    created = int(obj.get("created") or 0)
    bounds = {
        "created[gt]": lambda value: created > value,
        "created[gte]": lambda value: created >= value,
        "created[lt]": lambda value: created < value,
        "created[lte]": lambda value: created <= value,
    }
    for name, test in bounds.items():
        if name in params and not test(int(params[name])):
            return False
    if path == "/v1/subscriptions" and params.get("status", "") != "all":
        wanted = params.get("status")
        if wanted and obj.get("status") != wanted:
            return False
        if not wanted and obj.get("status") in ("canceled", "incomplete_expired"):
            return False
    if path == "/v1/subscription_items" and obj.get("subscription") != params.get("subscription"):
        return False
    return True


class _Handler(BaseHTTPRequestHandler):
    stand_in: StripeLists

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_stand_in")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        stand_in = self.stand_in
        with stand_in.lock:
            stand_in.requests.append((parts.path, params))
        if self.headers.get("Authorization", "") != f"Bearer {stand_in.api_key}":
            self._send(401, _error("invalid_request_error", "Invalid API Key provided"))
            return
        if stand_in.latency_seconds:
            time.sleep(stand_in.latency_seconds)
        fault = stand_in.take_fault(parts.path, params)
        if fault is not None:
            self._send(fault.status, fault.body, fault.headers)
            return
        if parts.path == "/v1/account":
            if stand_in.account is None:
                self._send(404, _error("invalid_request_error", "Unrecognized request URL"))
            else:
                self._send(200, stand_in.account)
            return
        status, body = stand_in.list_page(parts.path, params)
        self._send(status, body)
