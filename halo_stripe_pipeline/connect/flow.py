"""The connect flow end to end: the steps the receiver and the CLI share.

Connecting is: check the state (OAuth only), obtain the account's token,
store it encrypted with the workspace, request a full sync, then make sure a
webhook endpoint serves the account and store its secret encrypted. OAuth
accounts share the platform's Connect endpoint, registered on first use;
an account connected by its own key gets an endpoint of its own. A failed
registration does not undo the connection: the sync still works, the
failure is stored and shown by `halo-stripe accounts list`, and connecting
again retries it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.connect import oauth
from halo_stripe_pipeline.connect.accounts import (
    PLATFORM_OWNER,
    AccountGrant,
    connect_endpoint_id,
    lock_connect_endpoint,
    store_connect_endpoint,
    store_connection,
    store_webhook_endpoint,
    store_webhook_error,
)
from halo_stripe_pipeline.connect.crypto import TokenCipher
from halo_stripe_pipeline.connect.secrets import account_api
from halo_stripe_pipeline.connect.settings import ConnectSettings
from halo_stripe_pipeline.connect.webhook_endpoint import (
    WEBHOOK_API_VERSION,
    delete_endpoint,
    register_endpoint,
)
from halo_stripe_pipeline.stripe_client import StripeApi, StripeApiError, StripeAuthError

log = logging.getLogger(__name__)

ACCESS_DENIED = "access_denied"


class MissingAccountId(ValueError):
    """The account id could not be read from Stripe and was not given."""


@dataclass(frozen=True)
class ConnectResult:
    account_id: str
    workspace_id: str
    sync_request_id: int
    webhook_endpoint_id: str | None
    webhook_error: str | None


def start_oauth(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    workspace_id: str,
    request_base_url: str | None = None,
) -> str:
    """Issue a state for `workspace_id` and return Stripe's authorize URL."""
    issued = oauth.issue_state(
        conn, workspace_id, settings.callback_url(request_base_url), ttl=settings.state_ttl
    )
    log.info("issued an OAuth state for workspace %s", workspace_id)
    return oauth.authorize_url(settings, issued)


def complete_oauth(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    *,
    state: str | None,
    code: str | None,
    error: str | None = None,
    request_base_url: str | None = None,
) -> ConnectResult:
    """Finish the OAuth callback; raise before storing anything on a bad request.

    The state is consumed first, so a denied or failed attempt still uses it up.
    """
    consumed = oauth.consume_state(conn, state)
    if error:
        reason = "was denied" if error == ACCESS_DENIED else f"failed with `{error}`"
        raise oauth.AuthorizationDenied(
            f"Stripe authorization {reason}; no account was connected"
        )
    if not code:
        raise oauth.AuthorizationDenied("callback has no authorization code")
    tokens = oauth.exchange_code(settings, code)
    grant = AccountGrant(
        account_id=tokens.stripe_user_id,
        workspace_id=consumed.workspace_id,
        connection_type="oauth",
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        publishable_key=tokens.publishable_key,
        scope=tokens.scope,
        livemode=tokens.livemode,
        api_base=settings.api_base,
    )
    return _store_and_register(conn, settings, cipher, grant, request_base_url)


def connect_with_api_key(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    *,
    workspace_id: str,
    api_key: str,
    account_id: str | None = None,
    api_base: str | None = None,
    register_webhook: bool = True,
    request_base_url: str | None = None,
) -> ConnectResult:
    """Connect an account by its secret or restricted key (no OAuth)."""
    base = (api_base or settings.api_base).rstrip("/")
    if not account_id:
        account_id = _read_account_id(StripeApi(api_key=api_key, api_base=base))
    grant = AccountGrant(
        account_id=account_id,
        workspace_id=workspace_id,
        connection_type="api_key",
        access_token=api_key,
        livemode=api_key.startswith(("sk_live_", "rk_live_")),
        api_base=base,
    )
    return _store_and_register(
        conn, settings, cipher, grant, request_base_url, register_webhook=register_webhook
    )


def _read_account_id(api: StripeApi) -> str:
    try:
        account = api.retrieve_account()
    except StripeApiError as error:
        raise MissingAccountId(
            f"could not read the account id from Stripe ({error}); pass it with --account-id"
        ) from error
    account_id = account.get("id")
    if not isinstance(account_id, str) or not account_id:
        raise MissingAccountId("GET /v1/account returned no id; pass it with --account-id")
    return account_id


def _store_and_register(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    grant: AccountGrant,
    request_base_url: str | None,
    *,
    register_webhook: bool = True,
) -> ConnectResult:
    previous_endpoint = _own_endpoint_id(conn, grant.account_id)
    connected = store_connection(conn, grant, cipher)
    endpoint_id: str | None = None
    webhook_error: str | None = None
    if register_webhook:
        endpoint_id, webhook_error = _register_webhook(
            conn, settings, cipher, grant, request_base_url
        )
        if endpoint_id and previous_endpoint and previous_endpoint != endpoint_id:
            _delete_old_endpoint(conn, cipher, grant.account_id, previous_endpoint)
    return ConnectResult(
        account_id=connected.account_id,
        workspace_id=connected.workspace_id,
        sync_request_id=connected.sync_request_id,
        webhook_endpoint_id=endpoint_id,
        webhook_error=webhook_error,
    )


