"""Queue behaviour: auto-approval, decisions, racing approvers and the audit trail."""

from __future__ import annotations

import threading
import time

import pytest

from halo_stripe_pipeline.billing import policy, queue
from halo_stripe_pipeline.billing.models import (
    InvalidTransition,
    NotFoundError,
    ValidationError,
)
from halo_stripe_pipeline.warehouse import connect

from .test_validation import Warehouse, ask


@pytest.fixture
def warehouse(db, account_id) -> Warehouse:
    return Warehouse(db, account_id)


def refund_request(db, warehouse: Warehouse, amount: str, name: str = "ch"):
    customer = warehouse.customer(name=f"cus_{name}")
    charge = warehouse.charge(customer, amount=10_000, name=name)
    return queue.submit(
        db, ask(customer, "refund", charge_id=charge, amount=amount, currency="usd")
    )


def test_auto_approval_below_threshold(db, warehouse, account_id, enabled_agent):
    policy.set_threshold(db, account_id, "refund", "usd", 2000)

    request = refund_request(db, warehouse, "19.99")

    assert request.status == "approved"
    assert request.is_auto_approved is True
    assert request.decided_by == "auto-approval"
    events = queue.list_events(db, request.id)
    assert [event["to_status"] for event in events] == ["pending", "approved"]
    assert events[1]["actor"] == "auto-approval"
    assert "below the refund threshold of 2000 usd" in events[1]["note"]


@pytest.mark.parametrize("amount", ["20.00", "20.01"])
def test_no_auto_approval_at_or_above_threshold(
    db, warehouse, account_id, enabled_agent, amount
):
    policy.set_threshold(db, account_id, "refund", "usd", 2000)

    request = refund_request(db, warehouse, amount)

    assert request.status == "pending"
    assert request.is_auto_approved is False


def test_threshold_in_another_currency_does_not_apply(
    db, warehouse, account_id, enabled_agent
):
    policy.set_threshold(db, account_id, "refund", "eur", 100_000)
    assert refund_request(db, warehouse, "1.00").status == "pending"


def test_trial_threshold_in_days(db, warehouse, account_id, enabled_agent):
    policy.set_threshold(db, account_id, "extend_trial", policy.DAYS_UNIT, 8)
    customer = warehouse.customer()
    short = queue.submit(
        db,
        ask(
            customer,
            "extend_trial",
            subscription_id=warehouse.subscription(customer),
            days=7,
        ),
    )
    other = warehouse.customer(name="cus_long")
    long = queue.submit(
        db,
        ask(
            other,
            "extend_trial",
            subscription_id=warehouse.subscription(other, name="sub_long"),
            days=8,
        ),
    )
    assert short.status == "approved"
    assert long.status == "pending"


def test_cancellations_are_never_auto_approved():
    with pytest.raises(ValidationError, match="always need a person's approval"):
        policy.parse_threshold("cancel_immediately", "10.00", "usd")


def test_parse_threshold_in_major_units():
    assert policy.parse_threshold("refund", "20.00", "USD") == ("usd", 2000)
    assert policy.parse_threshold("apply_credit", "500", "jpy") == ("jpy", 500)
    assert policy.parse_threshold("extend_trial", "14", None) == ("days", 14)


def test_default_approver_assigned(db, warehouse, account_id, enabled_agent):
    policy.update_account_settings(
        db,
        account_id,
        default_approver="ana@halo.test",
        default_action_agent="billing-agent",
    )
    request = refund_request(db, warehouse, "5.00")
    assert request.assigned_to == "ana@halo.test"
    settings = policy.get_account_settings(db, account_id)
    assert settings.default_action_agent == "billing-agent"
    created = queue.list_events(db, request.id)[0]
    assert created["details"]["assigned_to"] == "ana@halo.test"


def test_rejection_needs_note_and_is_recorded(db, warehouse, enabled_agent):
    request = refund_request(db, warehouse, "5.00")

    with pytest.raises(ValidationError, match="--note is required"):
        queue.reject(db, request.id, by="ana", note=" ")
    rejected = queue.reject(
        db, request.id, by="ana", note="refund already given in kind"
    )

    assert rejected.status == "rejected"
    assert rejected.decided_by == "ana"
    assert rejected.decision_note == "refund already given in kind"
    with pytest.raises(
        InvalidTransition, match="is rejected by ana; it cannot become approved"
    ):
        queue.approve(db, request.id, by="bob")
    last = queue.list_events(db, request.id)[-1]
    assert (last["from_status"], last["to_status"], last["actor"]) == (
        "pending",
        "rejected",
        "ana",
    )


