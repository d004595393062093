"""The OAuth connect flow against the local Stripe stand-in.

Each rejection test asserts that nothing was stored for the account: no
connection row, no settings row, no sync request, no webhook endpoint.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from halo_stripe_pipeline.connect import oauth
from halo_stripe_pipeline.connect.definitions import sync_requests_sensor
from halo_stripe_pipeline.connect.partitions import ACCOUNT_TAG, PARTITIONS_NAME
from halo_stripe_pipeline.connect.secrets import account_api, connect_endpoint_secrets
from halo_stripe_pipeline.connect.settings import CALLBACK_PATH
from halo_stripe_pipeline.connect.webhook_endpoint import WEBHOOK_API_VERSION
from halo_stripe_pipeline.events.types import PROCESSED_EVENT_TYPES
from tests.connect.conftest import CLIENT_ID, PLATFORM_KEY
from tests.connect.stripe_standin import StripeStandin

CONNECT_PATH = "/integrations/stripe/connect"


def _start(client: TestClient, workspace: str) -> str:
    """Return the authorize URL the connect route redirects to."""
    response = client.get(CONNECT_PATH, params={"workspace": workspace})
    assert response.status_code == 302
    return response.headers["location"]


def _authorize(authorize_url: str) -> dict[str, str]:
    """Let the stand-in's authorize page approve; return the callback's query."""
    response = httpx.get(authorize_url, follow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == CALLBACK_PATH
    return {key: values[-1] for key, values in parse_qs(location.query).items()}


def _stored_rows(db: psycopg.Connection, account_id: str) -> dict[str, int]:
    counts = {}
    for table in ("stripe_connections", "integration_settings", "sync_requests"):
        row = db.execute(
            f"select count(*) from halo.{table} where account_id = %s", (account_id,)
        ).fetchone()
        counts[table] = row[0]
    return counts


NOTHING_STORED = {"stripe_connections": 0, "integration_settings": 0, "sync_requests": 0}


def test_connect_redirects_to_authorize_url(
    client: TestClient, connect_env: StripeStandin, public_url: str
):
    location = urlsplit(_start(client, "ws_redirect"))
    query = parse_qs(location.query)

    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{connect_env.base_url}/oauth/authorize"
    )
    assert query["client_id"] == [CLIENT_ID]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["read_write"]
    assert query["redirect_uri"] == [f"{public_url}{CALLBACK_PATH}"]
    assert len(query["state"][0]) >= 40


def test_connect_states_are_fresh(client: TestClient):
    first = parse_qs(urlsplit(_start(client, "ws_fresh")).query)["state"][0]
    second = parse_qs(urlsplit(_start(client, "ws_fresh")).query)["state"][0]

    assert first != second


def test_connect_requires_workspace(client: TestClient):
    response = client.get(CONNECT_PATH)

    assert response.status_code == 400
    assert "workspace" in response.text


def test_oauth_flow_connects_account(
    client: TestClient,
    connect_env: StripeStandin,
    db: psycopg.Connection,
    account_id: str,
    public_url: str,
    encryption_key: str,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    workspace = f"ws_{account_id[-6:]}"
    callback = _authorize(_start(client, workspace))

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 200, response.text
    assert account_id in response.text
    access_token = connect_env.state.access_tokens[-1]
    refresh_token = connect_env.state.refresh_tokens[-1]
    endpoint, = connect_env.state.endpoints
    secret = endpoint["secret"]

    # Tokens are stored, but only encrypted.
    row = db.execute(
        "select c::text, status, workspace_id, connection_type, webhook_endpoint_id,"
        " webhook_api_version, webhook_secret_encrypted, access_token_encrypted,"
        " refresh_token_encrypted"
        " from halo.stripe_connections c where account_id = %s",
        (account_id,),
    ).fetchone()
    row_text, status, stored_workspace, connection_type, endpoint_id, version = row[:6]
    own_secret, sealed_access, sealed_refresh = row[6:]
    for plaintext in (access_token, refresh_token, secret):
        assert plaintext not in row_text
    assert sealed_access.startswith("v1.")
    assert sealed_refresh.startswith("v1.")
    assert status == "connected"
    assert stored_workspace == workspace
    assert connection_type == "oauth"
    assert endpoint_id == endpoint["id"]
    assert version == WEBHOOK_API_VERSION
    assert own_secret is None

    # The Connect endpoint's signing secret is stored, but only encrypted.
    endpoint_row = db.execute(
        "select e::text, endpoint_id from halo.connect_webhook_endpoints e where url = %s",
        (f"{public_url}/api/integrations/stripe/webhook",),
    ).fetchone()
    assert endpoint_row is not None
    assert secret not in endpoint_row[0]
    assert endpoint_row[1] == endpoint["id"]

    # The stored values decrypt to what Stripe handed out.
    api = account_api(db, account_id)
    assert api is not None
    assert api.api_key == access_token
    assert secret in connect_endpoint_secrets(db)

    # The workspace's settings row points at the account.
    settings = db.execute(
        "select workspace_id, ingest_enabled from halo.integration_settings"
        " where account_id = %s",
        (account_id,),
    ).fetchone()
    assert settings == (workspace, True)

    # A full sync is requested.
    requests = db.execute(
        "select reason, status from halo.sync_requests where account_id = %s", (account_id,)
    ).fetchall()
    assert requests == [("connected", "pending")]

    # The platform's Connect endpoint is registered with the platform key,
    # the pinned version and the processed types.
    assert endpoint["url"] == f"{public_url}/api/integrations/stripe/webhook"
    assert endpoint["connect"] is True
    assert connect_env.state.endpoint_keys == [PLATFORM_KEY]
    assert endpoint["api_version"] == WEBHOOK_API_VERSION
    assert set(PROCESSED_EVENT_TYPES) <= set(endpoint["enabled_events"])
    assert "account.application.deauthorized" in endpoint["enabled_events"]
    assert endpoint["metadata"] == {"halo_owner": "platform"}

    # Nothing secret reached the logs.
    for secret_text in (access_token, refresh_token, secret, encryption_key, PLATFORM_KEY):
        assert secret_text not in caplog.text
    product_logs = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("halo_stripe_pipeline", "webhook_receiver"))
    )
    assert callback["code"] not in product_logs
    assert callback["state"] not in product_logs


def test_second_account_shares_connect_endpoint(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    client.get(CALLBACK_PATH, params=_authorize(_start(client, f"ws_{account_id[-6:]}")))
    second = f"acct_{secrets.token_hex(8)}"
    connect_env.state.account_id = second

    response = client.get(CALLBACK_PATH, params=_authorize(_start(client, f"ws_{second}")))

    assert response.status_code == 200, response.text
    endpoint, = connect_env.state.endpoints
    stored = db.execute(
        "select webhook_endpoint_id from halo.stripe_connections where account_id = %s",
        (second,),
    ).fetchone()
    assert stored == (endpoint["id"],)


def test_sensor_adds_partition_and_requests_sync(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    client.get(CALLBACK_PATH, params=_authorize(_start(client, f"ws_{account_id[-6:]}")))
    instance = dg.DagsterInstance.ephemeral()

    result = sync_requests_sensor(dg.build_sensor_context(instance=instance))

    added = [
        key
        for request in result.dynamic_partitions_requests
        if isinstance(request, dg.AddDynamicPartitionsRequest)
        for key in request.partition_keys
    ]
    runs = [run for run in result.run_requests if run.partition_key == account_id]
    assert account_id in added
    assert len(runs) == 1
    assert runs[0].tags[ACCOUNT_TAG] == account_id
    status = db.execute(
        "select status, run_key from halo.sync_requests where account_id = %s", (account_id,)
    ).fetchone()
    assert status == ("submitted", runs[0].run_key)

    # A later tick from the returned cursor requests nothing new.
    instance.add_dynamic_partitions(PARTITIONS_NAME, added)
    again = sync_requests_sensor(
        dg.build_sensor_context(instance=instance, cursor=result.cursor)
    )
    assert [run for run in again.run_requests if run.partition_key == account_id] == []


def test_forged_state_rejected(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    callback = _authorize(_start(client, "ws_forged"))
    callback["state"] = "forged" + callback["state"][6:]

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 400
    assert response.text == "unknown OAuth state; start the connection again"
    assert connect_env.state.token_requests == 0
    assert connect_env.state.endpoints == []
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_missing_state_rejected(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    callback = _authorize(_start(client, "ws_missing"))
    del callback["state"]

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 400
    assert response.text == "missing OAuth state"
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_reused_state_rejected(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    callback = _authorize(_start(client, f"ws_{account_id[-6:]}"))
    assert client.get(CALLBACK_PATH, params=callback).status_code == 200
    stored = _stored_rows(db, account_id)
    sealed_before = db.execute(
        "select access_token_encrypted from halo.stripe_connections where account_id = %s",
        (account_id,),
    ).fetchone()

    replay = client.get(CALLBACK_PATH, params=callback)

    assert replay.status_code == 400
    assert replay.text == "OAuth state was already used; start the connection again"
    assert connect_env.state.token_requests == 1
    assert len(connect_env.state.endpoints) == 1
    assert _stored_rows(db, account_id) == stored
    sealed_after = db.execute(
        "select access_token_encrypted from halo.stripe_connections where account_id = %s",
        (account_id,),
    ).fetchone()
    assert sealed_after == sealed_before


def test_reused_state_after_denial_rejected(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    callback = _authorize(_start(client, "ws_denied_then_reused"))
    denied = client.get(
        CALLBACK_PATH, params={"state": callback["state"], "error": "access_denied"}
    )
    assert denied.status_code == 400

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 400
    assert "already used" in response.text
    assert connect_env.state.token_requests == 0
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_expired_state_rejected(
    client: TestClient,
    connect_env: StripeStandin,
    db: psycopg.Connection,
    account_id: str,
    public_url: str,
):
    callback = _authorize(_start(client, "ws_expired"))
    issued_long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    expired = oauth.issue_state(
        db,
        "ws_expired",
        f"{public_url}{CALLBACK_PATH}",
        ttl=timedelta(minutes=10),
        now=issued_long_ago,
    )

    response = client.get(CALLBACK_PATH, params={**callback, "state": expired.state})

    assert response.status_code == 400
    assert response.text == "OAuth state has expired; start the connection again"
    assert connect_env.state.token_requests == 0
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_denied_authorization_rejected(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    state = parse_qs(urlsplit(_start(client, "ws_denied")).query)["state"][0]

    response = client.get(
        CALLBACK_PATH,
        params={
            "state": state,
            "error": "access_denied",
            "error_description": "The user denied your request",
        },
    )

    assert response.status_code == 400
    assert response.text == "Stripe authorization was denied; no account was connected"
    assert connect_env.state.token_requests == 0
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_rejected_code_stores_nothing(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    callback = _authorize(_start(client, "ws_bad_code"))
    callback["code"] = "ac_unknown"

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 502
    assert response.text == "Stripe rejected the OAuth code (HTTP 400): unknown code"
    assert _stored_rows(db, account_id) == NOTHING_STORED


def test_missing_encryption_key_rejected(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("HALO_ENCRYPTION_KEY")

    response = client.get(CONNECT_PATH, params={"workspace": "ws_nokey"})

    assert response.status_code == 503
    assert "HALO_ENCRYPTION_KEY is not set" in response.text
    assert "halo-stripe accounts generate-key" in response.text


def test_return_url_receives_account(
    client: TestClient, account_id: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HALO_CONNECT_RETURN_URL", "https://app.example.test/settings")
    callback = _authorize(_start(client, f"ws_{account_id[-6:]}"))

    response = client.get(CALLBACK_PATH, params=callback)

    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/settings"
    assert parse_qs(location.query)["account"] == [account_id]
    assert parse_qs(location.query)["status"] == ["connected"]


def test_pinned_version_matches_sdk():
    import stripe

    assert WEBHOOK_API_VERSION == stripe.api_version
