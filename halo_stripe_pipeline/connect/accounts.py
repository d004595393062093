"""Connected Stripe accounts in the warehouse: connect, disconnect, list.

Each workspace connects one Stripe account and each account belongs to one
workspace. The account's `halo.integration_settings` row carries the
workspace, which is what confines a company's matches to its own account's
customers. Nothing here calls Stripe: the flow in `flow.py` does, and these
functions only write what it learnt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE
from halo_stripe_pipeline.connect.crypto import TokenCipher

log = logging.getLogger(__name__)

ACCESS_TOKEN = "access_token"
REFRESH_TOKEN = "refresh_token"
WEBHOOK_SECRET = "webhook_secret"
# Owner name of the platform's Connect endpoints in logs, metadata and the
# encryption's associated data.
PLATFORM_OWNER = "platform"
RAW_SCHEMA = "stripe_raw"


class ConnectConflict(ValueError):
    """The account or workspace is already taken; the message names by what."""


@dataclass(frozen=True)
class AccountGrant:
    """The credentials a connect step obtained for one account."""

    account_id: str
    workspace_id: str
    connection_type: str
    access_token: str
    refresh_token: str | None = None
    publishable_key: str | None = None
    scope: str | None = None
    livemode: bool | None = None
    api_base: str | None = None

    def __repr__(self) -> str:
        return (
            f"AccountGrant(account_id={self.account_id!r}, "
            f"workspace_id={self.workspace_id!r}, connection_type={self.connection_type!r})"
        )


@dataclass(frozen=True)
class ConnectedAccount:
    account_id: str
    workspace_id: str
    sync_request_id: int
    reconnected: bool


def store_connection(
    conn: psycopg.Connection, grant: AccountGrant, cipher: TokenCipher
) -> ConnectedAccount:
    """Store `grant` encrypted, point the workspace at it, request a full sync.

    Raises ConnectConflict when the workspace already has another connected
    account, or the account is connected to another workspace.
    """
    with conn.transaction():
        _lock_workspace(conn, grant.workspace_id)
        previous = _check_conflicts(conn, grant)
        _upsert_connection(conn, grant, cipher)
        _point_settings_at_workspace(conn, grant)
        request_id = request_full_sync(conn, grant.account_id, reason="connected")
    log.info(
        "stored %s connection of account %s for workspace %s; full sync request %d",
        grant.connection_type, grant.account_id, grant.workspace_id, request_id,
    )
    return ConnectedAccount(
        account_id=grant.account_id,
        workspace_id=grant.workspace_id,
        sync_request_id=request_id,
        reconnected=previous is not None,
    )


def _lock_workspace(conn: psycopg.Connection, workspace_id: str) -> None:
    # Two connects for one workspace at once must not both pass the check.
    conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"halo-connect:{workspace_id}",),
    )


def _check_conflicts(conn: psycopg.Connection, grant: AccountGrant) -> str | None:
    """Return the account's current status, raising when the grant conflicts."""
    row = conn.execute(
        "select workspace_id, status from halo.stripe_connections"
        " where account_id = %s for update",
        (grant.account_id,),
    ).fetchone()
    if row and row[1] == "connected" and row[0] != grant.workspace_id:
        raise ConnectConflict(
            f"Stripe account `{grant.account_id}` is already connected to workspace "
            f"`{row[0]}`; disconnect it there first"
        )
    holders = conn.execute(
        "select s.account_id, coalesce(c.status, 'connected')"
        " from halo.integration_settings s"
        " left join halo.stripe_connections c using (account_id)"
        " where s.workspace_id = %s and s.account_id <> %s",
        (grant.workspace_id, grant.account_id),
    ).fetchall()
    for holder_id, holder_status in holders:
        if holder_status == "connected":
            raise ConnectConflict(
                f"workspace `{grant.workspace_id}` already has Stripe account "
                f"`{holder_id}`; disconnect it with "
                f"`halo-stripe accounts disconnect {holder_id}` first"
            )
    return row[1] if row else None


