"""The `catch-up`, `events`, `notifications` and `serve` commands."""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import psycopg
import pytest

from halo_stripe_pipeline.cli import main
from halo_stripe_pipeline.emulator import EmulatorProcess
from halo_stripe_pipeline.events.commands import parse_instant
from halo_stripe_pipeline.stripe_client import StripeApi


def test_parse_instant_accepts_iso_and_unix() -> None:
    expected = datetime(2026, 1, 31, tzinfo=timezone.utc)

    assert parse_instant("2026-01-31T00:00:00Z") == expected
    assert parse_instant("2026-01-31T00:00:00") == expected
    assert parse_instant(str(int(expected.timestamp()))) == expected


def test_parse_instant_rejects_text() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid instant `yesterday`"):
        parse_instant("yesterday")


def test_notifications_switch(
    db: psycopg.Connection,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)

    assert main(["notifications", "enable"]) == 0
    assert main(["notifications", "status"]) == 0
    assert main(["notifications", "disable"]) == 0

    output = capsys.readouterr().out
    assert "stripe_event notifications enabled" in output
    assert "Slack is not configured: set SLACK_WEBHOOK_URL" in output
    assert "stripe_event: enabled" in output
    assert "stripe_event notifications disabled" in output


def test_catch_up_command_stores_events(
    db: psycopg.Connection,
    account: str,
    emulator_env: EmulatorProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = StripeApi(
        api_key="sk_test_halo", api_base=emulator_env.api_base, requests_per_second=1000
    )
    api.post("/v1/customers", {"email": "cli@example.com"})
    since = str(int(time.time()) - 60)

    code = main(["catch-up", "--account", account, "--since", since, "--no-apply"])

    output = capsys.readouterr().out
    assert code == 0
    assert f"{account}: 1 events listed since" in output
    assert "1 missing and stored" in output
    assert main(["events", "status"]) == 0
    assert "pending" in capsys.readouterr().out


def test_catch_up_without_start_fails_cleanly(
    db: psycopg.Connection,
    account: str,
    emulator_env: EmulatorProcess,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["catch-up", "--account", account, "--no-apply"])

    assert code == 2
    assert "no applied event for account" in capsys.readouterr().err


def test_serve_rejects_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--workers", "0"]) == 2
    assert "--workers 0 is invalid" in capsys.readouterr().err


def test_events_status_reports_held_events(
    db: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    account = "acct_status_held"
    db.execute(
        "insert into halo.integration_settings (account_id, workspace_id, ingest_enabled)"
        " values (%s, 'ws_status_held', false)",
        (account,),
    )
    db.execute(
        "insert into stripe_raw.webhook_events"
        " (id, account_id, type, created_at, payload, source, status)"
        " values ('evt_status_held', %s, 'customer.created', now(),"
        " '{\"id\": \"evt_status_held\"}', 'webhook', 'pending')",
        (account,),
    )
    try:
        assert main(["events", "status"]) == 0
        output = capsys.readouterr().out
    finally:
        db.execute("delete from stripe_raw.webhook_events where id = 'evt_status_held'")
        db.execute("delete from halo.integration_settings where account_id = %s", (account,))

    assert "1 pending events wait because ingest is off" in output
