"""Dagster definitions of the event path: sensor, incremental job, Slack outbox.

`stripe_events_sensor` turns pending events into runs of `apply_stripe_events`.
A run applies them to `stripe_raw`, reports an asset materialization per raw
table and account, rebuilds the dbt marts when any row changed, then posts
the Slack outbox (after the rebuild, so messages name the matched company).
`slack_outbox_sensor` retries messages Slack did not take.

This module does not use `from __future__ import annotations`: Dagster reads
the op functions' annotations at definition time.
"""

import importlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

from halo_stripe_pipeline.config import database_url

log = logging.getLogger(__name__)

APPLY_JOB = "apply_stripe_events"
SLACK_JOB = "send_slack_notifications"
ACCOUNT_PARTITIONS_NAME = "stripe_account"
SENSOR_INTERVAL_SECONDS = 5
SLACK_SENSOR_INTERVAL_SECONDS = 30
MART_REFRESH_EXCLUDE = "resource_type:unit_test"
# The job runs one at a time: batches apply in arrival order and dbt builds
# do not overlap.
ACTIVE_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


class ApplyEventsConfig(dg.Config):
    up_to_seq: int | None = None
    limit: int = 20_000
    refresh_marts: bool = True


def _ensure_partitions(instance: dg.DagsterInstance, account_ids: list[str]) -> None:
    missing = [
        account_id
        for account_id in account_ids
        if not instance.has_dynamic_partition(ACCOUNT_PARTITIONS_NAME, account_id)
    ]
    if missing:
        instance.add_dynamic_partitions(ACCOUNT_PARTITIONS_NAME, missing)


def _materializations(report: Any) -> Iterator[dg.AssetMaterialization]:
    touched = sorted(set(report.events_by_table) | set(report.objects_changed))
    for account_id, table in touched:
        yield dg.AssetMaterialization(
            asset_key=dg.AssetKey(["stripe_raw", table]),
            partition=account_id,
            description="Applied Stripe events",
            metadata={
                "events_applied": dg.MetadataValue.int(
                    report.events_by_table.get((account_id, table), 0)
                ),
                "objects_changed": dg.MetadataValue.int(
                    report.objects_changed.get((account_id, table), 0)
                ),
                "accounts": dg.MetadataValue.json(report.accounts),
                "source": dg.MetadataValue.text("stripe webhook events"),
            },
        )


@dg.op(out=dg.Out(dict, description="Counts of the applied batch."))
def apply_events(
    context: dg.OpExecutionContext, config: ApplyEventsConfig
) -> Iterator[Any]:
    """Apply pending Stripe events to `stripe_raw` and queue their Slack messages."""
    from halo_stripe_pipeline.events.accounts import AccountResolver
    from halo_stripe_pipeline.events.apply import apply_pending_events
    from halo_stripe_pipeline.notify.outbox import enqueue_for_events
    from halo_stripe_pipeline.warehouse import connect

    db_url = database_url()
    context.log.info(
        "applying pending Stripe events up to seq %s", config.up_to_seq or "latest"
    )
    with connect(db_url) as conn:
        report = apply_pending_events(
            conn, AccountResolver(conn), up_to_seq=config.up_to_seq, limit=config.limit
        )
        with conn.transaction():
            queued = enqueue_for_events(conn, report.applied_events)
    if report.events_seen == 0:
        context.log.info("no pending events to apply")
    else:
        context.log.info(
            "applied %d events (%d superseded, %d failed), %d rows changed in accounts %s",
            report.events_applied,
            report.events_superseded,
            report.events_failed,
            report.total_objects_changed,
            ", ".join(report.accounts) or "-",
        )
    if report.events_failed:
        context.log.warning(
            "%d events failed; they are retried by later runs", report.events_failed
        )
    _ensure_partitions(context.instance, report.accounts)
    yield from _materializations(report)
    yield dg.Output(
        {
            "events_applied": report.events_applied,
            "events_superseded": report.events_superseded,
            "events_failed": report.events_failed,
            "objects_changed": report.total_objects_changed,
            "tables_changed": sorted(
                {
                    table
                    for (_, table), changed in report.objects_changed.items()
                    if changed
                }
            ),
            "accounts": report.accounts,
            "messages_queued": queued,
            "refresh_marts": config.refresh_marts,
        }
    )


@dg.op(out=dg.Out(dict))
def post_slack_messages(context: dg.OpExecutionContext, summary: dict) -> dict:
    """Post the Slack outbox, so a new event's message goes out with its run."""
    return _send_outbox(context)


def _send_outbox(context: dg.OpExecutionContext) -> dict:
    from halo_stripe_pipeline.notify.outbox import send_pending
    from halo_stripe_pipeline.notify.slack import slack_configured
    from halo_stripe_pipeline.warehouse import connect

    if not slack_configured():
        return {"sent": 0, "failed": 0, "pending": 0}
    with connect(database_url(), autocommit=True) as conn:
        report = send_pending(conn)
    if report.failed:
        context.log.warning(
            "Slack did not take %d messages; %d stay queued",
            report.failed,
            report.pending,
        )
    return {"sent": report.sent, "failed": report.failed, "pending": report.pending}


def build_marts_function() -> Any | None:
    """Return `marts.build.build_marts`, or None while the marts part is absent."""
    try:
        module = importlib.import_module("halo_stripe_pipeline.marts.build")
    except ModuleNotFoundError as error:
        if error.name and "halo_stripe_pipeline.marts".startswith(error.name):
            return None
        if error.name == "halo_stripe_pipeline.marts.build":
            return None
        raise
    return getattr(module, "build_marts", None)


