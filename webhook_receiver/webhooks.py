"""`POST /api/integrations/stripe/webhook`: verify, store, acknowledge.

The receiver responds 2xx only after the event row is committed, so an
acknowledged event is never lost. Concurrent deliveries share one INSERT
(group commit): each request queues its row and waits for the batch it
joined, which keeps the database round trips per second flat under load.

The optional path segment (`.../webhook/acct_123`) or `account` query
parameter names the account an endpoint was created for. The receiver
passes it to the stored-secret providers, and uses it as the event's
account when the event carries none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field

import orjson
import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from halo_stripe_pipeline.events import secrets as webhook_secrets
from halo_stripe_pipeline.events.store import (
    INSERT_EVENTS_SQL,
    EventRow,
    event_row,
    insert_params,
)
from halo_stripe_pipeline.events.types import (
    NotAnEventError,
    check_event,
    event_account,
)
from webhook_receiver.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    SignatureError,
    SignatureHeader,
    check_timestamp,
    matching_secret,
    parse_header,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/integrations/stripe/webhook"
TOLERANCE_ENV_VARIABLE = "STRIPE_WEBHOOK_TOLERANCE"
# Stripe event payloads are a few kilobytes; a list-heavy invoice stays far
# below this.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_BATCH_ROWS = 500
STORED_SECRET_TTL_SECONDS = 30.0


# The two success responses, encoded once: a response object is immutable
# once built, so every request can send the same one.
STORED_BODY = Response(
    b'{"received":true,"duplicate":false}', media_type="application/json"
)
DUPLICATE_BODY = Response(
    b'{"received":true,"duplicate":true}', media_type="application/json"
)


class ConfigurationError(RuntimeError):
    """The receiver cannot verify anything until it is configured."""


def tolerance_seconds() -> int:
    raw = os.environ.get(TOLERANCE_ENV_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_TOLERANCE_SECONDS
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(
            f"{TOLERANCE_ENV_VARIABLE}={raw!r} is not a whole number of seconds"
        ) from None


class RejectionLog:
    """Log rejected deliveries, at most `limit` lines a minute.

    A flood of forged requests would otherwise fill the log; the lines held
    back are counted and reported with the next one written.
    """

    def __init__(self, limit: int = 20, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._window_start = time.monotonic()
        self._written = 0
        self._suppressed = 0

    def record(
        self, reason: str, request: Request, level: int = logging.WARNING
    ) -> None:
        now = time.monotonic()
        if now - self._window_start >= self.window_seconds:
            self._window_start = now
            self._written = 0
        if self._written >= self.limit:
            self._suppressed += 1
            return
        self._written += 1
        client = request.client.host if request.client else "-"
        suppressed, self._suppressed = self._suppressed, 0
        log.log(
            level,
            "webhook rejected reason=%r client=%s path=%s suppressed_before=%d",
            reason,
            client,
            request.url.path,
            suppressed,
        )


class EventWriter:
    """Group commit: rows queued while one INSERT runs go into the next one."""

    def __init__(self, pool: object) -> None:
        self._pool = pool
        self._queue: list[tuple[EventRow, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(self, row: EventRow) -> bool:
        """Commit `row`; return False when its event id was already stored."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[:MAX_BATCH_ROWS]
            del self._queue[:MAX_BATCH_ROWS]
            try:
                inserted = await self._insert([row for row, _ in batch])
            except psycopg.Error as error:
                if len(batch) == 1:
                    batch[0][1].set_exception(error)
                    continue
                # One bad row must not fail its neighbours: retry one by one.
                log.warning(
                    "batch insert of %d events failed (%s); retrying each",
                    len(batch),
                    error,
                )
                for row, future in batch:
                    try:
                        one = await self._insert([row])
                    except psycopg.Error as row_error:
                        future.set_exception(row_error)
                    else:
                        future.set_result(row.id in one)
                continue
            for row, future in batch:
                is_new = row.id in inserted
                inserted.discard(row.id)
                if not future.done():
                    future.set_result(is_new)

    async def _insert(self, rows: list[EventRow]) -> set[str]:
        async with self._pool.connection() as conn:  # type: ignore[attr-defined]
            cursor = await conn.execute(INSERT_EVENTS_SQL, insert_params(rows))
            return {record[0] for record in await cursor.fetchall()}


