"""The ExecuteCommand budget (token bucket) and start_session's retries, with an injected clock: no waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.aws import AwsClientFactory
from bot.config import parse_config
from bot.errors import AwsError, TargetError
from bot.rate_budget import BudgetExhausted, RateBudget
from bot.runner import StartPolicy, start_session
from bot.targets import Target


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)




async def test_budget_waits_for_a_token_within_the_deadline_or_gives_up() -> None:
    t = FakeTime()
    budget = RateBudget(per_second=1, burst=1, clock=t.clock, sleep=t.sleep)
    assert await budget.acquire(max_wait=10) == 0
    assert await budget.acquire(max_wait=10) == pytest.approx(1.0)
    with pytest.raises(BudgetExhausted):
        await budget.acquire(max_wait=0.5)


async def test_fan_out_draws_from_one_budget_per_environment() -> None:
    t = FakeTime()
    budget = RateBudget(per_second=2, burst=2, clock=t.clock, sleep=t.sleep)
    start = t.now
    waited = await asyncio.gather(*(budget.acquire(max_wait=60) for _ in range(6)))
    assert sorted(waited)[:2] == [0, 0]
    assert t.now - start == pytest.approx(2.0)  # 2 at once, then 4 more at 2 per second


def test_the_factory_hands_every_requester_the_environment_budget() -> None:
    config = parse_config("environments:\n  prod: {region: us-east-1, execute_command_per_second: 0.5,"
                          " execute_command_burst: 3}\n")
    factory = AwsClientFactory(config.environments)
    a, b = factory.for_environment("prod", "alice"), factory.for_environment("prod", "bob")
    assert a.execute_budget is b.execute_budget is factory.budget("prod")
    assert factory.budget("prod")._bucket.rate_per_s == 0.5 and factory.budget("prod")._bucket.burst == 3
    assert factory.budget("other") is not factory.budget("prod")


TARGET = Target(environment="prod", cluster="prod", service="web", task_arn="arn:aws:ecs:r:1:task/prod/abc",
                task_id="abc", container="app", runtime_id=None, shell=True)


class FakeEcs:
    def __init__(self, failures: list[str]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def execute_command(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.failures:
            code = self.failures.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": code}}, "ExecuteCommand")
        return {"session": {"sessionId": "s-1", "streamUrl": "wss://x", "tokenValue": "t"}}


class FakeClients:
    def __init__(self, ecs: FakeEcs, t: FakeTime) -> None:
        self.ecs = ecs
        self.execute_budget = RateBudget(per_second=100, burst=100, clock=t.clock, sleep=t.sleep)


def policy(t: FakeTime) -> StartPolicy:
    return StartPolicy(clock=t.clock, sleep=t.sleep, jitter=lambda lo, hi: hi)


async def test_throttling_is_retried_with_jitter_within_the_deadline() -> None:
    t = FakeTime()
    ecs = FakeEcs(["ThrottlingException"] * 4)
    session = await start_session(FakeClients(ecs, t), TARGET, "true", deadline=t.now + 60,  # type: ignore[arg-type]
                                  policy=policy(t))
    assert session["sessionId"] == "s-1" and ecs.calls == 5
    assert t.slept == [1.0, 2.0, 4.0, 5.0]  # full jitter (here: its top), capped at 5 s


async def test_throttling_past_the_deadline_is_one_sentence() -> None:
    t = FakeTime()
    ecs = FakeEcs(["ThrottlingException"] * 100)
    with pytest.raises(AwsError) as caught:
        await start_session(FakeClients(ecs, t), TARGET, "true", deadline=t.now + 10,  # type: ignore[arg-type]
                            policy=policy(t))
    assert caught.value.message.startswith("AWS kept throttling ecs:ExecuteCommand for 7 s (4 attempts)")
    assert "fewer tasks at once" in (caught.value.fix or "")
    assert sum(t.slept) < 10


async def test_a_not_yet_connected_agent_is_retried_then_reported_saying_so() -> None:
    t = FakeTime()
    ecs = FakeEcs(["TargetNotConnectedException"] * 2)
    assert (await start_session(FakeClients(ecs, t), TARGET, "true", deadline=t.now + 60,  # type: ignore[arg-type]
                                policy=policy(t)))["sessionId"] == "s-1"
    assert t.slept == [1.0, 2.0]

    t = FakeTime()
    ecs = FakeEcs(["TargetNotConnectedException"] * 10)
    with pytest.raises(TargetError) as caught:
        await start_session(FakeClients(ecs, t), TARGET, "true", deadline=t.now + 60,  # type: ignore[arg-type]
                            policy=policy(t))
    assert ecs.calls == 4 and t.slept == [1.0, 2.0, 4.0]
    assert "is not connected to SSM (still, after 3 retries over 7 s" in caught.value.message
    assert "ssmmessages:CreateControlChannel" in (caught.value.fix or "")


async def test_an_exhausted_budget_is_one_sentence() -> None:
    t = FakeTime()
    clients = FakeClients(FakeEcs([]), t)
    clients.execute_budget = RateBudget(per_second=0.01, burst=1, clock=t.clock, sleep=t.sleep)
    await start_session(clients, TARGET, "true", deadline=t.now + 5, policy=policy(t))  # type: ignore[arg-type]
    with pytest.raises(AwsError) as caught:
        await start_session(clients, TARGET, "true", deadline=t.now + 5, policy=policy(t))  # type: ignore[arg-type]
    assert "ExecuteCommand budget for environment prod is used up" in caught.value.message
