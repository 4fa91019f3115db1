"""Over capacity, the user hears it at once: a run that must wait is acked "Queued: N ahead of you" and
starts in its turn; one that could not even wait is refused in the ack, saying when to retry."""

from __future__ import annotations

from pathlib import Path

from bot.config import BotConfig
from bot.runs.queue import QueueLimits
from standins.ecs import SANDBOX
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import running_bot


async def test_queued_then_refused_at_capacity_then_the_queued_one_runs(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    limits = QueueLimits(concurrency=1, max_waiting=1)
    async with running_bot(
        fake, lambda c, _i: build_services(config, slack_aws, tmp_path / "bot.db", c, queue=limits)
    ) as bot:
        first = await bot.command("web sleep 2")
        assert "Running" in first.message
        await fake.await_for("chat.postMessage")  # the first run has its turn (and its message)
        second = await bot.command("web echo second", user_id="U0BOB")
        assert "Queued" in second.message and "next in line" in second.message
        third = await bot.command("web echo third")
        assert "at capacity" in third.message and "Try again in a minute" in third.message
        await fake.await_for("chat.update", 2, within=30)
    texts = [message_text(fake, ts) for ts in fake.messages]
    assert any("second" in t for t in texts) and not any("third" in t for t in texts)
    assert len(execute_command_calls()) == 2