@dataclass
class StoredSecretCache:
    """Stored secrets per account hint, re-read after a short TTL."""

    db_url: str
    ttl_seconds: float = STORED_SECRET_TTL_SECONDS
    _entries: dict[str | None, tuple[float, list[str]]] = field(default_factory=dict)

    async def get(self, account_id_hint: str | None) -> list[str]:
        now = time.monotonic()
        entry = self._entries.get(account_id_hint)
        if entry and now - entry[0] < self.ttl_seconds:
            return entry[1]
        secrets = await run_in_threadpool(self._load, account_id_hint)
        self._entries[account_id_hint] = (now, secrets)
        return secrets

    def _load(self, account_id_hint: str | None) -> list[str]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return webhook_secrets.stored_secrets(conn, account_id_hint)


@dataclass
class ReceiverState:
    writer: EventWriter
    stored_secrets: StoredSecretCache
    rejections: RejectionLog
    tolerance_seconds: int


def receiver_state(app: Starlette) -> ReceiverState:
    state = getattr(app.state, "stripe_webhooks", None)
    if state is None:
        state = ReceiverState(
            writer=EventWriter(app.state.pool),
            stored_secrets=StoredSecretCache(app.state.db_url),
            rejections=RejectionLog(),
            tolerance_seconds=tolerance_seconds(),
        )
        app.state.stripe_webhooks = state
    return state


async def verify_delivery(
    state: ReceiverState,
    payload: bytes,
    header_value: str | None,
    account_id_hint: str | None,
) -> tuple[SignatureHeader, bool]:
    """Check the signature against every active secret, then the timestamp.

    Returns the header and whether a stored secret (rather than
    `STRIPE_WEBHOOK_SECRET`) verified it.
    """
    header = parse_header(header_value)
    env_secrets = webhook_secrets.env_secrets()
    matched = matching_secret(payload, header, env_secrets) if env_secrets else None
    by_stored_secret = False
    if matched is None and webhook_secrets.has_secret_providers():
        stored = await state.stored_secrets.get(account_id_hint)
        if stored:
            matched = matching_secret(payload, header, stored)
            by_stored_secret = matched is not None
        elif not env_secrets:
            raise ConfigurationError("no webhook signing secret is configured")
    elif matched is None and not env_secrets:
        raise ConfigurationError("no webhook signing secret is configured")
    if matched is None:
        raise SignatureError("no signature matches the payload")
    check_timestamp(header, state.tolerance_seconds)
    return header, by_stored_secret


def reject(
    state: ReceiverState, request: Request, reason: str, status_code: int = 400
) -> JSONResponse:
    state.rejections.record(reason, request)
    return JSONResponse({"error": reason}, status_code=status_code)


async def receive_stripe_webhook(request: Request) -> Response:
    state = receiver_state(request.app)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return reject(state, request, "body too large", 413)
    payload = await request.body()
    if len(payload) > MAX_BODY_BYTES:
        return reject(state, request, "body too large", 413)
    account_id_hint = (
        request.path_params.get("account_id")
        or request.query_params.get("account")
        or None
    )

    try:
        _, by_stored_secret = await verify_delivery(
            state, payload, request.headers.get("stripe-signature"), account_id_hint
        )
    except SignatureError as error:
        return reject(state, request, str(error))
    except ConfigurationError as error:
        # Stripe retries a non-2xx delivery for up to three days in live
        # mode, so nothing is lost while the receiver is being configured.
        state.rejections.record(
            f"{error}; set STRIPE_WEBHOOK_SECRET", request, logging.ERROR
        )
        return JSONResponse({"error": str(error)}, status_code=500)

    try:
        event = check_event(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return reject(state, request, "body is not valid JSON")
    except NotAnEventError as error:
        return reject(state, request, str(error))
    account = event_account(event)
    if account and account_id_hint and account != account_id_hint:
        return reject(state, request, "event account does not match the endpoint")
    if account_id_hint and not by_stored_secret:
        # Only the account's own stored secret proves the delivery came from
        # that account's endpoint. A platform-signed event therefore keeps its
        # own `account` (or none) instead of the one in the URL.
        log.warning(
            "webhook event=%s verified by STRIPE_WEBHOOK_SECRET, not the secret of %s;"
            " storing it without that account",
            event.get("id"), account_id_hint,
        )
        account_id_hint = None

    row = event_row(event, payload.decode("utf-8"), account_id=account_id_hint)
    is_new = await state.writer.store(row)
    if not is_new:
        log.info("webhook duplicate event=%s type=%s", row.id, row.type)
    return DUPLICATE_BODY if not is_new else STORED_BODY


routes = [
    Route(WEBHOOK_PATH, receive_stripe_webhook, methods=["POST"]),
    Route(WEBHOOK_PATH + "/{account_id}", receive_stripe_webhook, methods=["POST"]),
]
