"""Connections to the warehouse and the URL shapes other tools need."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit, parse_qs

import psycopg
from psycopg.rows import dict_row


def connect(url: str, *, autocommit: bool = False, dict_rows: bool = False) -> psycopg.Connection:
    """Open a psycopg 3 connection to the warehouse at `url`."""
    return psycopg.connect(
        _libpq_url(url),
        autocommit=autocommit,
        row_factory=dict_row if dict_rows else psycopg.rows.tuple_row,
    )


def _libpq_url(url: str) -> str:
    """Strip an SQLAlchemy driver suffix (`postgresql+psycopg2://`) if present."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def dagster_storage_url(url: str) -> str:
    """Return `url` with the psycopg2 driver, which dagster-postgres needs.

    SQLAlchemy 2.1 picks psycopg 3 for a bare `postgresql://` URL, and
    dagster-postgres then fails on its `NOTIFY` calls.
    """
    scheme, sep, rest = _libpq_url(url).partition("://")
    return f"postgresql+psycopg2{sep}{rest}"


def dbt_connection_params(url: str) -> dict[str, Any]:
    """Split `url` into the fields of a dbt-postgres profile."""
    parts = urlsplit(_libpq_url(url))
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = parts.hostname or query.get("host") or "localhost"
    if query.get("host") and not parts.hostname:
        host = unquote(query["host"])
    port = parts.port or int(query.get("port", 5432))
    return {
        "host": host,
        "port": port,
        "user": unquote(parts.username or query.get("user") or "postgres"),
        "password": unquote(parts.password or query.get("password") or ""),
        "dbname": unquote(parts.path.lstrip("/") or query.get("dbname") or "postgres"),
    }
