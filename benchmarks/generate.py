"""Generate a realistic Stripe account of N customers into one SQLite file.

The account is a pure function of (customers, seed): the same pair always
yields the same ids, timestamps and amounts, so a file generated once under
`benchmarks/data/` is reused by every run. Per customer there are on average
1.5 subscriptions and 12 charges. About 4% of the successful charges are
refunded, and about a quarter of the subscription charges have an invoice.

Objects are stored per type in list order (newest first, ties by id
descending) with `seq` 1 for the newest, which is what the stand-in serves.
Many objects share one `created` second on purpose. 5% of the customers come
from one import second, and the catalog shares one second. A fifth of the
subscriptions bill at 00:00:00 UTC on the first of the month, where their
charges and invoices pile up.

Run `python -m benchmarks.generate --customers 10000` to write a file ahead.
"""

from __future__ import annotations

import argparse
import calendar
import logging
import os
import random
import sqlite3
import string
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from benchmarks import shapes

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2"
DATA_DIR = Path(__file__).resolve().parent / "data"

LISTED_TYPES = (
    "customers",
    "subscriptions",
    "charges",
    "refunds",
    "invoices",
    "prices",
    "products",
    "plans",
    "coupons",
)

ACCOUNT_START = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp())
ACCOUNT_END = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp())
DAY = 86_400
INTERVAL_SECONDS = {"month": 2_629_746, "quarter": 7_889_238, "year": 31_556_952}

# Stripe embeds at most 10 items in a subscription of a list page.
EMBEDDED_ITEM_LIMIT = 10

CORE_PLANS = (
    ("Starter", 900),
    ("Team", 2900),
    ("Business", 7900),
    ("Enterprise", 24900),
)
ADD_ONS = (
    "Analytics",
    "Priority support",
    "SSO",
    "Audit log",
    "Sandbox",
    "Data export",
    "Salesforce connector",
    "HubSpot connector",
    "Slack connector",
    "Extra storage",
    "API calls pack",
    "Custom domain",
    "Onboarding",
    "Training seats",
)
CURRENCY_WEIGHTS = (("usd", 80), ("eur", 12), ("gbp", 6), ("jpy", 2))
# Price level of each currency relative to the USD amounts (JPY is zero-decimal).
CURRENCY_FACTOR = {"usd": 1.0, "eur": 0.95, "gbp": 0.8, "jpy": 1.5}
ACTIVE_STATUS_WEIGHTS = (
    ("active", 85),
    ("past_due", 5),
    ("trialing", 4),
    ("unpaid", 2),
    ("paused", 2),
    ("incomplete", 2),
)
FIRST_NAMES = (
    "ada",
    "ben",
    "chen",
    "dana",
    "eli",
    "fatima",
    "gus",
    "hana",
    "ivan",
    "jo",
    "kai",
    "lena",
)
LAST_NAMES = (
    "ng",
    "okafor",
    "smith",
    "garcia",
    "kim",
    "novak",
    "haddad",
    "berg",
    "rossi",
    "ito",
)
COMPANY_WORDS = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "vandelay",
    "stark",
    "wayne",
    "tyrell",
)

_ID_ALPHABET = string.ascii_letters + string.digits


def data_path(customers: int, seed: int, data_dir: Path = DATA_DIR) -> Path:
    return data_dir / f"account-{customers}-seed{seed}-v{GENERATOR_VERSION}.sqlite"


def ensure_account(customers: int, seed: int = 1, data_dir: Path = DATA_DIR) -> Path:
    """Return the account file for (customers, seed), generating it if missing."""
    path = data_path(customers, seed, data_dir)
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".partial-{os.getpid()}")
    started = time.monotonic()
    log.info(
        "generating an account of %d customers (seed %d) into %s", customers, seed, path
    )
    try:
        AccountWriter(partial, customers, seed).write()
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
        Path(f"{partial}-staging").unlink(missing_ok=True)
    log.info("generated %s in %.1fs", path.name, time.monotonic() - started)
    return path


