"""The shared budget of live updates (`bot.token_bucket`): pure, with a hand-moved clock."""

from __future__ import annotations

import pytest

from bot.token_bucket import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket.per_minute(40, 5, clock=clock)
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]
    assert bucket.wait_s() == pytest.approx(1.5)  # 40/min: one token every 1.5 s
    clock.now += 1.5
    assert bucket.try_take() and not bucket.try_take()


def test_refill_never_exceeds_the_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 3, clock=clock)
    clock.now += 3600
    assert bucket.tokens == 3


def test_forced_takes_go_into_debt_and_optional_ones_wait_it_out() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, 2, clock=clock)
    assert bucket.take() and bucket.take()
    assert bucket.take(force=True) and bucket.take(force=True)  # two final results: counted, never refused
    assert bucket.tokens == -2
    assert not bucket.take()
    assert bucket.wait_s() == pytest.approx(3.0)  # the debt is paid back before the next optional call
    clock.now += 3
    assert bucket.try_take()


def test_a_pause_after_a_429_holds_every_optional_call() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, 10, clock=clock)
    bucket.pause(7)
    assert not bucket.try_take() and bucket.wait_s() == pytest.approx(7)
    clock.now += 7
    assert bucket.try_take()


def test_twenty_messages_polling_for_a_minute_stay_within_the_budget() -> None:
    clock = Clock()
    bucket = TokenBucket.per_minute(40, 5, clock=clock)
    taken = 0
    for _ in range(600):  # every 0.1 s for 60 s, each of 20 live messages asks once
        taken += sum(bucket.try_take() for _ in range(20))
        clock.now += 0.1
    assert taken <= 40 + 5


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 5, clock=Clock())
    with pytest.raises(ValueError):
        TokenBucket(1, 0, clock=Clock())
