"""Fixtures of the ingest tests: the list stand-in, samples and clients."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from halo_stripe_pipeline.ingest.object_types import OBJECT_TYPES
from halo_stripe_pipeline.stripe_client import RetryPolicy, StripeApi
from tests.ingest.stripe_lists import StripeLists

SAMPLES = Path(__file__).parent.parent / "fixtures" / "stripe_samples" / "objects"


def load_sample(relative_path: str) -> dict[str, Any]:
    """Return a fresh copy of a sample object from tests/fixtures/stripe_samples."""
    with (SAMPLES / relative_path).open(encoding="utf-8") as handle:
        return copy.deepcopy(json.load(handle))


def stand_in_api(lists: StripeLists, **overrides: Any) -> StripeApi:
    """A client for the stand-in: no rate limits and short retry waits."""
    settings: dict[str, Any] = {
        "api_key": lists.api_key,
        "api_base": lists.api_base,
        "requests_per_second": 5_000.0,
        "endpoint_requests_per_second": 5_000.0,
        "retry": RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=2.0),
    }
    settings.update(overrides)
    return StripeApi(**settings)


@pytest.fixture
def stripe_lists() -> Iterator[StripeLists]:
    """A fresh stand-in serving an empty list for every synced object type."""
    lists = StripeLists().start()
    for spec in OBJECT_TYPES:
        lists.add(spec.endpoint)
    lists.add("/v1/subscription_items")
    yield lists
    lists.stop()


@pytest.fixture
def account_id() -> str:
    """An account id of its own, so tests sharing the session database do not mix rows."""
    return f"acct_test{uuid.uuid4().hex[:12]}"
