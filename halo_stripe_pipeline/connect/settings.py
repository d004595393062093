"""Configuration of the connect flow, read from the environment.

Every Stripe URL is configurable so the whole flow can run against local
stand-ins; the defaults are Stripe's production addresses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE, ConfigError

DEFAULT_AUTHORIZE_URL = "https://connect.stripe.com/oauth/authorize"
DEFAULT_TOKEN_URL = "https://connect.stripe.com/oauth/token"
DEFAULT_DEAUTHORIZE_URL = "https://connect.stripe.com/oauth/deauthorize"
DEFAULT_STATE_TTL_SECONDS = 600
WEBHOOK_PATH = "/api/integrations/stripe/webhook"
CALLBACK_PATH = "/integrations/stripe/oauth/callback"


@dataclass(frozen=True)
class ConnectSettings:
    """Addresses and credentials of the OAuth flow and the webhook registration."""

    client_id: str
    platform_api_key: str = field(repr=False)
    authorize_url: str
    token_url: str
    deauthorize_url: str
    api_base: str
    redirect_uri: str | None
    public_url: str | None
    scope: str
    state_ttl: timedelta
    return_url: str | None

    def webhook_url(self, account_id: str, request_base_url: str | None = None) -> str:
        """Return the endpoint URL of an account connected by its own key.

        The last path segment names the endpoint's account, so the receiver
        picks that account's signing secret and routes an event without an
        `account` field to it.
        """
        return f"{self._webhook_base(request_base_url)}{WEBHOOK_PATH}/{account_id}"

    def connect_webhook_url(self, request_base_url: str | None = None) -> str:
        """Return the URL of the platform's Connect endpoint, for OAuth accounts."""
        return f"{self._webhook_base(request_base_url)}{WEBHOOK_PATH}"

    def _webhook_base(self, request_base_url: str | None) -> str:
        base = (self.public_url or request_base_url or "").rstrip("/")
        if not base:
            raise ConfigError(
                "HALO_PUBLIC_URL is not set: set it to the receiver's public base URL "
                "(for example https://halo.example.com) so Stripe can deliver webhooks"
            )
        return base

    def callback_url(self, request_base_url: str | None = None) -> str:
        if self.redirect_uri:
            return self.redirect_uri
        base = (self.public_url or request_base_url or "").rstrip("/")
        if not base:
            raise ConfigError(
                "HALO_PUBLIC_URL is not set: set it, or STRIPE_CONNECT_REDIRECT_URI, "
                "to the address of the OAuth callback"
            )
        return f"{base}{CALLBACK_PATH}"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def connect_settings(*, require_oauth: bool = True) -> ConnectSettings:
    """Read the connect settings; raise ConfigError naming a missing variable.

    `require_oauth` false allows connecting by API key without a Connect
    platform (no client id and no platform key).
    """
    client_id = _env("STRIPE_CONNECT_CLIENT_ID")
    platform_key = _env("STRIPE_API_KEY")
    if require_oauth and not client_id:
        raise ConfigError(
            "STRIPE_CONNECT_CLIENT_ID is not set: copy the platform's client id "
            "(ca_...) from the Stripe Dashboard's Connect settings"
        )
    if require_oauth and not platform_key:
        raise ConfigError(
            "STRIPE_API_KEY is not set: the OAuth token exchange authenticates "
            "with the platform's secret key"
        )
    ttl_text = _env("HALO_OAUTH_STATE_TTL_SECONDS", str(DEFAULT_STATE_TTL_SECONDS))
    try:
        ttl_seconds = int(ttl_text)
    except ValueError:
        ttl_seconds = 0
    if ttl_seconds <= 0:
        raise ConfigError(
            f"HALO_OAUTH_STATE_TTL_SECONDS is invalid: {ttl_text!r}; "
            "expected a positive number of seconds"
        )
    return ConnectSettings(
        client_id=client_id,
        platform_api_key=platform_key,
        authorize_url=_env("STRIPE_OAUTH_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL),
        token_url=_env("STRIPE_OAUTH_TOKEN_URL", DEFAULT_TOKEN_URL),
        deauthorize_url=_env("STRIPE_OAUTH_DEAUTHORIZE_URL", DEFAULT_DEAUTHORIZE_URL),
        api_base=_env("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE).rstrip("/"),
        redirect_uri=_env("STRIPE_CONNECT_REDIRECT_URI") or None,
        public_url=_env("HALO_PUBLIC_URL") or None,
        scope=_env("STRIPE_CONNECT_SCOPE", "read_write"),
        state_ttl=timedelta(seconds=ttl_seconds),
        return_url=_env("HALO_CONNECT_RETURN_URL") or None,
    )
