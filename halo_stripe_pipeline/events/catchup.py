"""Recover events the receiver missed by reading `GET /v1/events`.

For each account the listing starts an hour before the newest event already
applied. Deliveries arrive out of order, so an event older than the newest
applied one can still be missing. Events already stored are skipped by id.
Stripe keeps events for 30 days, so a longer gap needs a full sync.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import orjson
import psycopg

from halo_stripe_pipeline.config import ConfigError
from halo_stripe_pipeline.events.accounts import AccountResolver
from halo_stripe_pipeline.events.store import event_row, insert_events
from halo_stripe_pipeline.events.types import NotAnEventError, check_event

log = logging.getLogger(__name__)

OVERLAP = timedelta(hours=1)
RETENTION = timedelta(days=30)


@dataclass
class AccountCatchUp:
    account_id: str
    since: datetime
    listed: int = 0
    stored: int = 0


@dataclass
class CatchUpReport:
    accounts: list[AccountCatchUp] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(account.stored for account in self.accounts)

    @property
    def listed(self) -> int:
        return sum(account.listed for account in self.accounts)


def last_applied_at(
    conn: psycopg.Connection, account_id: str, is_platform: bool
) -> datetime | None:
    """Return the `created` time of the newest applied event of the account."""
    row = conn.execute(
        """
        select max(created_at) from stripe_raw.webhook_events
        where status in ('applied', 'superseded')
          and (account_id = %s or (%s and account_id is null))
        """,
        (account_id, is_platform),
    ).fetchone()
    return row[0] if row else None


def catch_up_start(
    conn: psycopg.Connection, account_id: str, is_platform: bool, since: datetime | None
) -> datetime:
    """Return where the listing starts; raise ConfigError when there is no start point."""
    if since is not None:
        return since
    last = last_applied_at(conn, account_id, is_platform)
    if last is None:
        raise ConfigError(
            f"no applied event for account `{account_id}` yet, so there is no point to catch up "
            "from; pass --since (for example --since 2026-01-31T00:00:00Z) or run a full sync"
        )
    return last - OVERLAP


def is_connected(conn: psycopg.Connection, account_id: str) -> bool:
    """Return True when `account_id` has a stored connection of its own."""
    from halo_stripe_pipeline.connect.crypto import EncryptionKeyError
    from halo_stripe_pipeline.connect.secrets import AccountDisconnected, account_api

    try:
        return account_api(conn, account_id) is not None
    except AccountDisconnected:
        return False
    except EncryptionKeyError:
        # A stored connection exists; reading it needs HALO_ENCRYPTION_KEY,
        # and the catch-up of that account raises an error naming the key.
        return True


def catch_up_account(
    conn: psycopg.Connection,
    resolver: AccountResolver,
    account_id: str,
    *,
    since: datetime | None = None,
) -> AccountCatchUp:
    """List the account's events since the start point and store the new ones."""
    platform = resolver.platform_account_id()
    is_platform = account_id == platform
    # Any other account would be read with STRIPE_API_KEY, which lists the
    # platform's events, and they would be stored under this account.
    if not is_platform and not is_connected(conn, account_id):
        raise ConfigError(
            f"account `{account_id}` is neither the account of STRIPE_API_KEY "
            f"(`{platform}`) nor a connected account, so its events cannot be "
            "listed; connect it with `halo-stripe accounts connect`"
        )
    start = catch_up_start(conn, account_id, is_platform, since)
    if start < datetime.now(timezone.utc) - RETENTION:
        log.warning(
            "catch-up for %s starts at %s, but Stripe keeps events only 30 days; "
            "run `halo-stripe sync` to recover older changes",
            account_id,
            start.isoformat(),
        )
    result = AccountCatchUp(account_id=account_id, since=start)
    api = resolver.api_for(account_id)
    log.info("listing events of %s created since %s", account_id, start.isoformat())
    started = time.monotonic()
    for page in api.list_pages("/v1/events", {"created[gte]": int(start.timestamp())}):
        rows = []
        for event in page:
            try:
                check_event(event)
            except NotAnEventError as error:
                log.warning("skipping a listed object that is not an event: %s", error)
                continue
            rows.append(
                event_row(
                    event,
                    orjson.dumps(event).decode(),
                    source="catch-up",
                    account_id=None if is_platform else account_id,
                )
            )
        result.listed += len(rows)
        with conn.transaction():
            result.stored += len(insert_events(conn, rows))
    log.info(
        "listed %d events of %s in %.1fs; %d were missing and are now stored",
        result.listed,
        account_id,
        time.monotonic() - started,
        result.stored,
    )
    return result


def accounts_to_catch_up(
    conn: psycopg.Connection, resolver: AccountResolver
) -> list[str]:
    """Return the accounts with ingest on that can be read, or the platform alone.

    An account with settings that is neither the platform's nor connected
    is skipped with a warning, because no key can list its events.
    """
    rows = conn.execute(
        "select account_id from halo.integration_settings where ingest_enabled order by account_id"
    ).fetchall()
    if not rows:
        return [resolver.platform_account_id()]
    platform = resolver.platform_account_id()
    accounts = []
    for (account_id,) in rows:
        if account_id == platform or is_connected(conn, account_id):
            accounts.append(account_id)
        else:
            log.warning(
                "skipping account %s: it is neither the account of STRIPE_API_KEY"
                " (%s) nor a connected account, so its events cannot be listed",
                account_id,
                platform,
            )
    return accounts


def catch_up(
    conn: psycopg.Connection,
    resolver: AccountResolver,
    *,
    account_id: str | None = None,
    since: datetime | None = None,
) -> CatchUpReport:
    report = CatchUpReport()
    accounts = [account_id] if account_id else accounts_to_catch_up(conn, resolver)
    for account in accounts:
        report.accounts.append(catch_up_account(conn, resolver, account, since=since))
    return report
