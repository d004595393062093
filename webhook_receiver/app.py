"""The receiver's ASGI app: a health check plus the routes each part mounts.

Each module in `ROUTE_MODULES` exports `routes`, a list of Starlette routes;
a part mounts its routes by adding one line there. Handlers reach the
warehouse through `request.app.state`: `db_url` (libpq URL) and `pool`
(a `psycopg_pool.AsyncConnectionPool`, open while the app runs).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from halo_stripe_pipeline.config import database_url
from halo_stripe_pipeline.warehouse import connect, ensure_schema
from halo_stripe_pipeline.warehouse.connection import _libpq_url

log = logging.getLogger(__name__)

# Modules whose `routes` list the app mounts, in this order.
ROUTE_MODULES = (
    "webhook_receiver.webhooks",
    "webhook_receiver.connect_routes",
    "webhook_receiver.billing_api",
)

POOL_MIN_SIZE = 2
POOL_MAX_SIZE = 8


async def health(request: Request) -> JSONResponse:
    """Return 200 when a query to the warehouse succeeds, 503 otherwise."""
    try:
        async with request.app.state.pool.connection(timeout=5) as conn:
            await conn.execute("select 1")
    except Exception as error:  # noqa: BLE001 - any failure means unhealthy
        log.warning("health check failed: %s", error)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def collect_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = [Route("/health", health, methods=["GET"])]
    for module_name in ROUTE_MODULES:
        module = importlib.import_module(module_name)
        routes.extend(module.routes)
    return routes


def create_app(db_url: str | None = None) -> Starlette:
    """Build the app for the warehouse at `db_url` (default: `database_url()`).

    The schema is applied once at start-up, before the first request.
    """
    url = _libpq_url(db_url or database_url())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with connect(url) as conn:
            ensure_schema(conn)
        pool = AsyncConnectionPool(
            url,
            min_size=POOL_MIN_SIZE,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True},
            open=False,
        )
        await pool.open(wait=True)
        app.state.pool = pool
        log.info(
            "receiver started with a pool of %d-%d connections",
            POOL_MIN_SIZE,
            POOL_MAX_SIZE,
        )
        try:
            yield
        finally:
            await pool.close()
            log.info("receiver stopped")

    app = Starlette(routes=collect_routes(), lifespan=lifespan)
    app.state.db_url = url
    return app
