"""Dagster definitions of the raw layer: one asset per Stripe object type.

The assets come from one multi-asset, so a run lists every selected type
concurrently with one shared `StripeApi` whose limiters keep the account and
endpoint rates. Each type still is its own asset with its own
materialization. Partitions are Stripe account ids.

This module does not use `from __future__ import annotations`: Dagster reads
the asset function's annotations at definition time.
"""

from collections.abc import Iterator

import dagster as dg

from halo_stripe_pipeline.ingest.loader import TypeReport, raise_for_failures
from halo_stripe_pipeline.ingest.object_types import OBJECT_TYPES, ObjectType
from halo_stripe_pipeline.ingest.resources import StripeResource, WarehouseResource

ACCOUNT_PARTITIONS = dg.DynamicPartitionsDefinition(name="stripe_account")
FULL_SYNC_JOB = "full_sync"
RAW_GROUP = "stripe_raw"


def raw_asset_key(spec: ObjectType) -> dg.AssetKey:
    return dg.AssetKey(["stripe_raw", spec.table])


RAW_ASSET_KEYS = [raw_asset_key(spec) for spec in OBJECT_TYPES]


def _materialization(report: TypeReport, rows: int) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        asset_key=dg.AssetKey(["stripe_raw", report.table]),
        metadata={
            "rows": dg.MetadataValue.int(rows),
            "objects_listed": dg.MetadataValue.int(report.objects),
            "pages": dg.MetadataValue.int(report.pages),
            "slices": dg.MetadataValue.int(report.slices),
            "flagged_deleted": dg.MetadataValue.int(report.flagged_deleted),
            "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
            "objects_per_second": dg.MetadataValue.float(round(report.objects_per_second, 1)),
            "status": dg.MetadataValue.text(report.status),
        },
    )


def _row_count(db_url: str, table: str, account_id: str) -> int:
    from psycopg import sql

    from halo_stripe_pipeline.warehouse import connect

    with connect(db_url) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {table} where account_id = %s").format(
                table=sql.Identifier("stripe_raw", table)
            ),
            (account_id,),
        ).fetchone()
    return int(row[0]) if row else 0


@dg.multi_asset(
    name="stripe_raw_objects",
    specs=[
        dg.AssetSpec(
            raw_asset_key(spec),
            description=spec.description,
            group_name=RAW_GROUP,
            kinds={"stripe", "postgres"},
            skippable=True,
        )
        for spec in OBJECT_TYPES
    ],
    partitions_def=ACCOUNT_PARTITIONS,
    can_subset=True,
)
def stripe_raw_objects(
    context: dg.AssetExecutionContext,
    stripe: StripeResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult]:
    """List the selected object types of one account into `stripe_raw`."""
    from halo_stripe_pipeline.ingest.sync import sync_object_types
    from halo_stripe_pipeline.warehouse import connect

    account_id = context.partition_key
    selected = [spec for spec in OBJECT_TYPES if raw_asset_key(spec) in context.selected_asset_keys]
    db_url = warehouse.url()
    with connect(db_url) as conn:
        api = stripe.api_for_account(conn, account_id)
    context.log.info(
        "syncing %s for account %s from %s",
        ", ".join(spec.name for spec in selected), account_id, api.api_base,
    )
    report = sync_object_types(
        db_url, api, account_id, selected, stripe.load_options(context.log), run_id=context.run.run_id
    )
    for type_report in report.types:
        if type_report.status != "failed":
            yield _materialization(type_report, _row_count(db_url, type_report.table, account_id))
    raise_for_failures(report.types)


full_sync_job = dg.define_asset_job(
    FULL_SYNC_JOB,
    selection=dg.AssetSelection.assets(*RAW_ASSET_KEYS),
    description="Backfill every Stripe object type of one account into stripe_raw.",
)


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[stripe_raw_objects],
        jobs=[full_sync_job],
        resources={"stripe": StripeResource(), "warehouse": WarehouseResource()},
    )
