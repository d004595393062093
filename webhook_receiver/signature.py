"""Verify the `Stripe-Signature` header of a webhook delivery.

Stripe signs `"{timestamp}.{raw body}"` with HMAC-SHA256 under the endpoint's
signing secret and sends `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`; during a
secret rotation one delivery carries a `v1` per active secret. Checks run in
this order: parse the header, compare every `v1` against every active secret
in constant time, then reject a stale timestamp. The body is parsed only after
all of that succeeds, by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_TOLERANCE_SECONDS = 300
SIGNATURE_SCHEME = "v1"


class SignatureError(ValueError):
    """The delivery failed verification; the message is safe to return."""


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_header(header: str | None) -> SignatureHeader:
    """Split a `Stripe-Signature` value into its timestamp and `v1` signatures."""
    if not header or not header.strip():
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(
                    "invalid timestamp in Stripe-Signature header"
                ) from None
        elif key == SIGNATURE_SCHEME and value:
            signatures.append(value.lower())
    if timestamp is None:
        raise SignatureError("no timestamp in Stripe-Signature header")
    if not signatures:
        raise SignatureError("no v1 signature in Stripe-Signature header")
    return SignatureHeader(timestamp=timestamp, signatures=tuple(signatures))


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """Return the hex HMAC-SHA256 of `timestamp.payload` under `secret`."""
    message = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_header(
    payload: bytes, secrets: str | Iterable[str], timestamp: int | None = None
) -> str:
    """Build a `Stripe-Signature` value as Stripe would send it.

    Used by tests, the benchmark and the catch-up tooling; `secrets` may name
    several, as during a rotation.
    """
    if isinstance(secrets, str):
        secrets = [secrets]
    timestamp = int(time.time()) if timestamp is None else timestamp
    parts = [f"t={timestamp}"]
    parts.extend(
        f"v1={compute_signature(secret, timestamp, payload)}" for secret in secrets
    )
    return ",".join(parts)


def matching_secret(
    payload: bytes, header: SignatureHeader, secrets: Sequence[str]
) -> str | None:
    """Return the first secret whose signature equals any `v1`, else None.

    Every candidate is compared with `hmac.compare_digest`, so the time taken
    does not reveal how much of a signature matched.
    """
    for secret in secrets:
        expected = compute_signature(secret, header.timestamp, payload)
        for candidate in header.signatures:
            if hmac.compare_digest(expected, candidate):
                return secret
    return None


def verify_signature(
    payload: bytes,
    header_value: str | None,
    secrets: Sequence[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> SignatureHeader:
    """Check `payload` against its header; raise SignatureError on failure.

    A timestamp more than `tolerance_seconds` away from `now`, in either
    direction, is rejected, so a captured delivery cannot be replayed later.
    A tolerance of 0 or less turns the timestamp check off.
    """
    header = parse_header(header_value)
    if not secrets:
        raise SignatureError("no webhook signing secret is configured")
    if matching_secret(payload, header, secrets) is None:
        raise SignatureError("no signature matches the payload")
    check_timestamp(header, tolerance_seconds, now)
    return header


def check_timestamp(
    header: SignatureHeader, tolerance_seconds: int, now: float | None = None
) -> None:
    """Raise SignatureError when the header's timestamp is too far from `now`."""
    current = time.time() if now is None else now
    if tolerance_seconds > 0 and abs(current - header.timestamp) > tolerance_seconds:
        raise SignatureError("timestamp outside the tolerance")
