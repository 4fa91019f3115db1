"""The bot's own budget for ``ecs:ExecuteCommand``, per environment: a token bucket.

ECS throttles ``ExecuteCommand`` in one bucket (about 40 per second, burst 100, per account and region)
that it shares with ``RunTask``, ``StartTask`` and ``StopTask``: a bot that fans out freely could starve a
deployment in the same account. So the bot spends at most ``per_second`` (burst ``burst``) of it per
environment, whatever the number of users and tasks; a request waits for a token within its own
deadline or gives up with one sentence.

The bucket is `bot.token_bucket.TokenBucket` (pure, clock injected; live progress uses it too);
``RateBudget`` is the asyncio edge with an injected clock and sleep, so both are tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

from bot.token_bucket import TokenBucket

DEFAULT_PER_SECOND = 2.0  # modest: 5 % of the account's shared bucket per environment
DEFAULT_BURST = 10  # one fan-out over the default max_tasks starts at once


class BudgetExhausted(Exception):
    """No token before the deadline (the caller turns it into its own sentence)."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"no ExecuteCommand budget within {waited:.1f} s")
        self.waited = waited


def _asyncio_sleep(seconds: float) -> Awaitable[None]:
    import asyncio  # not at module level: bot.config reads the defaults above, and `policy` needs no asyncio

    return asyncio.sleep(seconds)


class RateBudget:
    """A thread-safe ``TokenBucket`` with an async ``acquire(deadline)``."""

    def __init__(self, per_second: float = DEFAULT_PER_SECOND, burst: int = DEFAULT_BURST, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self._bucket = TokenBucket(per_second, burst, clock=clock)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep or _asyncio_sleep

    async def acquire(self, max_wait: float) -> float:
        """Wait for a token at most ``max_wait`` seconds; returns the seconds waited."""
        started = self._clock()
        deadline = started + max_wait
        while True:
            now = self._clock()
            with self._lock:
                wait = 0.0 if self._bucket.try_take() else self._bucket.wait_s()
            if wait == 0:
                return now - started
            if now + wait > deadline:
                raise BudgetExhausted(now - started)
            await self._sleep(wait)
