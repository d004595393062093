"""Read list pages of a generated account (see `benchmarks.generate`).

Rows of each type sit in SQLite in list order with `seq` 1 for the newest, so
a page is one rowid range scan. Its body is the stored JSON rows joined with
commas, so nothing is parsed or re-serialised per request. The `created`
column of each type is also held in memory as an `array` of negated
timestamps in `seq` order (8 bytes per object), so `created` filters become
`seq` bounds by bisection.
"""

from __future__ import annotations

import sqlite3
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks.generate import LISTED_TYPES, read_meta

MAX_LIMIT = 100
DEFAULT_LIMIT = 10
CREATED_OPERATORS = ("gt", "gte", "lt", "lte")
SUBSCRIPTION_STATUSES = frozenset(
    {
        "active",
        "past_due",
        "unpaid",
        "canceled",
        "incomplete",
        "incomplete_expired",
        "trialing",
        "paused",
        "all",
        "ended",
    }
)


class ListError(Exception):
    """A list request Stripe would reject; carries Stripe's error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.param = param
        self.code = code


@dataclass(frozen=True)
class Page:
    body: bytes
    seqs: list[int]


@dataclass(frozen=True)
class ListQuery:
    limit: int
    starting_after: str | None
    ending_before: str | None
    created: dict[str, int]
    status: str | None
    subscription: str | None


UNSUPPORTED_FILTERS = frozenset(
    {"customer", "price", "plan", "payment_intent", "charge", "subscription"}
)


def parse_list_query(params: Mapping[str, str], object_type: str) -> ListQuery:
    """Validate the query string of a list request the way Stripe does."""
    limit = _limit(params)
    if params.get("starting_after") and params.get("ending_before"):
        raise ListError(
            400,
            "You may only specify one of these parameters: ending_before, starting_after.",
        )

    unsupported = set(UNSUPPORTED_FILTERS)
    if object_type == "subscription_items":
        unsupported.discard("subscription")
    for key in sorted(unsupported & params.keys()):
        # NOTE: a filter Stripe has but the stand-in lacks fails loudly, so a
        # loader never benchmarks against a silently unfiltered list.
        raise ListError(
            400, f"The stand-in does not implement the `{key}` filter", param=key
        )

    status = params.get("status")
    valid_status = object_type == "subscriptions" and status in SUBSCRIPTION_STATUSES
    if status is not None and not valid_status:
        raise ListError(400, f"Invalid status: {status}", param="status")

    return ListQuery(
        limit=limit,
        starting_after=params.get("starting_after") or None,
        ending_before=params.get("ending_before") or None,
        created=_created_filters(params),
        status=status,
        subscription=params.get("subscription"),
    )


def _limit(params: Mapping[str, str]) -> int:
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        raise ListError(400, f"Invalid integer: {raw_limit}", param="limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ListError(
            400, f"This value must be between 1 and {MAX_LIMIT}: {limit}", param="limit"
        )
    return limit


def _created_filters(params: Mapping[str, str]) -> dict[str, int]:
    """Return {operator: timestamp} from `created` and `created[gt|gte|lt|lte]`."""
    keys = {f"created[{operator}]": operator for operator in CREATED_OPERATORS}
    created: dict[str, int] = {}
    for key, operator in keys.items():
        if key in params:
            created[operator] = _integer(params, key)
    if "created" in params:
        created["gte"] = created["lte"] = _integer(params, "created")
    return created


def _integer(params: Mapping[str, str], key: str) -> int:
    try:
        return int(params[key])
    except ValueError:
        raise ListError(400, f"Invalid integer: {params[key]}", param=key) from None


class AccountStore:
    """Read-only access to one account file, shared by all requests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta: dict[str, Any] = read_meta(path)
        self.account_body = orjson.dumps(self.meta["account"])
        self._conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False
        )
        self._conn.execute("pragma mmap_size = 268435456")
        self._negated_created: dict[str, array] = {}
        for object_type in LISTED_TYPES:
            values = array("q")
            cursor = self._conn.execute(
                f"select created from {object_type} order by seq"
            )
            while rows := cursor.fetchmany(50_000):
                values.extend(-created for (created,) in rows)
            self._negated_created[object_type] = values

    def count(self, object_type: str) -> int:
        return len(self._negated_created[object_type])

    def close(self) -> None:
        self._conn.close()

    def list_page(self, object_type: str, query: ListQuery, url: str) -> Page:
        """Return one page of `object_type` as Stripe's list JSON."""
        if object_type == "subscription_items":
            return self._item_page(query, url)
        low, high = self._created_bounds(object_type, query.created)
        if query.starting_after:
            low = max(
                low,
                self._seq_of(object_type, query.starting_after, "starting_after") + 1,
            )
        if query.ending_before:
            high = min(
                high, self._seq_of(object_type, query.ending_before, "ending_before")
            )
        status_sql, status_args = _status_filter(object_type, query.status)
        backwards = query.ending_before is not None
        rows = self._conn.execute(
            f"select seq, body from {object_type} where seq >= ? and seq < ?{status_sql}"
            f" order by seq {'desc' if backwards else 'asc'} limit ?",
            (low, high, *status_args, query.limit + 1),
        ).fetchall()
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        if backwards:
            rows.reverse()
        return _page(rows, has_more, url)

    def _item_page(self, query: ListQuery, url: str) -> Page:
        if not query.subscription:
            raise ListError(
                400, "Missing required param: subscription.", param="subscription"
            )
        after = 0
        if query.starting_after:
            row = self._conn.execute(
                "select seq from subscription_items where id = ? and subscription = ?",
                (query.starting_after, query.subscription),
            ).fetchone()
            if row is None:
                raise _missing(
                    "subscription_item", query.starting_after, "starting_after"
                )
            after = row[0]
        rows = self._conn.execute(
            "select seq, body from subscription_items where subscription = ? and seq > ?"
            " order by seq limit ?",
            (query.subscription, after, query.limit + 1),
        ).fetchall()
        has_more = len(rows) > query.limit
        return _page(rows[: query.limit], has_more, url)

    def _created_bounds(
        self, object_type: str, created: dict[str, int]
    ) -> tuple[int, int]:
        """Turn `created` filters into a half-open `seq` range [low, high)."""
        negated = self._negated_created[object_type]
        first, end = 0, len(negated)
        if "lte" in created:
            first = max(first, bisect_left(negated, -created["lte"]))
        if "lt" in created:
            first = max(first, bisect_right(negated, -created["lt"]))
        if "gte" in created:
            end = min(end, bisect_right(negated, -created["gte"]))
        if "gt" in created:
            end = min(end, bisect_left(negated, -created["gt"]))
        return first + 1, max(first, end) + 1

    def _seq_of(self, object_type: str, object_id: str, param: str) -> int:
        row = self._conn.execute(
            f"select seq from {object_type} where id = ?", (object_id,)
        ).fetchone()
        if row is None:
            raise _missing(object_type.rstrip("s"), object_id, param)
        return int(row[0])


def _status_filter(object_type: str, status: str | None) -> tuple[str, tuple[str, ...]]:
    """Return the SQL filter for `status`.

    Without `status`, Stripe lists only subscriptions that are not canceled.
    """
    if object_type != "subscriptions" or status == "all":
        return "", ()
    if status is None:
        return " and status != ?", ("canceled",)
    if status == "ended":
        return " and status in (?, ?)", ("canceled", "incomplete_expired")
    return " and status = ?", (status,)


def _missing(resource: str, object_id: str, param: str) -> ListError:
    return ListError(
        404, f"No such {resource}: '{object_id}'", param=param, code="resource_missing"
    )


def _page(rows: list[tuple[int, bytes]], has_more: bool, url: str) -> Page:
    body = b"".join(
        (
            b'{"object":"list","data":[',
            b",".join(body for _, body in rows),
            b'],"has_more":',
            b"true" if has_more else b"false",
            b',"url":',
            orjson.dumps(url),
            b"}",
        )
    )
    return Page(body=body, seqs=[seq for seq, _ in rows])
