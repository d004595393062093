"""The stand-in Stripe: paging, filters, subscription items, errors and 429s."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.harness import StandInProcess, subscriptions_with_more_items
from halo_stripe_pipeline.stripe_client import StripeApi

AUTH = {"Authorization": "Bearer sk_live_bench"}


@pytest.fixture
def http(stand_in: StandInProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stand_in.api_base, headers=AUTH) as client:
        yield client


def _generated(account: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(account) as conn:
        return conn.execute(sql, args).fetchall()


def test_paging_returns_every_charge_once(
    stand_in: StandInProcess, tiny_account: Path
) -> None:
    api = StripeApi(
        api_key="sk_live_bench", api_base=stand_in.api_base, requests_per_second=1000
    )
    listed = [obj["id"] for page in api.list_pages("/v1/charges") for obj in page]
    expected = [
        row[0]
        for row in _generated(tiny_account, "select id from charges order by seq")
    ]

    assert listed == expected


def test_created_window_filters(http: httpx.Client, tiny_account: Path) -> None:
    (busiest,) = _generated(
        tiny_account,
        "select created from charges group by created order by count(*) desc limit 1",
    )[0]
    expected = _generated(
        tiny_account,
        "select id from charges where created >= ? and created < ? order by seq",
        busiest - 86_400,
        busiest + 1,
    )

    body = http.get(
        "/v1/charges",
        params={
            "limit": 100,
            "created[gte]": busiest - 86_400,
            "created[lt]": busiest + 1,
        },
    ).json()

    assert [obj["id"] for obj in body["data"]] == [row[0] for row in expected]
    assert body["has_more"] is False


def test_created_gt_and_lte_bounds(http: httpx.Client, tiny_account: Path) -> None:
    (busiest,) = _generated(
        tiny_account,
        "select created from charges group by created order by count(*) desc limit 1",
    )[0]

    inclusive = http.get(
        "/v1/charges",
        params={"limit": 100, "created[lte]": busiest, "created[gte]": busiest},
    ).json()
    exclusive = http.get(
        "/v1/charges",
        params={"limit": 100, "created[gt]": busiest, "created[lt]": busiest + 1},
    ).json()

    assert {obj["created"] for obj in inclusive["data"]} == {busiest}
    assert exclusive["data"] == []


def test_ending_before_returns_newer_page(
    http: httpx.Client, tiny_account: Path
) -> None:
    ids = [
        row[0]
        for row in _generated(
            tiny_account, "select id from charges order by seq limit 6"
        )
    ]

    body = http.get("/v1/charges", params={"limit": 3, "ending_before": ids[5]}).json()

    assert [obj["id"] for obj in body["data"]] == ids[2:5]
    assert body["has_more"] is True


def test_subscriptions_default_omits_canceled(
    http: httpx.Client, tiny_account: Path
) -> None:
    canceled = _generated(
        tiny_account, "select count(*) from subscriptions where status = 'canceled'"
    )[0][0]
    total = _generated(tiny_account, "select count(*) from subscriptions")[0][0]

    default = http.get("/v1/subscriptions", params={"limit": 100}).json()["data"]
    every = http.get(
        "/v1/subscriptions", params={"limit": 100, "status": "all"}
    ).json()["data"]

    assert canceled > 0
    assert len(default) == total - canceled
    assert all(sub["status"] != "canceled" for sub in default)
    assert len(every) == total


def test_subscription_items_paging(http: httpx.Client, tiny_account: Path) -> None:
    subscription_id, item_count = next(
        iter(subscriptions_with_more_items(tiny_account).items())
    )

    first = http.get(
        "/v1/subscription_items", params={"subscription": subscription_id, "limit": 10}
    ).json()
    rest = http.get(
        "/v1/subscription_items",
        params={
            "subscription": subscription_id,
            "limit": 10,
            "starting_after": first["data"][-1]["id"],
        },
    ).json()

    assert first["has_more"] is True
    assert len(first["data"]) + len(rest["data"]) == item_count
    assert rest["has_more"] is False
    assert {item["subscription"] for item in first["data"] + rest["data"]} == {
        subscription_id
    }


def test_account_endpoint(http: httpx.Client) -> None:
    body = http.get("/v1/account").json()

    assert body["object"] == "account"
    assert body["id"].startswith("acct_")


def test_missing_key_is_401(stand_in: StandInProcess) -> None:
    response = httpx.get(f"{stand_in.api_base}/v1/charges")

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_cursor_is_resource_missing(http: httpx.Client) -> None:
    response = http.get("/v1/charges", params={"starting_after": "ch_gone"})
    error = response.json()["error"]

    assert response.status_code == 404
    assert error["code"] == "resource_missing"
    assert error["param"] == "starting_after"


def test_invalid_list_requests_are_400(http: httpx.Client) -> None:
    too_large = http.get("/v1/charges", params={"limit": 101})
    both_cursors = http.get(
        "/v1/charges", params={"starting_after": "a", "ending_before": "b"}
    )
    unsupported = http.get("/v1/charges", params={"customer": "cus_1"})
    no_subscription = http.get("/v1/subscription_items")

    assert too_large.status_code == 400
    assert too_large.json()["error"]["param"] == "limit"
    assert both_cursors.status_code == 400
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["param"] == "customer"
    assert no_subscription.status_code == 400


def test_stats_count_duplicates(stand_in: StandInProcess, http: httpx.Client) -> None:
    stand_in.reset()

    http.get("/v1/customers", params={"limit": 5})
    http.get("/v1/customers", params={"limit": 5})
    served = stand_in.stats()["served"]["customers"]

    assert served["delivered"] == 10
    assert served["distinct"] == 5
    assert served["duplicates"] == 5


@pytest.fixture
def limited(tiny_account: Path) -> Iterator[StandInProcess]:
    process = StandInProcess(
        tiny_account, latency_ms=0, rate=1000, endpoint_rate=0.2, burst_seconds=5
    )
    yield process
    process.stop()


def test_endpoint_limit_answers_429(limited: StandInProcess) -> None:
    with httpx.Client(base_url=limited.api_base, headers=AUTH) as client:
        first = client.get("/v1/charges", params={"limit": 1})
        second = client.get("/v1/charges", params={"limit": 1})
        other_endpoint = client.get("/v1/customers", params={"limit": 1})
    error = second.json()["error"]

    assert first.status_code == 200
    assert second.status_code == 429
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "rate_limit"
    assert int(second.headers["Retry-After"]) >= 1
    assert other_endpoint.status_code == 200
    assert limited.stats()["rate_limited"] == {"endpoint-rate": 1}


def test_global_limit_answers_429(tiny_account: Path) -> None:
    with (
        StandInProcess(
            tiny_account, latency_ms=0, rate=0.2, endpoint_rate=1000, burst_seconds=5
        ) as process,
        httpx.Client(base_url=process.api_base, headers=AUTH) as client,
    ):
        first = client.get("/v1/charges", params={"limit": 1})
        second = client.get("/v1/customers", params={"limit": 1})
        stats = process.stats()

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limit"
    assert stats["rate_limited"] == {"global-rate": 1}
