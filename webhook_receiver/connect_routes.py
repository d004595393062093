"""The Stripe Connect install routes: start the OAuth flow, take the callback.

`GET /integrations/stripe/connect?workspace=W` redirects to Stripe's
authorize page with a fresh single-use state bound to W.
`GET /integrations/stripe/oauth/callback` checks that state, exchanges the
code and connects the account (see `halo_stripe_pipeline.connect.flow`).

NOTE: the `workspace` parameter is trusted as given; serve the connect route
behind Halo's authentication, which decides who may connect a workspace.

Importing this module also registers the connected accounts' endpoint
secrets with the receiver's signature check.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from halo_stripe_pipeline.config import ConfigError, database_url
from halo_stripe_pipeline.connect import flow, oauth
from halo_stripe_pipeline.connect.accounts import ConnectConflict
from halo_stripe_pipeline.connect.crypto import TokenCipher
from halo_stripe_pipeline.connect.secrets import secrets_for_endpoint
from halo_stripe_pipeline.connect.settings import CALLBACK_PATH, connect_settings
from halo_stripe_pipeline.events.secrets import register_secret_provider
from halo_stripe_pipeline.warehouse import connect

log = logging.getLogger(__name__)

CONNECT_PATH = "/integrations/stripe/connect"
MAX_WORKSPACE_LENGTH = 200

register_secret_provider(secrets_for_endpoint)


def _db_url(request: Request) -> str:
    return getattr(request.app.state, "db_url", None) or database_url()


def _not_configured(error: ConfigError) -> Response:
    log.error("Stripe connect is not configured: %s", error)
    return PlainTextResponse(f"Stripe connect is not configured: {error}", status_code=503)


async def start_connect(request: Request) -> Response:
    """Redirect the browser to Stripe's authorize page for `workspace`."""
    workspace_id = request.query_params.get("workspace", "").strip()
    if not workspace_id or len(workspace_id) > MAX_WORKSPACE_LENGTH:
        return PlainTextResponse("missing or invalid `workspace` parameter", status_code=400)
    try:
        settings = connect_settings()
        TokenCipher.from_env()
    except ConfigError as error:
        return _not_configured(error)

    def issue() -> str:
        with connect(_db_url(request), autocommit=True) as conn:
            return flow.start_oauth(conn, settings, workspace_id, str(request.base_url))

    location = await run_in_threadpool(issue)
    return RedirectResponse(location, status_code=302)


async def oauth_callback(request: Request) -> Response:
    """Check the state, exchange the code, connect the account."""
    params = request.query_params
    try:
        settings = connect_settings()
        cipher = TokenCipher.from_env()
    except ConfigError as error:
        return _not_configured(error)

    def complete() -> flow.ConnectResult:
        with connect(_db_url(request), autocommit=True) as conn:
            return flow.complete_oauth(
                conn,
                settings,
                cipher,
                state=params.get("state"),
                code=params.get("code"),
                error=params.get("error"),
                request_base_url=str(request.base_url),
            )

    try:
        result = await run_in_threadpool(complete)
    except (oauth.OAuthStateError, oauth.AuthorizationDenied) as error:
        log.warning("rejected Stripe OAuth callback: %s", error)
        return PlainTextResponse(str(error), status_code=400)
    except ConnectConflict as error:
        log.warning("rejected Stripe OAuth callback: %s", error)
        return PlainTextResponse(str(error), status_code=409)
    except oauth.TokenExchangeError as error:
        log.error("Stripe OAuth token exchange failed: %s", error)
        return PlainTextResponse(str(error), status_code=502)
    except ConfigError as error:
        return _not_configured(error)
    return _connected_response(settings.return_url, result)


def _connected_response(return_url: str | None, result: flow.ConnectResult) -> Response:
    if return_url:
        query = urlencode(
            {
                "status": "connected",
                "account": result.account_id,
                "workspace": result.workspace_id,
            }
        )
        separator = "&" if "?" in return_url else "?"
        return RedirectResponse(f"{return_url}{separator}{query}", status_code=303)
    lines = [
        f"Stripe account {result.account_id} is connected to workspace "
        f"{result.workspace_id}. A full sync has been requested.",
    ]
    if result.webhook_error:
        lines.append(
            "Webhooks are not set up yet: connect again later, or ask the data team to "
            "check `halo-stripe accounts list`."
        )
    return PlainTextResponse("\n".join(lines) + "\n")


routes = [
    Route(CONNECT_PATH, start_connect, methods=["GET"]),
    Route(CALLBACK_PATH, oauth_callback, methods=["GET"]),
]
