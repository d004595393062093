"""Object states carried by events, and the ordering decision per object."""

from __future__ import annotations

from datetime import datetime, timezone

from halo_stripe_pipeline.events.plan import (
    ObjectState,
    StoredState,
    resolve_object,
    states_from_event,
)
from tests.receiver.support import load_sample


def state(
    created: int, seq: int, data: dict | None, deleted: bool = False
) -> ObjectState:
    return ObjectState(
        "subscriptions", "sub_1", created, f"evt_{seq}", seq, data, deleted
    )


def stored_at(second: float, deleted: bool = False) -> StoredState:
    return StoredState(datetime.fromtimestamp(second, tz=timezone.utc), deleted)


def test_customer_event_carries_customer() -> None:
    event = load_sample("stripe-ruby-mock/customer.updated.json")

    states = states_from_event(event, 7).states

    assert [(s.object_type, s.object_id, s.seq, s.deleted) for s in states] == [
        ("customers", event["data"]["object"]["id"], 7, False)
    ]


def test_customer_deleted_is_a_deletion() -> None:
    states = states_from_event(
        load_sample("stripe-ruby-mock/customer.deleted.json")
    ).states

    assert len(states) == 1
    assert states[0].deleted is True


def test_old_charge_refunded_embeds_refunds() -> None:
    extracted = states_from_event(load_sample("stripe-ruby-mock/charge.refunded.json"))

    assert [(s.object_type, s.object_id) for s in extracted.states] == [
        ("charges", "ch_000000000000000000000000"),
        ("refunds", "re_000000000000000000000000"),
    ]
    assert extracted.refund_listings == []


def test_new_charge_refunded_lists_refunds() -> None:
    event = load_sample("payfuzz/charge.refunded.json")

    extracted = states_from_event(event)

    assert [s.object_type for s in extracted.states] == ["charges"]
    assert [listing.charge_id for listing in extracted.refund_listings] == [
        "ch_3Tsk6F2fVmBzG7em12pRYjqb"
    ]


def test_old_payment_intent_embeds_charges() -> None:
    states = states_from_event(
        load_sample("stripe-ruby-mock/payment_intent.succeeded.json")
    ).states

    assert [(s.object_type, s.object_id, s.data is not None) for s in states] == [
        ("charges", "ch_000000000000000000000000", True)
    ]


def test_new_payment_intent_fetches_latest_charge() -> None:
    states = states_from_event(
        load_sample("payfuzz/payment_intent.succeeded.json")
    ).states

    assert [(s.object_type, s.object_id, s.data) for s in states] == [
        ("charges", "ch_3Tsk6D2fVmBzG7em1c1unl2D", None)
    ]


def test_refund_events_carry_refunds() -> None:
    for name in (
        "stripe-ruby-mock/charge.refund.updated.json",
        "stripe-sync-engine/refund_created.json",
    ):
        states = states_from_event(load_sample(name)).states

        assert [s.object_type for s in states] == ["refunds"], name


def test_subscription_and_invoice_events() -> None:
    cases = {
        "payfuzz/customer.subscription.updated.json": "subscriptions",
        "stripe-ruby-mock/customer.subscription.deleted.json": "subscriptions",
        "stripe-ruby-mock/invoice.payment_failed.json": "invoices",
    }
    for name, object_type in cases.items():
        states = states_from_event(load_sample(name)).states

        assert [s.object_type for s in states] == [object_type], name
        assert states[0].deleted is False, name


def test_newest_state_wins() -> None:
    decision = resolve_object([state(20, 2, {"v": 2}), state(10, 1, {"v": 1})], None)

    assert decision.action == "write"
    assert decision.state is not None
    assert decision.state.data == {"v": 2}


def test_reverse_arrival_keeps_newest() -> None:
    # The newer state arrived first (lower seq); `created` decides, not arrival.
    decision = resolve_object([state(20, 1, {"v": 2}), state(10, 2, {"v": 1})], None)

    assert decision.state is not None
    assert decision.state.data == {"v": 2}


def test_older_than_stored_is_skipped() -> None:
    decision = resolve_object([state(10, 1, {"v": 1})], stored_at(11))

    assert decision.action == "skip"


def test_same_second_states_are_fetched() -> None:
    decision = resolve_object([state(10, 1, {"v": 1}), state(10, 2, {"v": 2})], None)

    assert decision.action == "fetch"


def test_same_second_identical_states_write() -> None:
    decision = resolve_object([state(10, 1, {"v": 1}), state(10, 2, {"v": 1})], None)

    assert decision.action == "write"


def test_same_second_as_stored_is_fetched() -> None:
    decision = resolve_object([state(10, 1, {"v": 1})], stored_at(10.4))

    assert decision.action == "fetch"


def test_deletion_wins_over_later_update() -> None:
    deletion = state(10, 1, {"v": "gone"}, deleted=True)

    decision = resolve_object([deletion, state(12, 2, {"v": "late"})], stored_at(5))

    assert decision.action == "write"
    assert decision.deleted is True
    assert decision.state == deletion


def test_deleted_row_stays_deleted() -> None:
    decision = resolve_object(
        [state(30, 1, {"v": "late"})], stored_at(10, deleted=True)
    )

    assert decision.action == "skip"


def test_state_without_data_is_fetched() -> None:
    decision = resolve_object([state(10, 1, None)], None)

    assert decision.action == "fetch"
