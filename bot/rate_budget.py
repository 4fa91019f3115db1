"""The bot's own budget for ``ecs:ExecuteCommand``, per environment: a token bucket.

ECS throttles ``ExecuteCommand`` in one bucket (about 40 per second, burst 100, per account and region)
that it shares with ``RunTask``, ``StartTask`` and ``StopTask``: a bot that fans out freely could starve a
deployment in the same account. So the bot spends at most ``per_second`` (burst ``burst``) of it per
environment, whatever the number of users and tasks; a request waits for a token within its own
deadline or gives up with one sentence.

``TokenBucket`` is pure (time is an argument); ``RateBudget`` is the asyncio edge with an injected clock
and sleep, so both are tested without waiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

DEFAULT_PER_SECOND = 2.0  # modest: 5 % of the account's shared bucket per environment
DEFAULT_BURST = 10  # one fan-out over the default max_tasks starts at once


@dataclass
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; starts full. Pure: every method takes ``now``."""

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    updated: float | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def take(self, now: float) -> float:
        """Take a token if there is one (returns 0.0), else how many seconds until there will be one.

        A caller that is told to wait takes nothing; it asks again after waiting (FIFO is not promised,
        but no caller can take more than the rate allows)."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class BudgetExhausted(Exception):
    """No token before the deadline (the caller turns it into its own sentence)."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no ExecuteCommand budget within {waited:.1f} s")
        self.waited = waited


class RateBudget:
    """A thread-safe ``TokenBucket`` with an async ``acquire(deadline)``."""

    def __init__(self, per_second: float = DEFAULT_PER_SECOND, burst: int = DEFAULT_BURST, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._bucket = TokenBucket(per_second, burst)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    async def acquire(self, max_wait: float) -> float:
        """Wait for a token at most ``max_wait`` seconds; returns the seconds waited."""
        started = self._clock()
        deadline = started + max_wait
        while True:
            now = self._clock()
            with self._lock:
                wait = self._bucket.take(now)
            if wait == 0:
                return now - started
            if now + wait > deadline:
                raise BudgetExhausted(now - started)
            await self._sleep(wait)
