"""``@ecs-exec …`` in a thread, end to end over real HTTP: signed ``app_mention`` events → the real app →
moto + the local agent → FakeSlack. The result, its files and the requester's answers stay in the thread."""

from __future__ import annotations

import asyncio

import pytest

from tests.slack.conftest import execute_command_calls
from tests.slack.e2e_helpers import all_text, message_text
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness
from tests.support.slack_requests import event_callback_body, mention_event, sign

THREAD = "1699990000.000100"


async def result_text(fake: FakeSlack) -> str:
    update = (await fake.await_for("chat.update"))[-1]
    text = message_text(fake, str(update.params["ts"]))
    assert "internal error" not in text, text
    return text


async def test_a_mention_in_a_thread_runs_and_answers_in_that_thread(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.sender.event(event_callback_body(mention_event("web echo from-the-thread", thread_ts=THREAD)))
    assert ack.status == 200
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["channel"] == "C0INCIDENT"
    assert posted.params["thread_ts"] == THREAD  # the incident's thread, not the channel
    assert "from-the-thread" in await result_text(fake)
    assert len(execute_command_calls()) == 1
    assert fake.calls("chat.postEphemeral") == []  # "running…" is the thread message itself


async def test_a_mention_in_the_channel_starts_a_thread_under_itself(bot: BotHarness, fake: FakeSlack) -> None:
    event = mention_event("web echo under-the-mention", ts="1699990001.000200")
    assert (await bot.sender.event(event_callback_body(event))).status == 200
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1699990001.000200"
    assert "under-the-mention" in await result_text(fake)


async def test_a_retried_event_runs_once(bot: BotHarness, fake: FakeSlack) -> None:
    body = event_callback_body(mention_event("web echo exactly-once", thread_ts=THREAD), event_id="Ev0RETRY01")
    first = await bot.sender.event(body)
    retry = await bot.sender.event(body, retry_num=1)  # Slack's retry: same event_id, X-Slack-Retry-Num
    assert first.status == retry.status == 200
    assert "exactly-once" in await result_text(fake)
    await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1
    assert len(fake.calls("chat.postMessage")) == 1
    assert fake.calls("chat.postEphemeral") == []  # a retry is not answered: the first one is


async def test_a_refused_command_answers_the_requester_alone_in_the_thread(
    bot: BotHarness, fake: FakeSlack
) -> None:
    event = mention_event("web echo hi", user="U0MALLORY", thread_ts=THREAD)
    assert (await bot.sender.event(event_callback_body(event))).status == 200
    [ephemeral] = await fake.await_for("chat.postEphemeral")
    assert ephemeral.params["user"] == "U0MALLORY"
    assert ephemeral.params["channel"] == "C0INCIDENT" and ephemeral.params["thread_ts"] == THREAD
    assert "No policy rule includes you" in all_text(ephemeral.params)
    await asyncio.sleep(0.3)
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == [] and fake.calls("chat.update") == []


async def test_usage_and_help_are_ephemeral_in_the_thread(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.sender.event(event_callback_body(mention_event("help", thread_ts=THREAD)))
    [help_reply] = await fake.await_for("chat.postEphemeral")
    assert "/ecs-exec SERVICE COMMAND" in all_text(help_reply.params)
    await bot.sender.event(event_callback_body(mention_event("web", thread_ts=THREAD)))
    usage = (await fake.await_for("chat.postEphemeral", 2))[-1]
    assert "Usage" in all_text(usage.params) and usage.params["thread_ts"] == THREAD
    assert execute_command_calls() == []


async def test_where_ephemeral_is_impossible_the_answer_is_a_threaded_reply(
    bot: BotHarness, fake: FakeSlack
) -> None:
    fake.fail("chat.postEphemeral", "user_not_in_channel")
    await bot.sender.event(event_callback_body(mention_event("web echo hi", user="U0MALLORY", thread_ts=THREAD)))
    [reply] = await fake.await_for("chat.postMessage")
    assert reply.params["thread_ts"] == THREAD
    assert "<@U0MALLORY>" in all_text(reply.params) and "No policy rule includes you" in all_text(reply.params)
    assert execute_command_calls() == []


@pytest.mark.timeout(60)
async def test_the_full_output_file_goes_to_the_incident_thread(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.sender.event(event_callback_body(mention_event("web seq 1 200000", thread_ts=THREAD)))
    [complete] = await fake.await_for("files.completeUploadExternal", within=40)
    assert complete.params["thread_ts"] == THREAD
    assert "200000" in (await result_text(fake))


async def test_a_forged_event_is_rejected_and_runs_nothing(bot: BotHarness, fake: FakeSlack) -> None:
    forged = sign("wrong-secret", event_callback_body(mention_event("web echo forged")), content_type="application/json")
    assert (await bot.sender.post(forged)).status == 401
    await asyncio.sleep(0.2)
    assert execute_command_calls() == [] and fake.calls("chat.") == []
