"""The Dagster side: the sensor's run requests and the job's materializations."""

from __future__ import annotations

import dagster as dg
import psycopg

from halo_stripe_pipeline.events.definitions import (
    ApplyEventsConfig,
    apply_stripe_events_job,
    build_definitions,
    stripe_events_sensor,
)
from halo_stripe_pipeline.instance import get_instance
from tests.events.conftest import store_event
from tests.receiver.support import load_sample


def test_definitions_load() -> None:
    definitions = build_definitions()

    assert (
        definitions.resolve_job_def("apply_stripe_events").name == "apply_stripe_events"
    )
    assert (
        definitions.resolve_sensor_def("stripe_events_sensor").name
        == "stripe_events_sensor"
    )
    assert (
        definitions.resolve_sensor_def("slack_outbox_sensor").name
        == "slack_outbox_sensor"
    )


def test_sensor_skips_without_events(db: psycopg.Connection, account: str) -> None:
    result = stripe_events_sensor(dg.build_sensor_context(instance=get_instance()))

    assert result.run_requests == []
    assert result.skip_reason is not None
    assert result.skip_reason.skip_message == "no pending events"


def test_sensor_holds_then_releases_account(
    db: psycopg.Connection, account: str
) -> None:
    db.execute(
        "insert into halo.integration_settings (account_id, ingest_enabled) values (%s, false)",
        (account,),
    )
    store_event(db, load_sample("stripe-ruby-mock/customer.created.json"))

    held = stripe_events_sensor(dg.build_sensor_context(instance=get_instance()))
    db.execute(
        "update halo.integration_settings set ingest_enabled = true where account_id = %s",
        (account,),
    )
    released = stripe_events_sensor(dg.build_sensor_context(instance=get_instance()))

    assert held.run_requests == []
    assert len(released.run_requests) == 1


def test_sensor_requests_batch(db: psycopg.Connection, account: str) -> None:
    store_event(db, load_sample("stripe-ruby-mock/customer.created.json"))
    store_event(db, load_sample("hookdeck-webhook-samples/customer.created.json"))
    max_seq = db.execute("select max(seq) from stripe_raw.webhook_events").fetchone()[0]

    result = stripe_events_sensor(dg.build_sensor_context(instance=get_instance()))

    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.run_config["ops"]["apply_events"]["config"]["up_to_seq"] == max_seq
    assert request.tags["halo/events"] == "2"


def test_job_reports_materializations(db: psycopg.Connection, account: str) -> None:
    first = load_sample("stripe-ruby-mock/customer.created.json")
    second = load_sample("hookdeck-webhook-samples/customer.created.json")
    subscription = load_sample("payfuzz/customer.subscription.updated.json")
    for event in (first, second, subscription):
        store_event(db, event)
    instance = get_instance()

    result = apply_stripe_events_job.execute_in_process(
        instance=instance,
        run_config=dg.RunConfig(
            ops={"apply_events": ApplyEventsConfig(refresh_marts=False)}
        ),
    )

    assert result.success
    materializations = {
        (m.asset_key.path[-1], m.partition): m.metadata
        for m in result.asset_materializations_for_node("apply_events")
    }
    assert set(materializations) == {("customers", account), ("subscriptions", account)}
    customers = materializations[("customers", account)]
    assert customers["events_applied"].value == 2
    assert customers["objects_changed"].value == 2
    assert customers["accounts"].value == [account]
    assert materializations[("subscriptions", account)]["events_applied"].value == 1
    assert instance.has_dynamic_partition("stripe_account", account)
    summary = result.output_for_node("apply_events")
    assert summary["events_applied"] == 3
    assert summary["objects_changed"] == 3
