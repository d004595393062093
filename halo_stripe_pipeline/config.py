"""Environment of one halo-stripe process: warehouse, Stripe and Dagster home.

Every command and the Dagster code location read their configuration here, so
the variables are documented in one place (see the README's Configuration).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"


class ConfigError(RuntimeError):
    """A setting in the environment is missing or invalid."""


def halo_dir() -> Path:
    """Return the folder for local state (embedded database, Dagster home).

    `HALO_HOME` overrides the default `.halo/` in the working directory.
    """
    return Path(os.environ.get("HALO_HOME") or Path.cwd() / ".halo").resolve()


@dataclass(frozen=True)
class StripeConfig:
    api_key: str = field(repr=False)
    api_base: str

    @property
    def is_local(self) -> bool:
        return self.api_base != DEFAULT_STRIPE_API_BASE


def stripe_config(required: bool = True) -> StripeConfig | None:
    """Read `STRIPE_API_KEY` and `STRIPE_API_BASE`.

    Raises ConfigError when the key is missing and `required` is true.
    """
    api_key = os.environ.get("STRIPE_API_KEY", "").strip()
    api_base = os.environ.get("STRIPE_API_BASE", "").strip().rstrip("/")
    if not api_key:
        if required:
            raise ConfigError(
                "STRIPE_API_KEY is not set: export a secret key (sk_live_... or "
                "sk_test_...) or run `halo-stripe demo` to use the local emulator"
            )
        return None
    if api_base:
        _check_api_base(api_base)
    return StripeConfig(api_key=api_key, api_base=api_base or DEFAULT_STRIPE_API_BASE)


def _check_api_base(api_base: str) -> None:
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in api_base):
        raise ConfigError(
            f"STRIPE_API_BASE `{api_base}` is not an http(s) URL; "
            "use a base such as http://127.0.0.1:8420 or unset it for Stripe's API"
        )
    try:
        parts.port
    except ValueError as error:
        raise ConfigError(f"STRIPE_API_BASE `{api_base}` has an invalid port: {error}") from None


def database_url() -> str:
    """Return the warehouse URL, starting the embedded server when none is set.

    The URL is libpq style (`postgresql://...`); use `dagster_storage_url` for
    dagster-postgres.
    """
    url = os.environ.get("HALO_DATABASE_URL", "").strip()
    if url:
        return url
    from halo_stripe_pipeline.warehouse.embedded import ensure_embedded_server

    return ensure_embedded_server(halo_dir() / "pgdata")


def dagster_home() -> Path:
    """Return `DAGSTER_HOME`, creating a default under `.halo/` when unset."""
    configured = os.environ.get("DAGSTER_HOME", "").strip()
    home = Path(configured) if configured else halo_dir() / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()
