"""`halo-stripe demo`: a sample account in localstripe, synced into the warehouse."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from halo_stripe_pipeline import config
from halo_stripe_pipeline.demo.companies import reset_demo_account, write_companies, write_guide
from halo_stripe_pipeline.demo.populate import populate
from halo_stripe_pipeline.demo.sample import (
    DEFAULT_CUSTOMER_COUNT,
    DEMO_ACCOUNT_ID,
    SampleAccount,
    build_sample,
)
from halo_stripe_pipeline.demo.summary import compare_counts, format_counts, format_marts
from halo_stripe_pipeline.emulator import EmulatorProcess, start_emulator
from halo_stripe_pipeline.stripe_client import StripeApi
from halo_stripe_pipeline.warehouse import connect, ensure_schema

log = logging.getLogger(__name__)

DEMO_API_KEY = "sk_test_demo"
# localstripe has no rate limit, so these only keep the client's limiter out of the way.
EMULATOR_REQUESTS_PER_SECOND = 1000.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="fill a local Stripe emulator with a sample account and sync it",
        description=(
            "Start the warehouse (embedded unless HALO_DATABASE_URL is set) and "
            "localstripe, create a sample account in it with matching Halo companies, "
            f"run the full sync under account id {DEMO_ACCOUNT_ID} and print a summary."
        ),
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=DEFAULT_CUSTOMER_COUNT,
        help=f"number of Stripe customers, the named ones included (default {DEFAULT_CUSTOMER_COUNT})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the filler customers; one seed always gives the same account (default 0)",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the emulator running after the summary, until Ctrl-C",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="loopback port for the emulator (default: a free port)",
    )
    parser.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.cli import CommandError

    logging.getLogger("stripe").setLevel(logging.WARNING)
    try:
        sample = build_sample(args.customers, args.seed)
    except ValueError as error:
        raise CommandError(str(error)) from error
    # start_emulator takes any HTTP response on the port as its own, so check first
    # that nothing else listens there.
    if args.port is not None and not _is_port_free(args.port):
        raise CommandError(f"port {args.port} is already in use on 127.0.0.1; pass another --port")

    started = time.monotonic()
    db_url = config.database_url()
    print(f"Warehouse: {db_url}")
    with connect(db_url, autocommit=True) as conn:
        ensure_schema(conn)
        reset_demo_account(conn)

    with _running_emulator(args.port) as emulator:
        api = StripeApi(
            api_key=DEMO_API_KEY,
            api_base=emulator.api_base,
            requests_per_second=EMULATOR_REQUESTS_PER_SECOND,
            endpoint_requests_per_second=EMULATOR_REQUESTS_PER_SECOND,
        )
        _fill(api, db_url, sample, args.seed)
        _point_environment_at(emulator)
        marts_error = run_sync()

        with connect(db_url, autocommit=True) as conn:
            counts = compare_counts(api, conn, DEMO_ACCOUNT_ID)
            print()
            print(format_counts(counts))
            if marts_error is None:
                print()
                named = [company.id for company in sample.companies if company.is_named]
                print(format_marts(conn, DEMO_ACCOUNT_ID, named))
        print()
        print(f"Demo finished in {time.monotonic() - started:.1f}s.")
        if args.keep_running:
            _wait_for_interrupt(emulator)

    differing = [count.table for count in counts if not count.matches]
    if differing:
        raise CommandError(f"stripe_raw differs from the emulator for: {', '.join(differing)}")
    if marts_error is not None:
        raise CommandError(f"the sync loaded stripe_raw, but the marts build failed: {marts_error}")
    return 0


def _fill(api: StripeApi, db_url: str, sample: SampleAccount, seed: int) -> None:
    """Create the sample account in the emulator and its companies in the warehouse."""
    populated = populate(api, sample)
    print(
        f"Created {len(populated.customer_ids)} customers in localstripe at {api.api_base} "
        f"({populated.request_count} requests, {populated.seconds:.1f}s)."
    )
    with connect(db_url, autocommit=True) as conn:
        company_count = write_companies(conn, sample, populated)
    guide_path = write_guide(_guide_path(), sample, populated, seed)
    print(f"Wrote {company_count} companies to halo.companies (workspace `demo`).")
    print(f"Named companies and what they should show: {guide_path}")


def run_sync() -> Exception | None:
    """Run `halo-stripe sync` for the demo account: the Dagster job, then the marts.

    Returns the marts build error, if any, so the raw counts still print;
    a failed raw sync raises.
    """
    from halo_stripe_pipeline.cli import build_parser
    from halo_stripe_pipeline.marts.build import MartsBuildError

    # Parsed by the real parser, so the sync command's own defaults apply.
    sync_args = build_parser().parse_args(["sync", "--account", DEMO_ACCOUNT_ID])
    started = time.monotonic()
    try:
        sync_args.handler(sync_args)
    except MartsBuildError as error:
        log.error("the marts build of account %s failed: %s", DEMO_ACCOUNT_ID, error)
        return error
    print(f"Synced and built the marts in {time.monotonic() - started:.1f}s.")
    return None


def _guide_path() -> Path:
    return config.halo_dir() / "demo" / "sample-companies.json"


def _point_environment_at(emulator: EmulatorProcess) -> None:
    os.environ["STRIPE_API_KEY"] = DEMO_API_KEY
    os.environ["STRIPE_API_BASE"] = emulator.api_base
    os.environ["STRIPE_ACCOUNT_ID"] = DEMO_ACCOUNT_ID
    os.environ["STRIPE_RATE_LIMIT"] = str(EMULATOR_REQUESTS_PER_SECOND)
    os.environ["STRIPE_ENDPOINT_RATE_LIMIT"] = str(EMULATOR_REQUESTS_PER_SECOND)


@contextmanager
def _running_emulator(port: int | None) -> Iterator[EmulatorProcess]:
    from halo_stripe_pipeline.cli import CommandError

    try:
        emulator = start_emulator(port)
    except RuntimeError as error:
        raise CommandError(f"localstripe failed to start: {error}") from error
    try:
        yield emulator
    finally:
        emulator.stop()


def _is_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for_interrupt(emulator: EmulatorProcess) -> None:
    print("The emulator keeps running until Ctrl-C. To sync it again from another shell:")
    print(
        f"  export STRIPE_API_KEY={DEMO_API_KEY} STRIPE_API_BASE={emulator.api_base} "
        f"STRIPE_ACCOUNT_ID={DEMO_ACCOUNT_ID}"
    )
    print(
        f"  export STRIPE_RATE_LIMIT={EMULATOR_REQUESTS_PER_SECOND:g} "
        f"STRIPE_ENDPOINT_RATE_LIMIT={EMULATOR_REQUESTS_PER_SECOND:g}"
    )
    print("  halo-stripe sync")
    try:
        while emulator.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        print("Stopping the emulator.")
