"""Redact Stripe secrets from the stripe SDK's own debug log lines.

At debug level the stripe SDK (16.1) logs every response body to the
`stripe` logger, and the body of `POST /v1/webhook_endpoints` contains the
endpoint's signing secret. The filter below masks anything shaped like a
Stripe secret in those records before any handler receives them.
"""

from __future__ import annotations

import logging
import re

# Secret keys, restricted keys, OAuth refresh tokens and signing secrets.
SECRET_PATTERN = re.compile(r"\b(sk|rk|rt|whsec)_[A-Za-z0-9_]{8,}")


def redact(text: str) -> str:
    return SECRET_PATTERN.sub(lambda match: f"{match.group(1)}_[redacted]", text)


class SecretRedactingFilter(logging.Filter):
    """Rewrite a record's message with every Stripe secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_FILTER = SecretRedactingFilter()


def install_stripe_log_filter() -> None:
    """Attach the filter to the `stripe` logger once per process."""
    logger = logging.getLogger("stripe")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
