"""Over capacity, the user hears it at once: a run that must wait is acked "Queued: N ahead of you" and
starts in its turn; one that could not even wait is refused in the ack, saying when to retry."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from pathlib import Path

from bot.config import BotConfig
from bot.runs.jobs import Job
from bot.runs.queue import QueueLimits
from bot.store.sqlite import SqliteStore
from handlers.server.runtime import ServeOptions
from standins.ecs import SANDBOX
from tests.reliability.support import audit_kinds
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.polling import until
from tests.support.slack_app import TEST_OPTIONS, BotHarness, running_bot


def _bot_with_queue(fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path, limits: QueueLimits,
                    options: ServeOptions = TEST_OPTIONS) -> AbstractAsyncContextManager[BotHarness]:
    """The bot over HTTP, running one command at a time (``limits``), against the sandboxed agent."""
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    return running_bot(
        fake, lambda c, _i: build_services(config, slack_aws, tmp_path / "bot.db", c, queue=limits), options=options
    )


def _waiting_job(bot: BotHarness, requester: str) -> Job:
    (waiting,) = [j for j in bot.services.jobs.running() if j.labels.get("requester") == requester]
    return waiting


async def test_queued_then_refused_at_capacity_then_the_queued_one_runs(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    async with _bot_with_queue(fake, config, slack_aws, tmp_path, QueueLimits(concurrency=1, max_waiting=1)) as bot:
        first = await bot.command("web sleep 2")
        assert "Running" in first.message
        await fake.await_for("chat.postMessage")  # the first run has its turn (and its message)
        second = await bot.command("web echo second", user_id="U0BOB")
        assert "Queued" in second.message and "next in line" in second.message
        # It waits as a callback on its queue place, not as a suspended task, and is audited already.
        waiting = _waiting_job(bot, "U0BOB")
        await until(lambda: waiting.task is None, 5.0, what="the queued job parked")
        assert audit_kinds(bot.services.runs.store, waiting.job_id) == ["requested"]  # type: ignore[arg-type]
        third = await bot.command("web echo third")
        assert "at capacity" in third.message and "Try again in a minute" in third.message
        await fake.await_for("chat.update", 2, within=30)
    texts = [message_text(fake, ts) for ts in fake.messages]
    assert any("second" in t for t in texts) and not any("third" in t for t in texts)
    assert len(execute_command_calls()) == 2


async def test_a_restart_while_a_run_waits_tells_its_user_nothing_ran(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    options = replace(TEST_OPTIONS, drain_grace=0.2, cancel_grace=10.0)
    limits = QueueLimits(concurrency=1, max_waiting=5)
    async with _bot_with_queue(fake, config, slack_aws, tmp_path, limits, options) as bot:
        first = await bot.command("web sleep 30")
        assert "Running" in first.message
        await fake.await_for("chat.postMessage")
        second = await bot.command("web echo second", user_id="U0BOB", response_url=fake.response_url("bob"))
        assert "Queued" in second.message
        waiting = _waiting_job(bot, "U0BOB")
        report = await bot.shutdown()
    assert report.killed == 0
    told = [c.json() for c in fake.calls("/response/bob")]
    assert any("cancelled before it started" in str(t) for t in told), told
    kinds = audit_kinds(SqliteStore(tmp_path / "bot.db"), waiting.job_id)
    assert kinds == ["requested", "failed"], kinds  # oldest first: refused in its place, nothing ran
    assert len(execute_command_calls()) == 1  # only the first run reached ECS
