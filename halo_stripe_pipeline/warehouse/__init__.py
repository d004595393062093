"""PostgreSQL access: the embedded or external server, schema and bulk writes.

Nothing here imports Dagster, Stripe or the web app, because every other
part is built on this package.
"""

from halo_stripe_pipeline.warehouse.connection import (
    connect,
    dagster_storage_url,
    dbt_connection_params,
)
from halo_stripe_pipeline.warehouse.schema import ensure_schema

__all__ = ["connect", "dagster_storage_url", "dbt_connection_params", "ensure_schema"]