def test_unknown_request(db):
    with pytest.raises(NotFoundError, match="billing request 987654321 not found"):
        queue.approve(db, 987654321, by="ana")


def test_retry_only_from_failed(db, warehouse, enabled_agent):
    request = refund_request(db, warehouse, "5.00")
    with pytest.raises(InvalidTransition, match="cannot become approved"):
        queue.retry(db, request.id, by="ana")


def race(
    warehouse_url: str, request_id: int, actions: list[tuple[str, str]]
) -> tuple[list[str], list[str]]:
    """Run the decisions in threads, each on its own connection, released together.

    A third connection holds the row lock until every thread has sent its
    update, so the updates really overlap.
    """
    outcomes: list[str] = []
    errors: list[str] = []
    ready = threading.Barrier(len(actions) + 1)

    def decide(action: str, name: str) -> None:
        with connect(warehouse_url, autocommit=True) as conn:
            ready.wait()
            try:
                if action == "approve":
                    outcomes.append(
                        queue.approve(conn, request_id, by=name).decided_by or ""
                    )
                else:
                    outcomes.append(
                        queue.reject(conn, request_id, by=name, note="no").decided_by
                        or ""
                    )
            except InvalidTransition as error:
                errors.append(str(error))

    # pg_stat_activity is a snapshot per transaction, so the polling runs on
    # its own autocommit connection.
    with (
        connect(warehouse_url) as blocker,
        connect(warehouse_url, autocommit=True) as monitor,
    ):
        blocker.execute(
            "select 1 from billing.requests where id = %s for update", (request_id,)
        )
        threads = [threading.Thread(target=decide, args=action) for action in actions]
        for thread in threads:
            thread.start()
        ready.wait()
        waiting = 0
        while waiting < len(actions):
            row = monitor.execute(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                " and query like '%%billing.requests%%' and datname = current_database()"
            ).fetchone()
            waiting = int(row[0]) if row else 0
            time.sleep(0.01)
        blocker.rollback()
    for thread in threads:
        thread.join()
    return outcomes, errors


def test_two_approvers_racing(db, warehouse, enabled_agent, warehouse_url):
    request = refund_request(db, warehouse, "5.00")

    outcomes, errors = race(
        warehouse_url, request.id, [("approve", "ana"), ("approve", "bob")]
    )

    assert len(outcomes) == 1
    assert len(errors) == 1
    assert "is approved by" in errors[0]
    decided = queue.get_request(db, request.id)
    assert decided.status == "approved"
    assert decided.decided_by == outcomes[0]
    approvals = [
        event
        for event in queue.list_events(db, request.id)
        if event["to_status"] == "approved"
    ]
    assert len(approvals) == 1
    assert approvals[0]["actor"] == outcomes[0]


def test_approve_and_reject_racing(db, warehouse, enabled_agent, warehouse_url):
    request = refund_request(db, warehouse, "5.00")

    outcomes, errors = race(
        warehouse_url, request.id, [("approve", "ana"), ("reject", "bob")]
    )

    assert len(outcomes) == 1
    assert len(errors) == 1
    decided = queue.get_request(db, request.id)
    assert decided.status == ("approved" if outcomes[0] == "ana" else "rejected")
    decisions = [
        event
        for event in queue.list_events(db, request.id)
        if event["from_status"] == "pending"
    ]
    assert len(decisions) == 1


def test_list_filters(db, warehouse, account_id, enabled_agent):
    first = refund_request(db, warehouse, "5.00", name="ch_a")
    second = refund_request(db, warehouse, "6.00", name="ch_b")
    queue.reject(db, second.id, by="ana", note="no")

    pending = queue.list_requests(db, status="pending", account_id=account_id)
    everything = queue.list_requests(db, account_id=account_id)

    assert [item.id for item in pending] == [first.id]
    assert [item.id for item in everything] == [second.id, first.id]
    with pytest.raises(ValidationError, match="invalid status `done`"):
        queue.list_requests(db, status="done")


def test_agents_enable_and_disable(db):
    policy.set_agent_enabled(db, "triage-bot", True, changed_by="data-team")
    policy.set_agent_enabled(db, "triage-bot", False, changed_by="data-team")
    agents = {agent.agent_id: agent for agent in policy.list_agents(db)}
    assert agents["triage-bot"].billing_enabled is False
    assert agents["triage-bot"].updated_by == "data-team"