def _upsert_connection(
    conn: psycopg.Connection, grant: AccountGrant, cipher: TokenCipher
) -> None:
    access = cipher.encrypt(
        grant.access_token, account_id=grant.account_id, purpose=ACCESS_TOKEN
    )
    refresh = (
        cipher.encrypt(grant.refresh_token, account_id=grant.account_id, purpose=REFRESH_TOKEN)
        if grant.refresh_token
        else None
    )
    api_base = grant.api_base if grant.api_base != DEFAULT_STRIPE_API_BASE else None
    conn.execute(
        """
        insert into halo.stripe_connections as c (
            account_id, workspace_id, status, connection_type, api_base, livemode,
            scope, publishable_key, access_token_encrypted, refresh_token_encrypted,
            connected_at, disconnected_at, purged_at, updated_at
        ) values (%s, %s, 'connected', %s, %s, %s, %s, %s, %s, %s, now(), null, null, now())
        on conflict (account_id) do update set
            workspace_id = excluded.workspace_id,
            status = 'connected',
            connection_type = excluded.connection_type,
            api_base = excluded.api_base,
            livemode = excluded.livemode,
            scope = excluded.scope,
            publishable_key = excluded.publishable_key,
            access_token_encrypted = excluded.access_token_encrypted,
            refresh_token_encrypted = excluded.refresh_token_encrypted,
            connected_at = case when c.status = 'connected' then c.connected_at
                else now() end,
            disconnected_at = null,
            purged_at = null,
            updated_at = now()
        """,
        (
            grant.account_id, grant.workspace_id, grant.connection_type, api_base,
            grant.livemode, grant.scope, grant.publishable_key, access, refresh,
        ),
    )


def _point_settings_at_workspace(conn: psycopg.Connection, grant: AccountGrant) -> None:
    # A disconnected account that still names this workspace would keep
    # matching its companies; detaching it (empty workspace) keeps its data
    # but leaves the workspace to the new account alone.
    detached = conn.execute(
        "update halo.integration_settings set workspace_id = '', updated_at = now()"
        " where workspace_id = %s and account_id <> %s returning account_id",
        (grant.workspace_id, grant.account_id),
    ).fetchall()
    for (account_id,) in detached:
        log.info(
            "detached disconnected account %s from workspace %s", account_id, grant.workspace_id
        )
    conn.execute(
        "insert into halo.integration_settings (account_id, workspace_id, ingest_enabled)"
        " values (%s, %s, true)"
        " on conflict (account_id) do update set"
        " workspace_id = excluded.workspace_id, ingest_enabled = true, updated_at = now()",
        (grant.account_id, grant.workspace_id),
    )


def request_full_sync(conn: psycopg.Connection, account_id: str, *, reason: str) -> int:
    """Queue a full sync of `account_id` for the sync-request sensor; return its id."""
    row = conn.execute(
        "insert into halo.sync_requests (account_id, reason) values (%s, %s) returning id",
        (account_id, reason),
    ).fetchone()
    assert row is not None
    return int(row[0])


def store_webhook_endpoint(
    conn: psycopg.Connection,
    account_id: str,
    *,
    endpoint_id: str,
    secret: str | None,
    api_version: str,
    cipher: TokenCipher,
) -> None:
    """Store the endpoint serving `account_id`, with its own secret encrypted.

    `secret` is None for an OAuth account, whose events arrive through the
    platform's Connect endpoint and its secret.
    """
    sealed = (
        cipher.encrypt(secret, account_id=account_id, purpose=WEBHOOK_SECRET)
        if secret
        else None
    )
    conn.execute(
        "update halo.stripe_connections set webhook_endpoint_id = %s,"
        " webhook_api_version = %s, webhook_secret_encrypted = %s, webhook_error = null,"
        " updated_at = now() where account_id = %s",
        (endpoint_id, api_version, sealed, account_id),
    )


def lock_connect_endpoint(conn: psycopg.Connection, url: str) -> None:
    """Hold a transaction lock so two connects register one Connect endpoint."""
    conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))",
        (f"halo-connect-endpoint:{url}",),
    )


def connect_endpoint_id(conn: psycopg.Connection, url: str) -> str | None:
    row = conn.execute(
        "select endpoint_id from halo.connect_webhook_endpoints where url = %s", (url,)
    ).fetchone()
    return row[0] if row else None


def store_connect_endpoint(
    conn: psycopg.Connection,
    url: str,
    *,
    endpoint_id: str,
    secret: str,
    api_version: str,
    cipher: TokenCipher,
) -> None:
    """Store the platform's Connect endpoint at `url`, its secret encrypted."""
    sealed = cipher.encrypt(secret, account_id=PLATFORM_OWNER, purpose=WEBHOOK_SECRET)
    conn.execute(
        "insert into halo.connect_webhook_endpoints"
        " (url, endpoint_id, api_version, secret_encrypted) values (%s, %s, %s, %s)"
        " on conflict (url) do update set endpoint_id = excluded.endpoint_id,"
        " api_version = excluded.api_version, secret_encrypted = excluded.secret_encrypted,"
        " created_at = now()",
        (url, endpoint_id, api_version, sealed),
    )


