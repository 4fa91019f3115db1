"""Sequenced client→agent messages awaiting acknowledgement, and the retransmission timer.

Pure code (the caller passes ``now``). Rules from docs/ssm-protocol.md §4.3, same constants as the plugin and
the agent: Jacobson/Karels RTT estimation, RTO clamped to [10 ms granularity, 1 s], and only the *oldest*
unacked message is ever resent. Unlike the plugin we write ``last_sent`` back after a resend, so a
timed-out message is resent once per RTO, not every scheduler tick.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

DEFAULT_RTT = 0.100
DEFAULT_RTTVAR = 0.0
DEFAULT_RTO = 0.200
MAX_RTO = 1.0
CLOCK_GRANULARITY = 0.010
ALPHA = 1 / 8
BETA = 1 / 4


class RetransmissionTimer:
    __slots__ = ("rtt", "rttvar", "rto")

    def __init__(self) -> None:
        self.rtt = DEFAULT_RTT
        self.rttvar = DEFAULT_RTTVAR
        self.rto = DEFAULT_RTO

    def sample(self, round_trip: float) -> None:
        self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.rtt - round_trip)
        self.rtt = (1 - ALPHA) * self.rtt + ALPHA * round_trip
        self.rto = min(self.rtt + max(CLOCK_GRANULARITY, 4 * self.rttvar), MAX_RTO)


@dataclass(slots=True)
class Outgoing:
    sequence_number: int
    frame: bytes
    first_sent: float | None = None
    last_sent: float | None = None
    sends: int = 0


class Outbox:
    """Messages in sequence order; ``pending`` are not yet on the wire (paused, or a new connection)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.timer = RetransmissionTimer()
        self._unacked: OrderedDict[int, Outgoing] = OrderedDict()
        self._pending: deque[Outgoing] = deque()

    def __len__(self) -> int:
        return len(self._unacked)

    @property
    def full(self) -> bool:
        return len(self._unacked) >= self.capacity

    def add(self, sequence_number: int, frame: bytes) -> None:
        entry = Outgoing(sequence_number, frame)
        self._unacked[sequence_number] = entry
        self._pending.append(entry)

    def take_pending(self) -> list[Outgoing]:
        """Entries to put on the wire now, oldest first (acked ones are skipped)."""
        out = [e for e in self._pending if e.sequence_number in self._unacked]
        self._pending.clear()
        return out

    def mark_sent(self, entry: Outgoing, now: float) -> None:
        if entry.first_sent is None:
            entry.first_sent = now
        entry.last_sent = now
        entry.sends += 1

    def acknowledge(self, sequence_number: int, now: float) -> bool:
        entry = self._unacked.pop(sequence_number, None)
        if entry is None:
            return False  # duplicate ack, or an ack of something we never sent
        if entry.last_sent is not None:
            self.timer.sample(now - entry.last_sent)
        return True

    def due(self, now: float) -> Outgoing | None:
        """The oldest unacked message if its RTO has passed since it was last sent."""
        for entry in self._unacked.values():
            if entry.last_sent is not None and now - entry.last_sent > self.timer.rto:
                return entry
            return None
        return None

    def oldest_first_sent(self) -> float | None:
        for entry in self._unacked.values():
            return entry.first_sent
        return None

    def requeue_all(self) -> None:
        """After a reconnect: whatever was in flight on the old socket is presumed lost; send it all again."""
        self._pending = deque(self._unacked.values())
