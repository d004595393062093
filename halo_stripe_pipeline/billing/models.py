"""The request types, states and the row shape of a billing request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

REFUND = "refund"
CANCEL_AT_PERIOD_END = "cancel_at_period_end"
CANCEL_IMMEDIATELY = "cancel_immediately"
APPLY_CREDIT = "apply_credit"
EXTEND_TRIAL = "extend_trial"
REQUEST_TYPES = (
    REFUND,
    CANCEL_AT_PERIOD_END,
    CANCEL_IMMEDIATELY,
    APPLY_CREDIT,
    EXTEND_TRIAL,
)

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
EXECUTING = "executing"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = (PENDING, APPROVED, REJECTED, EXECUTING, SUCCEEDED, FAILED)
OPEN_STATUSES = (PENDING, APPROVED, EXECUTING)

# Each status a request may move to from a given status. `failed -> approved`
# is the explicit retry; nothing leaves `rejected` or `succeeded`.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    PENDING: (APPROVED, REJECTED),
    APPROVED: (EXECUTING,),
    EXECUTING: (SUCCEEDED, FAILED),
    FAILED: (APPROVED,),
    REJECTED: (),
    SUCCEEDED: (),
}

MIN_TRIAL_EXTENSION_DAYS = 1
MAX_TRIAL_EXTENSION_DAYS = 730


class BillingError(RuntimeError):
    """A billing operation failed in a way the caller can act on."""


class ValidationError(BillingError):
    """A submitted request is invalid. The message names the field and the reason."""


class NotFoundError(BillingError):
    """No billing request has the given id (or the caller may not see it)."""


class InvalidTransition(BillingError):
    """The request is not in a status that allows the change."""


@dataclass
class Submission:
    """A request as an agent submits it, before validation.

    `amount` is in major units (`"12.50"`) as a person types it; the Python
    API may pass `amount_minor` instead. `account_id` may be left out when the
    customer belongs to exactly one synced account.
    """

    request_type: str
    customer_id: str
    reason: str
    summary: str
    requested_by: str
    account_id: str | None = None
    company_id: str | None = None
    charge_id: str | None = None
    subscription_id: str | None = None
    amount: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    days: int | None = None
    refund_latest_payment: bool = False


@dataclass
class BillingRequest:
    """One row of `billing.requests`."""

    id: int
    request_key: str
    request_type: str
    status: str
    account_id: str
    company_id: str | None
    customer_id: str
    charge_id: str | None
    subscription_id: str | None
    amount_minor: int | None
    currency: str | None
    days: int | None
    reason: str
    summary: str
    requested_by: str
    assigned_to: str | None
    is_auto_approved: bool
    decided_by: str | None
    decision_note: str | None
    execution_generation: int
    execution_plan: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    decided_at: datetime | None
    executed_at: datetime | None
    updated_at: datetime
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BillingRequest:
        values = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        values["request_key"] = str(row["request_key"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """Return the request as JSON-ready values (timestamps in ISO 8601)."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            data[name] = value.isoformat() if isinstance(value, datetime) else value
        return data
