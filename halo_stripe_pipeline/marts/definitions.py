"""Dagster definitions of the marts: the dbt models as assets, tests as checks.

The dbt sources map to the raw assets `["stripe_raw", <table>]` (defined by
the ingest part, partitioned by Stripe account) and `["halo", <table>]`
(declared here), so the lineage runs from each Stripe object type to each
mart. A successful `full_sync` run is followed by a `marts_build` run.
"""


from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, dbt_assets

from halo_stripe_pipeline.marts.build import build_args, normalize_as_of
from halo_stripe_pipeline.marts.manifest import prepared_manifest
from halo_stripe_pipeline.marts.project import dbt_workspace

MARTS_BUILD_JOB = "marts_build"
FULL_SYNC_JOB = "full_sync"
HALO_TABLES = ("companies", "integration_settings", "exchange_rates")
GROUP_BY_LAYER = {
    "staging": "dbt_staging",
    "intermediate": "dbt_intermediate",
    "marts": "analytics",
}


class HaloDbtTranslator(DagsterDbtTranslator):
    """Keys models by schema and name, and sources by source and table."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        layer = dbt_resource_props.get("fqn", ["", ""])[1]
        return GROUP_BY_LAYER.get(layer, "dbt")


class MartsBuildConfig(dg.Config):
    as_of: str | None = None
    """ISO 8601 instant the marts describe; empty means the run's start."""


def build_dbt_assets() -> dg.AssetsDefinition:
    translator = HaloDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    )

    @dbt_assets(
        manifest=prepared_manifest(),
        name="halo_dbt_models",
        dagster_dbt_translator=translator,
    )
    def halo_dbt_models(
        context: dg.AssetExecutionContext, config: MartsBuildConfig
    ) -> Iterator[Any]:
        from halo_stripe_pipeline.config import database_url

        as_of = normalize_as_of(config.as_of)
        context.log.info("building the dbt models as of %s", as_of)
        with dbt_workspace(database_url()) as workspace:
            invocation = workspace.resource().cli(
                build_args(as_of=as_of),
                context=context,
                target_path=workspace.target_path,
            )
            yield from invocation.stream()

    return halo_dbt_models


def halo_table_specs() -> list[dg.AssetSpec]:
    """Halo's own tables, written by halo-stripe commands rather than by Dagster."""
    return [
        dg.AssetSpec(
            dg.AssetKey(["halo", table]),
            description=f"halo.{table}, edited through halo-stripe commands",
            group_name="halo",
            kinds={"postgres"},
        )
        for table in HALO_TABLES
    ]


def build_marts_sensor(job: Any) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="marts_after_full_sync",
        request_job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Build the marts after every successful full_sync run.",
    )
    def marts_after_full_sync(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        return marts_run_request(context.dagster_run.job_name, context.dagster_run.run_id)

    return marts_after_full_sync


def marts_run_request(job_name: str, run_id: str) -> dg.RunRequest | dg.SkipReason:
    """Return the marts run that follows run `run_id` of `job_name`, if any."""
    if job_name != FULL_SYNC_JOB:
        return dg.SkipReason(f"run {run_id} is a `{job_name}` run, not `{FULL_SYNC_JOB}`")
    return dg.RunRequest(run_key=f"after-{run_id}", tags={"halo/after_run": run_id})


def build_definitions() -> dg.Definitions:
    models = build_dbt_assets()
    job = dg.define_asset_job(
        MARTS_BUILD_JOB,
        selection=dg.AssetSelection.assets(models),
        description="dbt build of every staging, intermediate and mart model, with tests.",
    )
    return dg.Definitions(
        assets=[models, *halo_table_specs()],
        jobs=[job],
        sensors=[build_marts_sensor(job)],
    )
