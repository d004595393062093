"""A full sync of one Stripe account into `stripe_raw`, callable from Python.

`run_full_sync` is what the `halo-stripe sync` command's Dagster job runs
per account; other parts (the demo, benchmarks) call it directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.types.json import Jsonb

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE, ConfigError
from halo_stripe_pipeline.ingest.loader import (
    IngestDisabledError,
    LoadOptions,
    TypeReport,
    load_object_types,
    raise_for_failures,
)
from halo_stripe_pipeline.ingest.object_types import ObjectType, object_types_named
from halo_stripe_pipeline.settings import ensure_settings_row, get_settings
from halo_stripe_pipeline.stripe_client import StripeApi, StripeApiError, StripeAuthError
from halo_stripe_pipeline.warehouse import connect, ensure_schema


@dataclass
class SyncReport:
    """Outcome of a sync: one `TypeReport` per object type."""

    account_id: str
    types: list[TypeReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def objects(self) -> int:
        return sum(report.objects for report in self.types)

    @property
    def pages(self) -> int:
        return sum(report.pages for report in self.types)

    def counts(self) -> dict[str, int]:
        """Return objects listed per object type."""
        return {report.object_type: report.objects for report in self.types}

    def for_type(self, name: str) -> TypeReport:
        return next(report for report in self.types if report.object_type == name)


def resolve_account_id(
    conn: psycopg.Connection, api: StripeApi, account_id: str | None = None
) -> str:
    """Return the Stripe account id to store objects under, and record the account.

    Order: the `account_id` argument, `STRIPE_ACCOUNT_ID`, then
    `GET /v1/account`, whose object is stored in `stripe_raw.accounts`.
    """
    chosen = account_id or os.environ.get("STRIPE_ACCOUNT_ID", "").strip() or None
    if chosen:
        _store_account(conn, {"id": chosen, "object": "account"}, replace=False)
        return chosen
    try:
        account = api.retrieve_account()
    except StripeAuthError:
        raise
    except StripeApiError as error:
        if api.api_base.rstrip("/") != DEFAULT_STRIPE_API_BASE:
            raise ConfigError(
                f"the Stripe API at {api.api_base} does not serve GET /v1/account "
                f"({error}); set STRIPE_ACCOUNT_ID to the account id to store the data "
                "under, for example STRIPE_ACCOUNT_ID=acct_local"
            ) from error
        raise
    _store_account(conn, account, replace=True)
    return str(account["id"])


def _store_account(conn: psycopg.Connection, account: dict, *, replace: bool) -> None:
    action = (
        "update set data = excluded.data, livemode = excluded.livemode, synced_at = now()"
        if replace
        else "nothing"
    )
    with conn.transaction():
        conn.execute(
            "insert into stripe_raw.accounts (account_id, data, livemode) values (%s, %s, %s)"
            f" on conflict (account_id) do {action}",
            (account["id"], Jsonb(account), account.get("livemode")),
        )


def prepare_account(
    conn: psycopg.Connection, account_id: str, workspace_id: str | None = None
) -> None:
    """Create the account's settings row on first sync and check `ingest_enabled`.

    A `workspace_id` other than the stored one raises `ConfigError` instead
    of being ignored.
    """
    with conn.transaction():
        created = ensure_settings_row(conn, account_id, workspace_id)
    settings = get_settings(conn, account_id)
    if workspace_id and not created and settings["workspace_id"] != workspace_id:
        raise ConfigError(
            f"account `{account_id}` already belongs to workspace "
            f"`{settings['workspace_id']}`, not `{workspace_id}`; change it with "
            f"`halo-stripe settings set workspace_id {workspace_id} --account {account_id}`"
        )
    if not settings["ingest_enabled"]:
        raise IngestDisabledError(
            f"ingest is disabled for account `{account_id}`; enable it with "
            f"`halo-stripe settings set ingest_enabled true --account {account_id}`"
        )


def sync_object_types(
    db_url: str,
    api: StripeApi,
    account_id: str,
    specs: Sequence[ObjectType],
    options: LoadOptions | None = None,
    *,
    run_id: str | None = None,
) -> SyncReport:
    """Load `specs` for a known account; failed types are in the report, not raised."""
    started = time.monotonic()
    with connect(db_url) as conn:
        ensure_schema(conn)
        prepare_account(conn, account_id)
    reports = load_object_types(db_url, api, account_id, specs, options, run_id=run_id)
    return SyncReport(account_id=account_id, types=reports, seconds=time.monotonic() - started)


def run_full_sync(
    db_url: str,
    api: StripeApi,
    account_id: str | None = None,
    *,
    object_types: list[str] | None = None,
    options: LoadOptions | None = None,
    workspace_id: str | None = None,
) -> SyncReport:
    """Sync every object type (or `object_types`) of one account into `stripe_raw`.

    Raises `IngestError` naming each failed type and cursor after the other
    types have finished, and `IngestDisabledError` when the account's
    `ingest_enabled` setting is false.
    """
    specs = object_types_named(object_types)
    with connect(db_url) as conn:
        ensure_schema(conn)
        account_id = resolve_account_id(conn, api, account_id)
        with conn.transaction():
            ensure_settings_row(conn, account_id, workspace_id)
    report = sync_object_types(db_url, api, account_id, specs, options)
    raise_for_failures(report.types)
    return report
