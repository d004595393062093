"""Create the sample account in a running localstripe through the Stripe API."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from halo_stripe_pipeline.demo.sample import (
    DECLINING_SCENARIOS,
    ChargeSpec,
    CouponSpec,
    CustomerSpec,
    PlanSpec,
    SampleAccount,
    Scenario,
)
from halo_stripe_pipeline.stripe_client import StripeApi, StripeApiError

log = logging.getLogger(__name__)

# Stripe's test card numbers. localstripe 1.15 declines the second one when
# it is charged, not when it is attached.
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"
DAY_SECONDS = 86_400


@dataclass
class PopulatedAccount:
    """The emulator ids of what `populate` created, by sample key."""

    customer_ids: dict[str, str] = field(default_factory=dict)
    subscription_ids: dict[str, str] = field(default_factory=dict)
    charge_ids: dict[str, list[str]] = field(default_factory=dict)
    request_count: int = 0
    seconds: float = 0.0


def populate(api: StripeApi, sample: SampleAccount) -> PopulatedAccount:
    """Create products, plans, coupons, customers, subscriptions and charges.

    Subscriptions come first, then each step of one-off charges at least a
    wall-clock second after the previous one, because localstripe stamps
    `created` with the current second and the payment-health rules depend on
    which charge attempt is the latest.
    """
    started = time.monotonic()
    requests_before = api.request_count
    result = PopulatedAccount()

    _create_catalog(api, sample)
    for customer in sample.customers:
        _create_customer(api, sample, customer, result)
    last_second = int(time.time())

    steps = sorted({charge.step for customer in sample.customers for charge in customer.charges})
    for step in steps:
        _wait_for_next_second(last_second)
        for customer in sample.customers:
            charges = [charge for charge in customer.charges if charge.step == step]
            _create_charges(api, customer, charges, result)
        last_second = int(time.time())

    result.request_count = api.request_count - requests_before
    result.seconds = time.monotonic() - started
    log.info(
        "created %d customers in localstripe with %d requests in %.1fs",
        len(result.customer_ids), result.request_count, result.seconds,
    )
    return result


def _create_catalog(api: StripeApi, sample: SampleAccount) -> None:
    for product in sample.products:
        api.post("/v1/products", {"id": product.id, "name": product.name})
    for plan in sample.plans:
        if plan.is_tiered:
            _post_json(api, "/v1/plans", _plan_params(plan))
        else:
            api.post("/v1/plans", _plan_params(plan))
    for coupon in sample.coupons:
        api.post("/v1/coupons", _coupon_params(coupon))


def _plan_params(plan: PlanSpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "id": plan.id,
        "product": plan.product_id,
        "nickname": plan.nickname,
        "currency": plan.currency,
        "interval": plan.interval,
        "interval_count": plan.interval_count,
    }
    if plan.is_tiered:
        # localstripe needs every tier key present, flat_amount included.
        params["billing_scheme"] = "tiered"
        params["tiers_mode"] = plan.tiers_mode
        params["tiers"] = [
            {"up_to": "inf" if up_to is None else up_to, "unit_amount": unit, "flat_amount": 0}
            for up_to, unit in plan.tiers
        ]
    else:
        params["amount"] = plan.amount
    return params


def _post_json(api: StripeApi, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """POST a JSON body, which localstripe accepts besides the form encoding.

    localstripe stores form-encoded tiers as they arrive, as strings, where
    Stripe returns numbers. A JSON body keeps `up_to` and the amounts numeric.
    """
    response = httpx.post(
        f"{api.api_base}{path}", json=params, auth=(api.api_key, ""), timeout=30
    )
    response.raise_for_status()
    api.request_count += 1
    return dict(response.json())


def _coupon_params(coupon: CouponSpec) -> dict[str, Any]:
    params: dict[str, Any] = {"id": coupon.id, "duration": coupon.duration}
    if coupon.percent_off is not None:
        params["percent_off"] = coupon.percent_off
    if coupon.amount_off is not None:
        params["amount_off"] = coupon.amount_off
        params["currency"] = coupon.currency
    if coupon.duration_in_months is not None:
        params["duration_in_months"] = coupon.duration_in_months
    return params


def _card(api: StripeApi, number: str) -> str:
    card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    return str(api.post("/v1/payment_methods", {"type": "card", "card": card})["id"])


def _create_customer(
    api: StripeApi, sample: SampleAccount, spec: CustomerSpec, result: PopulatedAccount
) -> None:
    declines_first_invoice = spec.scenario in (Scenario.INCOMPLETE, Scenario.INCOMPLETE_EXPIRED)
    payment_method = _card(api, DECLINED_CARD if declines_first_invoice else GOOD_CARD)
    params: dict[str, Any] = {
        "name": spec.name,
        "payment_method": payment_method,
        "invoice_settings": {"default_payment_method": payment_method},
    }
    if spec.email is not None:
        params["email"] = spec.email
    if spec.metadata:
        params["metadata"] = dict(spec.metadata)
    customer_id = str(api.post("/v1/customers", params)["id"])
    result.customer_ids[spec.key] = customer_id

    if spec.scenario is not Scenario.NO_SUBSCRIPTION:
        subscription = _create_subscription(api, sample, spec, customer_id)
        result.subscription_ids[spec.key] = str(subscription["id"])


def _create_subscription(
    api: StripeApi, sample: SampleAccount, spec: CustomerSpec, customer_id: str
) -> dict[str, Any]:
    if spec.plan_id is None:
        raise ValueError(f"customer `{spec.key}` has scenario {spec.scenario.value} but no plan")
    params: dict[str, Any] = {
        "customer": customer_id,
        "items": [{"plan": spec.plan_id, "quantity": spec.quantity}],
    }
    now = int(time.time())
    if spec.scenario is Scenario.TRIAL:
        params["trial_end"] = now + (spec.days or 14) * DAY_SECONDS
    subscription = api.post("/v1/subscriptions", params)
    subscription_id = subscription["id"]

    if spec.invoice_refund:
        invoice = api.get(f"/v1/invoices/{subscription['latest_invoice']}")
        api.post("/v1/refunds", {"charge": _charge_id(invoice), "amount": spec.invoice_refund})

    if spec.scenario is Scenario.PAST_DUE:
        subscription = _fail_plan_change(api, sample, spec, customer_id, subscription)
    elif spec.scenario is Scenario.INCOMPLETE_EXPIRED:
        api.post(f"/v1/invoices/{subscription['latest_invoice']}/void", {})
    elif spec.scenario is Scenario.CANCELED:
        subscription = api.delete(f"/v1/subscriptions/{subscription_id}")
    elif spec.scenario is Scenario.CANCEL_AT_PERIOD_END:
        subscription = api.post(
            f"/v1/subscriptions/{subscription_id}", {"cancel_at_period_end": True}
        )
    elif spec.scenario is Scenario.CANCEL_AT:
        cancel_at = now + (spec.days or 30) * DAY_SECONDS
        subscription = api.post(f"/v1/subscriptions/{subscription_id}", {"cancel_at": cancel_at})
    return subscription


def _charge_id(invoice: dict[str, Any]) -> str:
    # localstripe returns the invoice's charge as an object, Stripe as an id.
    charge = invoice.get("charge")
    if isinstance(charge, dict):
        return str(charge["id"])
    if isinstance(charge, str):
        return charge
    raise ValueError(f"invoice `{invoice.get('id')}` has no charge to refund")


def _fail_plan_change(
    api: StripeApi,
    sample: SampleAccount,
    spec: CustomerSpec,
    customer_id: str,
    subscription: dict[str, Any],
) -> dict[str, Any]:
    """Swap in a declining card, then change plan so the next invoice fails.

    localstripe bills a plan change only when the interval or its count
    changes, and marks the subscription `past_due` when that charge fails.
    """
    if spec.upgrade_plan_id is None:
        raise ValueError(f"customer `{spec.key}` is past_due but has no upgrade plan")
    old_plan = sample.plan(spec.plan_id or "")
    new_plan = sample.plan(spec.upgrade_plan_id)
    if (old_plan.interval, old_plan.interval_count) == (new_plan.interval, new_plan.interval_count):
        raise ValueError(f"customer `{spec.key}`: the upgrade plan must change the interval")

    declined = _card(api, DECLINED_CARD)
    api.post(f"/v1/payment_methods/{declined}/attach", {"customer": customer_id})
    api.post(f"/v1/customers/{customer_id}", {"invoice_settings": {"default_payment_method": declined}})
    item_id = subscription["items"]["data"][0]["id"]
    item = {"id": item_id, "plan": new_plan.id, "quantity": spec.quantity}
    updated = api.post(f"/v1/subscriptions/{subscription['id']}", {"items": [item]})
    if updated.get("status") != "past_due":
        raise RuntimeError(
            f"subscription `{subscription['id']}` of `{spec.key}` is {updated.get('status')} "
            "after the declined plan change, expected past_due"
        )
    return updated


def _create_charges(
    api: StripeApi, spec: CustomerSpec, charges: Iterable[ChargeSpec], result: PopulatedAccount
) -> None:
    customer_id = result.customer_ids[spec.key]
    for charge in charges:
        if spec.scenario in DECLINING_SCENARIOS and not charge.declined:
            raise ValueError(
                f"customer `{spec.key}` pays with a declining card, so its charge "
                f"`{charge.description}` must be declined too"
            )
        params: dict[str, Any] = {
            "customer": customer_id,
            "amount": charge.amount,
            "currency": charge.currency,
            "description": charge.description,
        }
        if charge.declined:
            declined = _card(api, DECLINED_CARD)
            api.post(f"/v1/payment_methods/{declined}/attach", {"customer": customer_id})
            params["source"] = declined
            charge_id = _create_declined_charge(api, params)
        else:
            charge_id = str(api.post("/v1/charges", params)["id"])
        result.charge_ids.setdefault(spec.key, []).append(charge_id)
        if charge.refund:
            api.post("/v1/refunds", {"charge": charge_id, "amount": charge.refund})


def _create_declined_charge(api: StripeApi, params: dict[str, Any]) -> str:
    """Create a charge that the card declines and return its id.

    localstripe returns 402 but keeps the charge, with status `failed`.
    """
    try:
        api.post("/v1/charges", params)
    except StripeApiError as error:
        if error.code != "card_declined":
            raise
    else:
        raise RuntimeError(f"the charge of customer `{params['customer']}` was not declined")
    failed = api.get("/v1/charges", {"customer": params["customer"], "limit": 100})["data"]
    declined = [charge for charge in failed if charge.get("status") == "failed"]
    return str(declined[-1]["id"])


def _wait_for_next_second(after: int) -> None:
    while int(time.time()) <= after:
        time.sleep(0.05)
