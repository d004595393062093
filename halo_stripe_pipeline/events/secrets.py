"""Webhook signing secrets: the environment's and those other parts store.

`STRIPE_WEBHOOK_SECRET` contains one secret, or several separated by commas
while a secret is being rotated. A part that stores endpoint secrets (Connect
keeps one per connected account, encrypted) registers a provider with
`register_secret_provider`. The receiver asks the providers only when no
environment secret matches a delivery.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import psycopg

log = logging.getLogger(__name__)

ENV_VARIABLE = "STRIPE_WEBHOOK_SECRET"

# A provider takes a warehouse connection and the account the endpoint URL
# names (None for the shared endpoint) and returns the signing secrets that
# are currently valid for it, in plain text.
SecretProvider = Callable[[psycopg.Connection, "str | None"], list[str]]

_providers: list[SecretProvider] = []


def register_secret_provider(provider: SecretProvider) -> None:
    """Add `provider` to the sources of stored secrets (once per function)."""
    if provider not in _providers:
        _providers.append(provider)


def unregister_secret_provider(provider: SecretProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def has_secret_providers() -> bool:
    return bool(_providers)


def env_secrets(value: str | None = None) -> list[str]:
    """Return the secrets in `STRIPE_WEBHOOK_SECRET` (or `value`), in order."""
    raw = os.environ.get(ENV_VARIABLE, "") if value is None else value
    return [part.strip() for part in raw.split(",") if part.strip()]


def stored_secrets(conn: psycopg.Connection, account_id_hint: str | None) -> list[str]:
    """Return the secrets every registered provider has for `account_id_hint`."""
    secrets: list[str] = []
    for provider in _providers:
        for secret in provider(conn, account_id_hint):
            if secret and secret not in secrets:
                secrets.append(secret)
    return secrets


def active_secrets(
    conn: psycopg.Connection | None, account_id_hint: str | None
) -> list[str]:
    """Return every secret a delivery may be signed with: environment first."""
    secrets = env_secrets()
    if conn is not None:
        secrets.extend(
            s for s in stored_secrets(conn, account_id_hint) if s not in secrets
        )
    return secrets
