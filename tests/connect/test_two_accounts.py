"""Two Stripe accounts, each in its own localstripe, synced into one warehouse.

Both accounts have a customer with the same email, and each workspace has a
company with that email. Each company must match only the customer of the
account its own workspace connected. The syncs run as Dagster runs of the
full-sync job, one partition per account, as the connect sensor requests
them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import psycopg
import pytest

from halo_stripe_pipeline.connect import flow
from halo_stripe_pipeline.connect.crypto import TokenCipher
from halo_stripe_pipeline.connect.definitions import sync_requests_sensor
from halo_stripe_pipeline.connect.partitions import ACCOUNT_TAG
from halo_stripe_pipeline.connect.settings import connect_settings
from halo_stripe_pipeline.emulator import EmulatorProcess, start_emulator
from halo_stripe_pipeline.ingest.definitions import FULL_SYNC_JOB, build_definitions
from halo_stripe_pipeline.instance import get_instance
from halo_stripe_pipeline.stripe_client import StripeApi


@dataclass(frozen=True)
class LocalAccount:
    label: str
    account_id: str
    workspace_id: str
    company_id: str
    api_key: str
    emulator: EmulatorProcess
    monthly_amount: int

    def api(self) -> StripeApi:
        return StripeApi(
            api_key=self.api_key,
            api_base=self.emulator.api_base,
            requests_per_second=1000,
            endpoint_requests_per_second=1000,
        )


@pytest.fixture
def two_emulators() -> Iterator[tuple[EmulatorProcess, EmulatorProcess]]:
    first = start_emulator()
    try:
        second = start_emulator()
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def _fill(account: LocalAccount, shared_email: str) -> None:
    """Create a paying customer with `shared_email` and one customer of its own."""
    api = account.api()
    api.post("/v1/products", {"id": "prod_halo", "name": "Halo seats"})
    api.post(
        "/v1/plans",
        {
            "id": "plan_monthly",
            "product": "prod_halo",
            "currency": "usd",
            "interval": "month",
            "amount": account.monthly_amount,
        },
    )
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    payment_method = api.post("/v1/payment_methods", {"type": "card", "card": card})["id"]
    customer = api.post(
        "/v1/customers",
        {
            "email": shared_email,
            "name": f"Shared customer {account.label}",
            "payment_method": payment_method,
            "invoice_settings": {"default_payment_method": payment_method},
        },
    )
    api.post("/v1/subscriptions", {"customer": customer["id"], "items": [{"plan": "plan_monthly"}]})
    api.post(
        "/v1/customers",
        {"email": f"only-{account.label}-{account.account_id}@example.com", "name": "Own"},
    )


def test_two_accounts_stay_apart(
    two_emulators: tuple[EmulatorProcess, EmulatorProcess],
    warehouse_url: str,
    db: psycopg.Connection,
    encryption_key: str,
    monkeypatch: pytest.MonkeyPatch,
):
    from halo_stripe_pipeline.marts.build import build_marts

    for name in ("STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")
    tag = secrets.token_hex(4)
    shared_email = f"billing-{tag}@shared.example.com"
    accounts = [
        LocalAccount(
            label=label,
            account_id=f"acct_{label}{tag}",
            workspace_id=f"ws_{label}_{tag}",
            company_id=f"co_{label}_{tag}",
            api_key=f"sk_test_{label}_{tag}",
            emulator=emulator,
            monthly_amount=amount,
        )
        for label, emulator, amount in zip(("a", "b"), two_emulators, (1000, 2500))
    ]
    for account in accounts:
        _fill(account, shared_email)
    first_request = db.execute(
        "select coalesce(max(id), 0) from halo.sync_requests"
    ).fetchone()[0]

    # Connect both accounts, each with its own key and API base.
    settings = connect_settings(require_oauth=False)
    cipher = TokenCipher.from_env()
    for account in accounts:
        flow.connect_with_api_key(
            db,
            settings,
            cipher,
            workspace_id=account.workspace_id,
            api_key=account.api_key,
            account_id=account.account_id,
            api_base=account.emulator.api_base,
            register_webhook=False,
        )

    # The sensor adds both partitions and requests one run per account.
    instance = get_instance()
    tick = sync_requests_sensor(
        dg.build_sensor_context(instance=instance, cursor=str(first_request))
    )
    for request in tick.dynamic_partitions_requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    runs = {run.partition_key: run for run in tick.run_requests}
    assert sorted(runs) == sorted(account.account_id for account in accounts)

    job = build_definitions().resolve_job_def(FULL_SYNC_JOB)
    for account in accounts:
        run = runs[account.account_id]
        assert run.tags[ACCOUNT_TAG] == account.account_id
        result = job.execute_in_process(
            instance=instance, partition_key=account.account_id, tags=run.tags
        )
        assert result.success

    synced = dict(
        db.execute(
            "select account_id, count(*) from stripe_raw.customers"
            " where account_id = any(%s) group by account_id",
            ([account.account_id for account in accounts],),
        ).fetchall()
    )
    assert synced == {account.account_id: 2 for account in accounts}

    # Each workspace has a company with the shared email.
    for account in accounts:
        db.execute(
            "insert into halo.companies (id, workspace_id, name, email)"
            " values (%s, %s, %s, %s)",
            (account.company_id, account.workspace_id, f"Company {account.label}", shared_email),
        )
    build_marts(warehouse_url)

    matches = db.execute(
        "select account_id, company_id from analytics.stripe_customers"
        " where email = %s order by account_id",
        (shared_email,),
    ).fetchall()
    assert matches == [(account.account_id, account.company_id) for account in accounts]
    billing = db.execute(
        "select company_id, account_id, mrr from analytics.company_billing"
        " where company_id = any(%s) order by company_id",
        ([account.company_id for account in accounts],),
    ).fetchall()
    assert billing == [
        (account.company_id, account.account_id, account.monthly_amount / 100)
        for account in accounts
    ]
