"""The backfill loader: pages Stripe lists into `stripe_raw`, a page at a time.

Each object type is listed by a small pool of threads over disjoint
`created` ranges (see `ranges.py`), all sharing one `StripeApi`, whose
limiters keep the per-account and per-endpoint request rates. Every page is
written as it arrives (COPY + upsert), so memory stays flat. Progress goes to
`stripe_raw.sync_state` and the log. A failure names the object type and the
cursor it stopped at. A rerun lists everything again and completes the load,
because writes are idempotent upserts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE, ConfigError
from halo_stripe_pipeline.ingest import ranges
from halo_stripe_pipeline.ingest.object_types import ObjectType, list_filters
from halo_stripe_pipeline.stripe_client import PAGE_SIZE, StripeApi, StripeApiError
from halo_stripe_pipeline.warehouse import bulk, connect

log = logging.getLogger(__name__)

DEFAULT_WORKERS_PER_TYPE = 16
# Measured: with 4, workers waited for a connection and four busy types
# reached about 80 of the 100 requests/s; with 8 they reached the limit.
DEFAULT_WRITE_CONNECTIONS = 8
PROBES_PER_ROUND = 8
# A slice ends with a partial page, so a listing is cut only where each
# slice is expected to hold at least this many pages.
MIN_PAGES_PER_SLICE = 4.0
PROGRESS_INTERVAL_SECONDS = 5.0


class IngestError(RuntimeError):
    """A sync failed; the message names the object type and where it stopped."""


class IngestDisabledError(ConfigError):
    """The account's `ingest_enabled` setting is false."""


@dataclass
class TypeReport:
    """Outcome of loading one object type for one account."""

    object_type: str
    table: str
    status: str = "pending"
    objects: int = 0
    pages: int = 0
    rows_written: int = 0
    flagged_deleted: int = 0
    slices: int = 0
    seconds: float = 0.0
    last_cursor: str | None = None
    error: str | None = None

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadOptions:
    """Tuning of one load, with defaults sized for Stripe's documented limits.

    `range_slicing` None reads `STRIPE_LIST_SLICING` (`on`, `off`, `auto`).
    `auto` is on for Stripe's own API base. For any other base it is on when
    a customers list filtered by `created` succeeds, because localstripe
    rejects `created` filters with a 400 on that list (and with a 500 on
    some others, which would be retried for a minute).
    """

    workers_per_type: int = DEFAULT_WORKERS_PER_TYPE
    write_connections: int = DEFAULT_WRITE_CONNECTIONS
    range_slicing: bool | None = None
    logger: logging.Logger | Any = field(default=log)

    def resolve_slicing(self, api: StripeApi) -> bool:
        """Decide whether lists are sliced by `created`, probing the server if needed."""
        if self.range_slicing is not None:
            return self.range_slicing
        configured = os.environ.get("STRIPE_LIST_SLICING", "auto").strip().lower()
        if configured in {"on", "true", "1"}:
            return True
        if configured in {"off", "false", "0"}:
            return False
        if api.api_base.rstrip("/") == DEFAULT_STRIPE_API_BASE:
            return True
        return _accepts_created_filters(api, self.logger)


def _accepts_created_filters(api: StripeApi, logger: Any) -> bool:
    try:
        api.get("/v1/customers", {"limit": 1, "created[gte]": ranges.EARLIEST_CREATED})
    except StripeApiError as error:
        if error.http_status not in (400, 404):
            raise
        logger.info(
            "%s rejects created filters (%s); listing each type without slicing",
            api.api_base, error,
        )
        return False
    return True


