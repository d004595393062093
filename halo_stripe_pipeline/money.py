"""Money as integer minor units, and the currency exponents Stripe uses.

Stripe sends every amount in the currency's smallest unit: cents for USD,
whole yen for JPY, fils (thousandths) for KWD. Parsing a major-unit amount
typed by a person goes through `Decimal`, so `12.50` is exactly 1250 cents.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Stripe's zero-decimal and three-decimal currencies; every other is 2.
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())


class InvalidAmount(ValueError):
    """An amount that is not a valid positive amount of its currency."""


def normalize_currency(currency: str) -> str:
    """Return the lower-case ISO 4217 code Stripe uses, or raise `InvalidAmount`."""
    code = (currency or "").strip().lower()
    if len(code) != 3 or not code.isalpha() or not code.isascii():
        raise InvalidAmount(
            f"invalid currency `{currency}`: expected a three-letter ISO code such as usd"
        )
    return code


def currency_exponent(currency: str) -> int:
    """Return how many decimal places a major unit of `currency` has."""
    code = normalize_currency(currency)
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def parse_major_amount(text: str, currency: str) -> int:
    """Convert a major-unit amount such as `12.50` into minor units.

    Raises `InvalidAmount` for text that is not a plain decimal number, for a
    zero or negative amount, and for more decimal places than the currency
    has (`12.505` USD, `100.5` JPY).
    """
    exponent = currency_exponent(currency)
    cleaned = (text or "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidAmount(
            f"invalid amount `{text}`: expected a number such as 12.50"
        ) from None
    if not value.is_finite() or "e" in cleaned.lower():
        raise InvalidAmount(f"invalid amount `{text}`: expected a number such as 12.50")
    if value <= 0:
        raise InvalidAmount(f"invalid amount `{text}`: the amount must be positive")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise InvalidAmount(
            f"invalid amount `{text}`: {currency.upper()} allows at most {exponent} "
            "decimal places"
        )
    return int(minor)


def format_minor(amount_minor: int, currency: str) -> str:
    """Format minor units as a major-unit amount with its code: `12.50 USD`."""
    exponent = currency_exponent(currency)
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{value:.{exponent}f} {currency.upper()}"
