"""The state machine as a pure function: precedence decides, order never does."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from receipts.statuses import FINAL_STATUSES, PRECEDENCE, Status, can_advance, is_final, resolve, statuses_below

statuses = st.sampled_from([s.value for s in Status])


def apply_in_order(received: list[str]) -> str:
    return reduce(lambda current, new: new if can_advance(current, new) else current, received, Status.QUEUED.value)


@given(st.lists(statuses, max_size=8), st.randoms())
def test_any_order_of_the_same_receipts_ends_in_the_same_status(received, rnd):
    shuffled = received[:]
    rnd.shuffle(shuffled)
    assert apply_in_order(received) == apply_in_order(shuffled) == resolve([Status.QUEUED.value, *received])


def test_a_final_status_never_moves_back_to_a_non_final_one():
    for final in FINAL_STATUSES:
        for other in Status:
            if not is_final(other):
                assert not can_advance(final, other)


def test_delivered_outranks_every_other_status():
    assert all(can_advance(s, Status.DELIVERED) for s in Status if s != Status.DELIVERED)


def test_unknown_is_replaced_by_any_definitive_outcome_but_not_by_in_flight_statuses():
    assert all(can_advance(Status.UNKNOWN, final) for final in FINAL_STATUSES)
    assert not any(can_advance(Status.UNKNOWN, s) for s in (Status.QUEUED, Status.ACCEPTED, Status.SENT))


def test_statuses_below_is_what_the_conditional_update_may_move_from():
    assert statuses_below(Status.SENT) == ["queued", "accepted"]
    assert statuses_below(Status.QUEUED) == []
    assert len(statuses_below(Status.DELIVERED)) == len(PRECEDENCE) - 1
