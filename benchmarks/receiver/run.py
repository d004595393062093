"""Receiver benchmark: verified events per second, latency, and mart freshness.

Two phases against a scratch database on the local PostgreSQL server:

1. Throughput. `halo-stripe serve` runs in its own process. The client sends
   signed `customer.updated` deliveries over loopback, signed before the clock
   starts. It sends first closed-loop at a fixed concurrency (the maximum
   sustained rate), then open-loop at a fixed offered rate (latency at the
   target rate). Every delivery must get a 200 and be stored: the stored
   row count is compared with the deliveries acknowledged.
2. Freshness. While the receiver runs, the script plays the Dagster daemon:
   it evaluates `stripe_events_sensor` every 5 seconds and executes each run
   it requests in process (apply, dbt build, Slack outbox). Each delivery sets
   a unique e-mail on a customer; the script polls `analytics.stripe_customers`
   and records the time from the 200 to the e-mail appearing there.

    python -m benchmarks.receiver.run --workers 2 --seconds 20 --freshness-seconds 120

Results are printed and written to `benchmarks/receiver/results/`. All
traffic stays on 127.0.0.1, and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psycopg

from halo_stripe_pipeline.emulator import free_port
from halo_stripe_pipeline.warehouse import connect, ensure_schema
from halo_stripe_pipeline.warehouse.connection import _libpq_url
from webhook_receiver.signature import sign_header
from webhook_receiver.webhooks import WEBHOOK_PATH

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "tests"
    / "fixtures"
    / "stripe_samples"
    / "events"
    / "stripe-ruby-mock"
    / "customer.updated.json"
)
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "whsec_benchmark"
ACCOUNT_ID = "acct_receiver_bench"
SENSOR_INTERVAL_SECONDS = 5.0
MAX_RUN_SECONDS = 900.0


@dataclass
class LoadResult:
    mode: str
    concurrency: int
    offered_per_second: float | None
    seconds: float
    sent: int
    ok: int
    errors: int
    per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


@dataclass
class FreshnessResult:
    events: int
    seen_in_mart: int
    runs: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float
    run_seconds: list[float] = field(default_factory=list)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def server_url() -> str:
    return os.environ.get("HALO_BENCH_SERVER_URL", "").strip() or DEFAULT_SERVER_URL


def create_database() -> tuple[str, str]:
    name = f"halo_receiver_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_libpq_url(server_url()), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    base, _, query = server_url().partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    with connect(url) as conn:
        ensure_schema(conn)
    return name, url


def drop_database(name: str) -> None:
    with psycopg.connect(_libpq_url(server_url()), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


class Receiver:
    """`halo-stripe serve` in a subprocess on a free loopback port."""

    def __init__(self, db_url: str, workers: int) -> None:
        self.port = free_port()
        env = dict(os.environ, HALO_DATABASE_URL=db_url, STRIPE_WEBHOOK_SECRET=SECRET)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "halo_stripe_pipeline.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the receiver exited: {self.process.stderr.read().decode()[-2000:]}"
                )
            try:
                if (
                    httpx.get(
                        f"http://127.0.0.1:{self.port}/health", timeout=1
                    ).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("the receiver did not respond to /health within 60 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def make_delivery(
    template: dict[str, Any], event_id: str, customer_id: str, email: str, created: int
) -> tuple[bytes, dict[str, str]]:
    event = json.loads(json.dumps(template))
    event["id"] = event_id
    event["created"] = created
    event["data"]["object"].update(id=customer_id, email=email)
    body = json.dumps(event).encode()
    return body, {
        "Stripe-Signature": sign_header(body, SECRET),
        "Content-Type": "application/json",
    }


async def send_closed_loop(
    url: str,
    deliveries: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    seconds: float,
) -> tuple[list[float], int, int, float]:
    """Send with `concurrency` requests in flight until the time or deliveries run out."""
    latencies: list[float] = []
    errors = 0
    position = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal position, errors
            while time.monotonic() < deadline and position < len(deliveries):
                body, headers = deliveries[position]
                position += 1
                started = time.perf_counter()
                try:
                    async with session.post(
                        url, data=body, headers=headers
                    ) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                if not ok:
                    errors += 1

        started_at = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started_at
    return latencies, errors, position, elapsed


async def send_open_loop(
    url: str,
    deliveries: list[tuple[bytes, dict[str, str]]],
    rate: float,
    seconds: float,
) -> tuple[list[float], int, int, float]:
    """Start one delivery every 1/rate seconds, whatever the answers' speed."""
    latencies: list[float] = []
    errors = 0
    count = min(len(deliveries), int(rate * seconds))
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors += 1

        tasks = []
        started_at = time.monotonic()
        for index in range(count):
            target = started_at + index / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(*deliveries[index])))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started_at
    return latencies, errors, count, elapsed


