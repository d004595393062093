"""`halo-stripe marts ...`: build the dbt marts from the command line."""

from __future__ import annotations

import argparse

from halo_stripe_pipeline.config import database_url


def register(subparsers: argparse._SubParsersAction) -> None:
    marts = subparsers.add_parser("marts", help="build the analytics marts with dbt")
    actions = marts.add_subparsers(dest="marts_command", required=True, metavar="ACTION")

    build = actions.add_parser(
        "build", help="run dbt build: staging, marts, data tests and unit tests"
    )
    build.add_argument(
        "--as-of",
        metavar="INSTANT",
        help="derive every mart as of this ISO 8601 instant, e.g. 2025-07-15T00:00:00Z"
        " (default: now, UTC)",
    )
    build.add_argument(
        "--select",
        metavar="SELECTOR",
        help="dbt selection, e.g. `+company_billing` (default: the whole project)",
    )
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from halo_stripe_pipeline.cli import CommandError
    from halo_stripe_pipeline.marts.build import MartsBuildError, build_marts

    try:
        result = build_marts(database_url(), as_of=args.as_of, select=args.select)
    except (MartsBuildError, ValueError) as error:
        raise CommandError(str(error)) from error
    counts = ", ".join(f"{status} {count}" for status, count in sorted(result.counts.items()))
    print(f"marts built as of {result.as_of}: {counts}")
    return 0
