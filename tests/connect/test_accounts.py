"""Connected accounts after the OAuth flow: webhooks, conflicts, disconnecting."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from starlette.testclient import TestClient

from halo_stripe_pipeline.connect import disconnect_account, flow
from halo_stripe_pipeline.connect.accounts import (
    AccountGrant,
    ConnectConflict,
    list_accounts,
    purge_account_data,
    store_connection,
)
from halo_stripe_pipeline.connect.crypto import TokenCipher
from halo_stripe_pipeline.connect.partitions import plan_tick
from halo_stripe_pipeline.connect.secrets import (
    AccountDisconnected,
    account_api,
    endpoint_secrets,
    event_account_id,
)
from halo_stripe_pipeline.connect.settings import CALLBACK_PATH, connect_settings
from halo_stripe_pipeline.credentials import stripe_api_for_account
from halo_stripe_pipeline.warehouse.bulk import upsert_objects
from tests.connect.stripe_standin import StripeStandin
from webhook_receiver.signature import sign_header


def _connect_by_oauth(client: TestClient, workspace: str) -> None:
    response = client.get("/integrations/stripe/connect", params={"workspace": workspace})
    authorize = httpx.get(response.headers["location"], follow_redirects=False)
    query = parse_qs(urlsplit(authorize.headers["location"]).query)
    callback = client.get(CALLBACK_PATH, params={key: values[-1] for key, values in query.items()})
    assert callback.status_code == 200, callback.text


def _connect_by_key(
    db: psycopg.Connection, standin: StripeStandin, account_id: str
) -> flow.ConnectResult:
    """Connect `account_id` with a key the stand-in treats as the account's own."""
    key = f"sk_test_own_{secrets.token_hex(8)}"
    standin.state.account_keys.append(key)
    return flow.connect_with_api_key(
        db,
        connect_settings(require_oauth=False),
        TokenCipher.from_env(),
        workspace_id=f"ws_{account_id[-6:]}",
        api_key=key,
        account_id=account_id,
    )


def _grant(account_id: str, workspace: str) -> AccountGrant:
    return AccountGrant(
        account_id=account_id,
        workspace_id=workspace,
        connection_type="api_key",
        access_token=f"sk_test_{secrets.token_hex(12)}",
    )


def _customer_event(customer_id: str) -> dict:
    return {
        "id": f"evt_{secrets.token_hex(8)}",
        "object": "event",
        "type": "customer.created",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": customer_id, "object": "customer", "email": "a@b.example"}},
    }


