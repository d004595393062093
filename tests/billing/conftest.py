"""Fixtures of the billing tests: a localstripe per module, objects created in
it and copied into the session warehouse, and a fresh account id per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest

from halo_stripe_pipeline.billing import policy
from halo_stripe_pipeline.emulator import EmulatorProcess, start_emulator
from halo_stripe_pipeline.stripe_client import RetryPolicy, StripeApi
from halo_stripe_pipeline.warehouse import bulk

AGENT = "support-bot"
PLAN_ID = "halo-pro-monthly"
PLAN_AMOUNT = 2500


def fast_api(api_base: str) -> StripeApi:
    """A client for a loopback stand-in: no rate limit, quick retries."""
    return StripeApi(
        api_key="sk_test_billing",
        api_base=api_base,
        requests_per_second=1000,
        endpoint_requests_per_second=1000,
        retry=RetryPolicy(max_attempts=2, base_delay=0.05, max_delay=0.1),
        timeout_seconds=10,
    )


@pytest.fixture(scope="module")
def billing_emulator() -> Iterator[EmulatorProcess]:
    """One localstripe for a test module; each test makes its own customers."""
    process = start_emulator()
    api = fast_api(process.api_base)
    product = api.post("/v1/products", {"name": "Halo Pro", "type": "service"})
    api.post(
        "/v1/plans",
        {
            "id": PLAN_ID,
            "product": product["id"],
            "amount": PLAN_AMOUNT,
            "currency": "usd",
            "interval": "month",
        },
    )
    yield process
    process.stop()


@pytest.fixture
def stripe_api(billing_emulator: EmulatorProcess) -> StripeApi:
    return fast_api(billing_emulator.api_base)


@pytest.fixture
def account_id() -> str:
    return f"acct_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def enabled_agent(db: psycopg.Connection) -> str:
    policy.set_agent_enabled(db, AGENT, True, changed_by="tests")
    return AGENT


@dataclass
class Customer:
    """A customer in localstripe with a paid subscription, a one-off charge
    and a trialing subscription, all copied into the warehouse."""

    id: str
    subscription_id: str
    subscription_charge_id: str
    charge_id: str
    trial_subscription_id: str
    trial_end: int


class StripeWorld:
    """Creates objects in localstripe and loads them into `stripe_raw`."""

    def __init__(
        self, api: StripeApi, conn: psycopg.Connection, account_id: str
    ) -> None:
        self.api = api
        self.conn = conn
        self.account_id = account_id

    def customer(self, *, charge_amount: int = 5000) -> Customer:
        customer = self.api.post(
            "/v1/customers",
            {
                "email": f"{uuid.uuid4().hex[:8]}@example.com",
                "payment_method": "pm_card_visa",
                "invoice_settings": {"default_payment_method": "pm_card_visa"},
            },
        )
        subscription = self.api.post(
            "/v1/subscriptions",
            {"customer": customer["id"], "items": [{"plan": PLAN_ID}]},
        )
        charges = self.api.get("/v1/charges", {"customer": customer["id"]})["data"]
        charge = self.api.post(
            "/v1/charges",
            {"customer": customer["id"], "amount": charge_amount, "currency": "usd"},
        )
        trial_end = int(time.time()) + 14 * 86_400
        trial = self.api.post(
            "/v1/subscriptions",
            {
                "customer": customer["id"],
                "items": [{"plan": PLAN_ID}],
                "trial_end": trial_end,
            },
        )
        self.load_customer(customer["id"])
        return Customer(
            id=customer["id"],
            subscription_id=subscription["id"],
            subscription_charge_id=charges[0]["id"],
            charge_id=charge["id"],
            trial_subscription_id=trial["id"],
            trial_end=trial_end,
        )

    def load_customer(self, customer_id: str) -> None:
        """Copy the customer and its objects from localstripe into the warehouse."""
        customer = self.api.get(f"/v1/customers/{customer_id}")
        subscriptions = self.api.get(
            "/v1/subscriptions", {"customer": customer_id, "status": "all"}
        )["data"]
        charges = self.api.get("/v1/charges", {"customer": customer_id})["data"]
        invoices = self.api.get("/v1/invoices", {"customer": customer_id})["data"]
        self.upsert("customers", [customer])
        self.upsert("subscriptions", subscriptions)
        self.upsert("charges", charges)
        self.upsert("invoices", invoices)

    def upsert(self, table: str, objects: list[dict[str, Any]]) -> None:
        bulk.upsert_objects(
            self.conn,
            table,
            self.account_id,
            objects,
            observed_at=datetime.now(timezone.utc),
        )


@pytest.fixture
def world(
    stripe_api: StripeApi, db: psycopg.Connection, account_id: str
) -> StripeWorld:
    return StripeWorld(stripe_api, db, account_id)


class ServedApp:
    """The receiver app served by uvicorn on a loopback port, in a thread."""

    def __init__(self, db_url: str) -> None:
        import threading

        import uvicorn

        from halo_stripe_pipeline.emulator import free_port
        from webhook_receiver.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(db_url),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the receiver did not start on port {self.port}")
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def receiver_url(warehouse_url: str) -> Iterator[str]:
    served = ServedApp(warehouse_url)
    yield served.url
    served.stop()
