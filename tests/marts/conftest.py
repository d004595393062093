"""Fixtures of the marts tests: the scenario account loaded and built once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.marts import build_marts
from halo_stripe_pipeline.warehouse import connect
from tests.marts import scenario


@pytest.fixture(scope="module")
def scenario_conn(warehouse_url: str, dbt_built: Any) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the warehouse with the scenario built."""
    with connect(warehouse_url, autocommit=True) as conn:
        scenario.load(conn)
        build_marts(warehouse_url, as_of=scenario.AS_OF, exclude="resource_type:unit_test")
        yield conn


def rebuild_models(warehouse_url: str) -> None:
    """Rebuild the models alone (no tests) as of the scenario's instant."""
    build_marts(warehouse_url, as_of=scenario.AS_OF, select="resource_type:model")


def fetch_by_company(
    conn: psycopg.Connection, table: str, columns: str
) -> dict[str, dict[str, Any]]:
    """Return the scenario's rows of `analytics.<table>` keyed by company_id."""
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cursor.execute(
        f"select company_id, {columns} from analytics.{table}"
        " where company_id like 'marts-%%'"
    ).fetchall()
    return {row["company_id"]: row for row in rows}
