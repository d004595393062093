"""The billing JSON API over real HTTP: token roles and account scoping."""

from __future__ import annotations

import httpx
import pytest

from halo_stripe_pipeline.billing import tokens

from .test_validation import Warehouse


@pytest.fixture
def warehouse(db, account_id) -> Warehouse:
    return Warehouse(db, account_id)


@pytest.fixture
def agent_token(db, enabled_agent) -> str:
    return tokens.create_token(db, name=enabled_agent, role="agent", account_id=None)


@pytest.fixture
def approver_token(db, account_id) -> str:
    return tokens.create_token(
        db, name="ana@halo.test", role="approver", account_id=account_id
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def submit_refund(
    receiver_url: str, token: str, warehouse: Warehouse, amount: str = "12.50"
) -> httpx.Response:
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    return httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(token),
        json={
            "type": "refund",
            "customer": customer,
            "charge": charge,
            "amount": amount,
            "currency": "usd",
            "reason": "double charged",
            "summary": "chat about the invoice",
        },
    )


def test_agent_submits_and_reads_status(receiver_url, warehouse, agent_token):
    response = submit_refund(receiver_url, agent_token, warehouse)

    assert response.status_code == 201
    created = response.json()
    assert created["status"] == "pending"
    assert created["amount_minor"] == 1250
    assert created["requested_by"] == "support-bot"
    status = httpx.get(
        f"{receiver_url}/api/billing/requests/{created['id']}",
        headers=bearer(agent_token),
    )
    assert status.status_code == 200
    assert status.json()["status"] == "pending"
    assert status.json()["events"][0]["to_status"] == "pending"


def test_amount_as_json_number_is_exact(receiver_url, warehouse, agent_token):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    response = httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(agent_token),
        content=(
            '{"type": "refund", "customer": "%s", "charge": "%s", "amount": 0.29,'
            ' "currency": "usd", "reason": "r", "summary": "s"}' % (customer, charge)
        ),
    )
    assert response.status_code == 201
    assert response.json()["amount_minor"] == 29


def test_amount_in_exponent_notation_is_exact(receiver_url, warehouse, agent_token):
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=5000)
    response = httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(agent_token),
        content=(
            f'{{"type": "refund", "customer": "{customer}", "charge": "{charge}",'
            ' "amount": 1e1, "currency": "usd", "reason": "r", "summary": "s"}'
        ),
    )
    assert response.status_code == 201, response.text
    assert response.json()["amount_minor"] == 1000


def test_validation_error_is_422(receiver_url, warehouse, agent_token):
    response = submit_refund(receiver_url, agent_token, warehouse, amount="99.00")
    assert response.status_code == 422
    assert "exceeds the 50.00 USD still refundable" in response.json()["error"]


def test_unknown_field_is_422(receiver_url, agent_token):
    response = httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(agent_token),
        json={"type": "refund", "amout": "1"},
    )
    assert response.status_code == 422
    assert "unknown field(s) amout" in response.json()["error"]


def test_missing_and_invalid_token(receiver_url):
    missing = httpx.get(f"{receiver_url}/api/billing/requests")
    invalid = httpx.get(
        f"{receiver_url}/api/billing/requests", headers=bearer("hsb_not_a_token")
    )
    assert missing.status_code == 401
    assert "missing bearer token" in missing.json()["error"]
    assert invalid.status_code == 401
    assert invalid.json()["error"] == "invalid or revoked token"


def test_revoked_token_is_401(db, receiver_url, enabled_agent):
    token = tokens.create_token(db, name=enabled_agent, role="agent", account_id=None)
    fingerprint = tokens.hash_token(token)[:12]
    assert tokens.revoke_token(db, fingerprint) == 1
    response = httpx.get(f"{receiver_url}/api/billing/requests", headers=bearer(token))
    assert response.status_code == 401


def test_agent_cannot_approve(receiver_url, warehouse, agent_token):
    request_id = submit_refund(receiver_url, agent_token, warehouse).json()["id"]

    response = httpx.post(
        f"{receiver_url}/api/billing/requests/{request_id}/approve",
        headers=bearer(agent_token),
        json={},
    )

    assert response.status_code == 403
    assert "agent token cannot decide" in response.json()["error"]
    status = httpx.get(
        f"{receiver_url}/api/billing/requests/{request_id}", headers=bearer(agent_token)
    )
    assert status.json()["status"] == "pending"


