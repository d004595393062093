"""The connect sensor loads with the whole code location and targets the sync job."""

from __future__ import annotations

from halo_stripe_pipeline.connect.definitions import FULL_SYNC_JOB_NAME, SENSOR_NAME


def test_code_location_has_sync_sensor():
    from halo_stripe_pipeline.definitions import build_definitions

    definitions = build_definitions()
    sensor = definitions.resolve_sensor_def(SENSOR_NAME)

    assert sensor.job_name == FULL_SYNC_JOB_NAME
    job = definitions.resolve_job_def(FULL_SYNC_JOB_NAME)
    assert job.partitions_def is not None
    assert job.partitions_def.name == "stripe_account"


def test_run_queue_limits_one_run_per_account(warehouse_url: str):
    from halo_stripe_pipeline.connect.partitions import ACCOUNT_TAG
    from halo_stripe_pipeline.instance import get_instance

    queue = get_instance().run_coordinator.get_run_queue_config()

    assert queue.max_concurrent_runs == 4
    assert {
        "key": ACCOUNT_TAG,
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    } in queue.tag_concurrency_limits