@dg.op(out=dg.Out(dict))
def refresh_marts(context: dg.OpExecutionContext, summary: dict) -> dict:
    """Rebuild the dbt marts when the batch changed any raw row."""
    if not summary["refresh_marts"]:
        context.log.info("mart refresh turned off for this run")
        return summary
    if summary["objects_changed"] == 0:
        context.log.info("no raw row changed; the marts are current")
        return summary
    build_marts = build_marts_function()
    if build_marts is None:
        context.log.warning(
            "the marts part is not installed; skipping the mart refresh"
        )
        return summary
    # `@source` selects what depends on the changed raw tables plus every
    # parent those models need, so a first build is complete too. dbt unit
    # tests check SQL logic, not data, and are left to full builds.
    # One space-separated value: dagster-dbt 0.29 moves the second and later
    # values of a multi-value `--select` in front of the other flags.
    selection = " ".join(
        f"@source:stripe_raw.{table}" for table in summary["tables_changed"]
    )
    context.log.info(
        "rebuilding the marts downstream of %s after %d changed rows",
        ", ".join(summary["tables_changed"]),
        summary["objects_changed"],
    )
    started = time.monotonic()
    result = build_marts(database_url(), select=selection, exclude=MART_REFRESH_EXCLUDE)
    context.log.info("rebuilt the marts in %.1fs", time.monotonic() - started)

    _report_rebuilt_models(context, result, summary["events_applied"])
    return summary


def _report_rebuilt_models(
    context: dg.OpExecutionContext, result: Any, events_applied: int
) -> None:
    for asset_key in rebuilt_model_keys(result):
        context.log_event(
            dg.AssetMaterialization(
                asset_key=asset_key,
                description="rebuilt after applying Stripe webhook events",
                metadata={"as_of": result.as_of, "events_applied": events_applied},
            )
        )


def rebuilt_model_keys(result: Any) -> list[dg.AssetKey]:
    """Return the asset keys (`[schema, model]`) of the models `result` built.

    The keys match the dbt assets of the marts part, so a refresh by events
    shows in Dagster as a materialization of each rebuilt model.
    """
    from halo_stripe_pipeline.marts.manifest import prepared_manifest

    built = {
        node.unique_id
        for node in result.nodes
        if node.unique_id.startswith("model.") and node.status == "success"
    }
    if not built:
        return []
    manifest = json.loads(prepared_manifest().read_text())
    keys = []
    for unique_id in sorted(built):
        node = manifest["nodes"].get(unique_id)
        if node is not None:
            keys.append(dg.AssetKey([node["schema"], node["name"]]))
    return keys


@dg.job(
    name=APPLY_JOB,
    description="Apply pending Stripe webhook events, refresh the marts, post to Slack.",
)
def apply_stripe_events_job() -> None:
    post_slack_messages(refresh_marts(apply_events()))


@dg.op
def send_outbox(context: dg.OpExecutionContext) -> dict:
    """Post the Slack messages whose retry time has come."""
    return _send_outbox(context)


@dg.job(name=SLACK_JOB, description="Post queued Slack messages, retrying failed ones.")
def send_slack_notifications_job() -> None:
    send_outbox()


def _active_run(instance: dg.DagsterInstance, job_name: str) -> bool:
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=job_name, statuses=ACTIVE_RUN_STATUSES), limit=1
    )
    return bool(runs)


@dg.sensor(
    job=apply_stripe_events_job,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Start a run of apply_stripe_events when events are waiting.",
)
def stripe_events_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    from halo_stripe_pipeline.events.queue import pending_batch
    from halo_stripe_pipeline.warehouse import connect

    if _active_run(context.instance, APPLY_JOB):
        return dg.SensorResult(
            skip_reason="a run of apply_stripe_events is in progress"
        )
    with connect(database_url()) as conn:
        batch = pending_batch(conn)
    if batch is None:
        return dg.SensorResult(skip_reason="no pending events")
    context.log.info(
        "requesting a run for %d pending events up to seq %d",
        batch.count,
        batch.max_seq,
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_config=dg.RunConfig(
                    ops={"apply_events": ApplyEventsConfig(up_to_seq=batch.max_seq)}
                ),
                tags={
                    "halo/events": str(batch.count),
                    "halo/up_to_seq": str(batch.max_seq),
                },
            )
        ],
    )


@dg.sensor(
    job=send_slack_notifications_job,
    minimum_interval_seconds=SLACK_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retry Slack messages whose next attempt is due.",
)
def slack_outbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    from halo_stripe_pipeline.notify.slack import slack_configured
    from halo_stripe_pipeline.warehouse import connect

    if not slack_configured():
        return dg.SensorResult(skip_reason="Slack is not configured")
    if _active_run(context.instance, SLACK_JOB) or _active_run(
        context.instance, APPLY_JOB
    ):
        return dg.SensorResult(skip_reason="a run that posts the outbox is in progress")
    with connect(database_url()) as conn:
        row = conn.execute(
            "select count(*) from halo.slack_outbox"
            " where status = 'pending' and next_attempt_at <= now()"
        ).fetchone()
    if not row[0]:
        return dg.SensorResult(skip_reason="no Slack message is due")
    return dg.SensorResult(run_requests=[dg.RunRequest()])


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[apply_stripe_events_job, send_slack_notifications_job],
        sensors=[stripe_events_sensor, slack_outbox_sensor],
    )
