"""A small Stripe account written straight into `stripe_raw`, with Halo companies.

Every company exercises one billing rule; the expected mart values in the
tests are computed by hand from the rules, as of AS_OF. Objects are built
from real Stripe samples (tests/fixtures/stripe_samples) where a sample has
the shape in question, with ids, amounts and dates replaced.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from halo_stripe_pipeline.warehouse.bulk import upsert_objects

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe_samples" / "objects"
ACCOUNT_ID = "acct_marts_main"
WORKSPACE_ID = "ws_marts"
AS_OF = "2025-07-15T00:00:00Z"
OBSERVED_AT = datetime(2025, 7, 14, tzinfo=timezone.utc)


def ts(day: str) -> int:
    """Epoch seconds of a UTC date or datetime such as `2025-06-03`."""
    moment = datetime.fromisoformat(day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


def sample(relative_path: str) -> dict[str, Any]:
    return json.loads((SAMPLES / relative_path).read_text(encoding="utf-8"))


def price(
    price_id: str,
    unit_amount: int,
    interval: str,
    *,
    interval_count: int = 1,
    currency: str = "usd",
    product: str = "prod_marts_basic",
    usage_type: str = "licensed",
    **fields: Any,
) -> dict[str, Any]:
    """A price object in the shape of the current API's price sample."""
    obj = sample("openapi-fixtures-current/price.json")
    obj.update(
        id=price_id,
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount) if unit_amount is not None else None,
        currency=currency,
        product=product,
        billing_scheme="per_unit",
        tiers_mode=None,
        transform_quantity=None,
        recurring={
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "usage_type": usage_type,
            "trial_period_days": None,
        },
    )
    obj.update(fields)
    return obj


def basil_subscription(
    subscription_id: str,
    customer_id: str,
    items: list[tuple[dict[str, Any], int | None]],
    *,
    period_end: str = "2025-08-01",
    currency: str = "usd",
    **fields: Any,
) -> dict[str, Any]:
    """A 2025-03-31.basil subscription: the period sits on each item."""
    obj = sample("openapi-fixtures-2025-03-31.basil/subscription.json")
    template = obj["items"]["data"][0]
    obj["items"]["data"] = []
    for position, (item_price, quantity) in enumerate(items, start=1):
        item = copy.deepcopy(template)
        item.update(
            id=f"si_{subscription_id}_{position}",
            subscription=subscription_id,
            price=item_price,
            quantity=quantity,
            discounts=[],
            current_period_start=ts("2025-07-01"),
            current_period_end=ts(period_end),
        )
        # The sample's legacy plan carries filler values; a real basil item
        # repeats the price as a plan, which the price must win over.
        item["plan"] = dict(item["plan"], id=item_price["id"])
        obj["items"]["data"].append(item)
    obj.update(
        id=subscription_id,
        customer=customer_id,
        currency=currency,
        status="active",
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        ended_at=None,
        trial_end=None,
        trial_start=None,
        pause_collection=None,
        discounts=[],
        created=ts("2025-01-01"),
        start_date=ts("2025-01-01"),
    )
    obj.update(fields)
    return obj


def customer(customer_id: str, email: str, **fields: Any) -> dict[str, Any]:
    obj = sample("openapi-fixtures-current/customer.json")
    obj.update(
        id=customer_id,
        email=email,
        name=f"Customer {customer_id}",
        currency=None,
        delinquent=False,
        created=ts("2024-12-01"),
        metadata={"tier": "gold"},
    )
    obj.update(fields)
    return obj


def charge(
    charge_id: str,
    customer_id: str,
    amount: int,
    day: str,
    *,
    status: str = "succeeded",
    refunded: int = 0,
    currency: str = "usd",
) -> dict[str, Any]:
    obj = sample("openapi-fixtures-current/charge.json")
    captured = status == "succeeded"
    obj.update(
        id=charge_id,
        customer=customer_id,
        amount=amount,
        amount_captured=amount if captured else 0,
        amount_refunded=refunded,
        captured=captured,
        paid=captured,
        refunded=refunded >= amount,
        status=status,
        currency=currency,
        created=ts(day),
    )
    return obj


def refund(refund_id: str, charge_id: str, amount: int, day: str) -> dict[str, Any]:
    obj = sample("openapi-fixtures-current/refund.json")
    obj.update(
        id=refund_id,
        charge=charge_id,
        amount=amount,
        currency="usd",
        status="succeeded",
        created=ts(day),
    )
    return obj


