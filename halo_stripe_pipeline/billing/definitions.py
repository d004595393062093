"""Dagster definitions of billing: a job that executes approved requests and
the sensor that launches it when requests are waiting.

This module does not use `from __future__ import annotations`: Dagster reads
the op function's annotations at definition time.
"""

import dagster as dg

EXECUTE_JOB = "billing_execute_approved"
SENSOR_INTERVAL_SECONDS = 30
# Runs about to execute. STARTED is left out because a killed run stays
# STARTED for good. A live executor is seen by its advisory lock instead.
PENDING_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]


def _runnable_count() -> tuple[int, int] | None:
    """Return (requests waiting, those not locked by an executor), or None without the schema."""
    from psycopg import errors

    from halo_stripe_pipeline.billing.execution import ADVISORY_LOCK_NAMESPACE
    from halo_stripe_pipeline.config import database_url
    from halo_stripe_pipeline.warehouse import connect

    with connect(database_url()) as conn:
        try:
            row = conn.execute(
                """
                select
                    count(*),
                    count(*) filter (where not exists (
                        select 1 from pg_locks l
                        where l.locktype = 'advisory'
                          and l.granted
                          and l.database = (
                              select oid from pg_database where datname = current_database()
                          )
                          and l.classid = %(namespace)s
                          and l.objid = r.id
                          and l.objsubid = 2
                    ))
                from billing.requests r
                where r.status in ('approved', 'executing')
                """,
                {"namespace": ADVISORY_LOCK_NAMESPACE},
            ).fetchone()
        except errors.UndefinedTable:
            return None
    return (int(row[0]), int(row[1])) if row else (0, 0)


@dg.op(
    description="Execute approved billing requests against Stripe and resume interrupted ones."
)
def execute_approved_billing_requests(context: dg.OpExecutionContext) -> dg.Output:
    from halo_stripe_pipeline.billing.execution import Executor
    from halo_stripe_pipeline.config import database_url
    from halo_stripe_pipeline.warehouse import connect, ensure_schema

    with connect(database_url(), autocommit=True) as conn:
        ensure_schema(conn)
        handled = Executor(conn, actor=f"dagster run {context.run_id[:8]}").run()
    succeeded = [request.id for request in handled if request.status == "succeeded"]
    failed = [request.id for request in handled if request.status == "failed"]
    context.log.info(
        f"executed {len(handled)} billing request(s): {len(succeeded)} succeeded"
    )
    for request in handled:
        if request.status == "failed":
            context.log.warning(f"billing request {request.id} failed: {request.error}")
    return dg.Output(
        len(handled),
        metadata={
            "executed": dg.MetadataValue.int(len(handled)),
            "succeeded": dg.MetadataValue.int(len(succeeded)),
            "failed": dg.MetadataValue.int(len(failed)),
            "failed_ids": dg.MetadataValue.text(", ".join(map(str, failed)) or "none"),
        },
    )


@dg.job(
    name=EXECUTE_JOB,
    description="Run every approved billing request through Stripe once.",
)
def billing_execute_approved() -> None:
    execute_approved_billing_requests()


@dg.sensor(
    job=billing_execute_approved,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch the billing execution job when requests are approved or left executing.",
)
def billing_approved_requests_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult:
    counts = _runnable_count()
    if counts is None:
        return dg.SensorResult(
            skip_reason="billing.requests does not exist yet; any halo-stripe command creates it"
        )
    waiting, unclaimed = counts
    if waiting == 0:
        return dg.SensorResult(skip_reason="no approved billing requests")
    if unclaimed == 0:
        return dg.SensorResult(
            skip_reason=f"{waiting} request(s) waiting, all being executed"
        )
    pending = context.instance.get_runs_count(
        dg.RunsFilter(job_name=EXECUTE_JOB, statuses=PENDING_RUN_STATUSES)
    )
    if pending:
        return dg.SensorResult(
            skip_reason=f"{waiting} request(s) waiting; a run is about to start"
        )
    context.log.info(f"{waiting} billing request(s) waiting; launching {EXECUTE_JOB}")
    return dg.SensorResult(run_requests=[dg.RunRequest()])


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[billing_execute_approved], sensors=[billing_approved_requests_sensor]
    )
