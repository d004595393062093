"""The Stripe object types a full sync loads: endpoint, filters, raw table.

Each spec also names how to complete an object that a list embeds only in
part (a subscription lists at most 10 items) and whether objects missing
from a complete listing are flagged deleted (customers: the list omits
deleted ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from halo_stripe_pipeline.config import DEFAULT_STRIPE_API_BASE
from halo_stripe_pipeline.stripe_client import PAGE_SIZE, StripeApi

Completion = Callable[[StripeApi, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ObjectType:
    """One Stripe list endpoint and the raw table its objects go to."""

    name: str
    endpoint: str
    table: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    expand: tuple[str, ...] = ()
    complete: Completion | None = None
    flags_missing_as_deleted: bool = False
    description: str = ""


def complete_subscription_items(api: StripeApi, subscription: dict[str, Any]) -> dict[str, Any]:
    """Replace `items.data` with every item when the list embeds only the first 10.

    Pages `/v1/subscription_items?subscription=...`, so the stored
    subscription is complete. A subscription without `has_more` is returned
    unchanged.
    """
    items = subscription.get("items")
    if not isinstance(items, dict) or not items.get("has_more"):
        return subscription
    every_item: list[dict[str, Any]] = []
    params = {"subscription": subscription["id"], "limit": PAGE_SIZE}
    cursor: str | None = None
    while True:
        page_params = dict(params, starting_after=cursor) if cursor else params
        body = api.get("/v1/subscription_items", page_params)
        data = body.get("data") or []
        every_item.extend(data)
        if not body.get("has_more") or not data:
            break
        cursor = data[-1]["id"]
    completed_items = {**items, "data": every_item, "has_more": False}
    completed_items["total_count"] = len(every_item)
    return {**subscription, "items": completed_items}


OBJECT_TYPES: tuple[ObjectType, ...] = (
    ObjectType(
        "customers",
        "/v1/customers",
        "customers",
        flags_missing_as_deleted=True,
        description="Stripe customers; deleted ones stay with `is_deleted` true.",
    ),
    ObjectType(
        "subscriptions",
        "/v1/subscriptions",
        "subscriptions",
        # Without `status=all` the list omits canceled subscriptions. From API
        # 2025-03-31 on, `discounts` contains bare ids unless expanded, and the
        # MRR rules need each coupon's duration and amount.
        filters={"status": "all"},
        expand=("data.discounts", "data.items.data.discounts"),
        complete=complete_subscription_items,
        description="Subscriptions of every status, with all their items.",
    ),
    ObjectType("charges", "/v1/charges", "charges", description="Charges (payments)."),
    ObjectType(
        "refunds",
        "/v1/refunds",
        "refunds",
        description="Refunds, from the refunds list: charges no longer embed them.",
    ),
    ObjectType("invoices", "/v1/invoices", "invoices", description="Invoices."),
    ObjectType(
        "prices",
        "/v1/prices",
        "prices",
        # A tiered price lists its tiers only when expanded.
        expand=("data.tiers",),
        description="Prices, active or not.",
    ),
    ObjectType("products", "/v1/products", "products", description="Products, active or not."),
    ObjectType(
        "plans",
        "/v1/plans",
        "plans",
        expand=("data.tiers",),
        description="Legacy plans (the price API's predecessor).",
    ),
    ObjectType("coupons", "/v1/coupons", "coupons", description="Coupons."),
)

def list_filters(spec: ObjectType, api: StripeApi) -> dict[str, Any]:
    """Return the list filters for `spec`, with its expansions on Stripe's API.

    NOTE: expansions are sent only to Stripe itself, because localstripe
    rejects `expand[]=data.discounts`; other bases get unexpanded objects.
    """
    filters = dict(spec.filters)
    if spec.expand and api.api_base == DEFAULT_STRIPE_API_BASE:
        filters["expand"] = list(spec.expand)
    return filters


OBJECT_TYPES_BY_NAME: dict[str, ObjectType] = {spec.name: spec for spec in OBJECT_TYPES}


def object_types_named(names: list[str] | None) -> list[ObjectType]:
    """Return the specs for `names` (all when None); raise ValueError on an unknown one."""
    if names is None:
        return list(OBJECT_TYPES)
    unknown = [name for name in names if name not in OBJECT_TYPES_BY_NAME]
    if unknown:
        allowed = ", ".join(OBJECT_TYPES_BY_NAME)
        raise ValueError(f"unknown object type {', '.join(unknown)}; expected one of {allowed}")
    return [OBJECT_TYPES_BY_NAME[name] for name in names]
