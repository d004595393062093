"""Which Stripe credentials a sync of one account uses."""

from __future__ import annotations

from typing import Any

import psycopg

from halo_stripe_pipeline.stripe_client import StripeApi, stripe_api_from_env


def stripe_api_for_account(
    conn: psycopg.Connection, account_id: str, **overrides: Any
) -> StripeApi:
    """Return the client that reads `account_id`'s data.

    Every account is read with `STRIPE_API_KEY` (and `STRIPE_API_BASE`);
    `overrides` are `StripeApi` fields such as the rate limits.
    """
    # TODO: look up a stored OAuth token for `account_id` (Connect) before
    # falling back to the environment key.
    del conn, account_id
    return stripe_api_from_env(**overrides)
