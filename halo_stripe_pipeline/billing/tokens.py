"""API tokens of the billing API: created once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from halo_stripe_pipeline.billing.models import ValidationError

AGENT = "agent"
APPROVER = "approver"
ROLES = (AGENT, APPROVER)
TOKEN_PREFIX = "hsb_"


@dataclass(frozen=True)
class TokenOwner:
    """The identity behind a token: an agent, or the approver of one account."""

    name: str
    role: str
    account_id: str | None
    token_sha256: str


@dataclass(frozen=True)
class TokenInfo:
    name: str
    role: str
    account_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    fingerprint: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: psycopg.Connection, *, name: str, role: str, account_id: str | None
) -> str:
    """Store a new token and return it; only its hash is kept."""
    name = name.strip()
    if not name:
        raise ValidationError("--name is required: the agent id or approver name")
    if role not in ROLES:
        raise ValidationError(f"invalid role `{role}`: expected agent or approver")
    if role == APPROVER and not account_id:
        raise ValidationError(
            "an approver token needs --account: approvers act on one account"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "insert into billing.api_tokens (token_sha256, name, role, account_id) values (%s, %s, %s, %s)",
        (hash_token(token), name, role, account_id),
    )
    return token


def authenticate(conn: psycopg.Connection, token: str) -> TokenOwner | None:
    """Return the owner of an unrevoked token, or None."""
    if not token:
        return None
    digest = hash_token(token)
    row = conn.execute(
        "select name, role, account_id from billing.api_tokens"
        " where token_sha256 = %s and revoked_at is null",
        (digest,),
    ).fetchone()
    if row is None:
        return None
    return TokenOwner(name=row[0], role=row[1], account_id=row[2], token_sha256=digest)


def list_tokens(conn: psycopg.Connection) -> list[TokenInfo]:
    rows = conn.execute(
        "select name, role, account_id, created_at, revoked_at, left(token_sha256, 12)"
        " from billing.api_tokens order by created_at, name"
    ).fetchall()
    return [TokenInfo(*row) for row in rows]


def revoke_token(conn: psycopg.Connection, fingerprint: str) -> int:
    """Revoke the tokens whose SHA-256 starts with `fingerprint` (12 hex digits shown by list)."""
    if len(fingerprint) < 8:
        raise ValidationError("give at least 8 hex digits of the token fingerprint")
    cursor = conn.execute(
        "update billing.api_tokens set revoked_at = now()"
        " where token_sha256 like %s and revoked_at is null",
        (fingerprint.lower() + "%",),
    )
    return cursor.rowcount
