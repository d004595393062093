"""Dagster resources of the raw assets: the Stripe client and the warehouse."""

from __future__ import annotations

from typing import Any

import dagster as dg
import psycopg
from pydantic import Field

from halo_stripe_pipeline.credentials import stripe_api_for_account
from halo_stripe_pipeline.ingest.loader import DEFAULT_WORKERS_PER_TYPE, LoadOptions
from halo_stripe_pipeline.stripe_client import StripeApi


class StripeResource(dg.ConfigurableResource):
    """The Stripe API as the raw assets read it; unset fields come from the environment."""

    api_key: str | None = Field(
        default=None, description="Secret key; defaults to STRIPE_API_KEY."
    )
    api_base: str | None = Field(
        default=None,
        description="Base URL (an emulator or proxy); defaults to STRIPE_API_BASE or Stripe's.",
    )
    requests_per_second: float | None = Field(
        default=None,
        description="Account-wide request limit; defaults to STRIPE_RATE_LIMIT, else "
        "100 for live keys and 25 for test keys.",
    )
    endpoint_requests_per_second: float | None = Field(
        default=None,
        description="Limit per endpoint; defaults to STRIPE_ENDPOINT_RATE_LIMIT, else 25.",
    )
    workers_per_type: int = Field(
        default=DEFAULT_WORKERS_PER_TYPE,
        description="Threads listing one object type's created ranges at once.",
    )
    range_slicing: bool | None = Field(
        default=None,
        description="List created ranges concurrently; default from STRIPE_LIST_SLICING, "
        "else on for Stripe's API base and for other bases that accept created filters.",
    )

    def api_for_account(self, conn: psycopg.Connection, account_id: str) -> StripeApi:
        overrides: dict[str, Any] = {
            "api_key": self.api_key,
            "api_base": self.api_base,
            "requests_per_second": self.requests_per_second,
            "endpoint_requests_per_second": self.endpoint_requests_per_second,
        }
        set_overrides = {key: value for key, value in overrides.items() if value}
        return stripe_api_for_account(conn, account_id, **set_overrides)

    def load_options(self, logger: Any) -> LoadOptions:
        return LoadOptions(
            workers_per_type=self.workers_per_type,
            range_slicing=self.range_slicing,
            logger=logger,
        )


class WarehouseResource(dg.ConfigurableResource):
    """The PostgreSQL warehouse; without a URL, HALO_DATABASE_URL or the embedded server."""

    database_url: str | None = Field(
        default=None, description="libpq URL; defaults to HALO_DATABASE_URL."
    )

    def url(self) -> str:
        if self.database_url:
            return self.database_url
        from halo_stripe_pipeline.config import database_url

        return database_url()
