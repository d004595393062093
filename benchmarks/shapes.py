"""Stripe object shapes for the generated benchmark account.

The keys follow Stripe's current API shape (basil and later): subscription
periods on the items, items carrying both `price` and the legacy `plan`,
invoices linked through `parent.subscription_details`, charges without
`invoice`. Values are plausible rather than copied, and each builder takes
every varying value as an argument so the generator alone owns randomness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACCOUNT_COUNTRY = "US"

INTERVAL_MONTHS = {"month": 1, "quarter": 3, "year": 12}


@dataclass(frozen=True)
class Price:
    id: str
    product_id: str
    currency: str
    unit_amount: int
    interval: str  # month, quarter (month x3) or year
    created: int
    nickname: str

    @property
    def stripe_interval(self) -> tuple[str, int]:
        """Return Stripe's (`interval`, `interval_count`) pair."""
        if self.interval == "quarter":
            return "month", 3
        return self.interval, 1


def product_object(
    product_id: str, name: str, created: int, default_price: str
) -> dict[str, Any]:
    return {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": created,
        "default_price": default_price,
        "description": f"{name} plan",
        "images": [],
        "livemode": True,
        "marketing_features": [],
        "metadata": {"family": name.split()[0].lower()},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": "seat",
        "updated": created,
        "url": None,
    }


def price_object(price: Price) -> dict[str, Any]:
    interval, interval_count = price.stripe_interval
    return {
        "id": price.id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": price.created,
        "currency": price.currency,
        "custom_unit_amount": None,
        "livemode": True,
        "lookup_key": None,
        "metadata": {},
        "nickname": price.nickname,
        "product": price.product_id,
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "exclusive",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": price.unit_amount,
        "unit_amount_decimal": str(price.unit_amount),
    }


def plan_object(price: Price) -> dict[str, Any]:
    """Build the legacy `plan` that Stripe still embeds beside each item's `price`."""
    interval, interval_count = price.stripe_interval
    return {
        "id": price.id,
        "object": "plan",
        "active": True,
        "amount": price.unit_amount,
        "amount_decimal": str(price.unit_amount),
        "billing_scheme": "per_unit",
        "created": price.created,
        "currency": price.currency,
        "interval": interval,
        "interval_count": interval_count,
        "livemode": True,
        "metadata": {},
        "meter": None,
        "nickname": price.nickname,
        "product": price.product_id,
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def customer_object(
    customer_id: str,
    created: int,
    email: str,
    name: str,
    currency: str,
    country: str,
    tier: str,
    delinquent: bool,
    invoice_prefix: str,
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "address": {
            "city": None,
            "country": country,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "balance": 0,
        "created": created,
        "currency": currency,
        "default_source": None,
        "delinquent": delinquent,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": True,
        "metadata": {"tier": tier},
        "name": name,
        "next_invoice_sequence": 2,
        "phone": None,
        "preferred_locales": ["en"],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def subscription_item_object(
    item_id: str,
    subscription_id: str,
    price: Price,
    quantity: int,
    created: int,
    period_start: int,
    period_end: int,
) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period_end,
        "current_period_start": period_start,
        "discounts": [],
        "metadata": {},
        "plan": plan_object(price),
        "price": price_object(price),
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


@dataclass(frozen=True)
class SubscriptionState:
    status: str
    created: int
    start_date: int
    billing_cycle_anchor: int
    cancel_at_period_end: bool
    canceled_at: int | None
    ended_at: int | None
    trial_start: int | None
    trial_end: int | None


def subscription_object(
    subscription_id: str,
    customer_id: str,
    currency: str,
    state: SubscriptionState,
    items: list[dict[str, Any]],
    embedded_item_limit: int,
    latest_invoice: str | None,
) -> dict[str, Any]:
    """Build a subscription as a list page shows it: at most
    `embedded_item_limit` items embedded, `has_more` when there are more."""
    embedded = items[:embedded_item_limit]
    single = items[0] if len(items) == 1 else None
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": state.billing_cycle_anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic"},
        "billing_thresholds": None,
        "cancel_at": state.ended_at if state.cancel_at_period_end else None,
        "cancel_at_period_end": state.cancel_at_period_end,
        "canceled_at": state.canceled_at,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested" if state.canceled_at else None,
        },
        "collection_method": "charge_automatically",
        "created": state.created,
        "currency": currency,
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": state.ended_at if state.status == "canceled" else None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": embedded,
            "has_more": len(items) > len(embedded),
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": latest_invoice,
        "livemode": True,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": (
            {"behavior": "void", "resumes_at": None}
            if state.status == "paused"
            else None
        ),
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "plan": single["plan"] if single else None,
        "quantity": single["quantity"] if single else None,
        "schedule": None,
        "start_date": state.start_date,
        "status": state.status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": state.trial_end,
        "trial_settings": {
            "end_behavior": {"missing_payment_method": "create_invoice"}
        },
        "trial_start": state.trial_start,
    }


@dataclass(frozen=True)
class ChargeFacts:
    charge_id: str
    customer_id: str
    created: int
    amount: int
    currency: str
    failed: bool
    amount_refunded: int
    payment_intent: str
    card_last4: str
    card_brand: str
    description: str