def coupon(coupon_id: str, duration: str, **fields: Any) -> dict[str, Any]:
    obj = sample("openapi-fixtures-current/coupon.json")
    obj.update(
        id=coupon_id,
        duration=duration,
        duration_in_months=3 if duration == "repeating" else None,
        percent_off=None,
        amount_off=None,
        currency=None,
        applies_to=None,
        currency_options=None,
    )
    obj.update(fields)
    return obj


def product(product_id: str, name: str) -> dict[str, Any]:
    obj = sample("openapi-fixtures-current/product.json")
    obj.update(id=product_id, name=name)
    return obj


def legacy_discount(discount_id: str, coupon_obj: dict[str, Any]) -> dict[str, Any]:
    """A discount as API versions before 2025-09-30.clover send it (`coupon`)."""
    return {
        "id": discount_id,
        "object": "discount",
        "coupon": coupon_obj,
        "start": ts("2025-01-01"),
        "end": None,
    }


def clover_discount(discount_id: str, coupon_obj: dict[str, Any]) -> dict[str, Any]:
    """A discount in the current shape: the coupon under `source.coupon`."""
    obj = sample("openapi-fixtures-current/discount.json")
    obj.update(id=discount_id, start=ts("2025-01-01"), end=None)
    obj["source"] = {"type": "coupon", "coupon": coupon_obj}
    return obj


def fxa_past_due(subscription_id: str, customer_id: str) -> dict[str, Any]:
    """A plan-only subscription (no `price`) with the period on the subscription."""
    obj = sample("fxa/subscription_past_due.json")
    obj.update(
        id=subscription_id,
        customer=customer_id,
        current_period_start=ts("2025-07-01"),
        current_period_end=ts("2025-08-01"),
        created=ts("2025-01-01"),
        start_date=ts("2025-01-01"),
    )
    return obj


def companies() -> list[dict[str, Any]]:
    """Halo companies of the scenario: id, email, domain and traits."""
    rows = [
        ("marts-01", "annual@annual.example", "annual.example", {"mrr": 1234.5}),
        ("marts-02", "quarterly@quarterly.example", "quarterly.example", {}),
        ("marts-03", "weekly@weekly.example", "weekly.example", {}),
        ("marts-04", "amountoff@amountoff.example", "amountoff.example", {}),
        ("marts-05", "yen@yen.example", "yen.example", {}),
        ("marts-06", "trial@trial.example", "trial.example", {}),
        ("marts-07", "multi@multi.example", "multi.example", {}),
        ("marts-08", "pastdue@pastdue.example", "pastdue.example", {}),
        ("marts-09", "cancel@cancel.example", "cancel.example", {}),
        ("marts-10", "deleted@deleted.example", "deleted.example", {}),
        ("marts-11", "void@paused.example", "paused.example", {}),
        ("marts-12", "draft@draft.example", "draft.example", {}),
        ("marts-13", "kwd@kwd.example", "kwd.example", {}),
        ("marts-14", "graduated@tiers.example", "graduated.example", {}),
        ("marts-15", "volume@tiers.example", "volume.example", {}),
        ("marts-16", "seats@seats.example", "seats.example", {}),
        ("marts-17", "metered@metered.example", "metered.example", {}),
        ("marts-18", "once@once.example", "once.example", {}),
        ("marts-19a", "shared@shared.example", "shared.example", {}),
        ("marts-19b", "  SHARED@shared.example ", "other.example", {}),
    ]
    return [
        {"id": company_id, "email": email, "domain": domain, "traits": traits}
        for company_id, email, domain, traits in rows
    ]


