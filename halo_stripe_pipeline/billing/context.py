"""The customer's billing context shown beside a request on the approval page.

Plan, MRR and lifetime value come from the dbt marts `analytics.stripe_customers`
and `analytics.company_billing` when they exist. Subscriptions and recent
payments come from `stripe_raw`, because every deployment has it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from halo_stripe_pipeline.billing.models import BillingRequest

RECENT_PAYMENTS = 5

# (table, the request field each key column is compared with)
MART_LOOKUPS: tuple[tuple[str, dict[str, str]], ...] = (
    ("stripe_customers", {"account_id": "account_id", "customer_id": "customer_id"}),
    ("company_billing", {"company_id": "company_id"}),
)


@dataclass
class BillingContext:
    marts: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    recent_payments: list[dict[str, Any]] = field(default_factory=list)
    missing_marts: list[str] = field(default_factory=list)


def _mart_columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns"
        " where table_schema = 'analytics' and table_name = %s order by ordinal_position",
        (table,),
    ).fetchall()
    return [row[0] for row in rows]


def _mart_row(
    conn: psycopg.Connection, table: str, keys: dict[str, str], request: BillingRequest
) -> dict[str, Any] | None:
    columns = _mart_columns(conn, table)
    if not columns:
        return None
    filters = {
        column: getattr(request, field)
        for column, field in keys.items()
        if column in columns
    }
    if not filters or any(value is None for value in filters.values()):
        return {}
    query = sql.SQL("select * from {table} where {conditions} limit 1").format(
        table=sql.Identifier("analytics", table),
        conditions=sql.SQL(" and ").join(
            sql.SQL("{} = %s").format(sql.Identifier(column)) for column in filters
        ),
    )
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(query, list(filters.values()))
        .fetchone()
    )
    return dict(row) if row else {}


def load_billing_context(
    conn: psycopg.Connection, request: BillingRequest
) -> BillingContext:
    """Collect what an approver needs to judge `request`."""
    context = BillingContext()
    for table, keys in MART_LOOKUPS:
        row = _mart_row(conn, table, keys, request)
        if row is None:
            context.missing_marts.append(f"analytics.{table}")
        elif row:
            context.marts[f"analytics.{table}"] = row
    cursor = conn.cursor(row_factory=dict_row)
    context.subscriptions = list(
        cursor.execute(
            """
            select
                id,
                data ->> 'status' as status,
                coalesce(data -> 'plan' ->> 'nickname', data -> 'plan' ->> 'id',
                         data -> 'items' -> 'data' -> 0 -> 'price' ->> 'id') as plan,
                (data -> 'plan' ->> 'amount')::bigint as plan_amount_minor,
                data -> 'plan' ->> 'currency' as currency,
                data -> 'plan' ->> 'interval' as billing_interval,
                (data ->> 'cancel_at_period_end')::boolean as cancel_at_period_end,
                to_timestamp((data ->> 'trial_end')::bigint) as trial_end_at,
                to_timestamp((data ->> 'current_period_end')::bigint) as current_period_end_at
            from stripe_raw.subscriptions
            where account_id = %s and data ->> 'customer' = %s and not is_deleted
            order by created_at desc nulls last
            """,
            (request.account_id, request.customer_id),
        ).fetchall()
    )
    context.recent_payments = list(
        cursor.execute(
            """
            select
                id,
                created_at,
                (data ->> 'amount')::bigint as amount_minor,
                coalesce((data ->> 'amount_refunded')::bigint, 0) as amount_refunded_minor,
                data ->> 'currency' as currency,
                data ->> 'status' as status
            from stripe_raw.charges
            where account_id = %s and data ->> 'customer' = %s and not is_deleted
            order by created_at desc nulls last
            limit %s
            """,
            (request.account_id, request.customer_id, RECENT_PAYMENTS),
        ).fetchall()
    )
    return context
