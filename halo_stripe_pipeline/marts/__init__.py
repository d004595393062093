"""The dbt marts: building them, and their Dagster assets and checks."""

from halo_stripe_pipeline.marts.build import (
    MartsBuildError,
    MartsBuildResult,
    build_marts,
)

__all__ = ["MartsBuildError", "MartsBuildResult", "build_marts"]