def _own_endpoint_id(conn: psycopg.Connection, account_id: str) -> str | None:
    """Return the account's own endpoint; never the shared Connect endpoint."""
    row = conn.execute(
        "select webhook_endpoint_id from halo.stripe_connections"
        " where account_id = %s and connection_type = 'api_key'",
        (account_id,),
    ).fetchone()
    return row[0] if row else None


def _register_webhook(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    grant: AccountGrant,
    request_base_url: str | None,
) -> tuple[str | None, str | None]:
    account_id = grant.account_id
    try:
        if grant.connection_type == "oauth":
            endpoint_id = _ensure_connect_endpoint(conn, settings, cipher, request_base_url)
            secret = None
            api_version = WEBHOOK_API_VERSION
        else:
            api = account_api(conn, account_id, cipher)
            assert api is not None, "the connection was stored just before"
            url = settings.webhook_url(account_id, request_base_url)
            endpoint = register_endpoint(api, url, account_id)
            endpoint_id, secret = endpoint.endpoint_id, endpoint.secret
            api_version = endpoint.api_version
    except StripeAuthError:
        # The client's own message names STRIPE_API_KEY, which is not always
        # the key used here.
        key = "the platform key" if grant.connection_type == "oauth" else "the stored key"
        message = (
            f"webhook endpoint registration failed: Stripe rejected {key} "
            f"for `{account_id}`; check it and connect the account again"
        )
    except (StripeApiError, ValueError, ConfigError) as error:
        message = f"webhook endpoint registration failed: {error}"
    else:
        store_webhook_endpoint(
            conn,
            account_id,
            endpoint_id=endpoint_id,
            secret=secret,
            api_version=api_version,
            cipher=cipher,
        )
        return endpoint_id, None
    log.warning("account %s: %s", account_id, message)
    store_webhook_error(conn, account_id, message)
    return None, message


def _ensure_connect_endpoint(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    request_base_url: str | None,
) -> str:
    """Return the platform's Connect endpoint id, registering it on first use."""
    url = settings.connect_webhook_url(request_base_url)
    with conn.transaction():
        lock_connect_endpoint(conn, url)
        existing = connect_endpoint_id(conn, url)
        if existing:
            return existing
        platform = StripeApi(api_key=settings.platform_api_key, api_base=settings.api_base)
        endpoint = register_endpoint(platform, url, PLATFORM_OWNER, connect=True)
        store_connect_endpoint(
            conn,
            url,
            endpoint_id=endpoint.endpoint_id,
            secret=endpoint.secret,
            api_version=endpoint.api_version,
            cipher=cipher,
        )
    return endpoint.endpoint_id


def _delete_old_endpoint(
    conn: psycopg.Connection, cipher: TokenCipher, account_id: str, endpoint_id: str
) -> None:
    api = account_api(conn, account_id, cipher)
    assert api is not None
    try:
        delete_endpoint(api, endpoint_id)
    except StripeApiError as error:
        log.warning(
            "could not delete the replaced webhook endpoint %s of account %s: %s",
            endpoint_id, account_id, error,
        )


def revoke_at_stripe(
    conn: psycopg.Connection,
    settings: ConnectSettings,
    cipher: TokenCipher,
    account_id: str,
) -> list[str]:
    """Delete the account's endpoint and revoke OAuth access at Stripe.

    Call before `disconnect_account`, which drops the token these requests
    need. Returns a warning per step that failed; the disconnect proceeds
    anyway, because the account may already have revoked access.
    """
    row = conn.execute(
        "select connection_type, webhook_endpoint_id from halo.stripe_connections"
        " where account_id = %s and status = 'connected'",
        (account_id,),
    ).fetchone()
    if row is None:
        return []
    connection_type, endpoint_id = row
    warnings: list[str] = []
    # An OAuth account's endpoint is the platform's shared Connect endpoint,
    # which other accounts still use.
    if endpoint_id and connection_type == "api_key":
        api = account_api(conn, account_id, cipher)
        assert api is not None
        try:
            delete_endpoint(api, endpoint_id)
        except StripeApiError as error:
            warnings.append(f"could not delete webhook endpoint {endpoint_id}: {error}")
    if connection_type == "oauth":
        if not settings.client_id or not settings.platform_api_key:
            warnings.append(
                "did not revoke OAuth access: STRIPE_CONNECT_CLIENT_ID or "
                "STRIPE_API_KEY is not set"
            )
        else:
            try:
                oauth.deauthorize(settings, account_id)
            except oauth.TokenExchangeError as error:
                warnings.append(f"could not revoke OAuth access: {error}")
    for warning in warnings:
        log.warning("account %s: %s", account_id, warning)
    return warnings
