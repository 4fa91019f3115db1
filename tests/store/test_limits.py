"""Run limits over both stores: per-user concurrency, a sliding per-minute window, per-task concurrency,
shared by two replicas and released (or lapsed) correctly."""

from __future__ import annotations

import pytest

from bot.runs.limits import LimitExceeded, RunLimiter, RunLimits, user_rate_scope
from bot.store.base import Store
from tests.store.support import FakeClock

LIMITS = RunLimits(max_concurrent_per_user=2, max_runs_per_minute_per_user=3, max_concurrent_per_task=1)
TASK_A = "arn:aws:ecs:us-east-1:111122223333:task/prod/3f2a9c0e1b2d4c5e"
TASK_B = "arn:aws:ecs:us-east-1:111122223333:task/prod/77aa"


async def test_concurrent_runs_per_user_across_replicas(stores: tuple[Store, Store]) -> None:
    a, b = RunLimiter(stores[0], LIMITS), RunLimiter(stores[1], LIMITS)
    first = await a.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r1", timeout_s=30)
    await b.acquire(user="U0ALICE", task_arns=[TASK_B], run_id="r2", timeout_s=30)
    with pytest.raises(LimitExceeded, match="You already have 2 command") as info:
        await b.acquire(user="U0ALICE", task_arns=["arn:task/c"], run_id="r3", timeout_s=30)
    assert info.value.fix == "Wait for one to finish, then try again."
    await a.acquire(user="U0BOB", task_arns=["arn:task/d"], run_id="r4", timeout_s=30)  # per user
    await a.release(first)
    await b.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r5", timeout_s=30)


async def test_per_task_concurrency_and_nothing_leaks_on_refusal(stores: tuple[Store, Store]) -> None:
    limiter = RunLimiter(stores[0], LIMITS)
    await limiter.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r1", timeout_s=30)
    with pytest.raises(LimitExceeded, match="Task 3f2a9c0e1b2d already has 1 session"):
        await limiter.acquire(user="U0BOB", task_arns=[TASK_B, TASK_A], run_id="r2", timeout_s=30)
    # The refused run gave back its user slot and TASK_B, and did not use a rate slot.
    assert stores[1].active_slots("user-running:U0BOB") == 0
    assert stores[1].active_slots(f"task:{TASK_B}") == 0
    assert stores[1].active_slots(user_rate_scope("U0BOB")) == 0


async def test_runs_per_minute_is_a_sliding_window(stores: tuple[Store, Store], clock: FakeClock) -> None:
    limiter = RunLimiter(stores[0], LIMITS.model_copy(update={"max_concurrent_per_task": 10}))
    for i in range(3):
        async with limiter.hold(user="U0ALICE", task_arns=[TASK_A], run_id=f"r{i}", timeout_s=5):
            pass
        clock.advance(19)  # starts at t = 0, 19, 38; the 4th try is at t = 57
    with pytest.raises(LimitExceeded, match="You started 3 command\\(s\\) in the last minute") as info:
        await limiter.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r3", timeout_s=5)
    assert info.value.fix == "Try again in a minute."
    assert stores[0].active_slots("user-running:U0ALICE") == 0  # the refusal released its user slot
    clock.advance(3)  # t = 60: the first start left the 60 s window
    await limiter.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r4", timeout_s=5)


async def test_a_crashed_replicas_slots_lapse(stores: tuple[Store, Store], clock: FakeClock) -> None:
    limiter = RunLimiter(stores[0], LIMITS, grace_s=10)
    await limiter.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r1", timeout_s=30)
    await limiter.acquire(user="U0ALICE", task_arns=[TASK_B], run_id="r2", timeout_s=30)
    # Never released (the replica died). After timeout + grace the user and task can run again.
    clock.advance(41)
    other = RunLimiter(stores[1], LIMITS)
    await other.acquire(user="U0ALICE", task_arns=[TASK_A], run_id="r3", timeout_s=30)


def test_limits_config_rejects_unknown_keys_and_zero() -> None:
    with pytest.raises(ValueError):
        RunLimits.model_validate({"max_concurrent_per_user": 0})
    with pytest.raises(ValueError):
        RunLimits.model_validate({"max_runs_per_min": 5})