def stripe_objects() -> dict[str, list[dict[str, Any]]]:
    """The scenario's raw objects by stripe_raw table."""
    forever_20 = coupon("co_marts_20", "forever", percent_off=20)
    forever_120 = coupon("co_marts_120", "forever", amount_off=12000, currency="usd")
    once_50 = coupon("co_marts_once", "once", percent_off=50)
    tiers = [
        {"up_to": 5, "unit_amount": 700, "unit_amount_decimal": "700",
         "flat_amount": None, "flat_amount_decimal": None},
        {"up_to": None, "unit_amount": 650, "unit_amount_decimal": "650",
         "flat_amount": None, "flat_amount_decimal": None},
    ]

    annual = basil_subscription(
        "sub_marts_01", "cus_marts_01",
        [(price("price_marts_annual", 120000, "year", product="prod_marts_annual"), 3)],
        period_end="2026-01-10",
    )
    # Before basil: the period on the subscription and the single `discount`.
    for item in annual["items"]["data"]:
        item.pop("current_period_start")
        item.pop("current_period_end")
    annual.update(
        current_period_start=ts("2025-01-10"),
        current_period_end=ts("2026-01-10"),
        discount=legacy_discount("di_marts_01", forever_20),
        discounts=["di_marts_01"],
    )

    subscriptions = [
        annual,
        basil_subscription(
            "sub_marts_02", "cus_marts_02",
            [(price("price_marts_quarterly", 30000, "month", interval_count=3), None)],
            period_end="2025-09-01",
        ),
        basil_subscription(
            "sub_marts_03", "cus_marts_03", [(price("price_marts_weekly", 1000, "week"), 1)],
            period_end="2025-07-20",
        ),
        basil_subscription(
            "sub_marts_04", "cus_marts_04", [(price("price_marts_yearly", 120000, "year"), 1)],
            discounts=[clover_discount("di_marts_04", forever_120)],
            period_end="2026-03-01",
        ),
        basil_subscription(
            "sub_marts_05", "cus_marts_05",
            [(price("price_marts_yen", 12000, "year", currency="jpy"), 1)],
            currency="jpy", period_end="2026-02-01",
        ),
        basil_subscription(
            "sub_marts_06", "cus_marts_06", [(price("price_marts_trial", 5000, "month"), 1)],
            status="trialing", trial_start=ts("2025-07-06"), trial_end=ts("2025-07-20"),
            period_end="2025-07-20",
        ),
        basil_subscription(
            "sub_marts_07u", "cus_marts_07u", [(price("price_marts_usd", 5000, "month"), 1)],
        ),
        basil_subscription(
            "sub_marts_07e", "cus_marts_07e",
            [(price("price_marts_eur", 4000, "month", currency="eur"), 1)],
            currency="eur",
        ),
        fxa_past_due("sub_marts_08", "cus_marts_08"),
        basil_subscription(
            "sub_marts_09", "cus_marts_09", [(price("price_marts_cancel", 2000, "month"), 1)],
            cancel_at_period_end=True,
        ),
        basil_subscription(
            "sub_marts_11", "cus_marts_11", [(price("price_marts_void", 3000, "month"), 1)],
            pause_collection={"behavior": "void", "resumes_at": ts("2025-08-01")},
        ),
        basil_subscription(
            "sub_marts_12", "cus_marts_12", [(price("price_marts_draft", 3000, "month"), 1)],
            pause_collection={"behavior": "keep_as_draft", "resumes_at": None},
        ),
        basil_subscription(
            "sub_marts_13", "cus_marts_13",
            [(price("price_marts_kwd", 12345, "month", currency="kwd"), 1)],
            currency="kwd",
        ),
        basil_subscription(
            "sub_marts_14", "cus_marts_14",
            [(price("price_marts_graduated", None, "month", billing_scheme="tiered",
                    tiers_mode="graduated", tiers=tiers), 6)],
        ),
        basil_subscription(
            "sub_marts_15", "cus_marts_15",
            [(price("price_marts_volume", None, "month", billing_scheme="tiered",
                    tiers_mode="volume", tiers=tiers), 6)],
        ),
        basil_subscription(
            "sub_marts_16", "cus_marts_16",
            [(price("price_marts_seats", 1000, "month",
                    transform_quantity={"divide_by": 10, "round": "up"}), 25)],
        ),
        basil_subscription(
            "sub_marts_17", "cus_marts_17",
            [
                (price("price_marts_metered", 5, "month", usage_type="metered"), None),
                (price("price_marts_licensed", 1500, "month"), 1),
            ],
        ),
        basil_subscription(
            "sub_marts_18", "cus_marts_18", [(price("price_marts_once", 10000, "month"), 1)],
            discounts=[legacy_discount("di_marts_18", once_50)],
        ),
        # A status this project does not know yet: the build warns, not fails.
        basil_subscription(
            "sub_marts_unknown", "cus_marts_unmatched",
            [(price("price_marts_unknown", 1000, "month"), 1)],
            status="under_review",
        ),
    ]

    customers = [
        customer("cus_marts_01", "annual@annual.example"),
        customer("cus_marts_02", "Quarterly@Quarterly.example"),
        customer("cus_marts_03", "weekly@weekly.example"),
        customer("cus_marts_04", "amountoff@amountoff.example"),
        customer("cus_marts_05", "yen@yen.example"),
        customer("cus_marts_06", "trial@trial.example"),
        customer("cus_marts_07u", "multi@multi.example"),
        customer("cus_marts_07e", "multi@multi.example"),
        customer("cus_marts_08", "pastdue@pastdue.example", delinquent=True),
        customer("cus_marts_09", "cancel@cancel.example"),
        customer("cus_marts_11", "void@paused.example"),
        customer("cus_marts_12", "draft@draft.example"),
        customer("cus_marts_13", "kwd@kwd.example"),
        customer("cus_marts_14", "graduated@tiers.example"),
        customer("cus_marts_15", "volume@tiers.example"),
        customer("cus_marts_16", "seats@seats.example"),
        customer("cus_marts_17", "metered@metered.example"),
        customer("cus_marts_18", "once@once.example"),
        customer("cus_marts_19", "shared@shared.example"),
        customer("cus_marts_unmatched", "nobody@nowhere.example"),
    ]

    charges = [
        # The previous-month worked example, for the company of cus_marts_01.
        charge("ch_marts_01a", "cus_marts_01", 10000, "2025-06-03", refunded=2000),
        charge("ch_marts_01b", "cus_marts_01", 5000, "2025-05-10", refunded=5000),
        charge("ch_marts_01c", "cus_marts_01", 7000, "2025-06-25", status="failed"),
        charge("ch_marts_01d", "cus_marts_01", 3000, "2025-06-28", status="pending"),
        # A payment after as_of counts nowhere.
        charge("ch_marts_01e", "cus_marts_01", 9900, "2025-07-20"),
        charge("ch_marts_10", "cus_marts_10", 4000, "2024-03-01"),
        # The last charge of cus_marts_03 was refunded in full.
        charge("ch_marts_03a", "cus_marts_03", 1000, "2025-07-01"),
        charge("ch_marts_03b", "cus_marts_03", 1000, "2025-07-08", refunded=1000),
        charge("ch_marts_08", "cus_marts_08", 999, "2025-07-02", status="failed"),
    ]
    refunds = [
        refund("re_marts_01a", "ch_marts_01a", 2000, "2025-06-20"),
        refund("re_marts_01b", "ch_marts_01b", 5000, "2025-06-02"),
        refund("re_marts_03b", "ch_marts_03b", 1000, "2025-07-09"),
    ]
    products = [product("prod_marts_annual", "Annual Plan")]
    return {
        "customers": customers,
        "subscriptions": subscriptions,
        "charges": charges,
        "refunds": refunds,
        "products": products,
        "coupons": [forever_20, forever_120, once_50],
    }


