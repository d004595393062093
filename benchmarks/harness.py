"""Shared plumbing of the benchmark scripts.

Starts the stand-in and the sync in their own processes, so the sync's peak
resident memory is its own. Creates and drops a scratch database on the
PostgreSQL server, checks what landed in `stripe_raw` against the generated
account, and prints and writes the results.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.generate import LISTED_TYPES, read_meta
from halo_stripe_pipeline.warehouse import connect, ensure_schema
from halo_stripe_pipeline.warehouse.connection import _libpq_url

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PAGE_SIZE = 100
STARTUP_TIMEOUT_SECONDS = 600.0


def server_url() -> str:
    """Return the PostgreSQL server the benchmarks create their databases on.

    `HALO_BENCH_SERVER_URL` overrides the default, the local server at
    127.0.0.1:5432.
    """
    return os.environ.get("HALO_BENCH_SERVER_URL", "").strip() or DEFAULT_SERVER_URL


@contextmanager
def scratch_database(database_url: str | None = None) -> Iterator[str]:
    """Yield the URL of a fresh database with the warehouse schema, dropped afterwards.

    With `database_url`, that database is used as it is and kept.
    """
    if database_url:
        with connect(database_url) as conn:
            ensure_schema(conn)
        yield database_url
        return
    base = server_url()
    name = f"halo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = database_on_server(base, name)
    try:
        with connect(url) as conn:
            ensure_schema(conn)
        yield url
    finally:
        with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def database_on_server(server: str, name: str) -> str:
    """Return `server`'s URL with the database `name`, keeping any query (socket host, port)."""
    base, _, query = server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


class StandInProcess:
    """The stand-in running in a child process on a loopback port."""

    def __init__(
        self,
        data: Path,
        *,
        latency_ms: float,
        rate: float,
        endpoint_rate: float,
        burst_seconds: float = 2.0,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.stand_in",
            "--data",
            str(data),
            "--latency-ms",
            str(latency_ms),
            "--rate",
            str(rate),
            "--endpoint-rate",
            str(endpoint_rate),
            "--burst-seconds",
            str(burst_seconds),
        ]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=10)
            raise RuntimeError(
                f"the stand-in exited with code {self.process.returncode} before listening"
            )
        self.api_base: str = json.loads(line)["api_base"]
        self._http = httpx.Client(base_url=self.api_base, timeout=60.0)

    def stats(self) -> dict[str, Any]:
        return self._http.get("/_stand_in/stats").raise_for_status().json()

    def reset(self) -> None:
        self._http.post("/_stand_in/reset").raise_for_status()

    def stop(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> StandInProcess:  # noqa: PYI034 - the class is not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SyncLimits:
    requests_per_second: float
    endpoint_requests_per_second: float


def run_sync_child(
    api_base: str, database_url: str, account_id: str, limits: SyncLimits
) -> dict[str, Any]:
    """Run `benchmarks.sync_child` and return the JSON it prints last."""
    env = dict(os.environ)
    env.update(
        {
            "STRIPE_API_KEY": "sk_live_bench",
            "STRIPE_API_BASE": api_base,
            "STRIPE_ACCOUNT_ID": account_id,
            "STRIPE_RATE_LIMIT": str(limits.requests_per_second),
            "STRIPE_ENDPOINT_RATE_LIMIT": str(limits.endpoint_requests_per_second),
            "STRIPE_LIST_SLICING": "on",
            "HALO_DATABASE_URL": database_url,
        }
    )
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.sync_child"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"the sync exited with code {completed.returncode}; see its log above"
        )
    return json.loads(lines[-1])


def page_bound(
    meta: dict[str, Any], limits: SyncLimits, items_pages: int
) -> dict[str, Any]:
    """Return the minimum time any loader needs under the limits.

    Each type needs at least ceil(objects / 100) pages. The bound is the
    longer of the slowest type's pages at the endpoint rate and all pages
    (subscription item pages included) at the account rate.
    """
    pages = {name: math.ceil(meta["counts"][name] / PAGE_SIZE) for name in LISTED_TYPES}
    per_type_seconds = {
        name: count / limits.endpoint_requests_per_second
        for name, count in pages.items()
    }
    total_pages = sum(pages.values()) + items_pages
    account_seconds = total_pages / limits.requests_per_second
    slowest = max(per_type_seconds, key=per_type_seconds.__getitem__)
    return {
        "pages": pages,
        "subscription_item_pages": items_pages,
        "total_pages": total_pages,
        "slowest_type": slowest,
        "slowest_type_seconds": per_type_seconds[slowest],
        "all_pages_seconds": account_seconds,
        "seconds": max(per_type_seconds[slowest], account_seconds),
    }


