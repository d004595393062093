"""The shared demo run: its constants and what the tests read from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from halo_stripe_pipeline.stripe_client import StripeApi

DEMO_CUSTOMERS = 60
DEMO_SEED = 0


@dataclass(frozen=True)
class DemoRun:
    api_base: str
    stdout: str
    guide: dict[str, Any]

    def api(self) -> StripeApi:
        return StripeApi(
            api_key="sk_test_demo",
            api_base=self.api_base,
            requests_per_second=1000,
            endpoint_requests_per_second=1000,
        )

    def customer_id(self, company_id: str, field: str = "email") -> str:
        """Return the id of the one customer that `field` matches to the named company."""
        company = next(c for c in self.guide["named_companies"] if c["id"] == company_id)
        matches = company["matches_by"][field]
        assert len(matches) == 1, f"{company_id} matches {len(matches)} customers by {field}"
        return str(matches[0]["id"])
