"""`halo-stripe sync`, `companies import`, `settings show|set` and `ui`."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    sync = subparsers.add_parser(
        "sync",
        help="run the full-sync Dagster job for one Stripe account, then build the marts",
    )
    sync.add_argument(
        "--as-of",
        metavar="TIMESTAMP",
        help="ISO 8601 instant the marts derive values for (UTC when no offset is given)",
    )
    sync.add_argument(
        "--account",
        metavar="ACCOUNT_ID",
        help="Stripe account id to store objects under (default: STRIPE_ACCOUNT_ID, "
        "else GET /v1/account)",
    )
    sync.add_argument(
        "--workspace",
        metavar="WORKSPACE_ID",
        help="Halo workspace of the account when its settings row is first created "
        "(default: default)",
    )
    sync.set_defaults(handler=run_sync_command)

    companies = subparsers.add_parser("companies", help="manage Halo company records")
    companies_actions = companies.add_subparsers(dest="companies_action", required=True)
    importer = companies_actions.add_parser(
        "import", help="insert or update companies from a CSV file (all rows or none)"
    )
    importer.add_argument("file", type=Path, metavar="FILE.csv")
    importer.set_defaults(handler=run_companies_import)

    settings = subparsers.add_parser("settings", help="show or change integration settings")
    settings_actions = settings.add_subparsers(dest="settings_action", required=True)
    show = settings_actions.add_parser("show", help="print the settings of one account")
    show.add_argument("--account", metavar="ACCOUNT_ID", help="Stripe account id")
    show.set_defaults(handler=run_settings_show)
    change = settings_actions.add_parser("set", help="change one setting of one account")
    change.add_argument("key")
    change.add_argument("value")
    change.add_argument("--account", metavar="ACCOUNT_ID", help="Stripe account id")
    change.set_defaults(handler=run_settings_set)

    ui = subparsers.add_parser("ui", help="start the Dagster UI (dagster dev) on workspace.yaml")
    ui.add_argument("--port", type=int, default=3000, help="port of the web UI (default 3000)")
    ui.set_defaults(handler=run_ui)


def _command_error(message: str) -> Exception:
    from halo_stripe_pipeline.cli import CommandError

    return CommandError(message)


def _open_warehouse() -> tuple[str, Any]:
    from halo_stripe_pipeline.config import database_url
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    db_url = database_url()
    conn = connect(db_url, autocommit=True)
    ensure_schema(conn)
    return db_url, conn


def parse_as_of(text: str | None) -> datetime | None:
    """Parse `--as-of`; a timestamp without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _command_error(
            f"invalid --as-of `{text}`: expected an ISO 8601 timestamp such as "
            "2026-01-31T23:59:59Z"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    return instant.astimezone(timezone.utc)


# sync --------------------------------------------------------------------


def run_sync_command(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.ingest.sync import prepare_account, resolve_account_id
    from halo_stripe_pipeline.stripe_client import StripeApiError, stripe_api_from_env

    logging.getLogger("stripe").setLevel(logging.WARNING)
    as_of = parse_as_of(args.as_of)
    db_url, conn = _open_warehouse()
    with conn:
        api = stripe_api_from_env()
        try:
            account_id = resolve_account_id(conn, api, args.account)
            # One cheap request checks the key before a Dagster run starts.
            api.get("/v1/customers", {"limit": 1})
        except StripeApiError as error:
            raise _command_error(str(error)) from error
        prepare_account(conn, account_id, getattr(args, "workspace", None))
        _run_full_sync_job(db_url, account_id)
        _print_sync_summary(conn, account_id)
    _build_marts(db_url, as_of)
    return 0


def _run_full_sync_job(db_url: str, account_id: str) -> None:
    from halo_stripe_pipeline.ingest.definitions import (
        ACCOUNT_PARTITIONS,
        FULL_SYNC_JOB,
        build_definitions,
    )
    from halo_stripe_pipeline.instance import get_instance

    instance = get_instance(db_url)
    partitions_name = ACCOUNT_PARTITIONS.name
    assert partitions_name is not None
    if not instance.has_dynamic_partition(partitions_name, account_id):
        instance.add_dynamic_partitions(partitions_name, [account_id])
    job = build_definitions().resolve_job_def(FULL_SYNC_JOB)
    result = job.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        instance=instance,
        partition_key=account_id,
        raise_on_error=False,
    )
    if not result.success:
        raise _command_error(
            f"sync of account `{account_id}` failed in Dagster run {result.run_id}: "
            f"{_first_failure(result)}"
        )
    print(f"Dagster run {result.run_id} synced account {account_id}")


def _first_failure(result: Any) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error.cause is not None and "IngestError" not in error.cls_name:
                error = error.cause
            message = error.message.strip().splitlines()[-1]
            return message.split(f"{error.cls_name}: ", 1)[-1]
    return "see the run's logs in the Dagster UI (`halo-stripe ui`)"


def _print_sync_summary(conn: Any, account_id: str) -> None:
    rows = conn.execute(
        "select object_type, status, objects_loaded, pages_loaded from stripe_raw.sync_state"
        " where account_id = %s order by object_type",
        (account_id,),
    ).fetchall()
    for object_type, status, objects, pages in rows:
        print(f"  {object_type:<14} {status:<10} {objects:>9} objects {pages:>7} pages")


def _build_marts(db_url: str, as_of: datetime | None) -> None:
    try:
        marts = importlib.import_module("halo_stripe_pipeline.marts")
    except ModuleNotFoundError as error:
        if error.name != "halo_stripe_pipeline.marts":
            raise
        if as_of is not None:
            log.warning("--as-of is ignored: this installation has no marts")
        return
    build_marts = getattr(marts, "build_marts", None)
    if build_marts is None:
        log.warning("halo_stripe_pipeline.marts has no build_marts(); marts not built")
        return
    build_marts(db_url, as_of=as_of)


# companies -----------------------------------------------------------------


def run_companies_import(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.companies import CompaniesFileError, import_companies

    if not args.file.is_file():
        raise _command_error(f"companies file `{args.file}` not found")
    _db_url, conn = _open_warehouse()
    with conn:
        try:
            result = import_companies(conn, args.file)
        except CompaniesFileError as error:
            raise _command_error(str(error)) from error
    print(f"imported {result.total} companies ({result.inserted} new, {result.updated} updated)")
    return 0


# settings ------------------------------------------------------------------


def _settings_account(conn: Any, explicit: str | None) -> str:
    """Pick the account: `--account`, STRIPE_ACCOUNT_ID, or the only one synced."""
    chosen = explicit or os.environ.get("STRIPE_ACCOUNT_ID", "").strip()
    if chosen:
        return chosen
    accounts = [
        row[0]
        for row in conn.execute(
            "select account_id from halo.integration_settings order by account_id"
        ).fetchall()
    ]
    if len(accounts) == 1:
        return str(accounts[0])
    if not accounts:
        raise _command_error(
            "no Stripe account has settings yet: run `halo-stripe sync` first or pass --account"
        )
    raise _command_error(
        f"several accounts have settings ({', '.join(accounts)}); pass --account ACCOUNT_ID"
    )


def run_settings_show(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.settings import get_settings, render_settings

    _db_url, conn = _open_warehouse()
    with conn:
        account_id = _settings_account(conn, args.account)
        values = get_settings(conn, account_id)
    print(f"account_id = {account_id}")
    for key, text in render_settings(values):
        print(f"{key} = {text}")
    return 0


def run_settings_set(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.settings import SETTINGS, SettingError, set_setting

    _db_url, conn = _open_warehouse()
    with conn:
        account_id = _settings_account(conn, args.account)
        try:
            value = set_setting(conn, account_id, args.key, args.value)
        except SettingError as error:
            raise _command_error(str(error)) from error
    print(f"{args.key} = {SETTINGS[args.key].render(value)} (account {account_id})")
    return 0


# ui --------------------------------------------------------------------------


def run_ui(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.instance import ensure_dagster_home

    workspace = Path.cwd() / "workspace.yaml"
    if not workspace.is_file():
        raise _command_error(
            f"workspace.yaml not found in {Path.cwd()}; run `halo-stripe ui` from the "
            "repository root"
        )
    # The schema must exist before the daemon's first sensor tick reads it.
    db_url, conn = _open_warehouse()
    conn.close()
    home = ensure_dagster_home(db_url)
    env = {**os.environ, "DAGSTER_HOME": str(home), "HALO_DATABASE_URL": db_url}
    command = [
        sys.executable, "-m", "dagster", "dev", "-w", str(workspace),
        "-h", "127.0.0.1", "-p", str(args.port),
    ]
    print(f"starting the Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={home})")
    return subprocess.call(command, env=env)
