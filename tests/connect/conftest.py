"""Fixtures of the connect tests: an encryption key, the Stripe stand-in, the app."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from halo_stripe_pipeline.connect.crypto import generate_key
from tests.connect.stripe_standin import StripeStandin

PLATFORM_KEY = "sk_test_platform0123456789"
CLIENT_ID = "ca_test_halo"


@pytest.fixture
def encryption_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = generate_key()
    monkeypatch.setenv("HALO_ENCRYPTION_KEY", key)
    return key


@pytest.fixture
def account_id() -> str:
    """A fresh account id, so tests sharing the session database stay apart."""
    return f"acct_{secrets.token_hex(8)}"


@pytest.fixture
def public_url(account_id: str) -> str:
    """A receiver address of this test alone, so its Connect endpoint is its own.

    The platform's Connect endpoint is stored per URL in the shared session
    database; with one URL for every test, only the first would register it.
    """
    return f"https://halo-{account_id.removeprefix('acct_')}.example.test"


@pytest.fixture
def standin(account_id: str) -> Iterator[StripeStandin]:
    server = StripeStandin(
        platform_key=PLATFORM_KEY, client_id=CLIENT_ID, account_id=account_id
    ).start()
    yield server
    server.stop()


@pytest.fixture
def connect_env(
    standin: StripeStandin,
    encryption_key: str,
    warehouse_url: str,
    public_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> StripeStandin:
    """Point every connect setting at the stand-in."""
    monkeypatch.setenv("STRIPE_CONNECT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("STRIPE_API_KEY", PLATFORM_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", standin.base_url)
    monkeypatch.setenv("STRIPE_OAUTH_AUTHORIZE_URL", f"{standin.base_url}/oauth/authorize")
    monkeypatch.setenv("STRIPE_OAUTH_TOKEN_URL", f"{standin.base_url}/oauth/token")
    monkeypatch.setenv("STRIPE_OAUTH_DEAUTHORIZE_URL", f"{standin.base_url}/oauth/deauthorize")
    monkeypatch.setenv("HALO_PUBLIC_URL", public_url)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")
    for name in ("STRIPE_CONNECT_REDIRECT_URI", "HALO_CONNECT_RETURN_URL"):
        monkeypatch.delenv(name, raising=False)
    return standin


@pytest.fixture
def client(connect_env: StripeStandin, warehouse_url: str) -> Iterator[TestClient]:
    """The connect routes in a bare Starlette app on the session warehouse."""
    from webhook_receiver.connect_routes import routes

    app = Starlette(routes=routes)
    app.state.db_url = warehouse_url
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
