"""Pure sequencing state of one side of the data channel: unacked output + RTO, reordering of input.

Constants and formulas are the agent's (docs/ssm-protocol.md §4.2-§4.3); no I/O, the caller passes ``now``.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

DEFAULT_RTT = 0.100
DEFAULT_RTO = 0.200
MAX_RTO = 1.0
CLOCK_GRANULARITY = 0.010
RTT_ALPHA = 1 / 8
RTTV_BETA = 1 / 4
RESEND_INTERVAL = 0.100


@dataclass(slots=True)
class Pending:
    seq: int
    frame: bytes  # resent byte-identical: same MessageId and CreatedDate
    last_sent: float | None = None  # None: never sent (publication paused or no client)
    attempts: int = 0


class Outbox:
    """Output waiting for its ack, oldest first, with the Jacobson/Karels retransmission timeout."""

    def __init__(self) -> None:
        self._pending: OrderedDict[int, Pending] = OrderedDict()
        self.rtt = DEFAULT_RTT
        self.rttvar = 0.0
        self.rto = DEFAULT_RTO

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._pending.values()))

    def add(self, seq: int, frame: bytes) -> Pending:
        entry = Pending(seq, frame)
        self._pending[seq] = entry
        return entry

    def ack(self, seq: int, now: float) -> bool:
        """Forget ``seq`` (acks match by sequence number only); False if it was not pending."""
        entry = self._pending.pop(seq, None)
        if entry is None:
            return False
        if entry.last_sent is not None:
            sample = max(0.0, now - entry.last_sent)
            self.rttvar = (1 - RTTV_BETA) * self.rttvar + RTTV_BETA * abs(self.rtt - sample)
            self.rtt = (1 - RTT_ALPHA) * self.rtt + RTT_ALPHA * sample
            self.rto = min(self.rtt + max(CLOCK_GRANULARITY, 4 * self.rttvar), MAX_RTO)
        return True

    def due(self, now: float) -> Pending | None:
        """The oldest message if its RTO has passed: the agent only ever resends the oldest."""
        if not self._pending:
            return None
        oldest = next(iter(self._pending.values()))
        if oldest.last_sent is None or now - oldest.last_sent > self.rto:
            return oldest
        return None


class Arrival(enum.Enum):
    IN_ORDER = "in_order"
    AHEAD = "ahead"
    DUPLICATE = "duplicate"


M = TypeVar("M")


class Inbox(Generic[M]):
    """Input reordering: the next expected seq, and messages that arrived ahead of it."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.expected = 0
        self.capacity = capacity
        self._ahead: dict[int, M] = {}

    def classify(self, seq: int) -> Arrival:
        if seq == self.expected:
            return Arrival.IN_ORDER
        return Arrival.AHEAD if seq > self.expected else Arrival.DUPLICATE

    def hold(self, seq: int, message: M) -> bool:
        """Keep a message that came early; False (do not ack it) when the buffer is full."""
        if seq in self._ahead:
            return True
        if len(self._ahead) >= self.capacity:
            return False
        self._ahead[seq] = message
        return True

    def advance(self) -> None:
        self.expected += 1

    def next_held(self) -> M | None:
        """The held message for the expected seq, if it has arrived (left in place until advance)."""
        return self._ahead.get(self.expected)

    def release(self) -> None:
        """Drop the held message for the expected seq after it was processed, and advance."""
        self._ahead.pop(self.expected, None)
        self.expected += 1
