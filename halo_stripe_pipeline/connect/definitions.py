"""Dagster side of connect: the sensor that turns sync requests into runs.

On each tick it adds a `stripe_account` partition for every connected
account, deletes the partition of every disconnected one, and requests one
run of the full-sync job per account with new sync requests. The run queue
(`instance.py`) allows one run per `halo/stripe_account` tag value at a time,
so two syncs never share one account's Stripe rate limit.
"""

from __future__ import annotations

import dagster as dg

from halo_stripe_pipeline.config import database_url
from halo_stripe_pipeline.connect.partitions import (
    ACCOUNT_TAG,
    PARTITIONS_NAME,
    REASON_TAG,
    mark_submitted,
    plan_tick,
)
from halo_stripe_pipeline.warehouse import connect

FULL_SYNC_JOB_NAME = "full_sync"
SENSOR_NAME = "stripe_connect_sync_requests"


@dg.sensor(
    name=SENSOR_NAME,
    job_name=FULL_SYNC_JOB_NAME,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a partition per connected Stripe account and runs its full sync.",
)
def sync_requests_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    cursor = int(context.cursor or 0)
    existing = context.instance.get_dynamic_partitions(PARTITIONS_NAME)
    with connect(database_url(), autocommit=True) as conn:
        plan = plan_tick(conn, existing, cursor)
        mark_submitted(conn, plan.runs)
    if plan.runs or plan.partitions_to_add or plan.partitions_to_delete:
        context.log.info(
            "requesting %d full syncs; adding partitions %s, deleting %s",
            len(plan.runs), plan.partitions_to_add, plan.partitions_to_delete,
        )
    partition_requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if plan.partitions_to_add:
        partition_requests.append(
            dg.AddDynamicPartitionsRequest(PARTITIONS_NAME, plan.partitions_to_add)
        )
    if plan.partitions_to_delete:
        partition_requests.append(
            dg.DeleteDynamicPartitionsRequest(PARTITIONS_NAME, plan.partitions_to_delete)
        )
    run_requests = [
        dg.RunRequest(
            run_key=run.run_key,
            partition_key=run.account_id,
            tags={ACCOUNT_TAG: run.account_id, REASON_TAG: run.reason},
        )
        for run in plan.runs
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=partition_requests,
        cursor=str(plan.cursor),
    )


def build_definitions() -> dg.Definitions:
    return dg.Definitions(sensors=[sync_requests_sensor])
