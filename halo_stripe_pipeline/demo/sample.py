"""The sample Stripe account of the demo, as plain data.

The account has fixed plans and coupons, and a set of named customers whose
companies the end-to-end tests check by hand. A filler of ordinary customers
comes from a seeded random generator, so one seed always gives the same
account. The emulator still picks its own random object ids.

What localstripe 1.15 can and cannot produce shaped the scenarios:
- A subscription has exactly one item, and neither a subscription nor a
  customer accepts a coupon, so coupons exist only as objects.
- `trialing` and `unpaid` never occur: a subscription created with a trial
  stays `incomplete` without an invoice.
- `past_due` comes from a plan change to another interval that bills a
  declining card. A declined first invoice leaves `incomplete`, and voiding
  that invoice gives `incomplete_expired`.
- Every object's `created` is the wall clock, so nothing is backdated: all
  charges fall in the current month.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEMO_ACCOUNT_ID = "acct_demo"
DEMO_WORKSPACE_ID = "demo"
DEFAULT_CUSTOMER_COUNT = 60


class Scenario(str, enum.Enum):
    """The lifecycle a customer's subscription goes through after it is created."""

    ACTIVE = "active"
    PAST_DUE = "past_due"
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    CANCELED = "canceled"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end"
    CANCEL_AT = "cancel_at"
    TRIAL = "trial"
    NO_SUBSCRIPTION = "no_subscription"


# Scenarios that leave a declining card as the customer's default, so every
# later charge of that customer fails too.
DECLINING_SCENARIOS = frozenset(
    {Scenario.PAST_DUE, Scenario.INCOMPLETE, Scenario.INCOMPLETE_EXPIRED}
)


@dataclass(frozen=True)
class ProductSpec:
    id: str
    name: str


@dataclass(frozen=True)
class PlanSpec:
    """A Stripe plan, with `amount` in the currency's minor unit."""

    id: str
    product_id: str
    nickname: str
    currency: str
    interval: str
    interval_count: int = 1
    amount: int | None = None
    tiers_mode: str | None = None
    tiers: tuple[tuple[int | None, int], ...] = ()

    @property
    def is_tiered(self) -> bool:
        return self.tiers_mode is not None


@dataclass(frozen=True)
class CouponSpec:
    id: str
    duration: str
    percent_off: float | None = None
    amount_off: int | None = None
    currency: str | None = None
    duration_in_months: int | None = None


@dataclass(frozen=True)
class ChargeSpec:
    """A one-off charge, and the amount refunded afterwards (`refund`), if any.

    `step` orders charges in time: charges of step 2 are created at least
    one wall-clock second after those of step 1, which in turn follow every
    subscription's first invoice by at least a second.
    """

    amount: int
    currency: str
    description: str
    declined: bool = False
    refund: int | None = None
    step: int = 1


