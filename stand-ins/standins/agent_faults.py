"""Seeded decisions for ``Faults``: which first transmissions are lost, doubled or held back, and when."""

from __future__ import annotations

import random
from dataclasses import dataclass

from standins.agent_models import Faults


@dataclass(frozen=True, slots=True)
class SendPlan:
    drop: bool = False  # lose it (the retransmission timer must recover it)
    duplicate: bool = False  # send it twice
    hold: bool = False  # send it after the next message (reordering)


class FaultInjector:
    """One per session. Decisions depend only on the seed and the order of calls: reproducible."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._first_sent = 0
        self._published = 0
        self._closed = False
        self._paused = False
        self._rejected = 0

    def reject_connection(self) -> bool:
        if self._rejected < self.faults.reject_token:
            self._rejected += 1
            return True
        return False

    def plan_first_send(self, seq: int) -> SendPlan:
        f = self.faults
        # Always draw all three numbers, so changing one rate does not shift the others' choices.
        r_drop, r_dup, r_hold = self._rng.random(), self._rng.random(), self._rng.random()
        self._first_sent += 1
        if seq in f.drop_seqs or r_drop < f.drop_rate:
            return SendPlan(drop=True)
        return SendPlan(duplicate=r_dup < f.duplicate_rate, hold=r_hold < f.reorder_rate)

    def close_now(self) -> bool:
        """True once, when ``close_after`` first transmissions have gone out."""
        n = self.faults.close_after
        if n is not None and not self._closed and self._first_sent >= n:
            self._closed = True
            return True
        return False

    def note_published(self) -> bool:
        """Count a published message; True once, when publication should pause."""
        self._published += 1
        n = self.faults.pause_after
        if n is not None and not self._paused and self._published >= n:
            self._paused = True
            return True
        return False
