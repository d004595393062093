"""A fast local stand-in for Stripe's list endpoints, for the benchmarks.

It serves a generated account (`benchmarks.generate`) on 127.0.0.1 with
Stripe's paging (`limit` up to 100, `starting_after`, `ending_before`,
`has_more`), `created[gt|gte|lt|lte]` filters, newest-first order, the
subscription `status` filter (without it, canceled subscriptions are left
out, as Stripe does), `GET /v1/subscription_items?subscription=` and
`GET /v1/account`. Every response waits a configurable latency with
`asyncio.sleep`, so one process sustains hundreds of requests per second
at 250 ms.

Two token buckets reject requests with 429 like Stripe's rate limiter: one
for the whole account and one per endpoint (each list path is one endpoint). A rejected
request costs no token. Its body is Stripe's error shape with
`type: invalid_request_error` and `code: rate_limit`, and it carries a
`Retry-After` header in whole seconds (HTTP's delta-seconds form).

`GET /_stand_in/stats` returns request counts and rejections. Per object
type it also returns how many objects were served, how many distinct ones
and how many more than once. `POST /_stand_in/reset` zeroes them. Neither counts against a
limit. Run it with `python -m benchmarks.stand_in --customers 1000`; it
prints one JSON line with its address once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from benchmarks.generate import LISTED_TYPES, ensure_account
from benchmarks.store import AccountStore, ListError, parse_list_query

log = logging.getLogger(__name__)

LIST_PATHS = {f"/v1/{name}": name for name in (*LISTED_TYPES, "subscription_items")}
DOCS_URL = "https://stripe.com/docs/rate-limits"


class TokenBucket:
    """A token bucket: `rate` tokens per second, at most `capacity`, starting full."""

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.updated = time.monotonic()

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)

    def seconds_until_token(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.rate)


@dataclass
class Limits:
    """Rate limits and latency of the stand-in.

    `burst_seconds` sizes each bucket as that many seconds of its rate.
    NOTE: Stripe does not publish its burst allowance. The default of two
    seconds keeps a client that paces itself at exactly the limit from
    seeing 429s caused by arrival jitter alone, and lets a client gain at most
    two seconds on the bound of a run.
    """

    requests_per_second: float = 100.0
    endpoint_requests_per_second: float = 25.0
    burst_seconds: float = 2.0
    latency_seconds: float = 0.25
    jitter_seconds: float = 0.0


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    requests: int = 0
    ok: int = 0
    errors: int = 0
    rate_limited: dict[str, int] = field(default_factory=dict)
    per_endpoint: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    first_request: float | None = None
    last_response: float | None = None


class StandIn:
    def __init__(self, store: AccountStore, limits: Limits) -> None:
        self.store = store
        self.limits = limits
        self.global_bucket = self._bucket(limits.requests_per_second)
        self.endpoint_buckets: dict[str, TokenBucket] = {}
        self.served = {name: bytearray(store.count(name)) for name in LISTED_TYPES}
        self.stats = Stats()
        self._jitter_state = 0x2545F491

    def _bucket(self, rate: float) -> TokenBucket:
        return TokenBucket(rate, max(1.0, rate * self.limits.burst_seconds))

    def reset(self) -> None:
        for counts in self.served.values():
            counts[:] = bytes(len(counts))
        self.stats = Stats()
        self.global_bucket = self._bucket(self.limits.requests_per_second)
        self.endpoint_buckets.clear()

    def admit(self, endpoint: str) -> tuple[str, float] | None:
        """Take one token from both buckets, or return (reason, wait) when either is empty."""
        now = time.monotonic()
        bucket = self.endpoint_buckets.get(endpoint)
        if bucket is None:
            bucket = self._bucket(self.limits.endpoint_requests_per_second)
            self.endpoint_buckets[endpoint] = bucket
        bucket.refill(now)
        self.global_bucket.refill(now)
        if bucket.tokens < 1.0:
            return "endpoint-rate", bucket.seconds_until_token()
        if self.global_bucket.tokens < 1.0:
            return "global-rate", self.global_bucket.seconds_until_token()
        bucket.tokens -= 1.0
        self.global_bucket.tokens -= 1.0
        return None

    def latency(self) -> float:
        if not self.limits.jitter_seconds:
            return self.limits.latency_seconds
        # A xorshift step: deterministic jitter without a shared Random.
        state = self._jitter_state
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        self._jitter_state = state
        return self.limits.latency_seconds + self.limits.jitter_seconds * (
            state / 0xFFFFFFFF
        )

    def record_served(self, object_type: str, seqs: list[int]) -> None:
        counts = self.served.get(object_type)
        if counts is None:
            return
        for seq in seqs:
            if counts[seq - 1] < 255:
                counts[seq - 1] += 1

    def served_summary(self) -> dict[str, dict[str, int]]:
        summary = {}
        for name, counts in self.served.items():
            delivered = sum(counts)
            distinct = len(counts) - counts.count(0)
            summary[name] = {
                "objects": len(counts),
                "delivered": delivered,
                "distinct": distinct,
                "missing": len(counts) - distinct,
                "duplicates": delivered - distinct,
            }
        return summary


def _error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": error_type}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return web.Response(
        status=status,
        body=orjson.dumps({"error": error}),
        content_type="application/json",
        headers=headers,
    )


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    return header.startswith(("Bearer sk_", "Bearer rk_"))


@web.middleware
async def _track(request: web.Request, handler: Any) -> web.StreamResponse:
    stand_in: StandIn = request.app["stand_in"]
    if request.path.startswith("/_stand_in/"):
        return await handler(request)
    stats = stand_in.stats
    stats.requests += 1
    stats.in_flight += 1
    stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
    if stats.first_request is None:
        stats.first_request = time.monotonic()
    try:
        response = await handler(request)
        await asyncio.sleep(stand_in.latency())
        if response.status == 200:
            stats.ok += 1
        elif response.status != 429:
            stats.errors += 1
        return response
    finally:
        stats.in_flight -= 1
        stats.last_response = time.monotonic()


async def handle_api(request: web.Request) -> web.Response:
    stand_in: StandIn = request.app["stand_in"]
    if not _authorized(request):
        log.warning(
            "rejected %s %s: missing or invalid API key", request.method, request.path
        )
        return _error(401, "Invalid API Key provided.", code="api_key_invalid")

    path = request.path.rstrip("/")
    endpoint = f"{request.method} {path}"
    rejected = stand_in.admit(endpoint)
    if rejected is not None:
        # Counted in the stats rather than logged, because a loader at the limit gets many.
        reason, wait = rejected
        stand_in.stats.rate_limited[reason] = (
            stand_in.stats.rate_limited.get(reason, 0) + 1
        )
        return _error(
            429,
            f"Request rate limit exceeded. Learn more about rate limits here {DOCS_URL}.",
            code="rate_limit",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    stand_in.stats.per_endpoint[endpoint] = (
        stand_in.stats.per_endpoint.get(endpoint, 0) + 1
    )
    if request.method != "GET":
        log.warning("rejected %s: the stand-in serves GET only", endpoint)
        return _error(
            405, f"The stand-in serves only GET requests, not {request.method}."
        )
    if path == "/v1/account":
        return web.Response(
            body=stand_in.store.account_body, content_type="application/json"
        )
    return _list(stand_in, path, request)


def _list(stand_in: StandIn, path: str, request: web.Request) -> web.Response:
    object_type = LIST_PATHS.get(path)
    if object_type is None:
        log.warning("rejected GET %s: not a list endpoint the stand-in serves", path)
        return _error(404, f"Unrecognized request URL (GET: {path}).")
    try:
        query = parse_list_query(request.query, object_type)
        page = stand_in.store.list_page(object_type, query, path)
    except ListError as error:
        log.warning("rejected GET %s?%s: %s", path, request.query_string, error)
        return _error(error.status, str(error), code=error.code, param=error.param)
    stand_in.record_served(object_type, page.seqs)
    return web.Response(body=page.body, content_type="application/json")


async def handle_stats(request: web.Request) -> web.Response:
    stand_in: StandIn = request.app["stand_in"]
    stats = stand_in.stats
    active = None
    if stats.first_request is not None and stats.last_response is not None:
        active = stats.last_response - stats.first_request
    body = {
        "requests": stats.requests,
        "ok": stats.ok,
        "errors": stats.errors,
        "rate_limited": stats.rate_limited,
        "per_endpoint": stats.per_endpoint,
        "max_in_flight": stats.max_in_flight,
        "active_seconds": active,
        "served": stand_in.served_summary(),
        "limits": stand_in.limits.__dict__,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def handle_reset(request: web.Request) -> web.Response:
    request.app["stand_in"].reset()
    return web.Response(body=b"{}", content_type="application/json")


def build_app(stand_in: StandIn) -> web.Application:
    app = web.Application(middlewares=[_track])
    app["stand_in"] = stand_in
    app.router.add_get("/_stand_in/stats", handle_stats)
    app.router.add_post("/_stand_in/reset", handle_reset)
    app.router.add_route("*", "/v1/{tail:.*}", handle_api)
    return app


async def serve(stand_in: StandIn, host: str, port: int) -> None:
    runner = web.AppRunner(build_app(stand_in), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_port = runner.addresses[0][1]
    print(
        orjson.dumps(
            {"api_base": f"http://{host}:{bound_port}", "port": bound_port}
        ).decode(),
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _loopback(host: str) -> str:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(
            f"refusing to bind {host}: the stand-in listens on loopback only"
        )
    return host


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve a generated account like Stripe's list API."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data", type=Path, help="account file written by benchmarks.generate"
    )
    source.add_argument(
        "--customers", type=int, help="generate or reuse an account of N customers"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="generator seed (default 1)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument(
        "--latency-ms", type=float, default=250.0, help="added latency per response"
    )
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, help="extra random latency, 0 to N ms"
    )
    parser.add_argument(
        "--rate", type=float, default=100.0, help="requests/s for the account"
    )
    parser.add_argument(
        "--endpoint-rate", type=float, default=25.0, help="requests/s per endpoint"
    )
    parser.add_argument(
        "--burst-seconds",
        type=float,
        default=2.0,
        help="bucket size in seconds of rate (default 2)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    path = args.data or ensure_account(args.customers, args.seed)
    limits = Limits(
        requests_per_second=args.rate,
        endpoint_requests_per_second=args.endpoint_rate,
        burst_seconds=args.burst_seconds,
        latency_seconds=args.latency_ms / 1000,
        jitter_seconds=args.jitter_ms / 1000,
    )
    store = AccountStore(path)
    log.info("serving %s on %s with %s", path.name, args.host, limits)
    host = _loopback(args.host)
    try:
        # Optional: uvloop serves more requests per core than asyncio's loop.
        import uvloop

        uvloop.run(serve(StandIn(store, limits), host, args.port))
    except ImportError:
        asyncio.run(serve(StandIn(store, limits), host, args.port))


if __name__ == "__main__":
    main()
