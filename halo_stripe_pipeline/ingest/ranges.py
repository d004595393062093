"""Pure helpers for listing one Stripe object type as disjoint `created` ranges.

Stripe lists are newest first and accept `created[gte]`/`created[lt]` with
`starting_after`. A backfill splits the span from the oldest object to now
into half-open ranges of whole seconds, pages each range on its own thread,
and splits a range's unread remainder again when a worker would otherwise
idle. Every object lands in exactly one range: a range is only ever cut at
a second boundary below its cursor's `created`, and the seconds at or above
that cut stay with the cursor that is already inside them. A range of one
second (many objects created in the same second) cannot be cut and is
drained by `starting_after` alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Searches for the oldest object start at 2009-01-01 UTC, before Stripe's
# launch. The loader checks that no object is older before slicing from here.
EARLIEST_CREATED = 1_230_768_000


@dataclass(frozen=True)
class RangeTask:
    """One slice of a listing: `created` in `[gte, lt)` and the paging position.

    `gte` and `lt` are None for an unsliced listing (a server that rejects
    `created` filters). `cursor_created` is the `created` of the cursor
    object, and `seen_at_cursor_second` the ids already read in that second,
    so a listing resumed after its cursor vanished skips them.
    `objects_per_second` is the density of the last page read, used to
    judge whether the rest is worth splitting.
    """

    gte: int | None
    lt: int | None
    starting_after: str | None = None
    cursor_created: int | None = None
    seen_at_cursor_second: frozenset[str] = field(default_factory=frozenset)
    objects_per_second: float | None = None

    @property
    def is_sliced(self) -> bool:
        return self.gte is not None and self.lt is not None

    def describe(self) -> str:
        window = f"created in [{self.gte}, {self.lt})" if self.is_sliced else "the whole list"
        if self.starting_after:
            return f"{window}, after cursor `{self.starting_after}`"
        return f"{window}, first page"


def split_span(start: int, end: int, parts: int) -> list[RangeTask]:
    """Cut `[start, end)` into at most `parts` adjacent ranges of whole seconds."""
    if end <= start:
        return []
    parts = max(1, min(parts, end - start))
    bounds = [start + (end - start) * index // parts for index in range(parts + 1)]
    return [RangeTask(gte=low, lt=high) for low, high in zip(bounds, bounds[1:]) if high > low]


def list_params(task: RangeTask, filters: Mapping[str, Any]) -> dict[str, Any]:
    """Return the query of the next page of `task` (without `limit`)."""
    params: dict[str, Any] = dict(filters)
    if task.gte is not None:
        params["created[gte]"] = task.gte
    if task.lt is not None:
        params["created[lt]"] = task.lt
    if task.starting_after:
        params["starting_after"] = task.starting_after
    return params


def advance(
    task: RangeTask, objects: Sequence[Mapping[str, Any]], has_more: bool
) -> tuple[list[Mapping[str, Any]], RangeTask | None]:
    """Apply one page to `task`.

    Returns the objects not read before (a resumed listing repeats some of
    the cursor's second) and the task for the next page, or None when the
    range is drained.
    """
    fresh = [obj for obj in objects if obj.get("id") not in task.seen_at_cursor_second]
    if not objects or not has_more:
        return fresh, None
    last = objects[-1]
    last_created = last.get("created")
    same_second = {str(obj["id"]) for obj in objects if obj.get("created") == last_created}
    if last_created == task.cursor_created:
        seen = task.seen_at_cursor_second | same_second
    else:
        seen = frozenset(same_second)
    following = replace(
        task,
        starting_after=str(last["id"]),
        cursor_created=last_created if isinstance(last_created, int) else None,
        seen_at_cursor_second=seen,
        objects_per_second=_density(objects),
    )
    return fresh, following


def _density(objects: Sequence[Mapping[str, Any]]) -> float | None:
    newest, oldest = objects[0].get("created"), objects[-1].get("created")
    if not isinstance(newest, int) or not isinstance(oldest, int):
        return None
    return len(objects) / max(1, newest - oldest + 1)


def worthwhile_pieces(
    task: RangeTask, wanted: int, page_size: int, min_pages_per_piece: float
) -> int:
    """Return how many pieces (1 to `wanted`) the rest of `task` is worth.

    Every piece ends with a partial page, so a cut pays only when each
    piece is expected to hold `min_pages_per_piece` pages at the density
    of the last page read.
    """
    if wanted < 2 or not task.is_sliced or task.cursor_created is None:
        return 1
    if task.objects_per_second is None:
        return wanted
    assert task.gte is not None
    remaining_seconds = task.cursor_created + 1 - task.gte
    expected_pages = task.objects_per_second * remaining_seconds / page_size
    return max(1, min(wanted, int(expected_pages // min_pages_per_piece)))


def split_remaining(task: RangeTask, parts: int) -> list[RangeTask]:
    """Cut the unread rest of `task` into up to `parts` disjoint tasks.

    Objects after the cursor have `created <= cursor_created`, so the rest
    is `[gte, cursor_created + 1)`. The newest piece keeps the cursor; the
    older pieces start fresh. A task without a cursor time, unsliced, or
    within one second comes back unchanged.
    """
    if parts < 2 or not task.is_sliced or task.cursor_created is None:
        return [task]
    assert task.gte is not None
    top = min(task.lt or task.cursor_created + 1, task.cursor_created + 1)
    pieces = split_span(task.gte, top, parts)
    if len(pieces) < 2:
        return [task]
    newest = replace(task, gte=pieces[-1].gte, lt=top)
    return [newest, *pieces[:-1]]


def resume_after_missing_cursor(task: RangeTask) -> RangeTask:
    """Return `task` restarted at its cursor's second after the cursor was deleted.

    Stripe returns `resource_missing` when the `starting_after` object is
    gone. The listing restarts without a cursor at `created <= cursor_created`
    and skips the ids of that second it has already read.
    """
    if task.cursor_created is None:
        raise ValueError(f"cannot resume {task.describe()}: the cursor's created time is unknown")
    return replace(
        task,
        lt=task.cursor_created + 1,
        starting_after=None,
    )


def probe_points(low: int, high: int, count: int) -> list[int]:
    """Return up to `count` distinct instants strictly inside `(low, high)`."""
    if high - low < 2:
        return []
    count = min(count, high - low - 1)
    return sorted({low + (high - low) * index // (count + 1) for index in range(1, count + 1)})


def narrow_oldest(
    low: int, high: int, answers: Mapping[int, bool]
) -> tuple[int, int]:
    """Narrow the bracket of the oldest `created` with probe results.

    Invariant: no object has `created < low`, and one has `created < high`.
    `answers[t]` tells whether any object has `created < t`.
    """
    for point in sorted(answers):
        if answers[point]:
            return low, min(high, point)
        low = max(low, point)
    return low, high


def oldest_is_bracketed(low: int, high: int, newest: int) -> bool:
    """Tell whether the bracket is narrow enough to start slicing.

    Slices start at `low`, so at most `high - low` seconds of them can be
    empty. A bracket within a sixteenth of the listed span (or an hour)
    wastes at most about one slice in sixteen.
    """
    return high - low <= max(3600, (newest - low) // 16)