class ConnectionPool:
    """A fixed set of warehouse connections shared by the loader's threads."""

    def __init__(self, db_url: str, size: int) -> None:
        self._idle: queue.Queue[psycopg.Connection] = queue.Queue()
        self._all = [connect(db_url) for _ in range(max(1, size))]
        for conn in self._all:
            self._idle.put(conn)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        conn = self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SyncStateWriter:
    """Writer of one object type's progress row in `stripe_raw.sync_state`."""

    def __init__(self, pool: ConnectionPool, account_id: str, object_type: str, run_id: str | None):
        self.pool = pool
        self.account_id = account_id
        self.object_type = object_type
        self.run_id = run_id

    def start(self) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                """
                insert into stripe_raw.sync_state as s
                    (account_id, object_type, status, run_id, started_at, finished_at,
                     objects_loaded, pages_loaded, last_cursor, error)
                values (%s, %s, 'running', %s, now(), null, 0, 0, null, null)
                on conflict (account_id, object_type) do update set
                    status = 'running', run_id = excluded.run_id,
                    started_at = excluded.started_at, finished_at = null,
                    objects_loaded = 0, pages_loaded = 0, last_cursor = null, error = null
                """,
                (self.account_id, self.object_type, self.run_id),
            )

    def update(self, report: TypeReport, *, finished: bool = False) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                """
                update stripe_raw.sync_state set
                    status = %s, objects_loaded = %s, pages_loaded = %s,
                    last_cursor = %s, error = %s,
                    finished_at = case when %s then now() else finished_at end
                where account_id = %s and object_type = %s
                """,
                (
                    report.status, report.objects, report.pages, report.last_cursor,
                    report.error, finished, self.account_id, self.object_type,
                ),
            )


class EndpointMissingError(StripeApiError):
    """The API base has no such list endpoint (an emulator lacking a resource)."""


