"""Fixtures of the benchmark smoke tests: a tiny generated account and a
stand-in serving it with no latency and no effective rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.generate import ensure_account
from benchmarks.harness import StandInProcess, database_on_server

TINY_CUSTOMERS = 60
# Seed 4 yields a subscription with more than 10 items at this size.
TINY_SEED = 4
UNLIMITED = 1_000_000.0


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench_data")


@pytest.fixture(scope="session")
def tiny_account(tiny_data_dir: Path) -> Path:
    return ensure_account(TINY_CUSTOMERS, TINY_SEED, tiny_data_dir)


@pytest.fixture(scope="module")
def stand_in(tiny_account: Path) -> Iterator[StandInProcess]:
    process = StandInProcess(
        tiny_account, latency_ms=0, rate=UNLIMITED, endpoint_rate=UNLIMITED
    )
    yield process
    process.stop()


@pytest.fixture
def bench_server(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the harness's scratch databases at the session's PostgreSQL server."""
    server = database_on_server(warehouse_url, "postgres")
    monkeypatch.setenv("HALO_BENCH_SERVER_URL", server)
    return server
