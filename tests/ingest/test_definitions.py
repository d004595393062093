"""The raw assets' Dagster definitions load and name one asset per object type."""

from __future__ import annotations

import dagster as dg

from halo_stripe_pipeline.ingest.definitions import ACCOUNT_PARTITIONS, build_definitions
from halo_stripe_pipeline.ingest.object_types import OBJECT_TYPES


def test_definitions_load() -> None:
    defs = build_definitions()

    job = defs.resolve_job_def("full_sync")
    asset_graph = defs.resolve_asset_graph()

    expected = {dg.AssetKey(["stripe_raw", spec.table]) for spec in OBJECT_TYPES}
    assert expected <= set(asset_graph.get_all_asset_keys())
    assert job.partitions_def == ACCOUNT_PARTITIONS
    for key in expected:
        assert asset_graph.get(key).partitions_def == ACCOUNT_PARTITIONS


def test_merged_code_location_has_full_sync() -> None:
    from halo_stripe_pipeline.definitions import build_definitions as build_location

    assert build_location().resolve_job_def("full_sync").name == "full_sync"
