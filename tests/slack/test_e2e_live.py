"""Live progress end to end: a command that prints for ~5 s updates its message while it runs (elapsed
time, lines, bytes, last lines, the Cancel button), then the result replaces it as the last update."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import BotConfig, parse_config
from handlers.live import LiveSettings
from handlers.server.runtime import ServeOptions
from standins.ecs import SANDBOX
from tests.slack.conftest import CONFIG, build_services, execute_command_calls
from tests.slack.e2e_helpers import all_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot
from tests.support.slack_requests import event_callback_body, mention_event

LIVE = ServeOptions(host="127.0.0.1", port=0, drain_grace=5.0, cancel_grace=5.0, live=LiveSettings(),
                    freeze_startup_heap=False)
TICKER = "#!/bin/sh\nfor i in 1 2 3 4 5 6; do echo \"tick $i of 6\"; sleep 1; done\n"


@pytest.fixture
def ticker(tmp_path: Path) -> Path:
    script = tmp_path / "ticker.sh"
    script.write_text(TICKER)
    script.chmod(0o755)
    return script


@pytest.fixture
def live_config(tmp_path: Path, ticker: Path) -> BotConfig:
    text = CONFIG.replace("WORKDIR", str(tmp_path)).replace(
        '        - argv: ["id"]\n', f'        - argv: ["id"]\n        - argv: ["{ticker}"]\n'
    )
    return parse_config(text, source="e2e-live.yaml")


@pytest.fixture
async def live_bot(
    fake: FakeSlack, live_config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    # Slack's Tier 3 for chat.update; a live message must never draw a 429.
    fake.enforce_rate_limit("chat.update", 50)
    build = lambda client, _info: build_services(live_config, slack_aws, tmp_path / "bot.db", client)  # noqa: E731
    async with running_bot(fake, build, options=LIVE) as h:
        yield h


@pytest.mark.timeout(60)
async def test_a_slow_command_shows_progress_then_its_result(
    live_bot: BotHarness, fake: FakeSlack, ticker: Path
) -> None:
    await live_bot.command(f"web {ticker}")
    [posted] = await fake.await_for("chat.postMessage")
    final = await wait_for_result(fake)
    updates = [c for c in fake.calls("chat.update") if c.params["ts"] == final]
    texts = [all_text(c.params) for c in updates]
    live, last = texts[:-1], texts[-1]
    assert live, "no live update while the command ran"
    assert all("so far" in t and "⏱" in t for t in live)
    assert any("tick " in t for t in live)  # the last lines of output
    assert all("Cancel" in all_text(c.params) for c in updates[:-1])
    assert "so far" not in last and "tick 6 of 6" in last and "exit 0" in last  # the result came last
    assert fake.rate_limited.get("chat.update", 0) == 0
    assert len(execute_command_calls()) == 1 and posted.params["channel"] == "C0INCIDENT"


@pytest.mark.timeout(60)
async def test_a_mention_in_a_thread_gets_live_progress_too(
    live_bot: BotHarness, fake: FakeSlack, ticker: Path
) -> None:
    await live_bot.sender.event(event_callback_body(mention_event(f"web {ticker}", thread_ts="1699990000.000300")))
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1699990000.000300"
    final = await wait_for_result(fake)
    texts = [all_text(c.params) for c in fake.calls("chat.update") if c.params["ts"] == final]
    assert len(texts) >= 2 and "so far" in texts[0] and "exit 0" in texts[-1]


async def wait_for_result(fake: FakeSlack) -> str:
    """The ts of the message once an update with the result ("exit …") has landed on it."""
    for n in range(1, 30):
        calls = await fake.await_for("chat.update", n, within=30)
        if "exit " in all_text(calls[-1].params):
            return str(calls[-1].params["ts"])
    raise AssertionError("no result")
