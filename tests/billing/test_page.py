"""The approval page in headless Chromium: sign in, open a request, approve it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from halo_stripe_pipeline.billing import queue, tokens

from .test_validation import Warehouse, ask

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed; `scripts/bootstrap` installs it with apt-get"
        if shutil.which("apt-get") is None:
            reason = "Debian's chromium is not installed and apt-get is not available to install it"
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def test_approve_from_page(db, browser, receiver_url, account_id, enabled_agent):
    warehouse = Warehouse(db, account_id)
    customer = warehouse.customer()
    charge = warehouse.charge(customer, amount=4200)
    subscription = warehouse.subscription(
        customer,
        plan={
            "id": "halo-team",
            "amount": 4900,
            "currency": "usd",
            "interval": "month",
        },
    )
    request = queue.submit(
        db,
        ask(
            customer,
            "refund",
            charge_id=charge,
            amount="42.00",
            currency="usd",
            reason="charged after cancelling",
            summary="Customer wrote that they cancelled last week.",
        ),
    )
    token = tokens.create_token(
        db, name="ana@halo.test", role="approver", account_id=account_id
    )
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(f"{receiver_url}/billing/requests")
        assert page.url.endswith("/billing/login")
        page.fill("#token", token)
        page.click("button[type=submit]")

        row = page.locator(f"#pending tr[data-request-id='{request.id}']")
        assert row.count() == 1
        assert "42.00 USD" in row.inner_text()
        row.locator("a").click()

        assert page.inner_text("#request-status") == "pending"
        assert page.inner_text("#request-amount") == "42.00 USD"
        context = page.inner_text("#billing-context")
        assert subscription in context
        assert "49.00 USD / month" in context
        assert charge in page.inner_text("#recent-payments")
        page.fill("#note", "refund agreed with the account owner")
        page.click("#approve")

        assert "approved" in page.inner_text("p.message")
        assert page.inner_text("#request-status") == "approved"
        assert page.inner_text("#decided-by") == "ana@halo.test"
    finally:
        page.close()

    decided = queue.get_request(db, request.id)
    assert decided.status == "approved"
    assert decided.decided_by == "ana@halo.test"
    assert decided.decision_note == "refund agreed with the account owner"


def test_page_hides_other_accounts(
    db, browser, receiver_url, account_id, enabled_agent
):
    warehouse = Warehouse(db, account_id)
    customer = warehouse.customer()
    request = queue.submit(
        db, ask(customer, "refund", charge_id=warehouse.charge(customer), amount="1.00")
    )
    token = tokens.create_token(
        db, name="eve@halo.test", role="approver", account_id="acct_someone_else"
    )
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(f"{receiver_url}/billing/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        assert page.locator(f"#pending tr[data-request-id='{request.id}']").count() == 0
        response = page.goto(f"{receiver_url}/billing/requests/{request.id}")
        assert response is not None and response.status == 404
    finally:
        page.close()


def test_decision_needs_form_token(db, receiver_url, account_id, enabled_agent):
    import httpx

    warehouse = Warehouse(db, account_id)
    customer = warehouse.customer()
    request = queue.submit(
        db, ask(customer, "refund", charge_id=warehouse.charge(customer), amount="1.00")
    )
    token = tokens.create_token(
        db, name="ana@halo.test", role="approver", account_id=account_id
    )

    response = httpx.post(
        f"{receiver_url}/billing/requests/{request.id}/decision",
        cookies={"halo_billing_session": token},
        data={"action": "approve", "csrf": "forged"},
    )

    assert response.status_code == 403
    assert queue.get_request(db, request.id).status == "pending"