def _month_starts() -> list[int]:
    starts = []
    year, month = 2023, 1
    while True:
        ts = calendar.timegm((year, month, 1, 0, 0, 0))
        if ts > ACCOUNT_END:
            return starts
        starts.append(ts)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


class IdMaker:
    """Stripe-looking ids that are unique by construction: a per-prefix
    counter in base 62, then random characters from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._counters: dict[str, int] = {}

    def make(self, prefix: str, tail: int = 16) -> str:
        number = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = number
        digits = []
        for _ in range(6):
            number, remainder = divmod(number, 62)
            digits.append(_ID_ALPHABET[remainder])
        random_tail = "".join(self._rng.choices(_ID_ALPHABET, k=tail))
        return f"{prefix}_1{''.join(reversed(digits))}{random_tail}"


@dataclass
class PlannedSubscription:
    id: str
    state: shapes.SubscriptionState
    items: list[dict[str, Any]]
    currency: str
    renewals: list[int]
    batch_billed: bool
    latest_invoice: str | None = None
    amount: int = 0


@dataclass
class Catalog:
    prices: list[shapes.Price] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    core: dict[tuple[str, str], list[shapes.Price]] = field(default_factory=dict)
    add_ons: dict[tuple[str, str], list[shapes.Price]] = field(default_factory=dict)


class AccountWriter:
    """Write one generated account into a fresh SQLite file at `path`."""

    def __init__(self, path: Path, customers: int, seed: int) -> None:
        self.path = path
        self.customers = customers
        self.rng = random.Random(seed)
        self.ids = IdMaker(self.rng)
        self.seed = seed
        self.month_starts = _month_starts()
        self.account_id = "acct_" + "".join(self.rng.choices(_ID_ALPHABET, k=16))
        self.import_second = ACCOUNT_START + 200 * DAY + 43_200
        self.invoice_counter: dict[str, int] = {}

    def write(self) -> None:
        self.path.unlink(missing_ok=True)
        staging_path = Path(f"{self.path}-staging")
        staging_path.unlink(missing_ok=True)
        conn = sqlite3.connect(self.path)
        conn.execute("pragma journal_mode = off")
        conn.execute("pragma synchronous = off")
        conn.execute("attach database ? as staging", (str(staging_path),))
        conn.execute("pragma staging.journal_mode = off")
        conn.execute("pragma staging.synchronous = off")
        _create_tables(conn)

        catalog = self._catalog()
        self._stage(
            conn,
            "products",
            ((p["id"], p["created"], None, p) for p in catalog.products),
        )
        self._stage(
            conn,
            "prices",
            ((p.id, p.created, None, shapes.price_object(p)) for p in catalog.prices),
        )
        # Stripe lists every recurring price as a legacy plan too.
        self._stage(
            conn,
            "plans",
            ((p.id, p.created, None, shapes.plan_object(p)) for p in catalog.prices),
        )
        self._stage(conn, "coupons", self._coupons())
        self._write_customers(conn, catalog)

        counts = {name: _order_into_final(conn, name) for name in LISTED_TYPES}
        conn.execute(
            "create index subscription_items_subscription on subscription_items (subscription, seq)"
        )
        conn.commit()

        conn.execute("detach database staging")
        staging_path.unlink(missing_ok=True)
        self._write_meta(conn, counts)
        conn.commit()
        conn.close()

    def _write_meta(self, conn: sqlite3.Connection, counts: dict[str, int]) -> None:
        items = conn.execute("select count(*) from subscription_items").fetchone()[0]
        companies = conn.execute("select count(*) from companies").fetchone()[0]
        meta = {
            "generator_version": GENERATOR_VERSION,
            "customers": self.customers,
            "seed": self.seed,
            "account_id": self.account_id,
            "account": shapes.account_object(self.account_id, ACCOUNT_START - 30 * DAY),
            "counts": counts,
            "subscription_items": items,
            "companies": companies,
            "created_range": [ACCOUNT_START, ACCOUNT_END],
        }
        conn.executemany(
            "insert into meta (key, value) values (?, ?)",
            [(key, orjson.dumps(value)) for key, value in meta.items()],
        )

    def _catalog(self) -> Catalog:
        catalog = Catalog()
        catalog_second = ACCOUNT_START + 3_600
        for name, base_amount in CORE_PLANS:
            self._add_product(catalog, name, base_amount, catalog_second, core=True)
        for number, name in enumerate(ADD_ONS):
            amount = 500 + 250 * (number % 6)
            created = catalog_second + DAY * (1 + number * 17)
            self._add_product(catalog, f"{name} add-on", amount, created, core=False)
        return catalog

    def _coupons(self) -> list[tuple[str, int, None, dict[str, Any]]]:
        coupons = []
        for number, (percent_off, duration) in enumerate(
            (
                (10, "forever"),
                (20, "once"),
                (25, "repeating"),
                (50, "once"),
                (15, "forever"),
            )
        ):
            coupon_id = f"BENCH{percent_off}{duration[:3].upper()}"
            created = ACCOUNT_START + DAY * (30 + 90 * number)
            coupons.append(
                (
                    coupon_id,
                    created,
                    None,
                    shapes.coupon_object(coupon_id, percent_off, duration, created),
                )
            )
        return coupons

    def _add_product(
        self, catalog: Catalog, name: str, base_amount: int, created: int, core: bool
    ) -> None:
        product_id = self.ids.make("prod", 8)
        product_prices = []
        variants = [
            (currency, interval)
            for interval in ("month", "quarter", "year")
            for currency in ["usd"]
        ]
        if core or name.startswith(("Analytics", "Priority")):
            variants += [(c, i) for c in ("eur", "gbp") for i in ("month", "year")]
        if name == "Team":
            variants.append(("jpy", "month"))
        for currency, interval in variants:
            months = shapes.INTERVAL_MONTHS[interval]
            discount = 0.85 if interval == "year" else 1.0
            amount = int(base_amount * months * discount * CURRENCY_FACTOR[currency])
            if currency == "jpy":
                amount = round(amount / 10) * 10
            price = shapes.Price(
                id=self.ids.make("price", 16),
                product_id=product_id,
                currency=currency,
                unit_amount=amount,
                interval=interval,
                created=created,
                nickname=f"{name} {interval}ly {currency.upper()}",
            )
            product_prices.append(price)
            catalog.prices.append(price)
            bucket = catalog.core if core else catalog.add_ons
            bucket.setdefault((currency, interval), []).append(price)
        catalog.products.append(
            shapes.product_object(product_id, name, created, product_prices[0].id)
        )

    def _write_customers(self, conn: sqlite3.Connection, catalog: Catalog) -> None:
        rows: dict[str, list[tuple[str, int, str | None, dict[str, Any]]]] = {
            name: []
            for name in ("customers", "subscriptions", "charges", "refunds", "invoices")
        }
        item_rows: list[tuple[str, str, int, bytes]] = []
        company_rows: list[tuple[str, str, str, str, str | None]] = []
        for number in range(1, self.customers + 1):
            self._plan_customer(number, catalog, rows, item_rows, company_rows)
            if number % 2_000 == 0 or number == self.customers:
                for name, batch in rows.items():
                    self._stage(conn, name, batch)
                    batch.clear()
                conn.executemany(
                    "insert into subscription_items (id, subscription, created, body)"
                    " values (?, ?, ?, ?)",
                    item_rows,
                )
                conn.executemany(
                    "insert into companies (id, name, domain, email, stripe_customer_id)"
                    " values (?, ?, ?, ?, ?)",
                    company_rows,
                )
                item_rows.clear()
                company_rows.clear()

    def _plan_customer(
        self,
        number: int,
        catalog: Catalog,
        rows: dict[str, list[tuple[str, int, str | None, dict[str, Any]]]],
        item_rows: list[tuple[str, str, int, bytes]],
        company_rows: list[tuple[str, str, str, str, str | None]],
    ) -> None:
        rng = self.rng
        customer_id = self.ids.make("cus", 8)
        if rng.random() < 0.05:
            created = self.import_second
        else:
            created = ACCOUNT_START + rng.randrange(
                ACCOUNT_END - ACCOUNT_START - 40 * DAY
            )
        currency = _weighted(rng, CURRENCY_WEIGHTS)
        company_word = COMPANY_WORDS[number % len(COMPANY_WORDS)]
        domain = f"{company_word}{number}.example.com"
        email = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}@{domain}"
        customer = shapes.customer_object(
            customer_id=customer_id,
            created=created,
            email=email,
            name=f"{company_word.title()} {number}",
            currency=currency,
            country={"usd": "US", "eur": "DE", "gbp": "GB", "jpy": "JP"}[currency],
            tier=rng.choice(("smb", "smb", "mid", "enterprise")),
            delinquent=rng.random() < 0.04,
            invoice_prefix=customer_id[-8:].upper(),
        )
        rows["customers"].append((customer_id, created, None, customer))
        if rng.random() < 0.8:
            company_rows.append(
                (
                    f"co_{number}",
                    customer["name"],
                    domain,
                    email,
                    customer_id if rng.random() < 0.1 else None,
                )
            )

        subscriptions = [
            self._plan_subscription(customer_id, created, currency, catalog)
            for _ in range(_weighted(rng, ((0, 10), (1, 40), (2, 40), (3, 10))))
        ]
        self._plan_payments(customer, subscriptions, rows)
        for subscription in subscriptions:
            body = shapes.subscription_object(
                subscription.id,
                customer_id,
                subscription.currency,
                subscription.state,
                subscription.items,
                EMBEDDED_ITEM_LIMIT,
                subscription.latest_invoice,
            )
            rows["subscriptions"].append(
                (
                    subscription.id,
                    subscription.state.created,
                    subscription.state.status,
                    body,
                )
            )
            for item in subscription.items:
                item_rows.append(
                    (item["id"], subscription.id, item["created"], orjson.dumps(item))
                )

    def _plan_subscription(
        self, customer_id: str, customer_created: int, currency: str, catalog: Catalog
    ) -> PlannedSubscription:
        rng = self.rng
        interval = _weighted(rng, (("month", 70), ("quarter", 10), ("year", 20)))
        core = catalog.core.get((currency, interval))
        if not core:
            currency, core = "usd", catalog.core[("usd", interval)]
        prices = [rng.choice(core)]
        extra = _weighted(rng, ((0, 850), (1, 100), (2, 47), (12, 3)))
        if extra:
            add_ons = catalog.add_ons.get((currency, interval), [])
            if len(add_ons) < extra:
                currency, core = "usd", catalog.core[("usd", interval)]
                prices = [rng.choice(core)]
                add_ons = catalog.add_ons[("usd", interval)]
            prices += rng.sample(add_ons, extra)

        status = (
            "canceled" if rng.random() < 0.3 else _weighted(rng, ACTIVE_STATUS_WEIGHTS)
        )
        latest_start = ACCOUNT_END - DAY
        if status == "trialing":
            created = ACCOUNT_END - rng.randrange(DAY, 13 * DAY)
        else:
            created = min(customer_created + rng.randrange(30 * DAY), latest_start)
        batch_billed = rng.random() < 0.2 and status != "trialing"
        ended_at = None
        if status == "canceled":
            ended_at = created + rng.randrange(max(ACCOUNT_END - created, 2))
        last = ended_at if ended_at is not None else ACCOUNT_END
        renewals = (
            []
            if status == "trialing"
            else self._renewals(created, last, interval, batch_billed)
        )
        period_start = renewals[-1] if renewals else created
        period_end = period_start + INTERVAL_SECONDS[interval]
        cancel_at_period_end = status == "active" and rng.random() < 0.05
        state = shapes.SubscriptionState(
            status=status,
            created=created,
            start_date=created,
            billing_cycle_anchor=renewals[1]
            if batch_billed and len(renewals) > 1
            else created,
            cancel_at_period_end=cancel_at_period_end,
            canceled_at=ended_at
            if status == "canceled"
            else (created + DAY if cancel_at_period_end else None),
            ended_at=ended_at
            if status == "canceled"
            else (period_end if cancel_at_period_end else None),
            trial_start=created if status == "trialing" else None,
            trial_end=created + 14 * DAY if status == "trialing" else None,
        )
        subscription_id = self.ids.make("sub", 16)
        items = []
        for price in prices:
            quantity = (
                rng.choice((1, 1, 1, 2, 3, 5, 10, 25)) if price is prices[0] else 1
            )
            items.append(
                shapes.subscription_item_object(
                    self.ids.make("si", 8),
                    subscription_id,
                    price,
                    quantity,
                    created,
                    period_start,
                    period_end,
                )
            )
        amount = sum(item["price"]["unit_amount"] * item["quantity"] for item in items)
        return PlannedSubscription(
            id=subscription_id,
            state=state,
            items=items,
            currency=currency,
            renewals=renewals,
            batch_billed=batch_billed,
            amount=amount,
        )

    def _renewals(
        self, created: int, last: int, interval: str, batch_billed: bool
    ) -> list[int]:
        if not batch_billed:
            step = INTERVAL_SECONDS[interval]
            return list(range(created, last, step))
        months = shapes.INTERVAL_MONTHS[interval]
        starts = [start for start in self.month_starts if created < start < last]
        return [created] + starts[::months]

    def _plan_payments(
        self,
        customer: dict[str, Any],
        subscriptions: list[PlannedSubscription],
        rows: dict[str, list[tuple[str, int, str | None, dict[str, Any]]]],
    ) -> None:
        rng = self.rng
        charge_count = rng.randint(0, 24)
        renewals = sorted(
            (
                (when, subscription)
                for subscription in subscriptions
                for when in subscription.renewals
            ),
            key=lambda pair: pair[0],
            reverse=True,
        )[:charge_count]
        planned: list[tuple[int, PlannedSubscription | None]] = list(renewals)
        while len(planned) < charge_count:
            planned.append(
                (
                    customer["created"]
                    + rng.randrange(ACCOUNT_END - customer["created"]),
                    None,
                )
            )
        for when, subscription in planned:
            if subscription is None:
                self._add_charge(
                    customer,
                    when + rng.randrange(3_600),
                    rng.choice((1500, 4900, 12000)),
                    customer["currency"],
                    None,
                    rows,
                )
                continue
            created = when if subscription.batch_billed else when + rng.randrange(3_600)
            self._add_charge(
                customer,
                created,
                subscription.amount,
                subscription.currency,
                subscription,
                rows,
            )

    def _add_charge(
        self,
        customer: dict[str, Any],
        created: int,
        amount: int,
        currency: str,
        subscription: PlannedSubscription | None,
        rows: dict[str, list[tuple[str, int, str | None, dict[str, Any]]]],
    ) -> None:
        rng = self.rng
        created = min(created, ACCOUNT_END)
        failed = rng.random() < 0.05
        refund_amount = 0
        if not failed and rng.random() < 0.04:
            refund_amount = amount if rng.random() < 0.7 else max(1, amount // 2)
        facts = shapes.ChargeFacts(
            charge_id=self.ids.make("ch", 16),
            customer_id=customer["id"],
            created=created,
            amount=amount,
            currency=currency,
            failed=failed,
            amount_refunded=refund_amount,
            payment_intent=self.ids.make("pi", 16),
            card_last4=rng.choice(("4242", "0005", "4444", "1117")),
            card_brand=rng.choice(("visa", "visa", "mastercard", "amex")),
            description="Subscription update" if subscription else "One-off purchase",
        )
        rows["charges"].append(
            (facts.charge_id, created, None, shapes.charge_object(facts))
        )
        if refund_amount:
            refund_created = min(created + rng.randrange(DAY, 30 * DAY), ACCOUNT_END)
            refund_id = self.ids.make("re", 16)
            rows["refunds"].append(
                (
                    refund_id,
                    refund_created,
                    None,
                    shapes.refund_object(
                        refund_id, facts, refund_amount, refund_created
                    ),
                )
            )
        if subscription is not None and rng.random() < 0.25:
            self._add_invoice(customer, subscription, facts, rows)

    def _add_invoice(
        self,
        customer: dict[str, Any],
        subscription: PlannedSubscription,
        charge: shapes.ChargeFacts,
        rows: dict[str, list[tuple[str, int, str | None, dict[str, Any]]]],
    ) -> None:
        invoice_id = self.ids.make("in", 16)
        sequence = self.invoice_counter.get(customer["id"], 0) + 1
        self.invoice_counter[customer["id"]] = sequence
        item = subscription.items[0]
        interval = item["price"]["recurring"]
        months = interval["interval_count"] * (
            12 if interval["interval"] == "year" else 1
        )
        facts = shapes.InvoiceFacts(
            invoice_id=invoice_id,
            number=f"{customer['invoice_prefix']}-{sequence:04d}",
            customer=customer,
            subscription_id=subscription.id,
            item=item,
            created=charge.created,
            period_start=charge.created,
            period_end=charge.created + months * INTERVAL_SECONDS["month"],
            amount=charge.amount,
            paid=not charge.failed,
        )
        rows["invoices"].append(
            (invoice_id, charge.created, None, shapes.invoice_object(facts))
        )
        if subscription.latest_invoice is None:
            subscription.latest_invoice = invoice_id

    @staticmethod
    def _stage(
        conn: sqlite3.Connection,
        name: str,
        rows: Iterator[tuple[str, int, str | None, dict[str, Any]]] | list[Any],
    ) -> None:
        conn.executemany(
            f"insert into staging.{name} (id, created, status, body) values (?, ?, ?, ?)",
            (
                (oid, created, status, orjson.dumps(body))
                for oid, created, status, body in rows
            ),
        )


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    values = [value for value, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(values, weights)[0]


def _create_tables(conn: sqlite3.Connection) -> None:
    for name in LISTED_TYPES:
        conn.execute(
            f"create table staging.{name} (id text, created integer, status text, body blob)"
        )
        conn.execute(
            f"create table {name} (seq integer primary key, id text not null,"
            " created integer not null, status text, body blob not null)"
        )
    conn.execute(
        "create table subscription_items (seq integer primary key, id text not null,"
        " subscription text not null, created integer not null, body blob not null)"
    )
    conn.execute(
        "create table companies (id text primary key, name text, domain text, email text,"
        " stripe_customer_id text)"
    )
    conn.execute("create table meta (key text primary key, value blob not null)")


def _order_into_final(conn: sqlite3.Connection, name: str) -> int:
    """Copy a staged type into its final table in Stripe's list order."""
    conn.execute(
        f"insert into {name} (id, created, status, body)"
        f" select id, created, status, body from staging.{name} order by created desc, id desc"
    )
    conn.execute(f"drop table staging.{name}")
    conn.execute(f"create unique index {name}_id on {name} (id)")
    if name == "subscriptions":
        conn.execute("create index subscriptions_status on subscriptions (status)")
    return conn.execute(f"select count(*) from {name}").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers", type=int, required=True, help="number of customers"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    path = ensure_account(args.customers, args.seed, args.data_dir)
    meta = read_meta(path)
    print(f"{path}: {orjson.dumps(meta['counts']).decode()}")


def read_meta(path: Path) -> dict[str, Any]:
    """Return the `meta` table of an account file as a dict."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return {
            key: orjson.loads(value)
            for key, value in conn.execute("select key, value from meta")
        }


if __name__ == "__main__":
    main()
