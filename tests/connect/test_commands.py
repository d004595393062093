"""`halo-stripe accounts` run in-process against the session warehouse."""

from __future__ import annotations

import base64
import logging
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from halo_stripe_pipeline.cli import main
from halo_stripe_pipeline.connect.partitions import PARTITIONS_NAME
from halo_stripe_pipeline.instance import get_instance
from tests.connect.stripe_standin import StripeStandin


def test_generate_key_prints_valid_key(capsys: pytest.CaptureFixture[str]):
    assert main(["accounts", "generate-key"]) == 0

    key = capsys.readouterr().out.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32


def test_connect_prints_oauth_link(
    connect_env: StripeStandin, capsys: pytest.CaptureFixture[str]
):
    assert main(["accounts", "connect", "--workspace", "ws_cli_link"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Open this link within 10 minutes to connect workspace ws_cli_link:"
    link = urlsplit(lines[1])
    assert f"{link.scheme}://{link.netloc}{link.path}" == (
        f"{connect_env.base_url}/oauth/authorize"
    )
    assert parse_qs(link.query)["state"][0]


def test_connect_without_key_fails_cleanly(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.delenv("HALO_ENCRYPTION_KEY", raising=False)

    assert main(["accounts", "connect", "--workspace", "ws_cli_nokey"]) == 2

    error = capsys.readouterr().err
    assert error.startswith("halo-stripe: HALO_ENCRYPTION_KEY is not set")


def test_connect_list_disconnect_by_api_key(
    warehouse_url: str,
    encryption_key: str,
    account_id: str,
    db: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ACME_STRIPE_KEY", "sk_test_acme_cli_0123456789")
    workspace = f"ws_{account_id[-6:]}"

    status = main(
        [
            "accounts", "connect", "--workspace", workspace,
            "--api-key-env", "ACME_STRIPE_KEY", "--account-id", account_id,
            "--api-base", "http://127.0.0.1:9", "--no-webhook",
        ]
    )

    assert status == 0
    output = capsys.readouterr().out
    assert output.startswith(f"connected {account_id} to workspace {workspace}")
    assert "sk_test_acme_cli_0123456789" not in output
    instance = get_instance()
    assert instance.has_dynamic_partition(PARTITIONS_NAME, account_id)

    assert main(["accounts", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == [
        "ACCOUNT", "WORKSPACE", "STATUS", "TYPE", "INGEST", "WEBHOOK", "LAST", "SYNC", "REQUEST"
    ]
    row = next(line for line in listing if line.startswith(account_id))
    assert row.split()[:6] == [account_id, workspace, "connected", "api_key", "on", "-"]
    assert row.split()[6].startswith("pending")

    assert main(["accounts", "disconnect", account_id]) == 0
    assert capsys.readouterr().out.strip() == f"disconnected {account_id}; its data is kept"
    assert not instance.has_dynamic_partition(PARTITIONS_NAME, account_id)
    stored = db.execute(
        "select status, access_token_encrypted from halo.stripe_connections"
        " where account_id = %s",
        (account_id,),
    ).fetchone()
    assert stored == ("disconnected", None)
    assert "sk_test_acme_cli_0123456789" not in caplog.text
    assert encryption_key not in caplog.text


def test_disconnect_revokes_oauth_account(
    connect_env: StripeStandin,
    account_id: str,
    db: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from tests.connect.test_accounts import _connect_by_oauth
    from webhook_receiver.connect_routes import routes

    app = Starlette(routes=routes)
    with TestClient(app, follow_redirects=False) as client:
        _connect_by_oauth(client, f"ws_{account_id[-6:]}")
    endpoint_id = connect_env.state.endpoints[-1]["id"]

    assert main(["accounts", "disconnect", account_id, "--purge"]) == 0

    assert capsys.readouterr().out.strip() == f"disconnected {account_id}; its data was deleted"
    # The Connect endpoint is the platform's and other accounts still use it.
    assert connect_env.state.deleted_endpoints == []
    assert connect_env.state.endpoints[-1]["id"] == endpoint_id
    assert connect_env.state.deauthorized == [account_id]


def test_disconnect_unknown_account_fails(
    warehouse_url: str, capsys: pytest.CaptureFixture[str]
):
    assert main(["accounts", "disconnect", "acct_never_seen"]) == 2

    assert capsys.readouterr().err.strip() == (
        "halo-stripe: Stripe account `acct_never_seen` not found"
    )


def test_connect_without_public_url_warns(
    warehouse_url: str,
    encryption_key: str,
    account_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.delenv("HALO_PUBLIC_URL", raising=False)
    monkeypatch.setenv("ACME_STRIPE_KEY", "sk_test_acme_cli_0123456789")

    status = main(
        [
            "accounts", "connect", "--workspace", f"ws_{account_id[-6:]}",
            "--api-key-env", "ACME_STRIPE_KEY", "--account-id", account_id,
            "--api-base", "http://127.0.0.1:9",
        ]
    )

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"connected {account_id}")
    assert lines[1].startswith(
        "warning: webhook endpoint registration failed: HALO_PUBLIC_URL is not set"
    )
