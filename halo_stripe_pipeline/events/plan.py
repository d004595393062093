"""Turn stored events into the object states they carry, and pick the winner.

Pure functions, no database or network: `states_from_event` reads one event,
`resolve_object` decides what one object's row should become given every
state a batch has for it and the state the row already reflects.

Ordering rules:
- An event older than what a row already reflects never overwrites it.
- States of one object apply in order of the event's `created`.
- `created` has one-second resolution, so two different states of one object
  in the same second (or a state in the second the row was last observed)
  cannot be ordered: the object is re-read from Stripe instead.
- A deletion always wins and a deleted row stays deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from halo_stripe_pipeline.events.types import DELETION_EVENT_TYPES, event_object

# Stripe object name -> name of the ingest object type (and its raw table).
OBJECT_TYPE_NAMES = {
    "customer": "customers",
    "subscription": "subscriptions",
    "charge": "charges",
    "refund": "refunds",
    "invoice": "invoices",
}


@dataclass(frozen=True)
class ObjectState:
    """One object as one event carries it; `data` None means it must be fetched."""

    object_type: str
    object_id: str
    created: int
    event_id: str
    seq: int
    data: Mapping[str, Any] | None
    deleted: bool = False


@dataclass(frozen=True)
class RefundListing:
    """A charge whose refunds the event does not embed; list them from the API."""

    charge_id: str
    created: int
    event_id: str


@dataclass
class EventStates:
    states: list[ObjectState] = field(default_factory=list)
    refund_listings: list[RefundListing] = field(default_factory=list)


def _state(
    event: Mapping[str, Any], seq: int, obj: Mapping[str, Any], *, deleted: bool = False
) -> ObjectState | None:
    type_name = OBJECT_TYPE_NAMES.get(str(obj.get("object")))
    object_id = obj.get("id")
    if type_name is None or not isinstance(object_id, str):
        return None
    return ObjectState(
        object_type=type_name,
        object_id=object_id,
        created=int(event["created"]),
        event_id=str(event["id"]),
        seq=seq,
        data=obj,
        deleted=deleted or obj.get("deleted") is True,
    )


def _to_fetch(
    event: Mapping[str, Any], seq: int, type_name: str, object_id: str
) -> ObjectState:
    return ObjectState(
        object_type=type_name,
        object_id=object_id,
        created=int(event["created"]),
        event_id=str(event["id"]),
        seq=seq,
        data=None,
    )


def _embedded_list(obj: Mapping[str, Any], key: str) -> list[Mapping[str, Any]] | None:
    """Return `obj[key].data` when the payload embeds that list, else None."""
    value = obj.get(key)
    if isinstance(value, Mapping) and isinstance(value.get("data"), list):
        return [item for item in value["data"] if isinstance(item, Mapping)]
    return None


def states_from_event(event: Mapping[str, Any], seq: int = 0) -> EventStates:
    """Return every object state `event` carries, in old and new payload shapes.

    Charges embedded their refunds until API 2022-11-15, and PaymentIntents
    their charges. Newer payloads carry neither, so a refunded charge lists
    its refunds and a PaymentIntent fetches its `latest_charge`.
    """
    result = EventStates()
    obj = event_object(event)
    event_type = str(event["type"])
    deleted = event_type in DELETION_EVENT_TYPES

    if obj.get("object") == "payment_intent":
        _add_payment_intent_charges(result, event, seq, obj)
        return result

    primary = _state(event, seq, obj, deleted=deleted)
    if primary is None:
        return result
    result.states.append(primary)

    if primary.object_type == "charges":
        refunds = _embedded_list(obj, "refunds")
        for refund in refunds or []:
            state = _state(event, seq, refund)
            if state is not None:
                result.states.append(state)
        if refunds is None and event_type == "charge.refunded":
            result.refund_listings.append(
                RefundListing(primary.object_id, primary.created, primary.event_id)
            )
    return result


def _add_payment_intent_charges(
    result: EventStates, event: Mapping[str, Any], seq: int, intent: Mapping[str, Any]
) -> None:
    charges = _embedded_list(intent, "charges")
    if charges:
        for charge in charges:
            state = _state(event, seq, charge)
            if state is not None:
                result.states.append(state)
        return
    latest = intent.get("latest_charge")
    if isinstance(latest, Mapping):
        state = _state(event, seq, latest)
        if state is not None:
            result.states.append(state)
    elif isinstance(latest, str) and latest:
        result.states.append(_to_fetch(event, seq, "charges", latest))


@dataclass(frozen=True)
class StoredState:
    """The state a raw row already reflects."""

    observed_at: datetime
    is_deleted: bool


@dataclass(frozen=True)
class Decision:
    """The action for one object: write `state`, fetch it, or skip it (superseded)."""

    action: str  # "write", "fetch" or "skip"
    state: ObjectState | None = None
    deleted: bool = False
    reason: str = ""


def _same_data(states: Sequence[ObjectState]) -> bool:
    first = states[0].data
    return all(state.data == first for state in states[1:])


def resolve_object(
    states: Sequence[ObjectState], stored: StoredState | None
) -> Decision:
    """Decide one object's write from its batch states and its stored row."""
    ordered = sorted(states, key=lambda state: (state.created, state.seq))
    deletions = [state for state in ordered if state.deleted]
    if stored is not None and stored.is_deleted:
        return Decision("skip", reason="the row is already deleted")
    if deletions:
        return Decision("write", state=deletions[-1], deleted=True)

    newest = ordered[-1]
    stored_second = int(stored.observed_at.timestamp()) if stored is not None else None
    if stored_second is not None and stored_second > newest.created:
        return Decision("skip", reason="the row reflects a newer state")

    same_second = [state for state in ordered if state.created == newest.created]
    if any(state.data is None for state in same_second):
        return Decision(
            "fetch", state=newest, reason="the event names the object only by id"
        )
    if len(same_second) > 1 and not _same_data(same_second):
        return Decision("fetch", state=newest, reason="several states share one second")
    if stored_second is not None and stored_second == newest.created:
        return Decision(
            "fetch", state=newest, reason="the row was observed in the same second"
        )
    return Decision("write", state=newest)