def charge_object(facts: ChargeFacts) -> dict[str, Any]:
    succeeded = not facts.failed
    return {
        "id": facts.charge_id,
        "object": "charge",
        "amount": facts.amount,
        "amount_captured": facts.amount if succeeded else 0,
        "amount_refunded": facts.amount_refunded,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": ("txn_" + facts.charge_id[3:]) if succeeded else None,
        "billing_details": {
            "address": {
                "city": None,
                "country": ACCOUNT_COUNTRY,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "HALO BENCH",
        "captured": succeeded,
        "created": facts.created,
        "currency": facts.currency,
        "customer": facts.customer_id,
        "description": facts.description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": "card_declined" if facts.failed else None,
        "failure_message": "Your card was declined." if facts.failed else None,
        "fraud_details": {},
        "livemode": True,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "declined_by_network"
            if facts.failed
            else "approved_by_network",
            "reason": "generic_decline" if facts.failed else None,
            "risk_level": "normal",
            "seller_message": (
                "The bank did not return any further details with this decline."
                if facts.failed
                else "Payment complete."
            ),
            "type": "issuer_declined" if facts.failed else "authorized",
        },
        "paid": succeeded,
        "payment_intent": facts.payment_intent,
        "payment_method": "pm_" + facts.charge_id[3:],
        "payment_method_details": {
            "card": {
                "amount_authorized": facts.amount if succeeded else None,
                "brand": facts.card_brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": ACCOUNT_COUNTRY,
                "exp_month": 8,
                "exp_year": 2030,
                "fingerprint": "fp" + facts.customer_id[-14:],
                "funding": "credit",
                "last4": facts.card_last4,
                "network": facts.card_brand,
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": facts.amount_refunded >= facts.amount and facts.amount_refunded > 0,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "failed" if facts.failed else "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund_object(
    refund_id: str, charge: ChargeFacts, amount: int, created: int
) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_" + refund_id[3:],
        "charge": charge.charge_id,
        "created": created,
        "currency": charge.currency,
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": {},
        "payment_intent": charge.payment_intent,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


@dataclass(frozen=True)
class InvoiceFacts:
    invoice_id: str
    number: str
    customer: dict[str, Any]
    subscription_id: str
    item: dict[str, Any]
    created: int
    period_start: int
    period_end: int
    amount: int
    paid: bool


def invoice_object(facts: InvoiceFacts) -> dict[str, Any]:
    item = facts.item
    price = item["price"]
    status = "paid" if facts.paid else "open"
    line = {
        "id": "il_" + facts.invoice_id[3:],
        "object": "line_item",
        "amount": facts.amount,
        "currency": price["currency"],
        "description": f"{item['quantity']} seat x {price['nickname']}",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": facts.invoice_id,
        "livemode": True,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": facts.subscription_id,
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": facts.period_end, "start": facts.period_start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "taxes": [],
    }
    return {
        "id": facts.invoice_id,
        "object": "invoice",
        "account_country": ACCOUNT_COUNTRY,
        "account_name": "Halo Bench Inc.",
        "amount_due": facts.amount,
        "amount_overpaid": 0,
        "amount_paid": facts.amount if facts.paid else 0,
        "amount_remaining": 0 if facts.paid else facts.amount,
        "amount_shipping": 0,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": not facts.paid,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": facts.created,
        "currency": price["currency"],
        "customer": facts.customer["id"],
        "customer_email": facts.customer["email"],
        "customer_name": facts.customer["name"],
        "customer_tax_exempt": "none",
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": facts.created,
        "ending_balance": 0,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "lines": {
            "object": "list",
            "data": [line],
            "has_more": False,
            "total_count": 1,
            "url": f"/v1/invoices/{facts.invoice_id}/lines",
        },
        "livemode": True,
        "metadata": {},
        "number": facts.number,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": {},
                "subscription": facts.subscription_id,
            },
            "type": "subscription_details",
        },
        "period_end": facts.period_end,
        "period_start": facts.period_start,
        "starting_balance": 0,
        "status": status,
        "status_transitions": {
            "finalized_at": facts.created,
            "marked_uncollectible_at": None,
            "paid_at": facts.created if facts.paid else None,
            "voided_at": None,
        },
        "subtotal": facts.amount,
        "subtotal_excluding_tax": facts.amount,
        "total": facts.amount,
        "total_discount_amounts": [],
        "total_excluding_tax": facts.amount,
        "total_taxes": [],
    }


def coupon_object(
    coupon_id: str, percent_off: int, duration: str, created: int
) -> dict[str, Any]:
    return {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": None,
        "created": created,
        "currency": None,
        "duration": duration,
        "duration_in_months": 3 if duration == "repeating" else None,
        "livemode": True,
        "max_redemptions": None,
        "metadata": {},
        "name": f"{percent_off}% off",
        "percent_off": float(percent_off),
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }


def account_object(account_id: str, created: int) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "business_profile": {"name": "Halo Bench Inc.", "url": None},
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "country": ACCOUNT_COUNTRY,
        "created": created,
        "default_currency": "usd",
        "details_submitted": True,
        "email": None,
        "metadata": {},
        "payouts_enabled": True,
        "settings": {
            "dashboard": {"display_name": "Halo Bench", "timezone": "Etc/UTC"}
        },
        "type": "standard",
    }
