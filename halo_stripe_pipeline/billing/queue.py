"""The request queue: submission, guarded status changes and their audit trail.

Every change is one `update ... where id = %s and status = any(...)` in the
same transaction as its audit row. PostgreSQL re-checks the `where` clause
after waiting for a concurrent writer's row lock, so when two approvers act
at once exactly one update matches and the other gets `InvalidTransition`.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from halo_stripe_pipeline.billing import policy
from halo_stripe_pipeline.billing.models import (
    APPROVED,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    REJECTED,
    STATUSES,
    TRANSITIONS,
    BillingRequest,
    InvalidTransition,
    NotFoundError,
    Submission,
    ValidationError,
)
from halo_stripe_pipeline.billing.validation import ValidRequest, validate

log = logging.getLogger(__name__)

AUTO_APPROVER = "auto-approval"


def _dict_cursor(conn: psycopg.Connection) -> psycopg.Cursor[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row)


def record_event(
    conn: psycopg.Connection,
    request_id: int,
    from_status: str | None,
    to_status: str,
    actor: str,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        """
        insert into billing.request_events (request_id, from_status, to_status, actor, note, details)
        values (%s, %s, %s, %s, %s, %s)
        """,
        (request_id, from_status, to_status, actor, note, Jsonb(details or {})),
    )


def submit(conn: psycopg.Connection, submission: Submission) -> BillingRequest:
    """Validate and store a request; approve it at once when a threshold allows.

    Raises `ValidationError` naming the field and the fix.
    """
    valid = validate(conn, submission)
    with conn.transaction():
        request_id = _insert(conn, valid)
        threshold = policy.auto_approval_threshold(conn, valid)
        if threshold is not None:
            transition(
                conn,
                request_id,
                to_status=APPROVED,
                actor=AUTO_APPROVER,
                note=(
                    f"below the {threshold.request_type} threshold of "
                    f"{threshold.below_amount} {threshold.unit}"
                ),
                auto_approved=True,
            )
    request = get_request(conn, request_id)
    log.info(
        "billing request %d submitted: type=%s account=%s customer=%s status=%s by=%s",
        request.id,
        request.request_type,
        request.account_id,
        request.customer_id,
        request.status,
        request.requested_by,
    )
    return request


def _insert(conn: psycopg.Connection, valid: ValidRequest) -> int:
    settings = policy.get_account_settings(conn, valid.account_id)
    try:
        with conn.transaction():
            row = conn.execute(
                """
                insert into billing.requests (
                    request_type, account_id, company_id, customer_id, charge_id,
                    subscription_id, amount_minor, currency, days, reason, summary,
                    requested_by, assigned_to
                ) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                returning id
                """,
                (
                    valid.request_type,
                    valid.account_id,
                    valid.company_id,
                    valid.customer_id,
                    valid.charge_id,
                    valid.subscription_id,
                    valid.amount_minor,
                    valid.currency,
                    valid.days,
                    valid.reason,
                    valid.summary,
                    valid.requested_by,
                    settings.default_approver,
                ),
            ).fetchone()
    except errors.UniqueViolation:
        existing = _open_request_for(conn, valid)
        raise ValidationError(
            f"request {existing} is already open for {valid.request_type} of "
            f"`{valid.target_object}`; wait for its decision or reject it first"
        ) from None
    assert row is not None
    request_id = int(row[0])
    record_event(
        conn,
        request_id,
        None,
        PENDING,
        valid.requested_by,
        valid.reason,
        {
            "assigned_to": settings.default_approver,
            "default_action_agent": settings.default_action_agent,
        },
    )
    return request_id


def _open_request_for(conn: psycopg.Connection, valid: ValidRequest) -> int | None:
    row = conn.execute(
        """
        select id from billing.requests
        where account_id = %s and request_type = %s
          and coalesce(subscription_id, charge_id, customer_id) = %s
          and status = any(%s)
        """,
        (
            valid.account_id,
            valid.request_type,
            valid.target_object,
            list(OPEN_STATUSES),
        ),
    ).fetchone()
    return int(row[0]) if row else None


def transition(
    conn: psycopg.Connection,
    request_id: int,
    *,
    to_status: str,
    actor: str,
    note: str | None = None,
    from_statuses: tuple[str, ...] | None = None,
    auto_approved: bool = False,
    details: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    bump_generation: bool = False,
) -> BillingRequest:
    """Move a request to `to_status` if its current status allows it.

    `changes` sets further columns in the same update. Raises
    `InvalidTransition` when another actor changed the status first, and
    `NotFoundError` for an unknown id.
    """
    allowed_from = from_statuses or tuple(
        status for status, targets in TRANSITIONS.items() if to_status in targets
    )
    assignments = ["status = %(to)s", "updated_at = now()"]
    params: dict[str, Any] = {
        "to": to_status,
        "id": request_id,
        "from": list(allowed_from),
    }
    if to_status in (APPROVED, REJECTED) and PENDING in allowed_from:
        assignments += [
            "decided_by = %(actor)s",
            "decision_note = %(note)s",
            "decided_at = now()",
        ]
        assignments.append("is_auto_approved = %(auto)s")
        params.update(actor=actor, note=note, auto=auto_approved)
    if bump_generation:
        assignments.append("execution_generation = r.execution_generation + 1")
    for index, (column, value) in enumerate((changes or {}).items()):
        assignments.append(f"{column} = %(change_{index})s")
        params[f"change_{index}"] = (
            Jsonb(value) if isinstance(value, (dict, list)) else value
        )
    with conn.transaction():
        row = conn.execute(
            "with previous as ("
            " select id, status from billing.requests where id = %(id)s for update"
            ") update billing.requests r set "
            + ", ".join(assignments)
            + " from previous where r.id = previous.id and previous.status = any(%(from)s)"
            " returning previous.status",
            params,
        ).fetchone()
        if row is None:
            current = conn.execute(
                "select status, decided_by from billing.requests where id = %s",
                (request_id,),
            ).fetchone()
            if current is None:
                raise NotFoundError(f"billing request {request_id} not found")
            by = (
                f" by {current[1]}"
                if current[1] and current[0] in (APPROVED, REJECTED)
                else ""
            )
            raise InvalidTransition(
                f"billing request {request_id} is {current[0]}{by}; "
                f"it cannot become {to_status}"
            )
        record_event(conn, request_id, row[0], to_status, actor, note, details)
    return get_request(conn, request_id)


def approve(
    conn: psycopg.Connection, request_id: int, *, by: str, note: str | None = None
) -> BillingRequest:
    """Approve a pending request; raises `InvalidTransition` if it was decided already."""
    if not by.strip():
        raise ValidationError("--by is required: name who approves")
    return transition(
        conn,
        request_id,
        to_status=APPROVED,
        actor=by.strip(),
        note=note,
        from_statuses=(PENDING,),
    )


def reject(
    conn: psycopg.Connection, request_id: int, *, by: str, note: str
) -> BillingRequest:
    """Reject a pending request; a rejection needs a note saying why."""
    if not by.strip():
        raise ValidationError("--by is required: name who rejects")
    if not (note or "").strip():
        raise ValidationError("--note is required when rejecting: say why")
    return transition(
        conn,
        request_id,
        to_status=REJECTED,
        actor=by.strip(),
        note=note.strip(),
        from_statuses=(PENDING,),
    )


def retry(
    conn: psycopg.Connection, request_id: int, *, by: str, note: str | None = None
) -> BillingRequest:
    """Send a failed request back to `approved` under a new execution generation.

    The new generation gives its Stripe calls new idempotency keys, because
    Stripe replays a stored error for a reused key.
    """
    if not by.strip():
        raise ValidationError("--by is required: name who retries the request")
    try:
        return transition(
            conn,
            request_id,
            to_status=APPROVED,
            actor=by.strip(),
            note=note or "retry after failure",
            from_statuses=(FAILED,),
            changes={"error": None},
            bump_generation=True,
            details={"retry": True},
        )
    except errors.UniqueViolation:
        raise InvalidTransition(
            f"billing request {request_id} cannot be retried: another request for the "
            "same object is open"
        ) from None


def get_request(
    conn: psycopg.Connection, request_id: int, *, with_events: bool = False
) -> BillingRequest:
    row = (
        _dict_cursor(conn)
        .execute("select * from billing.requests where id = %s", (request_id,))
        .fetchone()
    )
    if row is None:
        raise NotFoundError(f"billing request {request_id} not found")
    request = BillingRequest.from_row(row)
    if with_events:
        request.events = list_events(conn, request_id)
    return request


def list_events(conn: psycopg.Connection, request_id: int) -> list[dict[str, Any]]:
    rows = (
        _dict_cursor(conn)
        .execute(
            "select from_status, to_status, actor, note, details, created_at"
            " from billing.request_events where request_id = %s order by id",
            (request_id,),
        )
        .fetchall()
    )
    return list(rows)


def list_requests(
    conn: psycopg.Connection,
    *,
    status: str | None = None,
    account_id: str | None = None,
    requested_by: str | None = None,
    limit: int = 100,
) -> list[BillingRequest]:
    """Return requests, newest first, filtered by status, account and submitter."""
    if status is not None and status not in STATUSES:
        raise ValidationError(
            f"invalid status `{status}`: expected one of {', '.join(STATUSES)}"
        )
    rows = (
        _dict_cursor(conn)
        .execute(
            """
        select * from billing.requests
        where (%(status)s::text is null or status = %(status)s)
          and (%(account)s::text is null or account_id = %(account)s)
          and (%(by)s::text is null or requested_by = %(by)s)
        order by id desc
        limit %(limit)s
        """,
            {
                "status": status,
                "account": account_id,
                "by": requested_by,
                "limit": limit,
            },
        )
        .fetchall()
    )
    return [BillingRequest.from_row(row) for row in rows]