class TypeLoad:
    """Lists one object type over range tasks with a pool of worker threads."""

    def __init__(
        self,
        spec: ObjectType,
        api: StripeApi,
        pool: ConnectionPool,
        account_id: str,
        options: LoadOptions,
        run_id: str | None = None,
    ) -> None:
        self.spec = spec
        self.api = api
        self.filters = list_filters(spec, api)
        self.pool = pool
        self.account_id = account_id
        self.options = options
        self.logger = options.logger
        self.report = TypeReport(object_type=spec.name, table=spec.table)
        self.state = SyncStateWriter(pool, account_id, spec.name, run_id)
        self._tasks: deque[ranges.RangeTask] = deque()
        self._in_flight = 0
        self._condition = threading.Condition()
        self._failure: tuple[ranges.RangeTask, BaseException] | None = None
        self._started = 0.0
        self._started_at = _now()
        self._workers = 1
        self._last_progress = 0.0
        self._first_task = ranges.RangeTask(gte=None, lt=None)

    def run(self) -> TypeReport:
        self._started = time.monotonic()
        self._started_at = _now()
        self.state.start()
        self.report.status = "running"
        self.report.slices = 1
        try:
            tasks = self._initial_tasks()
        except EndpointMissingError as error:
            return self._skip(error)
        except Exception as error:  # noqa: BLE001 - recorded in the report and sync_state
            self._failure = (self._first_task, error)
            return self._finish()
        with self._condition:
            self._workers = self._worker_count(tasks)
            self._tasks.extend(tasks)
        self.logger.info(
            "listing %s from %s with up to %d worker(s)",
            self.spec.name, self.spec.endpoint, self._workers,
        )
        workers = [
            threading.Thread(target=self._work, name=f"ingest-{self.spec.name}-{index}")
            for index in range(self._workers)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return self._finish()

    def _worker_count(self, tasks: Sequence[ranges.RangeTask]) -> int:
        if not tasks or not tasks[0].is_sliced:
            return 1
        return max(1, self.options.workers_per_type)

    # Listing setup ----------------------------------------------------

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.api.get(self.spec.endpoint, {"limit": PAGE_SIZE, **params})
        except StripeApiError as error:
            missing_endpoint = (
                error.http_status == 404
                and error.code != "resource_missing"
                and "starting_after" not in params
                and self.api.api_base.rstrip("/") != DEFAULT_STRIPE_API_BASE
            )
            if missing_endpoint:
                raise EndpointMissingError(str(error), http_status=404) from error
            raise

    def _initial_tasks(self) -> list[ranges.RangeTask]:
        """Load the newest page, then slice the rest of the listing.

        A type that fits in one page (most products, plans, coupons) costs
        one request and no probing.
        """
        if not self.options.range_slicing:
            following = self._load_page(self._first_task)
            return [following] if following is not None else []
        self._first_task = ranges.RangeTask(gte=0, lt=int(time.time()) + 1)
        following = self._load_page(self._first_task)
        if following is None or following.cursor_created is None:
            return [following] if following is not None else []
        floor = self._bracket_oldest(following.cursor_created)
        rest = dataclasses.replace(following, gte=floor)
        parts = ranges.worthwhile_pieces(
            rest, self.options.workers_per_type, PAGE_SIZE, MIN_PAGES_PER_SLICE
        )
        pieces = ranges.split_remaining(rest, parts)
        self.report.slices = len(pieces)
        return pieces

    def _bracket_oldest(self, newest: int) -> int:
        """Return an instant at or before the oldest object, found by parallel probes."""
        low, high = ranges.EARLIEST_CREATED, newest + 1
        with ThreadPoolExecutor(PROBES_PER_ROUND, thread_name_prefix="ingest-probe") as probes:
            while not ranges.oldest_is_bracketed(low, high, newest):
                points = ranges.probe_points(low, high, PROBES_PER_ROUND)
                if not points:
                    break
                found = probes.map(self._has_object_before, points)
                low, high = ranges.narrow_oldest(low, high, dict(zip(points, found)))
        # The search start is an assumption until a probe confirms it.
        if low == ranges.EARLIEST_CREATED and self._has_object_before(low):
            return 0
        return low

    def _has_object_before(self, instant: int) -> bool:
        body = self._get({**self.filters, "limit": 1, "created[lt]": instant})
        return bool(body.get("data"))

    # Worker loop ------------------------------------------------------

    def _next_task(self) -> ranges.RangeTask | None:
        with self._condition:
            while not self._tasks and self._in_flight > 0 and self._failure is None:
                self._condition.wait()
            if self._failure is not None or not self._tasks:
                return None
            self._in_flight += 1
            return self._tasks.popleft()

    def _return_task(self, following: ranges.RangeTask | None) -> None:
        with self._condition:
            self._in_flight -= 1
            if following is not None:
                self._tasks.extend(self._split_for_idle(following))
            self._condition.notify_all()

    def _split_for_idle(self, task: ranges.RangeTask) -> list[ranges.RangeTask]:
        """Cut `task` into enough pieces for the idle workers; call with the lock held."""
        idle = self._workers - self._in_flight - len(self._tasks) - 1
        if idle <= 0:
            return [task]
        parts = ranges.worthwhile_pieces(task, idle + 1, PAGE_SIZE, MIN_PAGES_PER_SLICE)
        pieces = ranges.split_remaining(task, parts)
        self.report.slices += len(pieces) - 1
        return pieces

    def _fail(self, task: ranges.RangeTask, error: BaseException) -> None:
        with self._condition:
            self._in_flight -= 1
            if self._failure is None:
                self._failure = (task, error)
            self._condition.notify_all()

    def _work(self) -> None:
        while True:
            task = self._next_task()
            if task is None:
                return
            try:
                following = self._load_page(task)
            except Exception as error:  # noqa: BLE001 - recorded and re-raised by run()
                self._fail(task, error)
                return
            self._return_task(following)

    def _load_page(self, task: ranges.RangeTask) -> ranges.RangeTask | None:
        observed_at = _now()
        try:
            body = self._get(ranges.list_params(task, self.filters))
        except StripeApiError as error:
            if error.code == "resource_missing" and task.starting_after:
                self.logger.warning(
                    "cursor %s of %s was deleted mid-listing; resuming from created <= %s",
                    task.starting_after, self.spec.name, task.cursor_created,
                )
                return ranges.resume_after_missing_cursor(task)
            raise
        objects = body.get("data") or []
        fresh, following = ranges.advance(task, objects, bool(body.get("has_more")))
        if self.spec.complete is not None:
            fresh = [self.spec.complete(self.api, dict(obj)) for obj in fresh]
        written = self._write(fresh, observed_at)
        self._count_page(len(fresh), written, following or task)
        return following

    def _write(self, objects: Sequence[dict[str, Any]], observed_at: datetime) -> int:
        if not objects:
            return 0
        with self.pool.connection() as conn:
            result = bulk.upsert_objects(
                conn, self.spec.table, self.account_id, objects, observed_at=observed_at
            )
        return result.written

    def _count_page(self, objects: int, written: int, position: ranges.RangeTask) -> None:
        with self._condition:
            self.report.objects += objects
            self.report.pages += 1
            self.report.rows_written += written
            if position.starting_after:
                self.report.last_cursor = position.starting_after
            now = time.monotonic()
            due = now - self._last_progress >= PROGRESS_INTERVAL_SECONDS
            if due:
                self._last_progress = now
            self.report.seconds = now - self._started
        if due:
            self.state.update(self.report)
            self.logger.info(
                "%s: %d objects, %d pages, %.0f objects/s",
                self.spec.name, self.report.objects, self.report.pages,
                self.report.objects_per_second,
            )

    # Outcome ----------------------------------------------------------

    def _skip(self, error: StripeApiError) -> TypeReport:
        self.logger.warning(
            "skipping %s: %s has no %s list (%s)",
            self.spec.name, self.api.api_base, self.spec.endpoint, error,
        )
        self.report.status = "skipped"
        self.report.error = str(error)
        self.report.seconds = time.monotonic() - self._started
        self.state.update(self.report, finished=True)
        return self.report

    def _finish(self) -> TypeReport:
        self.report.seconds = time.monotonic() - self._started
        if self._failure is not None:
            task, error = self._failure
            self.report.status = "failed"
            self.report.last_cursor = task.starting_after or self.report.last_cursor
            self.report.error = (
                f"sync of `{self.spec.name}` stopped at {task.describe()}: {error}"
            )
            self.state.update(self.report, finished=True)
            self.logger.error("%s", self.report.error)
            return self.report
        if self.spec.flags_missing_as_deleted:
            self.report.flagged_deleted = self._flag_unlisted_deleted()
        self.report.status = "succeeded"
        self.state.update(self.report, finished=True)
        self.logger.info(
            "loaded %s: %d objects in %d pages, %.1fs, %.0f objects/s",
            self.spec.name, self.report.objects, self.report.pages,
            self.report.seconds, self.report.objects_per_second,
        )
        if self.report.objects == 0:
            self.logger.warning("%s: the listing returned no objects", self.spec.name)
        return self.report

    def _flag_unlisted_deleted(self) -> int:
        """Flag rows that this complete listing did not return as deleted.

        Every listed row now has `observed_at` at or after the load's start.
        A row older than that was not in the listing, because the list omits
        deleted customers, and no newer webhook refreshed it either.
        """
        with self.pool.connection() as conn, conn.transaction():
            flagged = bulk.mark_not_observed_since(
                conn, self.spec.table, self.account_id, self._started_at
            )
        if flagged:
            self.logger.info("%s: flagged %d unlisted row(s) deleted", self.spec.name, flagged)
        return flagged


def load_object_types(
    db_url: str,
    api: StripeApi,
    account_id: str,
    specs: Sequence[ObjectType],
    options: LoadOptions | None = None,
    *,
    run_id: str | None = None,
) -> list[TypeReport]:
    """Load every type in `specs` concurrently and return one report per type.

    A Stripe or write error of one type does not raise here. That type's
    report gets status `failed` and an error naming the cursor, and
    `raise_for_failures` turns it into an `IngestError`.
    """
    options = dataclasses.replace(options or LoadOptions())
    options.range_slicing = options.resolve_slicing(api)
    pool = ConnectionPool(db_url, options.write_connections)
    try:
        loads = [TypeLoad(spec, api, pool, account_id, options, run_id) for spec in specs]
        with ThreadPoolExecutor(max(1, len(loads)), thread_name_prefix="ingest-type") as types:
            return list(types.map(TypeLoad.run, loads))
    finally:
        pool.close()


# NOTE: a rerun lists each type again from its newest object; it does not
# resume at the `last_cursor` stored in `stripe_raw.sync_state`.
def raise_for_failures(reports: Sequence[TypeReport]) -> None:
    """Raise `IngestError` naming every failed object type and its cursor."""
    failed = [report for report in reports if report.status == "failed"]
    if failed:
        details = "; ".join(report.error or report.object_type for report in failed)
        raise IngestError(f"{details}. Rerun the sync to complete the load.")
