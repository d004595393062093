"""Compare the object counts in the emulator with those the sync stored, per type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from halo_stripe_pipeline.stripe_client import StripeApi, StripeApiError

# Raw table, list endpoint and filters. localstripe 1.15 has no prices
# endpoint (it speaks plans), so prices are absent on both sides.
COUNTED_TYPES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("customers", "/v1/customers", {}),
    ("subscriptions", "/v1/subscriptions", {"status": "all"}),
    ("charges", "/v1/charges", {}),
    ("refunds", "/v1/refunds", {}),
    ("invoices", "/v1/invoices", {}),
    ("products", "/v1/products", {}),
    ("plans", "/v1/plans", {}),
    ("coupons", "/v1/coupons", {}),
)


@dataclass(frozen=True)
class TypeCount:
    table: str
    emulator: int
    warehouse: int

    @property
    def matches(self) -> bool:
        return self.emulator == self.warehouse


def count_emulator(api: StripeApi, endpoint: str, filters: dict[str, Any]) -> int:
    return sum(len(page) for page in api.list_pages(endpoint, filters))


def count_warehouse(conn: psycopg.Connection, table: str, account_id: str) -> int:
    query = sql.SQL(
        "select count(*) from stripe_raw.{} where account_id = %s and not is_deleted"
    ).format(sql.Identifier(table))
    row = conn.execute(query, (account_id,)).fetchone()
    return int(row[0]) if row else 0


def compare_counts(api: StripeApi, conn: psycopg.Connection, account_id: str) -> list[TypeCount]:
    """Count each object type in the emulator and, for `account_id`, in `stripe_raw`."""
    counts = []
    for table, endpoint, filters in COUNTED_TYPES:
        try:
            emulator = count_emulator(api, endpoint, filters)
        except StripeApiError as error:
            raise StripeApiError(f"counting {table} in the emulator failed: {error}") from error
        counts.append(TypeCount(table, emulator, count_warehouse(conn, table, account_id)))
    return counts


def format_counts(counts: list[TypeCount]) -> str:
    lines = [f"{'object type':<15}{'emulator':>10}{'stripe_raw':>12}"]
    for count in counts:
        flag = "" if count.matches else "  <- differs"
        lines.append(f"{count.table:<15}{count.emulator:>10}{count.warehouse:>12}{flag}")
    return "\n".join(lines)


MART_SAMPLE_QUERY = """
select
    billing.company_id,
    billing.subscription_status,
    billing.plan_name,
    billing.mrr,
    billing.currency,
    billing.lifetime_value,
    renewals.renewal_status
from analytics.company_billing as billing
left join analytics.company_renewals as renewals
    on renewals.company_id = billing.company_id
where billing.account_id = %s
    and billing.company_id = any(%s)
order by billing.company_id
"""


def format_marts(conn: psycopg.Connection, account_id: str, company_ids: list[str]) -> str:
    """Render the `analytics.company_billing` rows of `company_ids`, money as stored."""
    rows = conn.execute(MART_SAMPLE_QUERY, (account_id, company_ids)).fetchall()
    header = (
        f"{'company':<18}{'status':<20}{'plan':<18}{'mrr':>10}{'lifetime':>11} "
        f"{'cur':<5}renewal"
    )
    lines = ["analytics.company_billing of the named companies:", header]
    for company, status, plan, mrr, currency, lifetime, renewal in rows:
        lines.append(
            f"{company:<18}{status or '-':<20}{plan or '-':<18}{_money(mrr):>10}"
            f"{_money(lifetime):>11} {currency or '-':<5}{renewal or '-'}"
        )
    return "\n".join(lines)


def _money(value: object) -> str:
    return "null" if value is None else str(value)
