"""The "Run on ECS…" message shortcut end to end over signed HTTP: ``message_action`` → ``views.open`` with
the modal → ``view_submission`` → the run, in the message's thread."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.store.base import AuditQuery
from tests.slack.conftest import execute_command_calls
from tests.slack.e2e_helpers import all_text, message_text
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness
from tests.support.slack_requests import message_action_payload, view_submission_payload


async def opened_modal(bot: BotHarness, fake: FakeSlack, **where: Any) -> dict[str, Any]:
    payload = message_action_payload(**where)
    ack = await bot.sender.interaction(payload)
    assert ack.status == 200
    [opened] = await fake.await_for("views.open")
    assert opened.params["trigger_id"] == payload["trigger_id"]
    view = opened.params["view"]
    return view if isinstance(view, dict) else __import__("json").loads(view)


async def test_the_shortcut_opens_a_modal_listing_the_catalogue(bot: BotHarness, fake: FakeSlack) -> None:
    view = await opened_modal(bot, fake)
    assert view["type"] == "modal" and view["callback_id"] == "ecs_exec_run_modal"
    [select] = [b["element"] for b in view["blocks"] if b["block_id"] == "service"]
    assert [o["value"] for o in select["options"]] == ["api", "legacy", "web"]
    assert "(prod)" in select["options"][0]["text"]["text"]


async def test_a_submission_runs_in_the_messages_thread(bot: BotHarness, fake: FakeSlack) -> None:
    view = await opened_modal(bot, fake, message_ts="1699990000.000500", thread_ts="1699990000.000100")
    submit = view_submission_payload(view, service="web", command="echo via-the-modal", reason="INC-7 502s")
    ack = await bot.sender.interaction(submit)
    assert ack.status == 200  # the modal closes; answers go to the thread
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["thread_ts"] == "1699990000.000100" and posted.params["channel"] == "C0INCIDENT"
    update = (await fake.await_for("chat.update"))[-1]
    text = message_text(fake, str(update.params["ts"]))
    assert "via-the-modal" in text
    events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=100))
    [requested] = [e for e in events if e.kind == "requested"]
    assert requested.details["reason"] == "INC-7 502s" and requested.command == "echo via-the-modal"
    # The same submission delivered twice (a replay) runs once.
    assert (await bot.sender.interaction(submit)).status == 200
    await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1


async def test_a_refused_submission_answers_the_requester_alone_in_the_thread(
    bot: BotHarness, fake: FakeSlack
) -> None:
    view = await opened_modal(bot, fake, user="U0MALLORY", message_ts="1699990000.000600")
    await bot.sender.interaction(view_submission_payload(view, service="web", command="echo hi", user="U0MALLORY"))
    [ephemeral] = await fake.await_for("chat.postEphemeral")
    assert ephemeral.params["user"] == "U0MALLORY" and ephemeral.params["thread_ts"] == "1699990000.000600"
    assert "No policy rule includes you" in all_text(ephemeral.params)
    await asyncio.sleep(0.3)
    assert execute_command_calls() == [] and fake.calls("chat.postMessage") == []
