"""Major-unit parsing and formatting per currency exponent."""

from __future__ import annotations

import pytest

from halo_stripe_pipeline.money import (
    InvalidAmount,
    currency_exponent,
    format_minor,
    parse_major_amount,
)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("usd", 2),
        ("EUR", 2),
        ("jpy", 0),
        ("krw", 0),
        ("xpf", 0),
        ("kwd", 3),
        ("tnd", 3),
        ("bhd", 3),
    ],
)
def test_currency_exponent(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "usd", 1250),
        ("12.5", "usd", 1250),
        ("0.01", "usd", 1),
        ("12.500", "usd", 1250),
        ("1000", "jpy", 1000),
        ("1.234", "kwd", 1234),
        (" 7 ", "eur", 700),
        ("0.1", "usd", 10),
    ],
)
def test_parse_major_amount(text, currency, minor):
    assert parse_major_amount(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12.505", "usd", "USD allows at most 2 decimal places"),
        ("100.5", "jpy", "JPY allows at most 0 decimal places"),
        ("1.2345", "kwd", "KWD allows at most 3 decimal places"),
        ("0", "usd", "must be positive"),
        ("-3", "usd", "must be positive"),
        ("1e3", "usd", "expected a number"),
        ("NaN", "usd", "expected a number"),
        ("Infinity", "usd", "expected a number"),
        ("12,50", "usd", "expected a number"),
        ("", "usd", "expected a number"),
        ("5", "usdollar", "invalid currency `usdollar`"),
    ],
)
def test_parse_major_amount_rejects(text, currency, message):
    with pytest.raises(InvalidAmount, match=message):
        parse_major_amount(text, currency)


def test_format_minor():
    assert format_minor(1250, "usd") == "12.50 USD"
    assert format_minor(1000, "jpy") == "1000 JPY"
    assert format_minor(1234, "kwd") == "1.234 KWD"
    assert format_minor(-5, "usd") == "-0.05 USD"
