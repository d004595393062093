"""Integration settings: one `halo.integration_settings` row per Stripe account.

`SETTINGS` is the registry of keys: each entry names its column, parses and
validates the text a user types, and renders the stored value. Adding a key
is one entry here plus a column in a DDL file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

DEFAULT_WORKSPACE = "default"
# A row inserted and rolled back to read the column defaults.
_DEFAULTS_PROBE_ACCOUNT = "acct_defaults_probe"

MRR_MODES = ("stripe_subscription", "previous_month_charges", "manual")
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
# The company field matched against a Stripe customer. `email` is compared
# with the customer's email and `name` with the customer's name, both
# case-insensitive. `domain` is compared with the domain of that email.
# `id`, `stripe_customer_id` and a `traits.<name>` path are compared with
# the customer's ID.
CUSTOMER_ID_FIELDS = ("email", "domain", "stripe_customer_id", "id", "name", "traits.<name>")

_TRAIT_PATH = re.compile(r"^traits\.[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_CURRENCY = re.compile(r"^[a-z]{3}$")


class SettingError(ValueError):
    """A settings key or value was rejected; the message lists what is allowed."""


@dataclass(frozen=True)
class Setting:
    """One settings key: its column, parser and how `settings show` prints it."""

    column: str
    parse: Callable[[str], Any]
    allowed: str
    render: Callable[[Any], str] = str
    json: bool = False


def _parse_customer_id_field(text: str) -> str:
    value = text.strip()
    if value in CUSTOMER_ID_FIELDS[:-1] or _TRAIT_PATH.match(value):
        return value
    raise SettingError(f"invalid customer_id_field `{text}`")


def _parse_choice(choices: tuple[str, ...], key: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in choices:
            raise SettingError(f"invalid {key} `{text}`")
        return value

    return parse


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _parse_display_fields(text: str) -> list[str]:
    fields = _split_list(text)
    bad = [field for field in fields if not _DOTTED_PATH.match(field)]
    if bad:
        raise SettingError(f"invalid display_fields path `{bad[0]}`")
    return fields


def _parse_health_statuses(text: str) -> list[str]:
    statuses = _split_list(text)
    if not statuses:
        raise SettingError("invalid health_statuses: the list is empty")
    bad = [status for status in statuses if status not in SUBSCRIPTION_STATUSES]
    if bad:
        raise SettingError(f"invalid health_statuses status `{bad[0]}`")
    return statuses


def _parse_currency(text: str) -> str:
    from babel.numbers import list_currencies

    value = text.strip().lower()
    if not _CURRENCY.match(value) or value.upper() not in list_currencies():
        raise SettingError(f"invalid reporting_currency `{text}`")
    return value


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"true", "yes", "on", "1"}:
        return True
    if value in {"false", "no", "off", "0"}:
        return False
    raise SettingError(f"invalid ingest_enabled `{text}`")


def _render_list(value: Any) -> str:
    return ",".join(value or [])


def _render_bool(value: Any) -> str:
    return "true" if value else "false"


SETTINGS: dict[str, Setting] = {
    "customer_id_field": Setting(
        "customer_id_field", _parse_customer_id_field, ", ".join(CUSTOMER_ID_FIELDS)
    ),
    "mrr_mode": Setting("mrr_mode", _parse_choice(MRR_MODES, "mrr_mode"), ", ".join(MRR_MODES)),
    "display_fields": Setting(
        "display_fields",
        _parse_display_fields,
        "comma-separated dotted paths such as metadata.tier,email",
        _render_list,
        json=True,
    ),
    "health_statuses": Setting(
        "health_statuses",
        _parse_health_statuses,
        "comma-separated subscription statuses: " + ", ".join(SUBSCRIPTION_STATUSES),
        _render_list,
        json=True,
    ),
    "reporting_currency": Setting(
        "reporting_currency",
        _parse_currency,
        "an ISO 4217 currency code (as listed by CLDR) such as usd",
    ),
    "ingest_enabled": Setting("ingest_enabled", _parse_bool, "true, false", _render_bool),
    "workspace_id": Setting(
        "workspace_id",
        lambda text: _non_empty(text, "workspace_id"),
        "the Halo workspace this account belongs to (any non-empty text)",
    ),
}


def _non_empty(text: str, key: str) -> str:
    value = text.strip()
    if not value:
        raise SettingError(f"invalid {key}: empty value")
    return value


def parse_setting(key: str, text: str) -> Any:
    """Validate `text` for `key`; raise SettingError listing the allowed values."""
    setting = SETTINGS.get(key)
    if setting is None:
        raise SettingError(f"unknown setting `{key}`; expected one of {', '.join(SETTINGS)}")
    try:
        return setting.parse(text)
    except SettingError as error:
        raise SettingError(f"{error}; allowed: {setting.allowed}") from None


def ensure_settings_row(
    conn: psycopg.Connection, account_id: str, workspace_id: str | None = None
) -> bool:
    """Create the account's settings row with defaults; return True if it was new."""
    cursor = conn.execute(
        "insert into halo.integration_settings (account_id, workspace_id) values (%s, %s)"
        " on conflict (account_id) do nothing",
        (account_id, workspace_id or DEFAULT_WORKSPACE),
    )
    return cursor.rowcount == 1


def get_settings(conn: psycopg.Connection, account_id: str) -> dict[str, Any]:
    """Return every setting of `account_id`, defaults included when no row exists."""
    columns = sql.SQL(", ").join(sql.Identifier(s.column) for s in SETTINGS.values())
    query = sql.SQL("select {columns} from halo.integration_settings where account_id = %s")
    row = conn.execute(query.format(columns=columns), (account_id,)).fetchone()
    if row is None:
        row = _default_row(conn)
    values = row.values() if isinstance(row, dict) else row
    return dict(zip(SETTINGS, values))


def _default_row(conn: psycopg.Connection) -> tuple[Any, ...]:
    """Read the column defaults from the table definition, so they live in one place."""
    columns = sql.SQL(", ").join(sql.Identifier(s.column) for s in SETTINGS.values())
    query = sql.SQL("select {columns} from halo.integration_settings where account_id = %s")
    with conn.transaction(force_rollback=True):
        ensure_settings_row(conn, _DEFAULTS_PROBE_ACCOUNT)
        row = conn.execute(query.format(columns=columns), (_DEFAULTS_PROBE_ACCOUNT,)).fetchone()
    assert row is not None
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def set_setting(
    conn: psycopg.Connection, account_id: str, key: str, text: str
) -> Any:
    """Validate and store one setting for `account_id`; return the stored value."""
    value = parse_setting(key, text)
    setting = SETTINGS[key]
    with conn.transaction():
        ensure_settings_row(conn, account_id)
        conn.execute(
            sql.SQL(
                "update halo.integration_settings set {column} = %s, updated_at = now()"
                " where account_id = %s"
            ).format(column=sql.Identifier(setting.column)),
            (Jsonb(value) if setting.json else value, account_id),
        )
    return value


def render_settings(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (key, text) pairs as `settings show` prints them."""
    return [(key, SETTINGS[key].render(values[key])) for key in SETTINGS if key in values]
