"""AWS throttling bursts through the real app: the local ECS answers ThrottlingException N times, then
normally (the bot retries and runs the command once), or for longer than the retry budget (one clear
sentence, nothing runs). Backoff sleeps are shortened; the retry budget itself is the production one
(botocore adaptive mode, ``total_max_attempts: 2``, under `bot.aws.aws_call`'s 3 attempts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.retries import adaptive, standard

from bot.config import BotConfig
from bot.runner import ExecRunner, StartPolicy
from standins.ecs import SANDBOX
from tests.reliability.support import (
    ThrottlingProxy,
    audit_events,
    audit_kinds,
    execute_command_calls,
    serve_bot,
    wait_audit,
)
from tests.slack.e2e_helpers import message_text, responses
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness


@pytest.fixture
def throttling(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrottlingProxy]:
    """boto3's ECS endpoint goes through the proxy (clients are created on the first command)."""
    # Time only: botocore's backoff, its adaptive client-side rate limiter, and aws_call's jitter.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    monkeypatch.setattr(adaptive.ClientRateLimiter, "on_sending_request", lambda self, request, **kw: None)
    monkeypatch.setattr("bot.aws.random", SimpleNamespace(uniform=lambda low, high: 0.01))
    with ThrottlingProxy(local_aws.ecs_server.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", proxy.url)
        yield proxy


async def test_a_throttling_burst_is_retried_and_the_command_runs_once(
    throttling: ThrottlingProxy, bot: BotHarness, fake: FakeSlack
) -> None:
    throttling.throttle = {"ListTasks": 3, "ExecuteCommand": 3}
    await bot.command("web echo after-the-burst")
    await wait_audit(bot.services.runs.store, "finished")
    update = (await fake.await_for("chat.update"))[-1]
    assert "after-the-burst" in message_text(fake, str(update.params["ts"]))
    assert throttling.throttled == {"ListTasks": 3, "ExecuteCommand": 3}
    assert len(execute_command_calls()) == 1  # the throttled calls never reached ECS; one run
    assert audit_kinds(bot.services.runs.store) == ["requested", "started", "finished"]


async def test_throttling_beyond_the_retry_budget_is_one_clear_sentence_and_nothing_runs(
    throttling: ThrottlingProxy, fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any,
    tmp_path: Path,
) -> None:
    # ExecuteCommand throttling is retried with jitter for as long as the command's timeout (30 s here)
    # allows; a clock that the backoff advances keeps the test from waiting for it.
    fake_now = [0.0]

    async def sleep(seconds: float) -> None:
        fake_now[0] += seconds

    runner = ExecRunner(local_aws.factory(dict(config.environments)).for_environment,
                        start_policy=StartPolicy(clock=lambda: fake_now[0], sleep=sleep,
                                                 jitter=lambda _lo, hi: hi))
    throttling.throttle = {"ExecuteCommand": 10_000}
    SANDBOX.reset()
    async with serve_bot(fake, config, local_aws, tmp_path / "bot.db", runner=runner) as bot:
        await bot.command("web echo never", response_url=fake.response_url("thr"))
        await wait_audit(bot.services.runs.store, "failed")
        update = (await fake.await_for("chat.update"))[-1]
        text = message_text(fake, str(update.params["ts"]))
        assert "AWS kept throttling ecs:ExecuteCommand for" in text, text
        assert "Retry in a minute" in text
        assert execute_command_calls() == []
        # Bounded by the command's timeout: backoffs 1, 2, 4, 5, 5, 5, 5 s (27 s; the next would pass 30 s),
        # so 8 attempts of 2 botocore calls each.
        assert throttling.throttled["ExecuteCommand"] == 8 * 2
        assert fake_now[0] == 27
        [failed] = [e for e in audit_events(bot.services.runs.store) if e.kind == "failed"]
        assert "throttling" in str(failed.details["error"])
        assert audit_kinds(bot.services.runs.store) == ["requested", "failed"]


async def test_throttled_target_lookup_beyond_the_budget_is_an_ephemeral_sentence(
    throttling: ThrottlingProxy, bot: BotHarness, fake: FakeSlack
) -> None:
    throttling.throttle = {"DescribeServices": 10_000}
    await bot.command("web echo never", response_url=fake.response_url("thr"))
    await fake.await_for("/response/thr")
    [reply] = responses(fake, "thr")
    assert "AWS kept throttling ecs:DescribeServices after several retries" in reply["text"], reply
    assert reply["response_type"] == "ephemeral"
    assert fake.calls("chat.postMessage") == [] and execute_command_calls() == []
    await wait_audit(bot.services.runs.store, "failed")
    assert audit_kinds(bot.services.runs.store) == ["requested", "failed"]
