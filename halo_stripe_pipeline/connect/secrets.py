"""Decrypted secrets of connected accounts, for the parts that need them.

The receiver verifies deliveries with `endpoint_secrets` and
`connect_endpoint_secrets` (through the provider `secrets_for_endpoint`),
and the sync reaches a connected account through
`account_api`. Each call decrypts afresh; plaintext is never cached or logged.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE
from halo_stripe_pipeline.connect.accounts import ACCESS_TOKEN, PLATFORM_OWNER, WEBHOOK_SECRET
from halo_stripe_pipeline.connect.crypto import (
    DecryptionError,
    EncryptionKeyError,
    TokenCipher,
)
from halo_stripe_pipeline.stripe_client import StripeApi

log = logging.getLogger(__name__)


class AccountDisconnected(LookupError):
    """The account is disconnected, so it has no credentials."""


def endpoint_secrets(
    conn: psycopg.Connection, cipher: TokenCipher | None = None
) -> list[tuple[str, str]]:
    """Return (account id, signing secret) of each account's own endpoint.

    Only accounts connected by their own key have one; the events of OAuth
    accounts come through the Connect endpoint (`connect_endpoint_secrets`).

    A secret that fails to decrypt is skipped with a warning, so one bad row
    does not stop verification for every other account.
    """
    rows = conn.execute(
        "select account_id, webhook_secret_encrypted from halo.stripe_connections"
        " where status = 'connected' and webhook_secret_encrypted is not null"
        " order by account_id"
    ).fetchall()
    if not rows:
        return []
    cipher = cipher or TokenCipher.from_env()
    secrets: list[tuple[str, str]] = []
    for account_id, sealed in rows:
        try:
            secret = cipher.decrypt(sealed, account_id=account_id, purpose=WEBHOOK_SECRET)
        except DecryptionError as error:
            log.warning("skipping the webhook secret of account %s: %s", account_id, error)
            continue
        secrets.append((account_id, secret))
    return secrets


def connect_endpoint_secrets(
    conn: psycopg.Connection, cipher: TokenCipher | None = None
) -> list[str]:
    """Return the signing secrets of the platform's Connect endpoints."""
    rows = conn.execute(
        "select url, secret_encrypted from halo.connect_webhook_endpoints order by url"
    ).fetchall()
    if not rows:
        return []
    cipher = cipher or TokenCipher.from_env()
    secrets: list[str] = []
    for url, sealed in rows:
        try:
            secrets.append(
                cipher.decrypt(sealed, account_id=PLATFORM_OWNER, purpose=WEBHOOK_SECRET)
            )
        except DecryptionError as error:
            log.warning("skipping the Connect endpoint secret for %s: %s", url, error)
    return secrets


def secrets_for_endpoint(conn: psycopg.Connection, account_id_hint: str | None) -> list[str]:
    """Return the signing secrets a delivery to an endpoint may carry.

    A URL ending in an account id is that account's own endpoint, checked
    with its secret. The bare URL is the platform's Connect endpoint, which
    carries the events of every account connected by OAuth.
    """
    try:
        if account_id_hint:
            pairs = endpoint_secrets(conn)
            return [secret for account_id, secret in pairs if account_id == account_id_hint]
        return connect_endpoint_secrets(conn)
    except EncryptionKeyError as error:
        # The environment's secrets may still verify the delivery, so a
        # missing key must not turn every delivery into a server error.
        log.error("cannot read stored webhook secrets: %s", error)
        return []


def event_account_id(event: dict[str, Any], endpoint_account_id: str | None) -> str | None:
    """Return the account an event belongs to.

    A Connect event names it in `account`; an event delivered to an
    account's own endpoint has no `account` field and belongs to the
    endpoint's account.
    """
    account = event.get("account")
    if isinstance(account, str) and account:
        return account
    return endpoint_account_id


def account_api(
    conn: psycopg.Connection,
    account_id: str,
    cipher: TokenCipher | None = None,
    **overrides: Any,
) -> StripeApi | None:
    """Return a client that reaches `account_id` with its stored access token.

    Returns None when the account has no stored connection (for example the
    account of the environment's STRIPE_API_KEY); raises AccountDisconnected
    when it was disconnected. `STRIPE_RATE_LIMIT` and
    `STRIPE_ENDPOINT_RATE_LIMIT` set the limits as for the environment's
    client, and `overrides` are further `StripeApi` fields. An `api_key` or
    `api_base` override is ignored, because both belong to the connection.
    """
    row = conn.execute(
        "select status, access_token_encrypted, api_base from halo.stripe_connections"
        " where account_id = %s",
        (account_id,),
    ).fetchone()
    if row is None:
        return None
    status, sealed, api_base = row
    if status != "connected" or sealed is None:
        raise AccountDisconnected(
            f"Stripe account `{account_id}` is disconnected; connect it again with "
            "`halo-stripe accounts connect`"
        )
    cipher = cipher or TokenCipher.from_env()
    token = cipher.decrypt(sealed, account_id=account_id, purpose=ACCESS_TOKEN)
    base = api_base or os.environ.get("STRIPE_API_BASE", "").strip().rstrip("/")
    fields = {**_limits(), **overrides}
    fields.pop("api_key", None)
    fields.pop("api_base", None)
    return StripeApi(api_key=token, api_base=base or DEFAULT_STRIPE_API_BASE, **fields)


def _limits() -> dict[str, float]:
    limits: dict[str, float] = {}
    if os.environ.get("STRIPE_RATE_LIMIT"):
        limits["requests_per_second"] = float(os.environ["STRIPE_RATE_LIMIT"])
    if os.environ.get("STRIPE_ENDPOINT_RATE_LIMIT"):
        limits["endpoint_requests_per_second"] = float(os.environ["STRIPE_ENDPOINT_RATE_LIMIT"])
    return limits
