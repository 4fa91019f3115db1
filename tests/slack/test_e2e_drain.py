"""SIGTERM drain end to end: new commands refused, short runs finish, long runs cancelled and reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.config import BotConfig
from handlers.server.runtime import ServeOptions
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.polling import until
from tests.support.slack_app import BotHarness, running_bot


@pytest.fixture
async def draining_bot(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    from standins.ecs import SANDBOX

    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    options = ServeOptions(host="127.0.0.1", port=0, drain_grace=1.5, cancel_grace=10.0, freeze_startup_heap=False)
    async with running_bot(
        fake, lambda c, _i: build_services(config, slack_aws, tmp_path / "bot.db", c), options=options
    ) as h:
        yield h


@pytest.mark.timeout(60)
async def test_sigterm_drain(draining_bot: BotHarness, fake: FakeSlack) -> None:
    bot = draining_bot
    await bot.command("web sleep 0.2")
    await bot.command("api sleep 60")
    await until(lambda: len(execute_command_calls()) == 2 and len(fake.calls("chat.postMessage")) == 2, 15.0)
    posted = {str(c.params["text"]): c for c in fake.calls("chat.postMessage")}
    assert len(posted) == 2

    bot.running.stop.set()  # what the SIGTERM handler does
    await until(lambda: bot.services.jobs.draining, 15.0)
    late = await bot.command("web echo too-late")
    assert late.status == 200 and "restarting" in late.message and "Try again in a minute" in late.message
    async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as resp:
        assert resp.status == 503

    report = await bot.served
    assert (report.finished, report.cancelled, report.killed) == (1, 1, 0)
    assert len(execute_command_calls()) == 2  # the late command never ran
    texts = [message_text(fake, ts) for ts in fake.messages]
    short = next(t for t in texts if "sleep 0.2" in t)
    long = next(t for t in texts if "sleep 60" in t)
    assert "exit 0" in short
    assert "cancelled" in long and "the bot is restarting" in long