def load(conn: psycopg.Connection) -> None:
    """Write the scenario into the warehouse behind `conn` (autocommit)."""
    for table, objects in stripe_objects().items():
        upsert_objects(conn, table, ACCOUNT_ID, objects, observed_at=OBSERVED_AT)
    deleted = customer("cus_marts_10", "deleted@deleted.example")
    upsert_objects(conn, "customers", ACCOUNT_ID, [deleted], observed_at=OBSERVED_AT, deleted=True)
    for company in companies():
        conn.execute(
            "insert into halo.companies (id, workspace_id, name, domain, email, traits)"
            " values (%s, %s, %s, %s, %s, %s::jsonb)"
            " on conflict (id) do nothing",
            (
                company["id"], WORKSPACE_ID, f"Company {company['id']}",
                company["domain"], company["email"], json.dumps(company["traits"]),
            ),
        )
    set_settings(conn, customer_id_field="email", mrr_mode="stripe_subscription")
    conn.execute(
        "insert into halo.exchange_rates (currency, reporting_currency, rate)"
        " values ('eur', 'usd', 1.1) on conflict (currency, reporting_currency)"
        " do update set rate = excluded.rate"
    )


def set_settings(conn: psycopg.Connection, *, customer_id_field: str, mrr_mode: str) -> None:
    conn.execute(
        "insert into halo.integration_settings (account_id, workspace_id,"
        " customer_id_field, mrr_mode, display_fields, health_statuses, reporting_currency)"
        " values (%s, %s, %s, %s, %s::jsonb, %s::jsonb, 'usd')"
        " on conflict (account_id) do update set"
        " workspace_id = excluded.workspace_id,"
        " customer_id_field = excluded.customer_id_field,"
        " mrr_mode = excluded.mrr_mode,"
        " display_fields = excluded.display_fields,"
        " health_statuses = excluded.health_statuses",
        (
            ACCOUNT_ID, WORKSPACE_ID, customer_id_field, mrr_mode,
            json.dumps(["email", "metadata.tier"]), json.dumps(["active", "past_due"]),
        ),
    )