def subscriptions_with_more_items(
    data: Path, embedded_limit: int = 10
) -> dict[str, int]:
    """Return {subscription id: item count} for subscriptions a list page embeds only in part."""
    with sqlite3.connect(f"file:{data}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "select subscription, count(*) from subscription_items group by subscription"
            " having count(*) > ?",
            (embedded_limit,),
        ).fetchall()
    return {subscription: count for subscription, count in rows}


def check_exactly_once(
    database_url: str, account_id: str, data: Path, served: dict[str, Any] | None
) -> dict[str, Any]:
    """Compare the ids in `stripe_raw` with the generated account, type by type.

    `missing` are generated ids absent from the table, `unexpected` are rows
    of the account that were never generated, and `duplicates_delivered`
    counts objects the stand-in served more than once (from its stats).
    Subscriptions with more than 10 items must be stored with all of them.
    """
    per_type: dict[str, Any] = {}
    with (
        sqlite3.connect(f"file:{data}?mode=ro", uri=True) as source,
        connect(database_url) as conn,
    ):
        for name in LISTED_TYPES:
            per_type[name] = _compare_ids(conn, source, name, account_id)
            if served is not None:
                per_type[name]["duplicates_delivered"] = served[name]["duplicates"]
        incomplete = _incomplete_subscriptions(
            conn, account_id, subscriptions_with_more_items(data)
        )
    passed = incomplete == 0 and all(
        entry["missing"] == 0 and entry["unexpected"] == 0
        for entry in per_type.values()
    )
    return {
        "passed": passed,
        "types": per_type,
        "subscriptions_missing_items": incomplete,
    }


def _compare_ids(
    conn: psycopg.Connection, source: sqlite3.Connection, name: str, account_id: str
) -> dict[str, int]:
    with conn.transaction():
        conn.execute(
            "create temp table generated_ids (id text primary key) on commit drop"
        )
        with conn.cursor().copy("copy generated_ids (id) from stdin") as copy:
            cursor = source.execute(f"select id from {name}")
            while rows := cursor.fetchmany(50_000):
                for row in rows:
                    copy.write_row(row)
        table = f"stripe_raw.{name}"
        generated, stored, missing, unexpected = conn.execute(
            f"""
            select
                (select count(*) from generated_ids),
                (select count(*) from {table} where account_id = %(account)s),
                (select count(*) from generated_ids g where not exists (
                    select 1 from {table} t where t.account_id = %(account)s and t.id = g.id)),
                (select count(*) from {table} t where t.account_id = %(account)s
                    and not exists (select 1 from generated_ids g where g.id = t.id))
            """,
            {"account": account_id},
        ).fetchone()
    return {
        "generated": generated,
        "stored": stored,
        "missing": missing,
        "unexpected": unexpected,
    }


def _incomplete_subscriptions(
    conn: psycopg.Connection, account_id: str, expected: dict[str, int]
) -> int:
    if not expected:
        return 0
    rows = conn.execute(
        "select id, jsonb_array_length(data -> 'items' -> 'data') from stripe_raw.subscriptions"
        " where account_id = %s and id = any(%s)",
        (account_id, list(expected)),
    ).fetchall()
    stored = dict(rows)
    return sum(1 for sub_id, count in expected.items() if stored.get(sub_id) != count)


def machine() -> dict[str, Any]:
    """Describe the machine a result was measured on."""
    memory_kib = 0
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    postgres_version = None
    try:
        with psycopg.connect(_libpq_url(server_url())) as conn:
            postgres_version = conn.execute("show server_version").fetchone()[0]
    except psycopg.Error:
        pass
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": _git(
            "status", "--short", "--", "halo_stripe_pipeline", "dbt_project"
        ).splitlines(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "load_average": os.getloadavg(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _git(*args: str) -> str:
    """Return the output of a git command in the repository, or '' when git fails."""
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return completed.stdout.rstrip()


def account_meta(data: Path) -> dict[str, Any]:
    return read_meta(data)


def write_result(
    name: str, result: dict[str, Any], results_dir: Path = RESULTS_DIR
) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
    """Print `rows` as an aligned two-column table under `title`."""
    width = max(len(label) for label, _ in rows)
    print(f"\n{title}")
    print("-" * len(title))
    for label, value in rows:
        if isinstance(value, float):
            value = f"{value:,.2f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        print(f"{label.ljust(width)}  {value}")


def elapsed(started: float) -> float:
    return time.monotonic() - started