@pytest.fixture
def receiver(
    connect_env: StripeStandin, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The whole receiver app, with no environment signing secret."""
    from webhook_receiver.app import create_app

    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    with TestClient(create_app(warehouse_url), follow_redirects=False) as test_client:
        yield test_client


def test_receiver_verifies_connect_event(
    receiver: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    _connect_by_oauth(receiver, f"ws_{account_id[-6:]}")
    secret = connect_env.state.endpoints[-1]["secret"]
    event = {**_customer_event(f"cus_{account_id[-6:]}"), "account": account_id}
    payload = json.dumps(event).encode()

    response = receiver.post(
        "/api/integrations/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": sign_header(payload, secret)},
    )

    assert response.status_code == 200, response.text
    stored = db.execute(
        "select account_id from stripe_raw.webhook_events where id = %s", (event["id"],)
    ).fetchone()
    assert stored == (account_id,)
    # The event is not applied here; leaving it pending would hand it to the
    # event tests sharing this database.
    db.execute("delete from stripe_raw.webhook_events where id = %s", (event["id"],))


def test_receiver_verifies_own_endpoint(
    receiver: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    result = _connect_by_key(db, connect_env, account_id)
    endpoint = connect_env.state.endpoints[-1]
    assert result.webhook_endpoint_id == endpoint["id"]
    event = _customer_event(f"cus_{account_id[-6:]}")
    payload = json.dumps(event).encode()

    response = receiver.post(
        f"/api/integrations/stripe/webhook/{account_id}",
        content=payload,
        headers={"Stripe-Signature": sign_header(payload, endpoint["secret"])},
    )

    assert response.status_code == 200, response.text
    stored = db.execute(
        "select account_id from stripe_raw.webhook_events where id = %s", (event["id"],)
    ).fetchone()
    assert stored == (account_id,)
    db.execute("delete from stripe_raw.webhook_events where id = %s", (event["id"],))


def test_receiver_rejects_other_secret(
    receiver: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    _connect_by_key(db, connect_env, account_id)
    event = _customer_event("cus_forged")
    payload = json.dumps(event).encode()

    response = receiver.post(
        f"/api/integrations/stripe/webhook/{account_id}",
        content=payload,
        headers={"Stripe-Signature": sign_header(payload, "whsec_not_the_stored_one")},
    )

    assert response.status_code == 400
    stored = db.execute(
        "select count(*) from stripe_raw.webhook_events where id = %s", (event["id"],)
    ).fetchone()
    assert stored == (0,)


def test_event_account_routing():
    assert event_account_id({"account": "acct_connect"}, "acct_endpoint") == "acct_connect"
    assert event_account_id({"account": None}, "acct_endpoint") == "acct_endpoint"
    assert event_account_id({}, None) is None


def test_credentials_use_stored_token(
    db: psycopg.Connection, encryption_key: str, account_id: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_environment_key")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    grant = AccountGrant(
        account_id=account_id,
        workspace_id=f"ws_{account_id[-6:]}",
        connection_type="api_key",
        access_token="sk_test_stored_for_account",
        api_base="http://127.0.0.1:7",
    )
    store_connection(db, grant, TokenCipher.from_env())

    connected = stripe_api_for_account(db, account_id, requests_per_second=5.0)
    other = stripe_api_for_account(db, "acct_environment")

    assert connected.api_key == "sk_test_stored_for_account"
    assert connected.api_base == "http://127.0.0.1:7"
    assert connected.requests_per_second == 5.0
    assert other.api_key == "sk_test_environment_key"
    assert other.api_base == "http://127.0.0.1:9"


def test_workspace_with_connected_account_rejects_another(
    db: psycopg.Connection, encryption_key: str, account_id: str
):
    cipher = TokenCipher.from_env()
    workspace = f"ws_{account_id[-6:]}"
    store_connection(db, _grant(account_id, workspace), cipher)
    second = f"acct_{secrets.token_hex(8)}"

    with pytest.raises(ConnectConflict) as error:
        store_connection(db, _grant(second, workspace), cipher)

    assert str(error.value) == (
        f"workspace `{workspace}` already has Stripe account `{account_id}`; disconnect "
        f"it with `halo-stripe accounts disconnect {account_id}` first"
    )
    assert db.execute(
        "select count(*) from halo.stripe_connections where account_id = %s", (second,)
    ).fetchone() == (0,)


def test_account_in_other_workspace_rejected(
    db: psycopg.Connection, encryption_key: str, account_id: str
):
    cipher = TokenCipher.from_env()
    store_connection(db, _grant(account_id, f"ws_a_{account_id[-6:]}"), cipher)

    with pytest.raises(ConnectConflict, match="already connected to workspace"):
        store_connection(db, _grant(account_id, f"ws_b_{account_id[-6:]}"), cipher)


def test_reconnect_same_workspace_replaces_token(
    db: psycopg.Connection, encryption_key: str, account_id: str
):
    cipher = TokenCipher.from_env()
    workspace = f"ws_{account_id[-6:]}"
    store_connection(db, _grant(account_id, workspace), cipher)
    newer = _grant(account_id, workspace)

    result = store_connection(db, newer, cipher)

    assert result.reconnected
    api = account_api(db, account_id)
    assert api is not None
    assert api.api_key == newer.access_token
    requests = db.execute(
        "select count(*) from halo.sync_requests where account_id = %s", (account_id,)
    ).fetchone()
    assert requests == (2,)


def test_disconnect_keeps_data_drops_tokens(
    client: TestClient, connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    _connect_by_oauth(client, f"ws_{account_id[-6:]}")
    upsert_objects(
        db, "customers", account_id, [{"id": "cus_kept", "created": 1700000000}],
        observed_at=datetime.now(timezone.utc),
    )

    assert disconnect_account(db, account_id) is True

    row = db.execute(
        "select status, access_token_encrypted, refresh_token_encrypted,"
        " webhook_secret_encrypted, disconnected_at is not null"
        " from halo.stripe_connections where account_id = %s",
        (account_id,),
    ).fetchone()
    assert row == ("disconnected", None, None, None, True)
    ingest = db.execute(
        "select ingest_enabled from halo.integration_settings where account_id = %s",
        (account_id,),
    ).fetchone()
    assert ingest == (False,)
    remaining = db.execute(
        "select count(*) from stripe_raw.customers where account_id = %s", (account_id,)
    ).fetchone()
    assert remaining == (1,)
    cancelled = db.execute(
        "select status from halo.sync_requests where account_id = %s", (account_id,)
    ).fetchall()
    assert cancelled == [("cancelled",)]
    assert account_id not in dict(endpoint_secrets(db))
    with pytest.raises(AccountDisconnected, match="is disconnected"):
        account_api(db, account_id)

    plan = plan_tick(db, existing_partitions=[account_id], cursor=0)
    assert plan.partitions_to_delete == [account_id]
    assert account_id not in [run.account_id for run in plan.runs]
    purge_account_data(db, account_id)


def test_disconnect_purge_deletes_data(
    db: psycopg.Connection, encryption_key: str, account_id: str
):
    store_connection(db, _grant(account_id, f"ws_{account_id[-6:]}"), TokenCipher.from_env())
    upsert_objects(
        db, "customers", account_id, [{"id": "cus_purged", "created": 1700000000}],
        observed_at=datetime.now(timezone.utc),
    )
    upsert_objects(
        db, "customers", "acct_other_kept", [{"id": "cus_other", "created": 1700000000}],
        observed_at=datetime.now(timezone.utc),
    )

    disconnect_account(db, account_id, purge=True)

    assert db.execute(
        "select count(*) from stripe_raw.customers where account_id = %s", (account_id,)
    ).fetchone() == (0,)
    assert db.execute(
        "select count(*) from stripe_raw.customers where account_id = 'acct_other_kept'"
    ).fetchone() == (1,)
    assert db.execute(
        "select count(*) from halo.integration_settings where account_id = %s", (account_id,)
    ).fetchone() == (0,)
    assert db.execute(
        "select purged_at is not null from halo.stripe_connections where account_id = %s",
        (account_id,),
    ).fetchone() == (True,)
    purge_account_data(db, "acct_other_kept")


def test_new_account_detaches_disconnected_one(
    db: psycopg.Connection, encryption_key: str, account_id: str
):
    cipher = TokenCipher.from_env()
    workspace = f"ws_{account_id[-6:]}"
    store_connection(db, _grant(account_id, workspace), cipher)
    disconnect_account(db, account_id)
    successor = f"acct_{secrets.token_hex(8)}"

    store_connection(db, _grant(successor, workspace), cipher)

    rows = dict(
        db.execute(
            "select account_id, workspace_id from halo.integration_settings"
            " where account_id = any(%s)",
            ([account_id, successor],),
        ).fetchall()
    )
    assert rows == {account_id: "", successor: workspace}
    listed = {summary.account_id: summary for summary in list_accounts(db)}
    assert listed[successor].status == "connected"
    assert listed[account_id].status == "disconnected"


def test_sensor_plan_leaves_environment_partitions(db: psycopg.Connection):
    plan = plan_tick(db, existing_partitions=["acct_environment_only"], cursor=0)

    assert "acct_environment_only" not in plan.partitions_to_delete
    assert "acct_environment_only" not in plan.partitions_to_add


def test_reconnect_replaces_own_endpoint(
    connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    _connect_by_key(db, connect_env, account_id)
    first, = connect_env.state.endpoints

    _connect_by_key(db, connect_env, account_id)

    second = connect_env.state.endpoints[-1]
    assert second["id"] != first["id"]
    assert connect_env.state.deleted_endpoints == [first["id"]]
    assert dict(endpoint_secrets(db))[account_id] == second["secret"]


def test_revoke_deletes_own_endpoint(
    connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    _connect_by_key(db, connect_env, account_id)
    endpoint, = connect_env.state.endpoints

    warnings = flow.revoke_at_stripe(
        db, connect_settings(require_oauth=False), TokenCipher.from_env(), account_id
    )

    assert warnings == []
    assert connect_env.state.deleted_endpoints == [endpoint["id"]]
    assert connect_env.state.deauthorized == []


def test_failed_registration_keeps_connection(
    connect_env: StripeStandin, db: psycopg.Connection, account_id: str
):
    # The stand-in has no such key, so it rejects it.
    result = flow.connect_with_api_key(
        db,
        connect_settings(require_oauth=False),
        TokenCipher.from_env(),
        workspace_id=f"ws_{account_id[-6:]}",
        api_key="sk_test_unknown_to_standin",
        account_id=account_id,
    )

    assert result.webhook_endpoint_id is None
    assert result.webhook_error is not None
    assert result.webhook_error == (
        "webhook endpoint registration failed: Stripe rejected the stored key "
        f"for `{account_id}`; check it and connect the account again"
    )
    row = db.execute(
        "select status, webhook_error from halo.stripe_connections where account_id = %s",
        (account_id,),
    ).fetchone()
    assert row == ("connected", result.webhook_error)
    listed = {summary.account_id: summary for summary in list_accounts(db)}
    assert listed[account_id].webhook_error == result.webhook_error


def test_disconnected_environment_account_listed(db: psycopg.Connection):
    account_id = f"acct_{secrets.token_hex(8)}"
    db.execute(
        "insert into halo.integration_settings (account_id, workspace_id)"
        " values (%s, %s)",
        (account_id, f"ws_{account_id[-6:]}"),
    )

    disconnect_account(db, account_id)

    listed = {summary.account_id: summary for summary in list_accounts(db)}
    assert listed[account_id].connection_type == "environment"
    assert listed[account_id].status == "disconnected"
    assert listed[account_id].ingest_enabled is False
