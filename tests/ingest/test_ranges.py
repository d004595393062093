"""The pure helpers behind range-sliced listing."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from halo_stripe_pipeline.ingest import ranges
from halo_stripe_pipeline.ingest.ranges import RangeTask


def _covered_seconds(tasks: list[RangeTask]) -> list[int]:
    seconds: list[int] = []
    for task in tasks:
        assert task.gte is not None and task.lt is not None
        seconds.extend(range(task.gte, task.lt))
    return sorted(seconds)


def test_split_span_covers_every_second_once() -> None:
    tasks = ranges.split_span(1_000, 1_997, 8)

    assert len(tasks) == 8
    assert _covered_seconds(tasks) == list(range(1_000, 1_997))


def test_split_span_caps_parts_at_seconds() -> None:
    tasks = ranges.split_span(50, 53, 10)

    assert [(task.gte, task.lt) for task in tasks] == [(50, 51), (51, 52), (52, 53)]


def test_split_span_of_empty_span() -> None:
    assert ranges.split_span(10, 10, 4) == []


def test_list_params_carry_range_and_cursor() -> None:
    task = RangeTask(gte=100, lt=200, starting_after="cus_9")

    params = ranges.list_params(task, {"status": "all"})

    assert params == {
        "status": "all",
        "created[gte]": 100,
        "created[lt]": 200,
        "starting_after": "cus_9",
    }


def test_list_params_unsliced_has_no_created() -> None:
    assert ranges.list_params(RangeTask(None, None), {}) == {}


def _objects(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"id": object_id, "created": created} for object_id, created in pairs]


def test_advance_remembers_ids_of_cursor_second() -> None:
    task = RangeTask(gte=0, lt=100)
    page = _objects(("a", 50), ("b", 40), ("c", 40))

    fresh, following = ranges.advance(task, page, has_more=True)

    assert [obj["id"] for obj in fresh] == ["a", "b", "c"]
    assert following is not None
    assert following.starting_after == "c"
    assert following.cursor_created == 40
    assert following.seen_at_cursor_second == frozenset({"b", "c"})


def test_advance_accumulates_within_one_second() -> None:
    task = RangeTask(gte=0, lt=100, starting_after="c", cursor_created=40,
                     seen_at_cursor_second=frozenset({"b", "c"}))

    _fresh, following = ranges.advance(task, _objects(("d", 40), ("e", 40)), has_more=True)

    assert following is not None
    assert following.seen_at_cursor_second == frozenset({"b", "c", "d", "e"})


def test_advance_ends_when_no_more() -> None:
    fresh, following = ranges.advance(RangeTask(0, 10), _objects(("a", 5)), has_more=False)

    assert [obj["id"] for obj in fresh] == ["a"]
    assert following is None


def test_advance_skips_ids_already_read() -> None:
    task = RangeTask(gte=0, lt=41, cursor_created=40, seen_at_cursor_second=frozenset({"b"}))

    fresh, _following = ranges.advance(task, _objects(("b", 40), ("x", 40)), has_more=False)

    assert [obj["id"] for obj in fresh] == ["x"]


def test_split_remaining_is_disjoint_and_complete() -> None:
    task = RangeTask(gte=1_000, lt=5_000, starting_after="cus_7", cursor_created=2_999)

    pieces = ranges.split_remaining(task, 4)

    assert len(pieces) == 4
    assert pieces[0].starting_after == "cus_7"
    assert all(piece.starting_after is None for piece in pieces[1:])
    assert _covered_seconds(pieces) == list(range(1_000, 3_000))


def test_split_remaining_keeps_one_second_whole() -> None:
    task = RangeTask(gte=700, lt=701, starting_after="cus_1", cursor_created=700)

    assert ranges.split_remaining(task, 8) == [task]


def test_split_remaining_leaves_unsliced_task() -> None:
    task = RangeTask(None, None, starting_after="cus_1", cursor_created=700)

    assert ranges.split_remaining(task, 8) == [task]


def test_resume_after_missing_cursor_restarts_at_its_second() -> None:
    task = RangeTask(gte=100, lt=900, starting_after="ch_gone", cursor_created=500,
                     seen_at_cursor_second=frozenset({"ch_gone", "ch_2"}))

    resumed = ranges.resume_after_missing_cursor(task)

    assert (resumed.gte, resumed.lt) == (100, 501)
    assert resumed.starting_after is None
    assert resumed.seen_at_cursor_second == frozenset({"ch_gone", "ch_2"})


def test_resume_without_cursor_time_raises() -> None:
    with pytest.raises(ValueError, match="created time is unknown"):
        ranges.resume_after_missing_cursor(RangeTask(0, 10, starting_after="x"))


def test_probe_points_lie_inside_bracket() -> None:
    points = ranges.probe_points(0, 100, 4)

    assert points == [20, 40, 60, 80]
    assert ranges.probe_points(5, 6, 4) == []


def test_narrow_oldest_uses_first_positive_probe() -> None:
    answers = {20: False, 40: False, 60: True, 80: True}

    assert ranges.narrow_oldest(0, 100, answers) == (40, 60)


def test_narrow_oldest_all_negative_moves_low_up() -> None:
    answers = {20: False, 40: False}

    assert ranges.narrow_oldest(0, 100, answers) == (40, 100)


def _newest_first(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {obj["id"]: index for index, obj in enumerate(objects)}
    return sorted(objects, key=lambda obj: (-obj["created"], -order[obj["id"]]))


def _serve_page(
    objects: list[dict[str, Any]], task: RangeTask, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """List `objects` the way Stripe does for one page of `task`."""
    ordered = _newest_first(objects)
    matching = [
        obj for obj in ordered
        if (task.gte is None or obj["created"] >= task.gte)
        and (task.lt is None or obj["created"] < task.lt)
    ]
    if task.starting_after:
        position = next(i for i, obj in enumerate(matching) if obj["id"] == task.starting_after)
        matching = matching[position + 1:]
    return matching[:limit], len(matching) > limit


def test_splitting_drains_shared_second_exactly_once() -> None:
    shared = [{"id": f"cus_s{index:03d}", "created": 5_000} for index in range(250)]
    spread = [{"id": f"cus_t{index:03d}", "created": 4_000 + index * 7} for index in range(140)]
    objects = spread + shared
    pending = deque(ranges.split_span(4_000, 6_000, 3))
    delivered: list[str] = []

    while pending:
        task = pending.popleft()
        page, has_more = _serve_page(objects, task, limit=20)
        fresh, following = ranges.advance(task, page, has_more)
        delivered.extend(obj["id"] for obj in fresh)
        if following is not None:
            pending.extend(ranges.split_remaining(following, 3))

    assert len(delivered) == len(objects)
    assert sorted(delivered) == sorted(obj["id"] for obj in objects)


def test_worthwhile_pieces_follow_density() -> None:
    dense = RangeTask(gte=0, lt=10_000, starting_after="a", cursor_created=9_999,
                      objects_per_second=1.0)
    sparse = RangeTask(gte=0, lt=10_000, starting_after="a", cursor_created=9_999,
                       objects_per_second=0.01)

    assert ranges.worthwhile_pieces(dense, 8, 100, 4.0) == 8
    assert ranges.worthwhile_pieces(sparse, 8, 100, 4.0) == 1


def test_worthwhile_pieces_without_density_take_all() -> None:
    task = RangeTask(gte=0, lt=100, starting_after="a", cursor_created=99)

    assert ranges.worthwhile_pieces(task, 6, 100, 4.0) == 6
    assert ranges.worthwhile_pieces(RangeTask(None, None), 6, 100, 4.0) == 1


def test_advance_records_page_density() -> None:
    page = _objects(("a", 109), ("b", 105), ("c", 100))

    _fresh, following = ranges.advance(RangeTask(0, 200), page, has_more=True)

    assert following is not None
    assert following.objects_per_second == pytest.approx(0.3)


def test_describe_names_range_and_cursor() -> None:
    assert RangeTask(10, 20, starting_after="ch_9").describe() == (
        "created in [10, 20), after cursor `ch_9`"
    )
    assert RangeTask(None, None).describe() == "the whole list, first page"


def test_expansions_only_on_stripe():
    from halo_stripe_pipeline.ingest.object_types import OBJECT_TYPES_BY_NAME, list_filters
    from halo_stripe_pipeline.stripe_client import StripeApi

    subscriptions = OBJECT_TYPES_BY_NAME["subscriptions"]
    live = list_filters(subscriptions, StripeApi("sk_test_x"))
    local = list_filters(subscriptions, StripeApi("sk_test_x", "http://127.0.0.1:8420"))
    assert live["expand"] == ["data.discounts", "data.items.data.discounts"]
    assert live["status"] == "all"
    assert "expand" not in local
    assert list_filters(OBJECT_TYPES_BY_NAME["prices"], StripeApi("sk_test_x"))["expand"] == ["data.tiers"]
