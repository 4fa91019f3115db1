"""Slack failures on chat.postMessage through the real app: 429 bursts and 5xx are retried (one message,
one run); when Slack keeps failing, nothing runs and the requester is told through the response_url."""

from __future__ import annotations

import threading

from tests.reliability.support import audit_kinds, execute_command_calls, wait_audit
from tests.slack.e2e_helpers import message_text, responses
from tests.support.fake_slack import Call, FakeSlack, Reply
from tests.support.slack_app import BotHarness


def server_errors(fake: FakeSlack, method: str, times: int, status: int = 503) -> None:
    """The next ``times`` calls to ``method`` answer HTTP ``status`` (Slack's 5xx are HTML or JSON)."""
    left = [times]
    lock = threading.Lock()

    def override(call: Call) -> Reply | None:
        with lock:
            if left[0] <= 0:
                return None
            left[0] -= 1
        return Reply({"ok": False, "error": "service_unavailable"}, status)

    fake.overrides[method] = override


async def finished(bot: BotHarness, fake: FakeSlack) -> str:
    await wait_audit(bot.services.runs.store, "finished")
    update = (await fake.await_for("chat.update"))[-1]
    return message_text(fake, str(update.params["ts"]))


async def test_a_429_burst_on_post_message_is_retried_and_runs_once(bot: BotHarness, fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=3)  # the client's budget is 3 retries
    await bot.command("web echo after-429s")
    assert "after-429s" in await finished(bot, fake)
    assert len(fake.calls("chat.postMessage")) == 4 and len(fake.messages) == 1
    assert len(execute_command_calls()) == 1
    assert audit_kinds(bot.services.runs.store) == ["requested", "started", "finished"]


async def test_5xx_on_post_message_are_retried_and_run_once(bot: BotHarness, fake: FakeSlack) -> None:
    server_errors(fake, "chat.postMessage", times=2, status=503)
    await bot.command("web echo after-5xx")
    assert "after-5xx" in await finished(bot, fake)
    assert len(fake.calls("chat.postMessage")) == 3 and len(fake.messages) == 1
    assert len(execute_command_calls()) == 1


async def test_slack_failing_for_good_runs_nothing_and_tells_the_requester(bot: BotHarness, fake: FakeSlack) -> None:
    server_errors(fake, "chat.postMessage", times=1000, status=500)
    await bot.command("web echo never-posted", response_url=fake.response_url("down"))
    await wait_audit(bot.services.runs.store, "failed")
    await fake.await_for("/response/down")
    [told] = responses(fake, "down")
    assert "chat.postMessage" in told["text"] and told["response_type"] == "ephemeral", told
    assert fake.messages == {}
    assert execute_command_calls() == []  # the message comes before ExecuteCommand: nothing ran
    assert audit_kinds(bot.services.runs.store) == ["requested", "failed"]


async def test_a_rate_limit_that_outlasts_the_retries_runs_nothing_and_tells_the_requester(
    bot: BotHarness, fake: FakeSlack
) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0, times=1000)
    await bot.command("web echo never-posted", response_url=fake.response_url("rl"))
    await fake.await_for("/response/rl")
    [told] = responses(fake, "rl")
    assert "ratelimited" in told["text"] or "rate" in told["text"].lower(), told
    assert execute_command_calls() == []
    await wait_audit(bot.services.runs.store, "failed")
