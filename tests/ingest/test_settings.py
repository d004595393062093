"""Integration settings: the registry, `settings show` and `settings set`."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from halo_stripe_pipeline.cli import main
from halo_stripe_pipeline.settings import SettingError, get_settings, parse_setting, set_setting


@pytest.fixture
def account_id() -> str:
    return f"acct_settings{uuid.uuid4().hex[:8]}"


def test_defaults_without_row(db: psycopg.Connection, account_id: str) -> None:
    values = get_settings(db, account_id)

    assert values["customer_id_field"] == "email"
    assert values["mrr_mode"] == "stripe_subscription"
    assert values["health_statuses"] == ["active"]
    assert values["display_fields"] == []
    assert values["reporting_currency"] == "usd"
    assert values["ingest_enabled"] is True
    assert values["workspace_id"] == "default"
    stored = db.execute(
        "select count(*) from halo.integration_settings where account_id = %s", (account_id,)
    ).fetchone()
    assert stored == (0,)


def test_set_stores_parsed_values(db: psycopg.Connection, account_id: str) -> None:
    set_setting(db, account_id, "display_fields", "metadata.tier, email")
    set_setting(db, account_id, "health_statuses", "active,trialing")
    set_setting(db, account_id, "customer_id_field", "traits.billing_email")
    set_setting(db, account_id, "reporting_currency", "EUR")
    set_setting(db, account_id, "ingest_enabled", "false")

    values = get_settings(db, account_id)

    assert values["display_fields"] == ["metadata.tier", "email"]
    assert values["health_statuses"] == ["active", "trialing"]
    assert values["customer_id_field"] == "traits.billing_email"
    assert values["reporting_currency"] == "eur"
    assert values["ingest_enabled"] is False


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("mrr_mode", "arr", "stripe_subscription, previous_month_charges, manual"),
        ("customer_id_field", "phone", "traits.<name>"),
        ("customer_id_field", "traits.bad-name", "traits.<name>"),
        ("display_fields", "metadata..tier", "dotted paths"),
        ("health_statuses", "active,happy", "past_due"),
        ("health_statuses", " , ", "past_due"),
        ("reporting_currency", "dollars", "ISO 4217"),
        ("reporting_currency", "xyz", "ISO 4217"),
        ("ingest_enabled", "maybe", "true, false"),
    ],
)
def test_invalid_value_lists_allowed(key: str, value: str, allowed: str) -> None:
    with pytest.raises(SettingError) as rejected:
        parse_setting(key, value)

    assert "allowed:" in str(rejected.value)
    assert allowed in str(rejected.value)


def test_unknown_key_lists_keys() -> None:
    with pytest.raises(SettingError, match="unknown setting `colour`; expected one of"):
        parse_setting("colour", "blue")


def test_cli_set_then_show(
    warehouse_url: str, account_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["settings", "set", "mrr_mode", "manual", "--account", account_id]) == 0
    assert main(["settings", "set", "display_fields", "metadata.tier", "--account", account_id]) == 0
    capsys.readouterr()

    assert main(["settings", "show", "--account", account_id]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert f"account_id = {account_id}" in lines
    assert "mrr_mode = manual" in lines
    assert "display_fields = metadata.tier" in lines
    assert "health_statuses = active" in lines


def test_cli_rejects_unknown_key(
    warehouse_url: str, account_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["settings", "set", "colour", "blue", "--account", account_id])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert len(error.splitlines()) == 1
    assert "unknown setting `colour`" in error
    assert "mrr_mode" in error


def test_cli_rejects_bad_value(
    warehouse_url: str, account_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exit_code = main(["settings", "set", "mrr_mode", "arr", "--account", account_id])

    error = capsys.readouterr().err.strip()
    assert exit_code != 0
    assert error == (
        "halo-stripe: invalid mrr_mode `arr`; allowed: "
        "stripe_subscription, previous_month_charges, manual"
    )


def test_sync_workspace_differing_from_stored_rejected(
    db: psycopg.Connection, account_id: str
) -> None:
    from halo_stripe_pipeline.config import ConfigError
    from halo_stripe_pipeline.ingest.sync import prepare_account

    prepare_account(db, account_id, "acme")
    prepare_account(db, account_id, "acme")
    prepare_account(db, account_id)

    with pytest.raises(ConfigError, match="already belongs to workspace `acme`"):
        prepare_account(db, account_id, "globex")
    assert get_settings(db, account_id)["workspace_id"] == "acme"
