"""The billing approval queue: agents submit, approvers decide, Stripe executes.

Requests live in `billing.requests`; every status change is written to
`billing.request_events` in the same transaction as the change. This package
reads the warehouse (`stripe_raw`, `halo`, and the `analytics` marts for the
approval page) and calls Stripe only through `stripe_client.StripeApi`.

The Python API:

    from halo_stripe_pipeline import billing
    request = billing.submit(conn, billing.Submission(...))
    billing.approve(conn, request.id, by="ana@example.com", note="agreed")
    billing.execute_approved(conn)  # needs an autocommit connection
"""

from __future__ import annotations

import psycopg

from halo_stripe_pipeline.billing.models import (
    BillingError,
    BillingRequest,
    InvalidTransition,
    NotFoundError,
    Submission,
    ValidationError,
)
from halo_stripe_pipeline.billing.queue import (
    approve,
    get_request,
    list_requests,
    reject,
    retry,
    submit,
)


def execute_approved(
    conn: psycopg.Connection, request_ids: list[int] | None = None
) -> list[BillingRequest]:
    """Execute approved requests (all, or `request_ids`) and return those handled."""
    from halo_stripe_pipeline.billing.execution import Executor

    return Executor(conn).run(request_ids)


__all__ = [
    "BillingError",
    "BillingRequest",
    "InvalidTransition",
    "NotFoundError",
    "Submission",
    "ValidationError",
    "approve",
    "execute_approved",
    "get_request",
    "list_requests",
    "reject",
    "retry",
    "submit",
]
