"""`halo-stripe billing ...` end to end in-process, against localstripe."""

from __future__ import annotations

import pytest

from halo_stripe_pipeline import cli
from halo_stripe_pipeline.billing import queue
from halo_stripe_pipeline.billing.models import Submission

from .conftest import AGENT, StripeWorld


@pytest.fixture
def stripe_env(monkeypatch, billing_emulator):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_billing")
    monkeypatch.setenv("STRIPE_API_BASE", billing_emulator.api_base)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["billing", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_submit_approve_execute(
    capsys, db, world: StripeWorld, stripe_api, enabled_agent, stripe_env
):
    customer = world.customer(charge_amount=3000)

    code, out, _ = run(
        capsys,
        "submit",
        "--type",
        "refund",
        "--customer",
        customer.id,
        "--charge",
        customer.charge_id,
        "--amount",
        "12.50",
        "--currency",
        "usd",
        "--reason",
        "double charge",
        "--summary",
        "Customer saw two charges",
        "--requested-by",
        AGENT,
    )
    assert code == 0
    request_id, status = out.split()
    assert status == "pending"

    code, out, _ = run(
        capsys, "approve", request_id, "--by", "ana@halo.test", "--note", "ok"
    )
    assert (code, out.strip()) == (0, f"{request_id} approved")

    code, out, _ = run(capsys, "execute", request_id)
    assert (code, out.strip()) == (0, f"{request_id} succeeded")
    assert (
        stripe_api.get(f"/v1/charges/{customer.charge_id}")["amount_refunded"] == 1250
    )

    code, out, _ = run(capsys, "show", request_id)
    assert code == 0
    assert "status: succeeded" in out
    assert "amount: 12.50 USD" in out
    assert "approved -> executing by executor" in out
    assert '"refund": {' in out


def test_submit_rejected_by_validation(capsys, db, world: StripeWorld, enabled_agent):
    customer = world.customer(charge_amount=1000)

    code, out, err = run(
        capsys,
        "submit",
        "--type",
        "refund",
        "--customer",
        customer.id,
        "--charge",
        customer.charge_id,
        "--amount",
        "10.001",
        "--reason",
        "r",
        "--summary",
        "s",
        "--requested-by",
        AGENT,
    )

    assert code == 2
    assert out == ""
    assert "USD allows at most 2 decimal places" in err


def test_reject_and_list(capsys, db, world: StripeWorld, enabled_agent, account_id):
    customer = world.customer()
    code, out, _ = run(
        capsys,
        "submit",
        "--type",
        "cancel_at_period_end",
        "--customer",
        customer.id,
        "--subscription",
        customer.subscription_id,
        "--reason",
        "too expensive",
        "--summary",
        "wants to leave",
        "--requested-by",
        AGENT,
    )
    request_id = out.split()[0]

    code, out, err = run(
        capsys, "reject", request_id, "--by", "ana", "--note", "offer a discount first"
    )
    assert (code, out.strip()) == (0, f"{request_id} rejected")
    code, out, err = run(capsys, "approve", request_id, "--by", "bob")
    assert code == 2
    assert f"billing request {request_id} is rejected by ana" in err

    code, out, _ = run(capsys, "list", "--account", account_id, "--status", "rejected")
    assert code == 0
    assert f"{request_id}  rejected" in out


def test_execute_failure_exits_nonzero_and_retry(
    capsys, db, world: StripeWorld, stripe_api, enabled_agent, stripe_env
):
    customer = world.customer()
    request = queue.submit(
        db,
        Submission(
            request_type="cancel_at_period_end",
            customer_id=customer.id,
            subscription_id=customer.subscription_id,
            reason="r",
            summary="s",
            requested_by=AGENT,
        ),
    )
    queue.approve(db, request.id, by="ana")
    stripe_api.delete(f"/v1/subscriptions/{customer.subscription_id}")

    code, out, _ = run(capsys, "execute", str(request.id))
    assert code == 1
    assert f"{request.id} failed (subscription" in out

    code, out, err = run(capsys, "execute", str(request.id), "--retry")
    assert code == 2
    assert "--retry needs --by" in err
    code, out, _ = run(capsys, "execute", str(request.id), "--retry", "--by", "ana")
    assert code == 1
    assert queue.get_request(db, request.id).execution_generation == 2


def test_execute_names_ids_not_run(
    capsys, db, world: StripeWorld, enabled_agent, stripe_env
):
    customer = world.customer()
    request = queue.submit(
        db,
        Submission(
            request_type="cancel_at_period_end",
            customer_id=customer.id,
            subscription_id=customer.subscription_id,
            reason="r",
            summary="s",
            requested_by=AGENT,
        ),
    )
    queue.reject(db, request.id, by="ana", note="no")

    code, _, err = run(capsys, "execute", str(request.id))
    assert code == 2
    assert f"billing request {request.id} is rejected" in err

    code, _, err = run(capsys, "execute", "987654321")
    assert code == 2
    assert "billing request 987654321 not found" in err


def test_agents_commands(capsys, db):
    assert (
        run(capsys, "agents", "enable", "chat-bot", "--by", "data-team")[1].strip()
        == "chat-bot enabled"
    )
    code, out, _ = run(capsys, "agents", "list")
    assert "chat-bot\tenabled\tdata-team" in out
    assert (
        run(capsys, "agents", "disable", "chat-bot")[1].strip() == "chat-bot disabled"
    )
    assert "chat-bot\tdisabled" in run(capsys, "agents", "list")[1]


def test_settings_and_thresholds(capsys, db, account_id):
    code, out, _ = run(
        capsys,
        "settings",
        "set",
        account_id,
        "--default-approver",
        "ana@halo.test",
        "--default-action-agent",
        "billing-agent",
    )
    assert code == 0
    assert "default_approver: ana@halo.test" in out
    assert "default_action_agent: billing-agent" in out

    code, out, _ = run(
        capsys,
        "thresholds",
        "set",
        "--account",
        account_id,
        "--type",
        "refund",
        "--below",
        "25.00",
        "--currency",
        "usd",
    )
    assert code == 0
    assert f"{account_id}\trefund\tbelow 25.00 USD" in out
    code, out, err = run(
        capsys,
        "thresholds",
        "set",
        "--account",
        account_id,
        "--type",
        "refund",
        "--below",
        "25",
    )
    assert code == 2
    assert "needs --currency" in err
    assert (
        "auto-approve refund below: 25.00 USD"
        in run(capsys, "settings", "show", account_id)[1]
    )
    code, out, _ = run(
        capsys,
        "thresholds",
        "remove",
        "--account",
        account_id,
        "--type",
        "refund",
        "--currency",
        "usd",
    )
    assert code == 0
    assert account_id not in out


def test_tokens_commands(capsys, db):
    code, out, _ = run(
        capsys, "tokens", "create", "--name", "ops-bot", "--role", "agent"
    )
    token = out.strip()
    assert code == 0
    assert token.startswith("hsb_")
    code, out, err = run(
        capsys, "tokens", "create", "--name", "ana", "--role", "approver"
    )
    assert code == 2
    assert "approver token needs --account" in err

    from halo_stripe_pipeline.billing.tokens import hash_token

    fingerprint = hash_token(token)[:12]
    assert (
        f"{fingerprint}\tagent\tops-bot\t*\tactive" in run(capsys, "tokens", "list")[1]
    )
    assert (
        run(capsys, "tokens", "revoke", fingerprint)[1].strip() == "revoked 1 token(s)"
    )
    assert run(capsys, "tokens", "revoke", fingerprint)[0] == 2
