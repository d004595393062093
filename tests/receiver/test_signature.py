"""Stripe-Signature parsing and verification, one test per failure mode."""

from __future__ import annotations

import pytest

from webhook_receiver.signature import (
    SignatureError,
    compute_signature,
    parse_header,
    sign_header,
    verify_signature,
)

PAYLOAD = b'{"id": "evt_1", "object": "event"}'
NOW = 1_767_225_600


def test_parse_header_reads_every_v1() -> None:
    header = parse_header("t=12,v1=aa,v0=zz,v1=BB")

    assert header.timestamp == 12
    assert header.signatures == ("aa", "bb")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "missing Stripe-Signature header"),
        ("  ", "missing Stripe-Signature header"),
        ("v1=aa", "no timestamp in Stripe-Signature header"),
        ("t=abc,v1=aa", "invalid timestamp in Stripe-Signature header"),
        ("t=12", "no v1 signature in Stripe-Signature header"),
        ("t=12,v0=aa", "no v1 signature in Stripe-Signature header"),
        ("garbage", "no timestamp in Stripe-Signature header"),
    ],
)
def test_parse_header_rejects(value: str | None, message: str) -> None:
    with pytest.raises(SignatureError) as error:
        parse_header(value)

    assert str(error.value) == message


def test_signature_matches_stripe_scheme() -> None:
    # HMAC-SHA256 of "timestamp.payload", as Stripe documents and localstripe signs.
    import hashlib
    import hmac

    expected = hmac.new(
        b"whsec_x", b"%d.%s" % (NOW, PAYLOAD), hashlib.sha256
    ).hexdigest()

    assert compute_signature("whsec_x", NOW, PAYLOAD) == expected


def test_verify_accepts_valid_signature() -> None:
    header = verify_signature(
        PAYLOAD, sign_header(PAYLOAD, "whsec_a", NOW), ["whsec_a"], now=NOW
    )

    assert header.timestamp == NOW


def test_verify_rejects_wrong_secret() -> None:
    with pytest.raises(SignatureError, match="no signature matches the payload"):
        verify_signature(
            PAYLOAD, sign_header(PAYLOAD, "whsec_other", NOW), ["whsec_a"], now=NOW
        )


def test_verify_rejects_changed_body() -> None:
    header = sign_header(PAYLOAD, "whsec_a", NOW)

    with pytest.raises(SignatureError, match="no signature matches the payload"):
        verify_signature(PAYLOAD + b" ", header, ["whsec_a"], now=NOW)


def test_verify_rejects_stale_timestamp() -> None:
    header = sign_header(PAYLOAD, "whsec_a", NOW - 301)

    with pytest.raises(SignatureError, match="timestamp outside the tolerance"):
        verify_signature(PAYLOAD, header, ["whsec_a"], now=NOW)


def test_verify_accepts_edge_of_tolerance() -> None:
    header = sign_header(PAYLOAD, "whsec_a", NOW - 300)

    assert (
        verify_signature(PAYLOAD, header, ["whsec_a"], now=NOW).timestamp == NOW - 300
    )


def test_verify_rejects_far_future_timestamp() -> None:
    header = sign_header(PAYLOAD, "whsec_a", NOW + 301)

    with pytest.raises(SignatureError, match="timestamp outside the tolerance"):
        verify_signature(PAYLOAD, header, ["whsec_a"], now=NOW)


def test_verify_checks_signature_before_timestamp() -> None:
    # A forged, stale delivery is reported as forged: the timestamp is only
    # trusted once the signature covering it has matched.
    header = sign_header(PAYLOAD, "whsec_other", NOW - 1000)

    with pytest.raises(SignatureError, match="no signature matches the payload"):
        verify_signature(PAYLOAD, header, ["whsec_a"], now=NOW)


def test_verify_accepts_rotated_secret() -> None:
    old_header = sign_header(PAYLOAD, "whsec_old", NOW)
    new_header = sign_header(PAYLOAD, "whsec_new", NOW)
    both_header = sign_header(PAYLOAD, ["whsec_new", "whsec_old"], NOW)
    secrets = ["whsec_new", "whsec_old"]

    assert verify_signature(PAYLOAD, old_header, secrets, now=NOW)
    assert verify_signature(PAYLOAD, new_header, secrets, now=NOW)
    assert verify_signature(PAYLOAD, both_header, ["whsec_old"], now=NOW)


def test_verify_without_secrets_rejects() -> None:
    with pytest.raises(SignatureError, match="no webhook signing secret is configured"):
        verify_signature(PAYLOAD, sign_header(PAYLOAD, "whsec_a", NOW), [], now=NOW)