def store_webhook_error(conn: psycopg.Connection, account_id: str, error: str) -> None:
    conn.execute(
        "update halo.stripe_connections set webhook_error = %s, updated_at = now()"
        " where account_id = %s",
        (error, account_id),
    )


def disconnect_account(
    conn: psycopg.Connection, account_id: str, purge: bool = False
) -> bool:
    """Stop syncing `account_id` and drop its tokens and signing secret.

    Ingest is switched off in the account's settings and pending sync
    requests are cancelled; the sync-request sensor then removes the
    account's Dagster partition. The synced data stays unless `purge` is
    true, which deletes the account's rows from every `stripe_raw` table
    and its settings row. Stripe is not called here: revoking access and
    deleting the endpoint at Stripe is `flow.revoke_at_stripe`. Returns false
    when the account was never connected.

    The webhook processor calls this for `account.application.deauthorized`.
    """
    with conn.transaction():
        row = conn.execute(
            "update halo.stripe_connections set status = 'disconnected',"
            " access_token_encrypted = null, refresh_token_encrypted = null,"
            " webhook_secret_encrypted = null,"
            " disconnected_at = coalesce(disconnected_at, now()), updated_at = now()"
            " where account_id = %s returning account_id",
            (account_id,),
        ).fetchone()
        conn.execute(
            "update halo.integration_settings set ingest_enabled = false, updated_at = now()"
            " where account_id = %s",
            (account_id,),
        )
        conn.execute(
            "update halo.sync_requests set status = 'cancelled'"
            " where account_id = %s and status = 'pending'",
            (account_id,),
        )
        if purge:
            purged = purge_account_data(conn, account_id)
            conn.execute(
                "delete from halo.integration_settings where account_id = %s", (account_id,)
            )
            conn.execute(
                "update halo.stripe_connections set purged_at = now() where account_id = %s",
                (account_id,),
            )
            log.info("purged %d rows of account %s", purged, account_id)
    log.info("disconnected account %s (purge=%s)", account_id, purge)
    return row is not None


def purge_account_data(conn: psycopg.Connection, account_id: str) -> int:
    """Delete `account_id`'s rows from every `stripe_raw` table; return the count.

    Tables are found through `information_schema`, so tables other parts
    add to `stripe_raw` later (webhook events, for one) are purged too.
    """
    tables = conn.execute(
        "select table_name from information_schema.columns"
        " where table_schema = %s and column_name = 'account_id'"
        " and table_name in (select table_name from information_schema.tables"
        "   where table_schema = %s and table_type = 'BASE TABLE')"
        " order by table_name",
        (RAW_SCHEMA, RAW_SCHEMA),
    ).fetchall()
    deleted = 0
    for (table,) in tables:
        cursor = conn.execute(
            sql.SQL("delete from {table} where account_id = %s").format(
                table=sql.Identifier(RAW_SCHEMA, table)
            ),
            (account_id,),
        )
        deleted += cursor.rowcount
    return deleted


@dataclass(frozen=True)
class AccountSummary:
    account_id: str
    workspace_id: str
    status: str
    connection_type: str
    ingest_enabled: bool | None
    webhook_endpoint_id: str | None
    webhook_error: str | None
    last_sync_request: str | None
    connected_at: datetime | None


def list_accounts(conn: psycopg.Connection) -> list[AccountSummary]:
    """Return every connected or configured account, connected ones first.

    Accounts synced with the environment's key have a settings row but no
    stored connection, so they are listed with the type `environment`. Such an
    account shows as disconnected while its ingest is off.
    """
    rows = conn.execute(
        """
        select
            coalesce(c.account_id, s.account_id),
            coalesce(c.workspace_id, s.workspace_id),
            coalesce(
                c.status,
                case when s.ingest_enabled then 'connected' else 'disconnected' end
            ) as status,
            coalesce(c.connection_type, 'environment'),
            s.ingest_enabled,
            c.webhook_endpoint_id,
            c.webhook_error,
            (select r.status || ' at ' || to_char(r.requested_at at time zone 'utc',
                    'YYYY-MM-DD"T"HH24:MI:SS"Z"')
               from halo.sync_requests r
              where r.account_id = coalesce(c.account_id, s.account_id)
              order by r.id desc limit 1),
            c.connected_at
        from halo.stripe_connections c
        full outer join halo.integration_settings s using (account_id)
        order by status, 2, 1
        """
    ).fetchall()
    return [AccountSummary(*row) for row in rows]


def connection_status(conn: psycopg.Connection, account_id: str) -> str | None:
    row = conn.execute(
        "select status from halo.stripe_connections where account_id = %s", (account_id,)
    ).fetchone()
    return row[0] if row else None
