"""Which Stripe account an event belongs to, and the client that reads it.

An event stored without an account came to the endpoint of the account
whose key is in `STRIPE_API_KEY`. Its id comes from `STRIPE_ACCOUNT_ID` or
`GET /v1/account`, as for a sync.
"""

from __future__ import annotations

import logging
import os

import psycopg

from halo_stripe_pipeline.credentials import stripe_api_for_account
from halo_stripe_pipeline.stripe_client import StripeApi, stripe_api_from_env

log = logging.getLogger(__name__)

# Platform account id per (API base, key), so a sensor tick does not ask
# Stripe again every few seconds.
_platform_accounts: dict[tuple[str, str], str] = {}


class AccountResolver:
    """Resolve the platform account once per process and hand out clients."""

    def __init__(
        self, conn: psycopg.Connection, api_overrides: dict[str, object] | None = None
    ) -> None:
        self._conn = conn
        self._platform_account_id: str | None = None
        self._apis: dict[str, StripeApi] = {}
        self._api_overrides = api_overrides or {}

    def platform_account_id(self) -> str:
        """Return the id of the account `STRIPE_API_KEY` belongs to."""
        if self._platform_account_id is not None:
            return self._platform_account_id
        configured = os.environ.get("STRIPE_ACCOUNT_ID", "").strip()
        if configured:
            self._platform_account_id = configured
            return configured
        from halo_stripe_pipeline.ingest.sync import resolve_account_id

        api = stripe_api_from_env(**self._api_overrides)
        cache_key = (api.api_base, api.api_key)
        resolved = _platform_accounts.get(cache_key)
        if resolved is None:
            resolved = resolve_account_id(self._conn, api)
            _platform_accounts[cache_key] = resolved
            log.info("events without an account belong to %s", resolved)
        self._platform_account_id = resolved
        return resolved

    def api_for(self, account_id: str) -> StripeApi:
        """Return the client that reads `account_id`, one per account."""
        api = self._apis.get(account_id)
        if api is None:
            api = stripe_api_for_account(self._conn, account_id, **self._api_overrides)
            self._apis[account_id] = api
        return api
