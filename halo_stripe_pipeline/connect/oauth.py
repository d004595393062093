"""Stripe Connect OAuth: single-use CSRF states and the code-for-token exchange.

A state is 32 random bytes, bound to one workspace and one redirect URI, and
expires after the configured lifetime. Only its SHA-256 hash is stored, and
consuming it marks it used in the same statement, so two callbacks racing
with one state cannot both succeed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from halo_stripe_pipeline.connect.settings import ConnectSettings

log = logging.getLogger(__name__)

TOKEN_TIMEOUT_SECONDS = 30.0


class OAuthStateError(ValueError):
    """The callback's state is unknown, reused or expired; safe to show."""


class AuthorizationDenied(ValueError):
    """Stripe redirected back with an error instead of a code; safe to show."""


class TokenExchangeError(RuntimeError):
    """Stripe's token endpoint rejected the code or failed; safe to show."""


@dataclass(frozen=True)
class IssuedState:
    state: str
    workspace_id: str
    redirect_uri: str
    expires_at: datetime


@dataclass(frozen=True)
class ConsumedState:
    workspace_id: str
    redirect_uri: str


@dataclass(frozen=True)
class OAuthTokens:
    """Tokens returned by Stripe's token endpoint for an authorization code."""

    stripe_user_id: str
    access_token: str
    refresh_token: str | None
    publishable_key: str | None
    scope: str | None
    livemode: bool | None

    def __repr__(self) -> str:
        # Keeps the tokens out of tracebacks and debug logs.
        return f"OAuthTokens(stripe_user_id={self.stripe_user_id!r}, scope={self.scope!r})"


def hash_state(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def issue_state(
    conn: psycopg.Connection,
    workspace_id: str,
    redirect_uri: str,
    *,
    ttl: timedelta,
    now: datetime | None = None,
) -> IssuedState:
    """Store a fresh state for `workspace_id` and return it."""
    issued_at = now or datetime.now(timezone.utc)
    state = secrets.token_urlsafe(32)
    expires_at = issued_at + ttl
    conn.execute(
        "insert into halo.oauth_states"
        " (state_hash, workspace_id, redirect_uri, created_at, expires_at)"
        " values (%s, %s, %s, %s, %s)",
        (hash_state(state), workspace_id, redirect_uri, issued_at, expires_at),
    )
    # Expired states are useless after their lifetime; dropping them here
    # keeps the table small without a separate cleanup job.
    conn.execute(
        "delete from halo.oauth_states where expires_at < %s",
        (issued_at - timedelta(days=1),),
    )
    return IssuedState(state, workspace_id, redirect_uri, expires_at)


def consume_state(
    conn: psycopg.Connection, state: str | None, *, now: datetime | None = None
) -> ConsumedState:
    """Mark `state` used and return its workspace; raise OAuthStateError otherwise."""
    if not state:
        raise OAuthStateError("missing OAuth state")
    checked_at = now or datetime.now(timezone.utc)
    row = conn.execute(
        "update halo.oauth_states set used_at = %s"
        " where state_hash = %s and used_at is null"
        " returning workspace_id, redirect_uri, expires_at",
        (checked_at, hash_state(state)),
    ).fetchone()
    if row is None:
        known = conn.execute(
            "select 1 from halo.oauth_states where state_hash = %s", (hash_state(state),)
        ).fetchone()
        if known:
            raise OAuthStateError("OAuth state was already used; start the connection again")
        raise OAuthStateError("unknown OAuth state; start the connection again")
    workspace_id, redirect_uri, expires_at = row
    if expires_at <= checked_at:
        raise OAuthStateError("OAuth state has expired; start the connection again")
    return ConsumedState(workspace_id=workspace_id, redirect_uri=redirect_uri)


def authorize_url(settings: ConnectSettings, issued: IssuedState) -> str:
    """Return the Stripe authorize page address for an issued state."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "scope": settings.scope,
            "redirect_uri": issued.redirect_uri,
            "state": issued.state,
        }
    )
    separator = "&" if "?" in settings.authorize_url else "?"
    return f"{settings.authorize_url}{separator}{query}"


def exchange_code(settings: ConnectSettings, code: str) -> OAuthTokens:
    """Trade an authorization code for the account's tokens at the token URL.

    Stripe authenticates this call with the platform's secret key.
    """
    log.info("exchanging an OAuth authorization code at %s", settings.token_url)
    try:
        response = httpx.post(
            settings.token_url,
            data={"grant_type": "authorization_code", "code": code},
            auth=(settings.platform_api_key, ""),
            timeout=TOKEN_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        raise TokenExchangeError(
            f"OAuth token request to {settings.token_url} failed: {type(error).__name__}"
        ) from error
    body = _json_or_empty(response)
    if response.status_code != 200:
        reason = body.get("error_description") or body.get("error") or "no reason given"
        raise TokenExchangeError(
            f"Stripe rejected the OAuth code (HTTP {response.status_code}): {reason}"
        )
    return _tokens_from(body)


def deauthorize(settings: ConnectSettings, account_id: str) -> None:
    """Revoke the platform's access to `account_id` at Stripe."""
    try:
        response = httpx.post(
            settings.deauthorize_url,
            data={"client_id": settings.client_id, "stripe_user_id": account_id},
            auth=(settings.platform_api_key, ""),
            timeout=TOKEN_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        raise TokenExchangeError(
            f"OAuth deauthorize request to {settings.deauthorize_url} failed: "
            f"{type(error).__name__}"
        ) from error
    if response.status_code != 200:
        body = _json_or_empty(response)
        reason = body.get("error_description") or body.get("error") or "no reason given"
        raise TokenExchangeError(
            f"Stripe rejected deauthorizing `{account_id}` "
            f"(HTTP {response.status_code}): {reason}"
        )


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _tokens_from(body: dict[str, Any]) -> OAuthTokens:
    account_id = body.get("stripe_user_id")
    access_token = body.get("access_token")
    if not isinstance(account_id, str) or not account_id.startswith("acct_"):
        raise TokenExchangeError("OAuth token response has no stripe_user_id")
    if not isinstance(access_token, str) or not access_token:
        raise TokenExchangeError("OAuth token response has no access_token")
    livemode = body.get("livemode")
    return OAuthTokens(
        stripe_user_id=account_id,
        access_token=access_token,
        refresh_token=body.get("refresh_token") or None,
        publishable_key=body.get("stripe_publishable_key") or None,
        scope=body.get("scope") or None,
        livemode=livemode if isinstance(livemode, bool) else None,
    )
