"""`halo-stripe accounts`: list, connect and disconnect Stripe accounts."""

from __future__ import annotations

import argparse
import logging
import os

import psycopg

from halo_stripe_pipeline.config import ConfigError, database_url
from halo_stripe_pipeline.connect import flow
from halo_stripe_pipeline.connect.accounts import (
    ConnectConflict,
    connection_status,
    disconnect_account,
    list_accounts,
)
from halo_stripe_pipeline.connect.crypto import TokenCipher, generate_key
from halo_stripe_pipeline.connect.partitions import PARTITIONS_NAME
from halo_stripe_pipeline.connect.settings import connect_settings
from halo_stripe_pipeline.warehouse import connect, ensure_schema

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "accounts", help="list, connect and disconnect Stripe accounts"
    )
    actions = parser.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list connected and configured accounts")
    listing.set_defaults(handler=list_command)

    connecting = actions.add_parser(
        "connect",
        help="print the OAuth link for a workspace, or connect an account by its key",
    )
    connecting.add_argument("--workspace", required=True, help="Halo workspace id")
    connecting.add_argument(
        "--api-key-env",
        metavar="VARIABLE",
        help="connect with the secret or restricted key in this environment variable "
        "instead of printing an OAuth link",
    )
    connecting.add_argument(
        "--account-id", help="the key's account id (acct_...), for APIs without GET /v1/account"
    )
    connecting.add_argument("--api-base", help="Stripe API base URL for this account")
    connecting.add_argument(
        "--no-webhook", action="store_true", help="do not register a webhook endpoint"
    )
    connecting.set_defaults(handler=connect_command)

    disconnecting = actions.add_parser(
        "disconnect", help="stop syncing an account and remove its tokens"
    )
    disconnecting.add_argument("account_id", help="Stripe account id (acct_...)")
    disconnecting.add_argument(
        "--purge", action="store_true", help="also delete the account's synced data"
    )
    disconnecting.set_defaults(handler=disconnect_command)

    keygen = actions.add_parser(
        "generate-key", help="print a new HALO_ENCRYPTION_KEY value"
    )
    keygen.set_defaults(handler=generate_key_command)


def _open_warehouse() -> psycopg.Connection:
    conn = connect(database_url(), autocommit=True)
    ensure_schema(conn)
    return conn


def list_command(args: argparse.Namespace) -> int:
    with _open_warehouse() as conn:
        accounts = list_accounts(conn)
    if not accounts:
        print("no Stripe accounts; connect one with `halo-stripe accounts connect`")
        return 0
    header = ("ACCOUNT", "WORKSPACE", "STATUS", "TYPE", "INGEST", "WEBHOOK", "LAST SYNC REQUEST")
    rows = [header]
    for account in accounts:
        webhook = account.webhook_endpoint_id or ("failed" if account.webhook_error else "-")
        ingest = "-" if account.ingest_enabled is None else (
            "on" if account.ingest_enabled else "off"
        )
        rows.append(
            (
                account.account_id,
                account.workspace_id or "-",
                account.status,
                account.connection_type,
                ingest,
                webhook,
                account.last_sync_request or "-",
            )
        )
    widths = [max(len(row[index]) for row in rows) for index in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for account in accounts:
        if account.webhook_error:
            print(f"{account.account_id}: {account.webhook_error}")
    return 0


def connect_command(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.cli import CommandError

    cipher = TokenCipher.from_env()
    if not args.api_key_env:
        settings = connect_settings()
        with _open_warehouse() as conn:
            url = flow.start_oauth(conn, settings, args.workspace)
        minutes = int(settings.state_ttl.total_seconds() // 60)
        print(f"Open this link within {minutes} minutes to connect workspace {args.workspace}:")
        print(url)
        return 0

    api_key = os.environ.get(args.api_key_env, "").strip()
    if not api_key:
        raise CommandError(f"environment variable {args.api_key_env} is empty or not set")
    settings = connect_settings(require_oauth=False)
    with _open_warehouse() as conn:
        try:
            result = flow.connect_with_api_key(
                conn,
                settings,
                cipher,
                workspace_id=args.workspace,
                api_key=api_key,
                account_id=args.account_id,
                api_base=args.api_base,
                register_webhook=not args.no_webhook,
            )
        except (ConnectConflict, flow.MissingAccountId) as error:
            raise CommandError(str(error)) from error
    _add_partition(result.account_id)
    print(
        f"connected {result.account_id} to workspace {result.workspace_id}; "
        f"full sync requested (request {result.sync_request_id})"
    )
    if result.webhook_error:
        print(f"warning: {result.webhook_error}")
    return 0


def disconnect_command(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.cli import CommandError

    with _open_warehouse() as conn:
        status = connection_status(conn, args.account_id)
        settings_row = conn.execute(
            "select 1 from halo.integration_settings where account_id = %s",
            (args.account_id,),
        ).fetchone()
        if status is None and settings_row is None:
            raise CommandError(f"Stripe account `{args.account_id}` not found")
        if status == "connected":
            cipher = TokenCipher.from_env()
            try:
                settings = connect_settings(require_oauth=False)
            except ConfigError as error:
                raise CommandError(str(error)) from error
            for warning in flow.revoke_at_stripe(conn, settings, cipher, args.account_id):
                print(f"warning: {warning}")
        disconnect_account(conn, args.account_id, purge=args.purge)
    _delete_partition(args.account_id)
    kept = "its data was deleted" if args.purge else "its data is kept"
    print(f"disconnected {args.account_id}; {kept}")
    return 0


def generate_key_command(args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


def _add_partition(account_id: str) -> None:
    from halo_stripe_pipeline.instance import get_instance

    instance = get_instance()
    if not instance.has_dynamic_partition(PARTITIONS_NAME, account_id):
        instance.add_dynamic_partitions(PARTITIONS_NAME, [account_id])


def _delete_partition(account_id: str) -> None:
    from halo_stripe_pipeline.instance import get_instance

    instance = get_instance()
    if instance.has_dynamic_partition(PARTITIONS_NAME, account_id):
        instance.delete_dynamic_partition(PARTITIONS_NAME, account_id)
