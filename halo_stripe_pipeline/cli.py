"""The `halo-stripe` command: parses arguments and hands them to the parts.

Each part owns a `commands` module with `register(subparsers)`; this file and
`definitions.py` are the only places that know every part.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from halo_stripe_pipeline.config import ConfigError

# Modules that add subcommands, in the order `--help` lists them.
COMMAND_MODULES = (
    "halo_stripe_pipeline.ingest.commands",
    "halo_stripe_pipeline.demo.commands",
    "halo_stripe_pipeline.marts.commands",
    "halo_stripe_pipeline.events.commands",
    "halo_stripe_pipeline.billing.commands",
    "halo_stripe_pipeline.connect.commands",
)


class CommandError(RuntimeError):
    """A command failed in a way the user can fix; printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halo-stripe",
        description="Stripe integration of Halo: sync, derive, receive webhooks, act.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # TODO: drop this once every part has its commands module.
            if error.name and module_name.startswith(error.name):
                continue
            raise
        module.register(subparsers)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors printed as one line: their messages name the value and the fix."""
    from halo_stripe_pipeline.ingest.loader import IngestError
    from halo_stripe_pipeline.marts.build import MartsBuildError
    from halo_stripe_pipeline.stripe_client import StripeApiError

    return (CommandError, ConfigError, IngestError, MartsBuildError, StripeApiError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result = args.handler(args)
    except _user_errors() as error:
        print(f"halo-stripe: {error}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
