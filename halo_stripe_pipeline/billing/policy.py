"""Who may submit, who reviews, and what is approved without a person.

Agents need `billing.agents.billing_enabled`. Each account may name a default
action agent and a default approver. Thresholds per account and type set the
amount below which a request is approved at submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from halo_stripe_pipeline.billing.models import (
    APPLY_CREDIT,
    EXTEND_TRIAL,
    REFUND,
    REQUEST_TYPES,
    ValidationError,
)
from halo_stripe_pipeline.billing.validation import ValidRequest
from halo_stripe_pipeline.money import (
    InvalidAmount,
    normalize_currency,
    parse_major_amount,
)

DAYS_UNIT = "days"
# Types whose size is a money amount; extend_trial is sized in days.
# Cancellations always wait for a person, even with a small refund.
AMOUNT_TYPES = (REFUND, APPLY_CREDIT)


@dataclass(frozen=True)
class Agent:
    agent_id: str
    billing_enabled: bool
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class AccountSettings:
    account_id: str
    default_action_agent: str | None
    default_approver: str | None


@dataclass(frozen=True)
class Threshold:
    account_id: str
    request_type: str
    unit: str
    below_amount: int


def list_agents(conn: psycopg.Connection) -> list[Agent]:
    rows = conn.execute(
        "select agent_id, billing_enabled, updated_by, updated_at from billing.agents order by agent_id"
    ).fetchall()
    return [Agent(*row) for row in rows]


def set_agent_enabled(
    conn: psycopg.Connection, agent_id: str, enabled: bool, *, changed_by: str
) -> Agent:
    """Enable or disable billing requests for `agent_id`, adding the agent if new."""
    agent_id = agent_id.strip()
    if not agent_id:
        raise ValidationError("agent id must not be empty")
    row = conn.execute(
        """
        insert into billing.agents (agent_id, billing_enabled, updated_by, updated_at)
        values (%s, %s, %s, now())
        on conflict (agent_id) do update set
            billing_enabled = excluded.billing_enabled,
            updated_by = excluded.updated_by,
            updated_at = excluded.updated_at
        returning agent_id, billing_enabled, updated_by, updated_at
        """,
        (agent_id, enabled, changed_by),
    ).fetchone()
    assert row is not None
    return Agent(*row)


def get_account_settings(conn: psycopg.Connection, account_id: str) -> AccountSettings:
    row = conn.execute(
        "select account_id, default_action_agent, default_approver"
        " from billing.account_settings where account_id = %s",
        (account_id,),
    ).fetchone()
    if row is None:
        return AccountSettings(account_id, None, None)
    return AccountSettings(*row)


_UNSET = object()


def update_account_settings(
    conn: psycopg.Connection,
    account_id: str,
    *,
    default_action_agent: str | None | object = _UNSET,
    default_approver: str | None | object = _UNSET,
) -> AccountSettings:
    """Change the given settings of `account_id`; an empty string clears one."""
    current = get_account_settings(conn, account_id)
    agent = (
        current.default_action_agent
        if default_action_agent is _UNSET
        else default_action_agent
    )
    approver = (
        current.default_approver if default_approver is _UNSET else default_approver
    )
    conn.execute(
        """
        insert into billing.account_settings
            (account_id, default_action_agent, default_approver, updated_at)
        values (%s, %s, %s, now())
        on conflict (account_id) do update set
            default_action_agent = excluded.default_action_agent,
            default_approver = excluded.default_approver,
            updated_at = excluded.updated_at
        """,
        (account_id, agent or None, approver or None),
    )
    return get_account_settings(conn, account_id)


def parse_threshold(
    request_type: str, below: str, currency: str | None
) -> tuple[str, int]:
    """Return (unit, amount) of a threshold typed as `20.00` with a currency, or days."""
    if request_type not in REQUEST_TYPES:
        raise ValidationError(
            f"invalid request type `{request_type}`: expected one of {', '.join(REQUEST_TYPES)}"
        )
    if request_type == EXTEND_TRIAL:
        if currency:
            raise ValidationError(
                "an extend_trial threshold is in days; drop --currency"
            )
        try:
            days = int(below)
        except ValueError:
            raise ValidationError(
                f"invalid threshold `{below}`: expected a whole number of days"
            ) from None
        if days < 0:
            raise ValidationError(f"invalid threshold `{below}`: must not be negative")
        return DAYS_UNIT, days
    if request_type not in AMOUNT_TYPES:
        raise ValidationError(
            f"{request_type} requests always need a person's approval"
        )
    if not currency:
        raise ValidationError(f"a {request_type} threshold needs --currency")
    try:
        unit = normalize_currency(currency)
        return unit, parse_major_amount(below, unit)
    except InvalidAmount as error:
        raise ValidationError(str(error)) from None


def set_threshold(
    conn: psycopg.Connection,
    account_id: str,
    request_type: str,
    unit: str,
    below_amount: int,
) -> None:
    conn.execute(
        """
        insert into billing.approval_thresholds (account_id, request_type, unit, below_amount, updated_at)
        values (%s, %s, %s, %s, now())
        on conflict (account_id, request_type, unit) do update set
            below_amount = excluded.below_amount, updated_at = excluded.updated_at
        """,
        (account_id, request_type, unit, below_amount),
    )


def remove_threshold(
    conn: psycopg.Connection, account_id: str, request_type: str, unit: str
) -> bool:
    cursor = conn.execute(
        "delete from billing.approval_thresholds where account_id = %s and request_type = %s and unit = %s",
        (account_id, request_type, unit),
    )
    return cursor.rowcount > 0


def list_thresholds(
    conn: psycopg.Connection, account_id: str | None = None
) -> list[Threshold]:
    rows = conn.execute(
        """
        select account_id, request_type, unit, below_amount from billing.approval_thresholds
        where %(account)s::text is null or account_id = %(account)s
        order by account_id, request_type, unit
        """,
        {"account": account_id},
    ).fetchall()
    return [Threshold(*row) for row in rows]


def size_of(request: ValidRequest) -> tuple[str, int] | None:
    """Return the (unit, amount) a threshold compares, or None for a sizeless request.

    Cancellations have no size here, so they always wait for a person.
    """
    if request.request_type == EXTEND_TRIAL and request.days is not None:
        return DAYS_UNIT, request.days
    if (
        request.request_type in AMOUNT_TYPES
        and request.amount_minor is not None
        and request.currency
    ):
        return request.currency, request.amount_minor
    return None


def auto_approval_threshold(
    conn: psycopg.Connection, request: ValidRequest
) -> Threshold | None:
    """Return the threshold that approves `request` automatically, if any."""
    size = size_of(request)
    if size is None:
        return None
    unit, amount = size
    row = conn.execute(
        "select account_id, request_type, unit, below_amount from billing.approval_thresholds"
        " where account_id = %s and request_type = %s and unit = %s",
        (request.account_id, request.request_type, unit),
    ).fetchone()
    if row is None:
        return None
    threshold = Threshold(*row)
    return threshold if amount < threshold.below_amount else None
