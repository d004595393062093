"""Write the demo's Halo side: companies, the account's settings row, a guide file.

Demo companies live in their own workspace (`demo`), which the demo account's
settings row points at, so they never match customers of a real account in
the same warehouse, and a rerun replaces them without touching other rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from halo_stripe_pipeline.demo.populate import PopulatedAccount
from halo_stripe_pipeline.demo.sample import (
    DEMO_ACCOUNT_ID,
    DEMO_WORKSPACE_ID,
    CompanySpec,
    CustomerSpec,
    SampleAccount,
)
from halo_stripe_pipeline.settings import ensure_settings_row, set_setting

# Customer fields that the demo account shows on company pages and prompts.
DEMO_DISPLAY_FIELDS = "metadata.tier,email"


def reset_demo_account(conn: psycopg.Connection, account_id: str = DEMO_ACCOUNT_ID) -> int:
    """Delete every `stripe_raw` row of the demo account and return the row count.

    Each demo run fills a new emulator whose ids differ from the last run's,
    so rows of the previous run would only be stale.
    """
    tables = conn.execute(
        "select table_name from information_schema.columns"
        " where table_schema = 'stripe_raw' and column_name = 'account_id'"
        " order by table_name"
    ).fetchall()
    deleted = 0
    with conn.transaction():
        for (table,) in tables:
            cursor = conn.execute(
                sql.SQL("delete from stripe_raw.{} where account_id = %s").format(
                    sql.Identifier(table)
                ),
                (account_id,),
            )
            deleted += cursor.rowcount
    return deleted


def write_companies(
    conn: psycopg.Connection, sample: SampleAccount, populated: PopulatedAccount
) -> int:
    """Replace the demo workspace's companies and point the demo account at it.

    A new demo account also gets `display_fields`, so the marts show the
    customers' `metadata.tier`.
    """
    rows = [_company_row(company, populated) for company in sample.companies]
    with conn.transaction():
        conn.execute("delete from halo.companies where workspace_id = %s", (DEMO_WORKSPACE_ID,))
        with conn.cursor() as cursor:
            cursor.executemany(
                "insert into halo.companies"
                " (id, workspace_id, name, domain, email, stripe_customer_id, traits)"
                " values (%s, %s, %s, %s, %s, %s, %s)"
                " on conflict (id) do update set workspace_id = excluded.workspace_id,"
                " name = excluded.name, domain = excluded.domain, email = excluded.email,"
                " stripe_customer_id = excluded.stripe_customer_id,"
                " traits = excluded.traits, imported_at = now()",
                rows,
            )
        is_new_account = ensure_settings_row(conn, DEMO_ACCOUNT_ID, DEMO_WORKSPACE_ID)
    set_setting(conn, DEMO_ACCOUNT_ID, "workspace_id", DEMO_WORKSPACE_ID)
    if is_new_account:
        # Only on the first run, so a rerun keeps what the user changed since.
        set_setting(conn, DEMO_ACCOUNT_ID, "display_fields", DEMO_DISPLAY_FIELDS)
    return len(rows)


def _company_row(company: CompanySpec, populated: PopulatedAccount) -> tuple[Any, ...]:
    customer_id = None
    if company.stripe_customer_key is not None:
        customer_id = populated.customer_ids[company.stripe_customer_key]
    return (
        company.id,
        DEMO_WORKSPACE_ID,
        company.name,
        company.domain,
        company.email,
        customer_id,
        Jsonb(dict(company.traits)),
    )


def _normalized(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def _matching_customers(
    company: CompanySpec, customers: tuple[CustomerSpec, ...], populated: PopulatedAccount
) -> dict[str, list[dict[str, str | None]]]:
    """List the customers each matching field would give this company."""

    def entry(customer: CustomerSpec) -> dict[str, str | None]:
        return {"key": customer.key, "id": populated.customer_ids.get(customer.key),
                "email": customer.email}

    email = _normalized(company.email)
    domain = company.domain.lower() if company.domain else None
    by_email = [entry(c) for c in customers if email and _normalized(c.email) == email]
    by_domain = [
        entry(c) for c in customers
        if domain and c.email and c.email.lower().rsplit("@", 1)[-1] == domain
    ]
    by_id = [entry(c) for c in customers if c.key == company.stripe_customer_key]
    return {"email": by_email, "domain": by_domain, "stripe_customer_id": by_id}


def guide(sample: SampleAccount, populated: PopulatedAccount, seed: int) -> dict[str, Any]:
    """Describe the named companies: what each should show and which customers match it."""
    companies = [
        {
            "id": company.id,
            "name": company.name,
            "email": company.email,
            "domain": company.domain,
            "traits": dict(company.traits),
            "shows": company.shows,
            "matches_by": _matching_customers(company, sample.customers, populated),
        }
        for company in sample.companies
        if company.is_named
    ]
    return {
        "account_id": DEMO_ACCOUNT_ID,
        "workspace_id": DEMO_WORKSPACE_ID,
        "seed": seed,
        "customers": len(sample.customers),
        "companies": len(sample.companies),
        "named_companies": companies,
    }


def write_guide(path: Path, sample: SampleAccount, populated: PopulatedAccount, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(guide(sample, populated, seed), indent=2) + "\n")
    return path
