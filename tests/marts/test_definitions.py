"""The Dagster side of the marts: lineage, checks, the job and its sensor."""

from __future__ import annotations

import dagster as dg
import pytest

from halo_stripe_pipeline.marts.definitions import (
    MARTS_BUILD_JOB,
    build_definitions,
    marts_run_request,
)

MARTS = (
    "stripe_customers",
    "company_billing",
    "company_renewals",
    "company_payment_health",
    "company_segment_attributes",
    "company_prompt_context",
    "company_match_conflicts",
)


@pytest.fixture(scope="module")
def marts_defs() -> dg.Definitions:
    return build_definitions()


def test_every_mart_is_an_asset(marts_defs: dg.Definitions) -> None:
    keys = marts_defs.resolve_asset_graph().get_all_asset_keys()
    for mart in MARTS:
        assert dg.AssetKey(["analytics", mart]) in keys


def test_sources_link_to_raw_assets(marts_defs: dg.Definitions) -> None:
    graph = marts_defs.resolve_asset_graph()
    customers = graph.get(dg.AssetKey(["stripe_staging", "stg_stripe__customers"]))
    assert customers.parent_keys == {dg.AssetKey(["stripe_raw", "customers"])}
    companies = graph.get(dg.AssetKey(["stripe_staging", "stg_halo__companies"]))
    assert companies.parent_keys == {dg.AssetKey(["halo", "companies"])}


def test_dbt_tests_are_asset_checks(marts_defs: dg.Definitions) -> None:
    check_keys = marts_defs.resolve_asset_graph().asset_check_keys
    billing_checks = {
        key.name for key in check_keys if key.asset_key == dg.AssetKey(["analytics", "company_billing"])
    }
    assert "unique_company_billing_company_id" in billing_checks


def test_marts_job_is_defined(marts_defs: dg.Definitions) -> None:
    job = marts_defs.resolve_job_def(MARTS_BUILD_JOB)
    assert job.name == MARTS_BUILD_JOB


def test_full_sync_success_requests_marts() -> None:
    request = marts_run_request("full_sync", "run-123")
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "after-run-123"


def test_other_job_success_skips() -> None:
    skip = marts_run_request("send_slack_notifications", "run-9")
    assert isinstance(skip, dg.SkipReason)
    assert "send_slack_notifications" in skip.skip_message


@dg.op
def _noop() -> None:
    return None


@dg.job(name="full_sync")
def _stand_in_full_sync() -> None:
    _noop()


def test_sensor_reacts_to_full_sync_run(marts_defs: dg.Definitions) -> None:
    sensor = marts_defs.resolve_sensor_def("marts_after_full_sync")
    assert isinstance(sensor, dg.RunStatusSensorDefinition)
    with dg.instance_for_test() as instance:
        result = _stand_in_full_sync.execute_in_process(instance=instance)
        success_event = next(
            event
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.RUN_SUCCESS
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="marts_after_full_sync",
            dagster_event=success_event,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        request = sensor(context)
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == f"after-{result.run_id}"


def test_marts_job_runs_dbt(marts_defs: dg.Definitions, warehouse_url: str) -> None:
    job = marts_defs.resolve_job_def(MARTS_BUILD_JOB)
    result = job.execute_in_process(
        run_config={"ops": {"halo_dbt_models": {"config": {"as_of": "2025-07-15T00:00:00Z"}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    materialized = {
        event.asset_key for event in result.get_asset_materialization_events()
    }
    assert dg.AssetKey(["analytics", "company_billing"]) in materialized
    checks = result.get_asset_check_evaluations()
    assert checks
    assert all(check.passed for check in checks)
