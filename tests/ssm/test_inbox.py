"""The receive reorder buffer (pure): delivery order, duplicates, and its three bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ssm.inbox import Arrival, Inbox


def inbox(messages: int = 100, max_bytes: int = 1 << 20, gap: int = 1000) -> Inbox:
    return Inbox(max_messages=messages, max_bytes=max_bytes, max_gap=gap)


def test_next_ahead_and_duplicate() -> None:
    box = inbox()
    assert box.classify(0) is Arrival.NEXT
    box.advance()
    assert box.classify(0) is Arrival.DUPLICATE and box.classify(5) is Arrival.AHEAD and box.expected == 1


def test_held_messages_come_out_in_order_once_the_gap_is_filled() -> None:
    box = inbox()
    assert box.hold(2, 1, b"two") and box.hold(3, 7, b"three") and box.hold(2, 1, b"two again")
    assert box.pop_next() is None and box.missing() == 2  # seqs 0 and 1 never came
    box.advance()  # 0 delivered by the caller
    box.advance()  # 1 too
    assert box.peek_type() == 1
    assert box.pop_next() == (1, b"two") and box.pop_next() == (7, b"three") and box.pop_next() is None
    assert box.expected == 4 and len(box) == 0 and box.held_bytes == 0 and box.missing() == 0


def test_bounds_drop_unacked() -> None:
    box = inbox(messages=2, max_bytes=10, gap=50)
    assert box.hold(1, 1, b"12345")
    assert not box.hold(2, 1, b"123456")  # bytes
    assert box.hold(2, 1, b"1234")
    assert not box.hold(3, 1, b"")  # count
    assert not inbox(gap=50).hold(51, 1, b"")  # distance
    assert not inbox().hold(2**63 - 1, 1, b"absurd")
    assert len(box) == 2 and box.held_bytes == 9


@settings(max_examples=200, deadline=None)
@given(st.permutations(range(30)), st.lists(st.integers(0, 29), max_size=20))
def test_any_arrival_order_delivers_each_message_once_in_order(order: list[int], dups: list[int]) -> None:
    box = inbox()
    delivered: list[int] = []
    for seq in [*order, *dups]:
        arrival = box.classify(seq)
        if arrival is Arrival.NEXT:
            delivered.append(seq)
            box.advance()
            while (entry := box.pop_next()) is not None:
                delivered.append(int(entry[1]))
        elif arrival is Arrival.AHEAD:
            assert box.hold(seq, 1, str(seq).encode())
    assert delivered == list(range(30)) and len(box) == 0
