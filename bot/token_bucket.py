"""A token bucket with an injected clock: how many calls a shared budget allows right now. Pure.

Used for Slack's per-workspace ``chat.update`` limit (the live progress of every run shares one bucket), but
nothing here knows Slack. ``take(force=True)`` always succeeds and may leave the bucket in debt: calls that
must go out (a run's final result) still count, so the optional ones (live updates) yield to them.
"""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, *, clock: Callable[[], float]) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._paused_until = float("-inf")

    @classmethod
    def per_minute(cls, calls: float, burst: float, *, clock: Callable[[], float]) -> TokenBucket:
        return cls(calls / 60.0, burst, clock=clock)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def try_take(self) -> bool:
        """Take one token if one is there (and no pause is in force)."""
        self._refill()
        if self._clock() < self._paused_until or self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def take(self, *, force: bool = False) -> bool:
        """``try_take``; with ``force`` the call is counted even without a token (the bucket owes it)."""
        if self.try_take():
            return True
        if force:
            self._tokens -= 1
        return force

    def wait_s(self) -> float:
        """Seconds until ``try_take`` can succeed (0 if it can now)."""
        self._refill()
        now = self._clock()
        missing = max(0.0, 1 - self._tokens) / self.rate_per_s
        return max(missing, self._paused_until - now, 0.0)

    def pause(self, seconds: float) -> None:
        """The server said "slow down" (HTTP 429, Retry-After): no optional call for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
