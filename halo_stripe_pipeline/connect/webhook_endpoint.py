"""Registering the receiver as a Stripe webhook endpoint.

Stripe rejects creating an endpoint on a connected account with an OAuth
token ("You are not permitted to configure webhook endpoints on a connected
account"), so accounts connected by OAuth share one Connect endpoint of the
platform (`connect=true`), whose events name their account in `account`.
An account connected by its own key gets an endpoint of its own, created
with that key. Its deliveries carry no `account` field, so its URL ends
with the account id for the receiver to route them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from halo_stripe_pipeline.connect.redaction import install_stripe_log_filter
from halo_stripe_pipeline.events.types import PROCESSED_EVENT_TYPES
from halo_stripe_pipeline.stripe_client import StripeApi

log = logging.getLogger(__name__)

# The API version of the webhook payloads. It equals the version the stripe
# 16.1 SDK sends with every request, so events and list pages share one
# object shape. A test fails when an SDK upgrade changes the SDK's version.
WEBHOOK_API_VERSION = "2026-10-28.endive"

# Besides the types applied to `stripe_raw`, the product reacts to the
# account revoking access.
DEAUTHORIZED_EVENT_TYPE = "account.application.deauthorized"
ENABLED_EVENTS = tuple(sorted(PROCESSED_EVENT_TYPES | {DEAUTHORIZED_EVENT_TYPE}))


@dataclass(frozen=True)
class RegisteredEndpoint:
    endpoint_id: str
    secret: str
    api_version: str

    def __repr__(self) -> str:
        return f"RegisteredEndpoint(endpoint_id={self.endpoint_id!r})"


def register_endpoint(
    api: StripeApi, url: str, owner: str, *, connect: bool = False
) -> RegisteredEndpoint:
    """Create a webhook endpoint at `url`; return its id and signing secret.

    `owner` is the account id, or `platform` for a Connect endpoint. One
    idempotency key per call makes the client's retries of this request
    return the first endpoint instead of creating a second one.
    """
    install_stripe_log_filter()
    params: dict[str, object] = {
        "url": url,
        "enabled_events": list(ENABLED_EVENTS),
        "api_version": WEBHOOK_API_VERSION,
        "description": "Halo: keeps the synced Stripe data current",
        "metadata": {"halo_owner": owner},
    }
    if connect:
        params["connect"] = True
    kind = "Connect webhook endpoint" if connect else "webhook endpoint"
    log.info(
        "registering %s for %s with %d event types at version %s",
        kind, owner, len(ENABLED_EVENTS), WEBHOOK_API_VERSION,
    )
    body = api.post(
        "/v1/webhook_endpoints",
        params,
        idempotency_key=f"halo-connect-endpoint-{owner}-{uuid.uuid4().hex}",
    )
    endpoint_id = body.get("id")
    secret = body.get("secret")
    if not isinstance(endpoint_id, str) or not isinstance(secret, str) or not secret:
        raise ValueError(f"{kind} response for `{owner}` has no id or signing secret")
    api_version = body.get("api_version") or WEBHOOK_API_VERSION
    log.info("registered %s %s for %s", kind, endpoint_id, owner)
    return RegisteredEndpoint(endpoint_id, secret, api_version)


def delete_endpoint(api: StripeApi, endpoint_id: str) -> None:
    api.delete(f"/v1/webhook_endpoints/{endpoint_id}")
