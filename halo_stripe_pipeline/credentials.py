"""The Stripe client each account's sync reads with."""

from __future__ import annotations

from typing import Any

import psycopg

from halo_stripe_pipeline.stripe_client import StripeApi, stripe_api_from_env


def stripe_api_for_account(
    conn: psycopg.Connection, account_id: str, **overrides: Any
) -> StripeApi:
    """Return the client that reads `account_id`'s data.

    A connected account (`halo-stripe accounts connect`) is read with its
    own stored access token and API base; any other account with
    `STRIPE_API_KEY` (and `STRIPE_API_BASE`). `overrides` are `StripeApi`
    fields such as the rate limits.
    """
    from halo_stripe_pipeline.connect.secrets import account_api

    connected = account_api(conn, account_id, **overrides)
    if connected is not None:
        return connected
    return stripe_api_from_env(**overrides)
