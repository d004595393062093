"""Events that change the integration itself rather than a raw table.

`account.application.deauthorized` means the account revoked Halo's access:
the account is disconnected (tokens and signing secret dropped, ingest
switched off) by the connect part. Such events apply even while the
account's ingest is off, because switching ingest off is what they do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg

log = logging.getLogger(__name__)

Action = Callable[[psycopg.Connection, str, Mapping[str, Any]], None]


def disconnect_deauthorized(
    conn: psycopg.Connection, account_id: str, event: Mapping[str, Any]
) -> None:
    from halo_stripe_pipeline.connect.accounts import disconnect_account

    was_connected = disconnect_account(conn, account_id)
    log.warning(
        "account %s revoked access (event %s); %s",
        account_id,
        event.get("id"),
        "it is disconnected" if was_connected else "it had no stored connection",
    )


ACTIONS: dict[str, Action] = {
    "account.application.deauthorized": disconnect_deauthorized,
}