def test_approver_cannot_submit(receiver_url, warehouse, approver_token):
    response = submit_refund(receiver_url, approver_token, warehouse)
    assert response.status_code == 403


def test_approver_of_another_account_gets_404(db, receiver_url, warehouse, agent_token):
    request_id = submit_refund(receiver_url, agent_token, warehouse).json()["id"]
    other = tokens.create_token(
        db, name="eve@halo.test", role="approver", account_id="acct_someone_else"
    )

    approve = httpx.post(
        f"{receiver_url}/api/billing/requests/{request_id}/approve",
        headers=bearer(other),
        json={"note": "ok"},
    )
    show = httpx.get(
        f"{receiver_url}/api/billing/requests/{request_id}", headers=bearer(other)
    )
    listing = httpx.get(
        f"{receiver_url}/api/billing/requests?status=pending", headers=bearer(other)
    )

    assert approve.status_code == 404
    assert show.status_code == 404
    assert request_id not in [item["id"] for item in listing.json()["requests"]]
    status = httpx.get(
        f"{receiver_url}/api/billing/requests/{request_id}", headers=bearer(agent_token)
    )
    assert status.json()["status"] == "pending"


def test_approver_lists_approves_and_conflicts(
    receiver_url, warehouse, agent_token, approver_token
):
    request_id = submit_refund(receiver_url, agent_token, warehouse).json()["id"]

    listing = httpx.get(
        f"{receiver_url}/api/billing/requests?status=pending",
        headers=bearer(approver_token),
    )
    approve = httpx.post(
        f"{receiver_url}/api/billing/requests/{request_id}/approve",
        headers=bearer(approver_token),
        json={"note": "customer was double charged"},
    )
    again = httpx.post(
        f"{receiver_url}/api/billing/requests/{request_id}/reject",
        headers=bearer(approver_token),
        json={"note": "changed my mind"},
    )

    assert [item["id"] for item in listing.json()["requests"]] == [request_id]
    assert approve.status_code == 200
    assert approve.json()["status"] == "approved"
    assert approve.json()["decided_by"] == "ana@halo.test"
    assert approve.json()["decision_note"] == "customer was double charged"
    assert again.status_code == 409
    assert "is approved by ana@halo.test" in again.json()["error"]


def test_reject_without_note_is_422(
    receiver_url, warehouse, agent_token, approver_token
):
    request_id = submit_refund(receiver_url, agent_token, warehouse).json()["id"]
    response = httpx.post(
        f"{receiver_url}/api/billing/requests/{request_id}/reject",
        headers=bearer(approver_token),
        json={},
    )
    assert response.status_code == 422
    assert "--note is required" in response.json()["error"]


def test_agent_sees_only_its_own_requests(db, receiver_url, warehouse, agent_token):
    request_id = submit_refund(receiver_url, agent_token, warehouse).json()["id"]
    db.execute(
        "insert into billing.agents (agent_id, billing_enabled) values ('other-bot', true) on conflict do nothing"
    )
    other = tokens.create_token(db, name="other-bot", role="agent", account_id=None)

    response = httpx.get(
        f"{receiver_url}/api/billing/requests/{request_id}", headers=bearer(other)
    )

    assert response.status_code == 404


def test_agent_token_scoped_to_account(db, receiver_url, warehouse, enabled_agent):
    scoped = tokens.create_token(
        db, name=enabled_agent, role="agent", account_id="acct_other"
    )
    response = submit_refund(receiver_url, scoped, warehouse)
    assert response.status_code == 422
    assert "not found in account `acct_other`" in response.json()["error"]
    explicit = httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(scoped),
        json={
            "type": "refund",
            "customer": "cus_x",
            "account": warehouse.account_id,
            "charge": "ch_x",
            "reason": "r",
            "summary": "s",
        },
    )
    assert explicit.status_code == 403


def test_refund_latest_payment_must_be_boolean(receiver_url, warehouse, agent_token):
    customer = warehouse.customer()
    response = httpx.post(
        f"{receiver_url}/api/billing/requests",
        headers=bearer(agent_token),
        json={
            "type": "cancel_immediately",
            "customer": customer,
            "subscription": warehouse.subscription(customer),
            "refund_latest_payment": "false",
            "reason": "r",
            "summary": "s",
        },
    )
    assert response.status_code == 422
    assert "invalid `refund_latest_payment`" in response.json()["error"]
