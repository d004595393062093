"""The Dagster instance: dagster-postgres storage in the warehouse's server."""

from __future__ import annotations

from pathlib import Path

from halo_stripe_pipeline.config import dagster_home, database_url
from halo_stripe_pipeline.warehouse.connection import dagster_storage_url

# A dagster.yaml that starts with this line was written by halo-stripe and is
# rewritten when the warehouse URL changes; any other file is left alone.
_MARKER = "# written by halo-stripe"


def ensure_dagster_home(db_url: str | None = None) -> Path:
    """Write `$DAGSTER_HOME/dagster.yaml` with PostgreSQL storage; return the home."""
    home = dagster_home()
    config_path = home / "dagster.yaml"
    storage_url = dagster_storage_url(db_url or database_url())
    text = (
        f"{_MARKER}\n"
        "storage:\n"
        "  postgres:\n"
        f"    postgres_url: \"{storage_url}\"\n"
        "run_coordinator:\n"
        "  module: dagster.core.run_coordinator\n"
        "  class: QueuedRunCoordinator\n"
        "  config:\n"
        "    max_concurrent_runs: 4\n"
        # One run per Stripe account at a time: each run already uses the
        # account's whole rate limit (see connect/partitions.py ACCOUNT_TAG).
        "    tag_concurrency_limits:\n"
        "      - key: \"halo/stripe_account\"\n"
        "        value:\n"
        "          applyLimitPerUniqueValue: true\n"
        "        limit: 1\n"
        # The daemon marks a run failed when its worker process died (killed,
        # out of memory). Otherwise a run left STARTED would hold the account's
        # slot above and stall the sensors that wait for it.
        "run_monitoring:\n"
        "  enabled: true\n"
        "  start_timeout_seconds: 300\n"
        "  max_resume_run_attempts: 0\n"
        "  poll_interval_seconds: 60\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    if not config_path.exists() or config_path.read_text().startswith(_MARKER):
        if not config_path.exists() or config_path.read_text() != text:
            config_path.write_text(text)
    return home


def get_instance(db_url: str | None = None):  # -> dg.DagsterInstance
    """Return the Dagster instance under `DAGSTER_HOME`, configuring it first."""
    import os

    import dagster as dg

    home = ensure_dagster_home(db_url)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()
