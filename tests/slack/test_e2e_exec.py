"""End to end over real HTTP: signed slash commands → the real app → moto + the local agent → FakeSlack."""

from __future__ import annotations

import asyncio
import time

from tests.slack.conftest import execute_command_calls
from tests.slack.e2e_helpers import all_text, message_text, responses
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import SIGNING_SECRET, BotHarness
from tests.support.slack_requests import command_body, sign


async def finished_message(fake: FakeSlack, updates: int = 1) -> str:
    calls = await fake.await_for("chat.update", updates)
    text = message_text(fake, str(calls[-1].params["ts"]))
    assert "internal error" not in text, text
    return text


async def test_allowed_command_posts_its_output_in_the_channel(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("web echo hello-from-the-task", response_url=fake.response_url("c1"))
    assert ack.status == 200
    assert "Running" in ack.message and "echo hello-from-the-task" in ack.message
    posted = await fake.await_for("chat.postMessage")
    assert posted[0].params["channel"] == "C0INCIDENT"
    text = await finished_message(fake)
    assert "hello-from-the-task" in text
    assert "U0ALICE" in text or "U0ALICE" in all_text(posted[0].params)
    calls = execute_command_calls()
    assert len(calls) == 1 and calls[0]["container"] == "nginx"


async def test_html_escaped_text_is_unescaped_before_it_runs(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.command("web echo 'a &lt;b&gt; &amp; c'")
    assert "a <b> & c" in (await finished_message(fake)).replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&"
    )


async def test_group_member_is_allowed_through_the_usergroup_cache(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("web echo via-group", user_id="U0BOB")
    assert "Running" in ack.message
    assert "via-group" in await finished_message(fake)
    assert len(fake.calls("usergroups.users.list")) == 1


async def test_forged_signature_and_stale_timestamp_get_401_and_run_nothing(
    bot: BotHarness, fake: FakeSlack
) -> None:
    forged = sign("wrong-secret", command_body("web echo forged"))
    assert (await bot.sender.post(forged)).status == 401
    stale = sign(SIGNING_SECRET, command_body("web echo stale"), int(time.time()) - 301)
    assert (await bot.sender.post(stale)).status == 401
    await asyncio.sleep(0.2)
    assert execute_command_calls() == []
    assert fake.calls("chat.") == []


async def test_a_replayed_signed_request_runs_once(bot: BotHarness, fake: FakeSlack) -> None:
    signed = sign(SIGNING_SECRET, command_body("web echo only-once"))
    first = await bot.sender.post(signed)
    replay = await bot.sender.post(signed)
    assert first.status == replay.status == 200
    assert "Running" in first.message
    assert "Already received" in replay.message
    assert "only-once" in await finished_message(fake)
    await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1
    assert len(fake.calls("chat.postMessage")) == 1


async def test_unauthorized_user_and_channel_are_refused_before_anything_runs(
    bot: BotHarness, fake: FakeSlack
) -> None:
    stranger = await bot.command("web echo hi", user_id="U0MALLORY")
    assert stranger.status == 200
    assert "No policy rule includes you" in stranger.message
    elsewhere = await bot.command("web echo hi", channel_id="C0RANDOM")
    assert "apply only in" in elsewhere.message and "C0INCIDENT" in elsewhere.message
    unlisted = await bot.command("web uname -a")
    assert "refused" in unlisted.message
    await asyncio.sleep(0.3)
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == []


async def test_usage_errors_help_and_list_are_answered_in_the_ack(bot: BotHarness, fake: FakeSlack) -> None:
    assert "Usage" in (await bot.command("web")).message
    assert "/ecs-exec SERVICE COMMAND" in (await bot.command("help")).message
    listed = await bot.command("list")
    assert "oncall" in listed.message
    unknown = await bot.command("wbe echo hi")
    assert "Unknown service 'wbe'" in unknown.message and "web" in unknown.message
    assert execute_command_calls() == []


async def test_service_problems_are_ephemeral_sentences(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.command("legacy echo hi", response_url=fake.response_url("legacy"))
    posts = await fake.await_for("/response/legacy")
    sentence = responses(fake, "legacy")[-1]["text"]
    assert "enable-execute-command" in sentence, sentence
    assert len(posts) == 1 and fake.calls("chat.postMessage") == []
    assert execute_command_calls() == []


async def test_non_zero_exit_code_is_reported(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.command(f"web ls /definitely-not-here-{time.time_ns()}")
    text = await finished_message(fake)
    assert "exit 2" in text or "exit 1" in text, text


async def test_fan_out_groups_results_per_task_in_one_message(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("api --all-tasks echo from-each-task")
    assert "Running" in ack.message
    text = await finished_message(fake)
    assert "3 tasks" in text
    assert text.count("from-each-task") >= 3
    calls = execute_command_calls()
    assert len(calls) == 3 and len({c["task"] for c in calls}) == 3
    assert len(fake.calls("chat.postMessage")) == 1


async def test_doctor_reports_ephemerally_and_only_to_people_with_a_rule(
    bot: BotHarness, fake: FakeSlack
) -> None:
    ack = await bot.command("doctor web", response_url=fake.response_url("doc"))
    assert "Checking ECS Exec for web" in ack.message
    await fake.await_for("/response/doc")
    report = responses(fake, "doc")[-1]
    assert report["response_type"] == "ephemeral"
    assert "doctor: service web-nginx" in all_text(report)
    stranger = await bot.command("doctor web", user_id="U0MALLORY")
    assert "cannot run doctor" in stranger.message
    assert execute_command_calls() == []