@dataclass(frozen=True)
class CustomerSpec:
    """One Stripe customer and what the demo does to its subscription.

    `upgrade_plan_id` is the plan a `past_due` subscription moves to;
    `invoice_refund` refunds part or all of the first invoice's charge.
    """

    key: str
    name: str
    email: str | None
    scenario: Scenario
    plan_id: str | None = None
    quantity: int = 1
    upgrade_plan_id: str | None = None
    days: int | None = None
    invoice_refund: int | None = None
    charges: tuple[ChargeSpec, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompanySpec:
    """A Halo company. `stripe_customer_key` names the customer whose id it stores."""

    id: str
    name: str
    email: str | None
    domain: str | None
    shows: str
    traits: Mapping[str, object] = field(default_factory=dict)
    stripe_customer_key: str | None = None
    is_named: bool = False


@dataclass(frozen=True)
class SampleAccount:
    products: tuple[ProductSpec, ...]
    plans: tuple[PlanSpec, ...]
    coupons: tuple[CouponSpec, ...]
    customers: tuple[CustomerSpec, ...]
    companies: tuple[CompanySpec, ...]

    def plan(self, plan_id: str) -> PlanSpec:
        for plan in self.plans:
            if plan.id == plan_id:
                return plan
        raise KeyError(f"no plan `{plan_id}` in the sample account")


PRODUCTS = (
    ProductSpec("demo_starter", "Starter"),
    ProductSpec("demo_team", "Team"),
    ProductSpec("demo_growth", "Growth"),
    ProductSpec("demo_business", "Business"),
    ProductSpec("demo_support", "Priority support"),
    ProductSpec("demo_pro", "Pro"),
    ProductSpec("demo_seats", "Seats"),
)

STARTER_MONTHLY = PlanSpec(
    "demo_starter_monthly_usd", "demo_starter", "Starter monthly", "usd", "month",
    amount=4900,
)
TEAM_MONTHLY = PlanSpec(
    "demo_team_monthly_usd", "demo_team", "Team monthly", "usd", "month",
    amount=9900,
)
GROWTH_QUARTERLY = PlanSpec(
    "demo_growth_quarterly_usd", "demo_growth", "Growth quarterly", "usd", "month",
    interval_count=3, amount=30000,
)
BUSINESS_YEARLY = PlanSpec(
    "demo_business_yearly_usd", "demo_business", "Business yearly", "usd", "year",
    amount=120000,
)
SUPPORT_WEEKLY = PlanSpec(
    "demo_support_weekly_usd", "demo_support", "Support weekly", "usd", "week",
    amount=1000,
)
PRO_MONTHLY_EUR = PlanSpec(
    "demo_pro_monthly_eur", "demo_pro", "Pro monthly (EUR)", "eur", "month",
    amount=7900,
)
PRO_SEMIANNUAL_EUR = PlanSpec(
    "demo_pro_semiannual_eur", "demo_pro", "Pro semiannual (EUR)", "eur", "month",
    interval_count=6, amount=42000,
)
PRO_YEARLY_JPY = PlanSpec(
    "demo_pro_yearly_jpy", "demo_pro", "Pro yearly (JPY)", "jpy", "year",
    amount=12000,
)
# Tiers are (up_to, unit_amount) pairs, and up_to None is the last, open tier.
SEATS_GRADUATED = PlanSpec(
    "demo_seats_graduated_usd", "demo_seats", "Seats graduated", "usd", "month",
    tiers_mode="graduated", tiers=((5, 700), (None, 650)),
)
SEATS_VOLUME = PlanSpec(
    "demo_seats_volume_usd", "demo_seats", "Seats volume", "usd", "month",
    tiers_mode="volume", tiers=((5, 700), (None, 650)),
)

PLANS = (
    STARTER_MONTHLY, TEAM_MONTHLY, GROWTH_QUARTERLY, BUSINESS_YEARLY, SUPPORT_WEEKLY,
    PRO_MONTHLY_EUR, PRO_SEMIANNUAL_EUR, PRO_YEARLY_JPY, SEATS_GRADUATED, SEATS_VOLUME,
)

COUPONS = (
    CouponSpec("demo_launch_20", "forever", percent_off=20.0),
    CouponSpec("demo_loyalty_120_usd", "forever", amount_off=12000, currency="usd"),
    CouponSpec("demo_welcome_10_usd", "once", amount_off=1000, currency="usd"),
    CouponSpec("demo_partner_15", "repeating", percent_off=15.0, duration_in_months=3),
)


def named_customers() -> tuple[CustomerSpec, ...]:
    """Return the customers whose companies the end-to-end tests check by hand."""
    active = Scenario.ACTIVE
    return (
        CustomerSpec(
            "acme", "Acme Analytics", "billing@acme-analytics.example", active,
            BUSINESS_YEARLY.id, quantity=3, metadata={"tier": "enterprise"},
        ),
        CustomerSpec(
            "birchwood", "Birchwood Dental", "ops@birchwood.example", active,
            GROWTH_QUARTERLY.id, metadata={"tier": "mid-market"},
        ),
        CustomerSpec(
            "cobalt", "Cobalt Freight", "accounts@cobalt-freight.example", active,
            SUPPORT_WEEKLY.id,
        ),
        CustomerSpec(
            "dune", "Dune Studio", "finance@dunestudio.example",
            Scenario.CANCEL_AT_PERIOD_END, PRO_MONTHLY_EUR.id, quantity=2,
        ),
        CustomerSpec(
            "ember_jp", "Ember Foods KK", "tokyo@emberfoods.example", active,
            PRO_YEARLY_JPY.id,
        ),
        CustomerSpec(
            "ember_eu", "Ember Foods GmbH", "berlin@emberfoods.example", active,
            PRO_SEMIANNUAL_EUR.id,
        ),
        CustomerSpec(
            "fjord", "Fjord Labs", "billing@fjordlabs.example", Scenario.PAST_DUE,
            STARTER_MONTHLY.id, upgrade_plan_id=GROWTH_QUARTERLY.id,
        ),
        CustomerSpec(
            "granite", "Granite Legal", "it@granitelegal.example", Scenario.INCOMPLETE,
            TEAM_MONTHLY.id,
        ),
        CustomerSpec(
            "harbor", "Harbor Health", "admin@harborhealth.example", Scenario.CANCELED,
            TEAM_MONTHLY.id, invoice_refund=2500,
        ),
        CustomerSpec(
            "iris", "Iris Robotics", "team@irisrobotics.example", Scenario.TRIAL,
            TEAM_MONTHLY.id, days=14,
        ),
        CustomerSpec(
            "juniper", "Juniper Retail", "pay@juniper-retail.example", active,
            STARTER_MONTHLY.id,
            # The fully refunded charge comes last, so it must not be the
            # last payment.
            charges=(
                ChargeSpec(20000, "usd", "Extra storage", refund=5000, step=1),
                ChargeSpec(50000, "usd", "Onboarding package", refund=50000, step=2),
            ),
        ),
        CustomerSpec(
            "kestrel", "Kestrel Energy", "billing@kestrel-energy.example", active,
            SEATS_VOLUME.id, quantity=6,
        ),
        CustomerSpec(
            "lumen", "Lumen Education", "billing@lumen-edu.example", active,
            SEATS_GRADUATED.id, quantity=6,
        ),
        CustomerSpec(
            "maple", "Maple Bakery", "owner@maplebakery.example", Scenario.CANCEL_AT,
            STARTER_MONTHLY.id, days=10,
        ),
        CustomerSpec(
            "northwind", "Northwind", "billing@northwind.example", active,
            TEAM_MONTHLY.id,
        ),
        CustomerSpec(
            "olive", "Olive Media", "accounts@olivemedia.example", active,
            STARTER_MONTHLY.id,
            charges=(ChargeSpec(12000, "usd", "Add-on seats", declined=True),),
        ),
        CustomerSpec(
            "pine", "Pine Outdoor", "billing@pineoutdoor.example", active,
            TEAM_MONTHLY.id,
            charges=(
                ChargeSpec(9900, "usd", "Usage overage", declined=True, step=1),
                ChargeSpec(9900, "usd", "Usage overage, retried", step=2),
            ),
        ),
        CustomerSpec(
            "quartz", "Quartz Consulting", "hello@quartz-consulting.example", active,
            STARTER_MONTHLY.id,
        ),
        CustomerSpec(
            "rowan", "Rowan Architects", "studio@rowan-arch.example",
            Scenario.INCOMPLETE_EXPIRED, TEAM_MONTHLY.id,
        ),
        CustomerSpec(
            "sable", "Sable Events", "events@sable-events.example",
            Scenario.NO_SUBSCRIPTION,
            charges=(ChargeSpec(15000, "usd", "Event sponsorship"),),
        ),
    )


def _named_companies() -> tuple[CompanySpec, ...]:
    def company(
        id: str, name: str, email: str | None, domain: str | None, shows: str,
        traits: Mapping[str, object] | None = None, stripe_customer_key: str | None = None,
    ) -> CompanySpec:
        return CompanySpec(
            id, name, email, domain, shows, traits=traits or {},
            stripe_customer_key=stripe_customer_key, is_named=True,
        )

    return (
        company(
            "demo_acme", "Acme Analytics",
            "billing@acme-analytics.example", "acme-analytics.example",
            "active Business yearly x3: MRR 300.00 USD, annual, renewing; "
            "manual MRR 310.50",
            traits={"mrr": 310.5, "tier": "enterprise"}, stripe_customer_key="acme",
        ),
        company(
            "demo_birchwood", "Birchwood Dental", None, "birchwood.example",
            "matched by domain only: Growth quarterly, MRR 100.00 USD; manual MRR 95",
            traits={"mrr": 95},
        ),
        company(
            "demo_cobalt", "Cobalt Freight",
            "accounts@cobalt-freight.example", "cobalt-freight.example",
            "weekly 10.00 USD: MRR 43.33 USD; no manual MRR trait",
        ),
        company(
            "demo_dune", "Dune Studio", "finance@dunestudio.example", "dunestudio.example",
            "Pro monthly x2 set to cancel at period end: MRR 158.00 EUR, set_to_cancel",
            traits={"mrr": 150},
        ),
        company(
            "demo_ember", "Ember Foods", "tokyo@emberfoods.example", "emberfoods.example",
            "JPY yearly 12,000: MRR 1,000 JPY by email; by domain also Ember GmbH, "
            "70.00 EUR",
            traits={"mrr": 80},
        ),
        company(
            "demo_fjord", "Fjord Labs", "billing@fjordlabs.example", "fjordlabs.example",
            "past_due after a declined plan change: MRR 100.00 USD, payment failing",
        ),
        company(
            "demo_granite", "Granite Legal",
            "it@granitelegal.example", "granitelegal.example",
            "first invoice declined, incomplete: MRR 0, pending",
        ),
        company(
            "demo_harbor", "Harbor Health",
            "admin@harborhealth.example", "harborhealth.example",
            "canceled at once after paying 99.00 and a 25.00 refund: MRR 0, "
            "lifetime 74.00 USD",
            traits={"mrr": 0},
        ),
        company(
            "demo_iris", "Iris Robotics",
            "team@irisrobotics.example", "irisrobotics.example",
            "14-day trial, which localstripe leaves incomplete: MRR 0",
        ),
        company(
            "demo_juniper", "Juniper Retail",
            "  Pay@Juniper-Retail.example ", "juniper-retail.example",
            "email differs in case and spaces; full and partial refunds: "
            "lifetime 199.00 USD",
            traits={"mrr": 60},
        ),
        company(
            "demo_kestrel", "Kestrel Energy",
            "billing@kestrel-energy.example", "kestrel-energy.example",
            "volume tiers, 6 seats: MRR 39.00 USD",
            traits={"mrr": 40},
        ),
        company(
            "demo_lumen", "Lumen Education",
            "billing@lumen-edu.example", "lumen-edu.example",
            "graduated tiers, 6 seats: MRR 41.50 USD (localstripe charged 42.00)",
            traits={"mrr": 45.5},
        ),
        company(
            "demo_maple", "Maple Bakery",
            "owner@maplebakery.example", "maplebakery.example",
            "cancel_at in 10 days: MRR 49.00 USD, set_to_cancel on that date",
            traits={"mrr": 49},
        ),
        company(
            "demo_northwind_a", "Northwind Traders",
            "billing@northwind.example", "northwind.example",
            "conflict: the Northwind customer matches two companies and goes to "
            "this one",
            traits={"mrr": 99},
        ),
        company(
            "demo_northwind_b", "Northwind Holdings",
            "billing@northwind.example", "northwind.example",
            "conflict: loses the Northwind customer to demo_northwind_a",
        ),
        company(
            "demo_olive", "Olive Media",
            "accounts@olivemedia.example", "olivemedia.example",
            "active, latest charge attempt declined: payment failing",
            traits={"mrr": 49},
        ),
        company(
            "demo_pine", "Pine Outdoor",
            "billing@pineoutdoor.example", "pineoutdoor.example",
            "a declined charge then a successful retry: payment at risk",
            traits={"mrr": 120.25},
        ),
        company(
            "demo_rowan", "Rowan Architects",
            "studio@rowan-arch.example", "rowan-arch.example",
            "first invoice declined and voided, incomplete_expired: MRR 0",
        ),
        company(
            "demo_sable", "Sable Events",
            "events@sable-events.example", "sable-events.example",
            "no subscription, one 150.00 USD charge: MRR 0, lifetime 150.00 USD",
            stripe_customer_key="sable",
        ),
        company(
            "demo_tundra", "Tundra Systems", "billing@tundra.example", "tundra.example",
            "no Stripe customer at all: not matched",
        ),
    )


_NAME_PARTS = (
    ("Amber", "Basalt", "Cedar", "Delta", "Echo", "Falcon", "Glacier", "Helix", "Indigo",
     "Jasper", "Kite", "Lagoon", "Meridian", "Nimbus", "Onyx", "Prism", "Quill", "Raven",
     "Summit", "Thistle", "Umber", "Vertex", "Willow", "Zephyr"),
    ("Logistics", "Software", "Clinics", "Media", "Partners", "Robotics", "Foods", "Labs",
     "Travel", "Finance", "Studios", "Systems"),
)

# Filler scenarios with their weights: `active` dominates, as in a real account.
_FILLER_SCENARIOS = (
    (Scenario.ACTIVE, 60), (Scenario.CANCEL_AT_PERIOD_END, 8), (Scenario.CANCELED, 8),
    (Scenario.PAST_DUE, 6), (Scenario.INCOMPLETE, 4), (Scenario.INCOMPLETE_EXPIRED, 3),
    (Scenario.TRIAL, 5), (Scenario.CANCEL_AT, 3), (Scenario.NO_SUBSCRIPTION, 3),
)
_FILLER_PLANS = (
    STARTER_MONTHLY, STARTER_MONTHLY, TEAM_MONTHLY, TEAM_MONTHLY, GROWTH_QUARTERLY,
    BUSINESS_YEARLY, SUPPORT_WEEKLY, PRO_MONTHLY_EUR, PRO_SEMIANNUAL_EUR, PRO_YEARLY_JPY,
    SEATS_VOLUME,
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _filler_customer(rng: random.Random, name: str) -> CustomerSpec:
    slug = _slug(name)
    scenarios, weights = zip(*_FILLER_SCENARIOS)
    scenario = rng.choices(scenarios, weights)[0]
    plan = rng.choice(_FILLER_PLANS)
    quantity = rng.choice((1, 1, 1, 2, 3, 5, 10))
    upgrade = None
    if scenario is Scenario.PAST_DUE:
        # A plan change bills only when the interval changes, and must cost
        # more than the credit for the old plan or the invoice is paid by it.
        plan, upgrade = STARTER_MONTHLY, GROWTH_QUARTERLY.id
    charges: tuple[ChargeSpec, ...] = ()
    if scenario is Scenario.NO_SUBSCRIPTION or rng.random() < 0.25:
        amount = rng.choice((2500, 5000, 12000, 30000))
        if scenario in DECLINING_SCENARIOS:
            charge = ChargeSpec(amount, plan.currency, "One-off services", declined=True)
        else:
            refund = rng.choice((None, None, amount, amount // 2))
            charge = ChargeSpec(amount, plan.currency, "One-off services", refund=refund)
        charges = (charge,)
    return CustomerSpec(
        key=slug,
        name=name,
        email=f"billing@{slug}.example",
        scenario=scenario,
        plan_id=None if scenario is Scenario.NO_SUBSCRIPTION else plan.id,
        quantity=quantity,
        upgrade_plan_id=upgrade,
        days=rng.choice((7, 14, 30)) if scenario in (Scenario.TRIAL, Scenario.CANCEL_AT) else None,
        charges=charges,
        metadata={"tier": rng.choice(("smb", "mid-market", "enterprise"))},
    )


def _filler_company(rng: random.Random, customer: CustomerSpec) -> CompanySpec | None:
    if rng.random() < 0.15:
        return None
    assert customer.email is not None
    traits: dict[str, object] = {"tier": customer.metadata.get("tier", "smb")}
    if rng.random() < 0.5:
        traits["mrr"] = rng.choice((49, 99, 250, 1200))
    return CompanySpec(
        id=f"demo_{customer.key}",
        name=customer.name,
        email=customer.email,
        domain=customer.email.split("@", 1)[1],
        shows="filler",
        traits=traits,
    )


def build_sample(customer_count: int = DEFAULT_CUSTOMER_COUNT, seed: int = 0) -> SampleAccount:
    """Return the sample account: the named customers, then filler up to `customer_count`.

    Raises ValueError when `customer_count` is below the number of named
    customers or above what the filler names can cover.
    """
    named = named_customers()
    filler_count = customer_count - len(named)
    combinations = len(_NAME_PARTS[0]) * len(_NAME_PARTS[1])
    if filler_count < 0:
        raise ValueError(f"--customers must be at least {len(named)}, the named customers")
    if filler_count > combinations:
        raise ValueError(f"--customers must be at most {len(named) + combinations}")

    rng = random.Random(seed)
    pairs = [(first, second) for first in _NAME_PARTS[0] for second in _NAME_PARTS[1]]
    names = [f"{first} {second}" for first, second in rng.sample(pairs, filler_count)]
    filler = [_filler_customer(rng, name) for name in names]
    filler_companies = [_filler_company(rng, customer) for customer in filler]
    return SampleAccount(
        products=PRODUCTS,
        plans=PLANS,
        coupons=COUPONS,
        customers=named + tuple(filler),
        companies=_named_companies() + tuple(c for c in filler_companies if c is not None),
    )
