"""The Dagster code location: merges the definitions each part exports."""

from __future__ import annotations

import importlib

import dagster as dg

# Each module exposes `build_definitions() -> dg.Definitions`.
DEFINITION_MODULES = (
    "halo_stripe_pipeline.ingest.definitions",
    "halo_stripe_pipeline.marts.definitions",
    "halo_stripe_pipeline.events.definitions",
    "halo_stripe_pipeline.billing.definitions",
    "halo_stripe_pipeline.connect.definitions",
)


def build_definitions() -> dg.Definitions:
    parts = []
    for module_name in DEFINITION_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # TODO: drop this once every part has its definitions module.
            if error.name and module_name.startswith(error.name):
                continue
            raise
        parts.append(module.build_definitions())
    return dg.Definitions.merge(*parts) if parts else dg.Definitions()


defs = build_definitions()