def load_result(
    mode: str,
    concurrency: int,
    rate: float | None,
    outcome: tuple[list[float], int, int, float],
) -> LoadResult:
    latencies, errors, sent, elapsed = outcome
    milliseconds = [value * 1000 for value in latencies]
    return LoadResult(
        mode=mode,
        concurrency=concurrency,
        offered_per_second=rate,
        seconds=round(elapsed, 2),
        sent=sent,
        ok=sent - errors,
        errors=errors,
        per_second=round((sent - errors) / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(percentile(milliseconds, 0.50), 2),
        p95_ms=round(percentile(milliseconds, 0.95), 2),
        p99_ms=round(percentile(milliseconds, 0.99), 2),
        max_ms=round(max(milliseconds, default=float("nan")), 2),
    )


def stored_count(db_url: str, prefix: str) -> int:
    with connect(db_url) as conn:
        return conn.execute(
            "select count(*) from stripe_raw.webhook_events where id like %s",
            (prefix + "%",),
        ).fetchone()[0]


def run_throughput(
    db_url: str, workers: int, seconds: float, concurrency: int, rate: float
) -> tuple[list[LoadResult], dict[str, int]]:
    template = json.loads(SAMPLE.read_text())
    now = int(time.time())
    budget = int(max(rate, 4000) * seconds * 1.2)
    closed = [
        make_delivery(
            template,
            f"evt_bench_c_{i:07d}",
            f"cus_bench_{i % 500:04d}",
            f"c{i}@bench.example",
            now,
        )
        for i in range(budget)
    ]
    opened = [
        make_delivery(
            template,
            f"evt_bench_o_{i:07d}",
            f"cus_bench_{i % 500:04d}",
            f"o{i}@bench.example",
            now,
        )
        for i in range(int(rate * seconds) + 1)
    ]
    receiver = Receiver(db_url, workers)
    try:
        warmup = [
            make_delivery(
                template, f"evt_warm_{i:05d}", "cus_warm", "w@bench.example", now
            )
            for i in range(500)
        ]
        asyncio.run(send_closed_loop(receiver.url, warmup, concurrency, 30))
        closed_outcome = asyncio.run(
            send_closed_loop(receiver.url, closed, concurrency, seconds)
        )
        open_outcome = asyncio.run(send_open_loop(receiver.url, opened, rate, seconds))
    finally:
        receiver.stop()
    results = [
        load_result("closed-loop", concurrency, None, closed_outcome),
        load_result("open-loop", 0, rate, open_outcome),
    ]
    stored = {
        "closed_loop_acknowledged": results[0].ok,
        "closed_loop_stored": stored_count(db_url, "evt_bench_c_"),
        "open_loop_acknowledged": results[1].ok,
        "open_loop_stored": stored_count(db_url, "evt_bench_o_"),
    }
    return results, stored


def run_freshness(
    db_url: str, workers: int, seconds: float, rate: float, customers: int
) -> FreshnessResult:
    """Measure webhook-arrival-to-mart time with the sensor and job in this process."""
    os.environ["HALO_DATABASE_URL"] = db_url
    os.environ["STRIPE_ACCOUNT_ID"] = ACCOUNT_ID
    os.environ.setdefault(
        "DAGSTER_HOME", tempfile.mkdtemp(prefix="receiver-bench-dagster-")
    )
    import dagster as dg

    from halo_stripe_pipeline.events.definitions import (
        apply_stripe_events_job,
        stripe_events_sensor,
    )
    from halo_stripe_pipeline.instance import get_instance

    instance = get_instance(db_url)
    with connect(db_url, autocommit=True) as conn:
        # The throughput phase's events share one `created` second; applying
        # them would mean re-reading thousands of customers from Stripe.
        conn.execute(
            "update stripe_raw.webhook_events set status = 'ignored' where status = 'pending'"
        )
    template = json.loads(SAMPLE.read_text())
    receiver = Receiver(db_url, workers)
    stop = threading.Event()
    runs: list[float] = []

    def daemon() -> None:
        while not stop.is_set():
            result = stripe_events_sensor(dg.build_sensor_context(instance=instance))
            for request in result.run_requests:
                started = time.monotonic()
                apply_stripe_events_job.execute_in_process(
                    run_config=request.run_config,
                    instance=instance,
                    tags=request.tags,
                    raise_on_error=False,
                )
                runs.append(time.monotonic() - started)
            stop.wait(SENSOR_INTERVAL_SECONDS)

    thread: threading.Thread | None = None
    arrivals: dict[int, float] = {}
    seen: dict[int, float] = {}
    try:
        seed = [
            make_delivery(
                template,
                f"evt_seed_{i:04d}",
                f"cus_fresh_{i:04d}",
                f"seed{i}@bench.example",
                int(time.time()) - 5,
            )
            for i in range(customers)
        ]
        asyncio.run(send_closed_loop(receiver.url, seed, 16, 60))
        thread = threading.Thread(target=daemon, name="sensor-loop", daemon=True)
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not _mart_has(
            db_url, "seed0@bench.example"
        ):
            time.sleep(1)

        total = int(rate * seconds)
        started_at = time.monotonic()
        last_poll = 0.0
        with httpx.Client(timeout=10) as client:
            for index in range(total):
                target = started_at + index / rate
                delay = target - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                email = f"fresh{index}@bench.example"
                body, headers = make_delivery(
                    template,
                    f"evt_fresh_{index:06d}",
                    f"cus_fresh_{index % customers:04d}",
                    email,
                    int(time.time()),
                )
                response = client.post(receiver.url, content=body, headers=headers)
                if response.status_code == 200:
                    arrivals[index] = time.monotonic()
                if time.monotonic() - last_poll >= 0.5:
                    _poll_mart(db_url, customers, arrivals, seen)
                    last_poll = time.monotonic()
        deadline = time.monotonic() + 180
        while len(seen) < len(arrivals) and time.monotonic() < deadline:
            _poll_mart(db_url, customers, arrivals, seen)
            time.sleep(0.5)
    finally:
        stop.set()
        receiver.stop()
        # Let a run in progress finish before the database is dropped.
        if thread is not None:
            thread.join(MAX_RUN_SECONDS)
    delays = [seen[index] - arrivals[index] for index in seen]
    return FreshnessResult(
        events=len(arrivals),
        seen_in_mart=len(seen),
        runs=len(runs),
        p50_seconds=round(percentile(delays, 0.50), 2),
        p95_seconds=round(percentile(delays, 0.95), 2),
        max_seconds=round(max(delays, default=float("nan")), 2),
        run_seconds=[round(value, 1) for value in runs],
    )


def _mart_has(db_url: str, email: str) -> bool:
    with connect(db_url) as conn:
        exists = conn.execute(
            "select to_regclass('analytics.stripe_customers')"
        ).fetchone()[0]
        if exists is None:
            return False
        return conn.execute(
            "select exists (select 1 from analytics.stripe_customers where email = %s)",
            (email,),
        ).fetchone()[0]


def _poll_mart(
    db_url: str, customers: int, arrivals: dict[int, float], seen: dict[int, float]
) -> None:
    """Record when each sent update shows in the mart.

    Update `i` sets `fresh{i}@...` on customer `i % customers`. A mart row
    shows its customer's newest applied e-mail, so showing update `j`
    means every earlier update `i <= j` of the same customer is reflected.
    """
    now = time.monotonic()
    with connect(db_url) as conn:
        if (
            conn.execute("select to_regclass('analytics.stripe_customers')").fetchone()[
                0
            ]
            is None
        ):
            return
        emails = [
            row[0]
            for row in conn.execute(
                "select email from analytics.stripe_customers where email like 'fresh%%'"
            )
        ]
    newest: dict[int, int] = {}
    for email in emails:
        index = int(email.removeprefix("fresh").split("@")[0])
        newest[index % customers] = max(index, newest.get(index % customers, -1))
    for index in arrivals:
        if index not in seen and index <= newest.get(index % customers, -1):
            seen[index] = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=2, help="receiver worker processes"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="length of each load phase"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, help="requests in flight, closed loop"
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="offered events/s, open loop"
    )
    parser.add_argument(
        "--freshness-seconds",
        type=float,
        default=120.0,
        help="length of the freshness phase (0 skips it)",
    )
    parser.add_argument(
        "--freshness-rate",
        type=float,
        default=10.0,
        help="events/s in the freshness phase",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=50,
        help="customers the freshness events update",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="do not drop the scratch database"
    )
    args = parser.parse_args()
    if (
        args.seconds * max(args.rate, 1) > 200_000
        or args.freshness_seconds > MAX_RUN_SECONDS
    ):
        parser.error(
            "the run is too long: keep --seconds x --rate under 200000 and phases under 900 s"
        )

    name, db_url = create_database()
    try:
        load, stored = run_throughput(
            db_url, args.workers, args.seconds, args.concurrency, args.rate
        )
        freshness = None
        if args.freshness_seconds > 0:
            freshness = run_freshness(
                db_url,
                args.workers,
                args.freshness_seconds,
                args.freshness_rate,
                args.customers,
            )
    finally:
        if not args.keep_database:
            drop_database(name)
    report = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": vars(args),
        "load": [asdict(result) for result in load],
        "stored": stored,
        "lost_events": (
            stored["closed_loop_acknowledged"] - stored["closed_loop_stored"]
        )
        + (stored["open_loop_acknowledged"] - stored["open_loop_stored"]),
        "freshness": asdict(freshness) if freshness else None,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"receiver-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
