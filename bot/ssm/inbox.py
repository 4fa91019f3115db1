"""Agent→client output messages in sequence order: the receive side's reorder buffer.

Pure code, no I/O. Rules from docs/ssm-protocol.md §4.2 and §11.1–§11.2: the message the client expects
next is delivered at once; a later one is kept (and acked by the caller) until the gap before it is
filled; an earlier one was delivered already (the caller re-acks it, nothing else). What is kept is
bounded three ways — count, payload bytes, distance ahead — and a message beyond a bound is dropped
*unacked*, so the agent sends it again later instead of us holding it now.
"""

from __future__ import annotations

import enum


class Arrival(enum.Enum):
    NEXT = "next"  # the expected sequence number: deliver, then drain what it unblocks
    AHEAD = "ahead"  # a gap before it: keep it (``hold``)
    DUPLICATE = "duplicate"  # delivered before: our ack was lost, ack again


class Inbox:
    """The expected sequence number and the messages that arrived ahead of it.

    The caller delivers a ``NEXT`` message itself and then calls ``advance``; ``pop_next`` hands out held
    messages that have become next, already advanced past.
    """

    __slots__ = ("expected", "_held", "_held_bytes", "max_messages", "max_bytes", "max_gap")

    def __init__(self, *, max_messages: int, max_bytes: int, max_gap: int) -> None:
        self.expected = 0
        self._held: dict[int, tuple[int, bytes]] = {}  # seq -> (PayloadType, payload)
        self._held_bytes = 0
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # The agent keeps at most 100000 unacked messages: one further ahead than that cannot be real.
        self.max_gap = max_gap

    def __len__(self) -> int:
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def classify(self, seq: int) -> Arrival:
        if seq == self.expected:
            return Arrival.NEXT
        return Arrival.AHEAD if seq > self.expected else Arrival.DUPLICATE

    def advance(self) -> None:
        """The expected message was delivered."""
        self.expected += 1

    def hold(self, seq: int, payload_type: int, payload: bytes) -> bool:
        """Keep a message that arrived ahead; False: over a bound, drop it without acking."""
        if seq in self._held:
            return True  # a duplicate of one we hold: ack it again, keep the first copy
        if (
            len(self._held) >= self.max_messages
            or self._held_bytes + len(payload) > self.max_bytes
            or seq - self.expected > self.max_gap
        ):
            return False
        self._held[seq] = (payload_type, payload)
        self._held_bytes += len(payload)
        return True

    def peek_type(self) -> int | None:
        """The PayloadType of the held message that is next, if there is one."""
        entry = self._held.get(self.expected)
        return None if entry is None else entry[0]

    def pop_next(self) -> tuple[int, bytes] | None:
        """The held message that is next, (PayloadType, payload), advancing past it; None if not held."""
        if not self._held:
            return None
        entry = self._held.pop(self.expected, None)
        if entry is not None:
            self._held_bytes -= len(entry[1])
            self.expected += 1
        return entry

    def missing(self) -> int:
        """Sequence numbers never received although later ones were (a hole in the output)."""
        if not self._held:
            return 0
        return max(self._held) - self.expected + 1 - len(self._held)
