"""Create the warehouse schema: every `ddl/*.sql` file, in name order.

Each file is idempotent (`create ... if not exists`, `add column if not
exists`), so running them on every command start is safe. Parts of the
product add their own numbered file instead of editing another part's.
"""

from __future__ import annotations

from importlib import resources

import psycopg

# Serialises concurrent schema creation (two commands starting at once).
_SCHEMA_LOCK_ID = 0x4A105719


def ddl_files() -> list[tuple[str, str]]:
    """Return (name, sql) for each DDL file, in apply order."""
    folder = resources.files("halo_stripe_pipeline.warehouse").joinpath("ddl")
    files = sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return files


def ensure_schema(conn: psycopg.Connection) -> None:
    """Apply every DDL file in one transaction on `conn`."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))
        for _name, sql in ddl_files():
            conn.execute(sql)
