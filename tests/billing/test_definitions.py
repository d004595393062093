"""The Dagster job and sensor that execute approved requests."""

from __future__ import annotations

import dagster as dg
import pytest

from halo_stripe_pipeline.billing import queue
from halo_stripe_pipeline.billing.definitions import (
    EXECUTE_JOB,
    billing_approved_requests_sensor,
    billing_execute_approved,
)
from halo_stripe_pipeline.billing.models import Submission

from .conftest import AGENT, StripeWorld


@pytest.fixture
def stripe_env(monkeypatch, billing_emulator):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_billing")
    monkeypatch.setenv("STRIPE_API_BASE", billing_emulator.api_base)
    monkeypatch.setenv("STRIPE_RATE_LIMIT", "1000")
    monkeypatch.setenv("STRIPE_ENDPOINT_RATE_LIMIT", "1000")


def test_code_location_has_billing_job_and_sensor():
    from halo_stripe_pipeline.definitions import build_definitions

    definitions = build_definitions()
    assert definitions.get_job_def(EXECUTE_JOB).name == EXECUTE_JOB
    sensors = {sensor.name: sensor for sensor in definitions.sensors or []}
    assert sensors["billing_approved_requests_sensor"].job_name == EXECUTE_JOB


def test_sensor_then_job_execute_approved_request(
    db, world: StripeWorld, stripe_api, enabled_agent, stripe_env
):
    customer = world.customer(charge_amount=2000)
    request = queue.submit(
        db,
        Submission(
            request_type="refund",
            customer_id=customer.id,
            charge_id=customer.charge_id,
            amount="20.00",
            currency="usd",
            reason="r",
            summary="s",
            requested_by=AGENT,
        ),
    )
    queue.approve(db, request.id, by="ana@halo.test")
    instance = dg.DagsterInstance.ephemeral()

    launched = billing_approved_requests_sensor(
        dg.build_sensor_context(instance=instance)
    )
    assert len(launched.run_requests) == 1

    result = billing_execute_approved.execute_in_process(instance=instance)

    assert result.success
    done = queue.get_request(db, request.id)
    assert done.status == "succeeded"
    assert done.result["refund"]["amount"] == 2000
    assert stripe_api.get(f"/v1/charges/{customer.charge_id}")["refunded"] is True
    events = queue.list_events(db, request.id)
    assert events[-2]["actor"].startswith("dagster run ")
    skipped = billing_approved_requests_sensor(
        dg.build_sensor_context(instance=instance)
    )
    assert skipped.run_requests == []
    assert skipped.skip_reason is not None


def _approved_request(db, world: StripeWorld) -> int:
    customer = world.customer(charge_amount=1500)
    request = queue.submit(
        db,
        Submission(
            request_type="refund",
            customer_id=customer.id,
            charge_id=customer.charge_id,
            reason="r",
            summary="s",
            requested_by=AGENT,
        ),
    )
    queue.approve(db, request.id, by="ana@halo.test")
    return request.id


def test_sensor_launches_past_a_dead_started_run(
    db, world: StripeWorld, enabled_agent, stripe_env
):
    from dagster._core.storage.dagster_run import DagsterRun

    request_id = _approved_request(db, world)
    instance = dg.DagsterInstance.ephemeral()
    # A run whose process was killed stays STARTED and has no lock.
    instance.add_run(
        DagsterRun(job_name=EXECUTE_JOB, status=dg.DagsterRunStatus.STARTED)
    )

    launched = billing_approved_requests_sensor(
        dg.build_sensor_context(instance=instance)
    )

    assert len(launched.run_requests) == 1
    assert queue.get_request(db, request_id).status == "approved"
    db.execute(
        "update billing.requests set status = 'rejected' where id = %s", (request_id,)
    )


def test_sensor_skips_requests_an_executor_holds(
    db, world: StripeWorld, enabled_agent, stripe_env, warehouse_url
):
    import psycopg

    from halo_stripe_pipeline.billing.execution import ADVISORY_LOCK_NAMESPACE

    db.execute(
        "update billing.requests set status = 'rejected'"
        " where status in ('approved', 'executing')"
    )
    request_id = _approved_request(db, world)
    instance = dg.DagsterInstance.ephemeral()

    with psycopg.connect(warehouse_url, autocommit=True) as holder:
        holder.execute(
            "select pg_advisory_lock(%s, %s)", (ADVISORY_LOCK_NAMESPACE, request_id)
        )
        skipped = billing_approved_requests_sensor(
            dg.build_sensor_context(instance=instance)
        )

    assert skipped.run_requests == []
    assert "being executed" in skipped.skip_reason.skip_message
    db.execute(
        "update billing.requests set status = 'rejected' where id = %s", (request_id,)
    )
