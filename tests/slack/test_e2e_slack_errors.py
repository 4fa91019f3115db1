"""Slack failures end to end: 429 retried, not_in_channel explained, other errors one sentence, bugs referenced."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.config import BotConfig
from bot.services import AckBudget
from bot.store.base import AuditQuery
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text, responses
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot


async def test_429_then_success(bot: BotHarness, fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=1)
    await bot.command("web echo after-rate-limit")
    update = (await fake.await_for("chat.update"))[-1]
    assert "after-rate-limit" in message_text(fake, str(update.params["ts"]))
    posts = fake.calls("chat.postMessage")
    assert len(posts) == 2  # the 429, then the retry
    assert len(execute_command_calls()) == 1


@pytest.mark.parametrize("error", ["not_in_channel", "channel_not_found"])
async def test_not_in_channel_is_explained_and_nothing_runs(
    bot: BotHarness, fake: FakeSlack, error: str
) -> None:
    fake.fail("chat.postMessage", error)
    await bot.command("web echo hi", channel_id="C0INCIDENT", response_url=fake.response_url("inv"))
    await fake.await_for("/response/inv")
    reply = responses(fake, "inv")[-1]
    assert "/invite @ecs-exec" in reply["text"]
    assert reply.get("response_type") == "ephemeral"
    assert execute_command_calls() == []


async def test_other_slack_errors_are_one_sentence(bot: BotHarness, fake: FakeSlack) -> None:
    fake.fail("chat.update", "invalid_blocks")
    await bot.command("web echo x", response_url=fake.response_url("err"))
    await fake.await_for("/response/err")
    text = responses(fake, "err")[-1]["text"]
    assert "Slack refused chat.update (invalid_blocks)." in text
    assert "\n" not in text
    # The command itself ran and finished: the audit says so, not "failed".
    events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=100))
    kinds = {e.kind for e in events}
    assert "finished" in kinds and "failed" not in kinds


async def test_unexpected_errors_give_a_reference(
    bot: BotHarness, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("bug in resolve")

    bot.services.backend.resolve = broken  # type: ignore[method-assign]
    await bot.command("web echo x", response_url=fake.response_url("bug"))
    await fake.await_for("/response/bug")
    text = responses(fake, "bug")[-1]["text"]
    found = re.search(r"internal error, reference ([0-9a-f]{12})", text, re.IGNORECASE)
    assert found, text
    reference = found.group(1)
    assert f"reference {reference}" in caplog.text and "bug in resolve" in caplog.text
    assert "bug in resolve" not in text


async def test_slow_group_lookup_acks_first_then_decides(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    async with running_bot(
        fake, lambda c, _i: build_services(config, slack_aws, tmp_path / "bot.db", c, ack=AckBudget(lookup_s=0.1))
    ) as bot:
        await _slow_group_lookup(bot, fake)


async def _slow_group_lookup(bot: BotHarness, fake: FakeSlack) -> None:
    import threading

    release = threading.Event()

    def slow(_call):  # type: ignore[no-untyped-def]
        release.wait(10)
        return None

    fake.overrides["usergroups.users.list"] = slow
    ack = await bot.command("web echo decided-later", user_id="U0BOB", response_url=fake.response_url("slow"))
    assert "Checking your permissions" in ack.message
    release.set()
    update = (await fake.await_for("chat.update"))[-1]
    assert "decided-later" in message_text(fake, str(update.params["ts"]))
    assert "Running" in responses(fake, "slow")[0]["text"]
