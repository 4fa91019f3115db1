"""Follow-up filters end to end over real HTTP (and Socket Mode): a run in a thread keeps its output; the
Filter button (``block_actions`` → ``views.open`` → ``view_submission``) and the thread reply
``@ecs-exec filter …`` (``app_mention``) answer in that thread, from the kept output, without a second
ExecuteCommand. Signed requests against the real app, moto + the local agent, FakeSlack."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig
from bot.store.base import AuditQuery
from bot.store.outputs import DirectoryOutputs
from standins.ecs import SANDBOX
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import all_text, message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot
from tests.support.slack_requests import event_callback_body, mention_event

THREAD = "1699990000.000100"
FILTER_ACTION = "ecs_exec_filter"


@pytest.fixture
async def bot(fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path) -> AsyncIterator[BotHarness]:
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    kept = DirectoryOutputs(tmp_path / "kept")
    async with running_bot(
        fake, lambda client, _info: build_services(config, slack_aws, tmp_path / "bot.db", client, kept=kept)
    ) as h:
        yield h


async def run_in_thread(bot: BotHarness, fake: FakeSlack, command: str) -> dict[str, Any]:
    """Mention the bot in the incident thread; return the final result's update call params."""
    before = len(fake.calls("chat.update"))
    await bot.sender.event(event_callback_body(mention_event(f"web {command}", thread_ts=THREAD)))
    for _ in range(100):
        updates = fake.calls("chat.update")[before:]
        if updates and FILTER_ACTION in json.dumps(updates[-1].params):
            return updates[-1].params
        await asyncio.sleep(0.1)
    raise AssertionError(f"no result with a Filter button: {[u.params for u in fake.calls('chat.update')]}")


def filter_button(result: dict[str, Any]) -> dict[str, Any]:
    blocks = result["blocks"] if isinstance(result["blocks"], list) else json.loads(result["blocks"])
    return next(e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == FILTER_ACTION)


def click(button: dict[str, Any], ts: str, *, user: str = "U0ALICE") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "team": {"id": "T0TEAM", "domain": "fake"},
        "container": {"type": "message", "message_ts": ts, "channel_id": "C0INCIDENT", "is_ephemeral": False},
        "channel": {"id": "C0INCIDENT", "name": "incident"},
        "trigger_id": f"t-{time.time_ns()}",
        "response_url": "http://127.0.0.1:9/response/none",
        "actions": [{"type": "button", "action_id": button["action_id"], "block_id": "filter",
                     "value": button["value"], "action_ts": str(time.time())}],
    }


def submission(view: dict[str, Any], pattern: str, *, show: str = "head", lines: str | None = None,
               switches: tuple[str, ...] = (), user: str = "U0ALICE") -> dict[str, Any]:
    values = {
        "filter_pattern": {"filter_pattern": {"type": "plain_text_input", "value": pattern}},
        "filter_options": {"filter_options": {"type": "checkboxes",
                                              "selected_options": [{"value": s} for s in switches]}},
        "filter_show": {"filter_show": {"type": "radio_buttons", "selected_option": {"value": show}}},
        "filter_lines": {"filter_lines": {"type": "number_input", "value": lines}},
    }
    return {
        "type": "view_submission", "team": {"id": "T0TEAM", "domain": "fake"},
        "user": {"id": user, "team_id": "T0TEAM"}, "api_app_id": "A0APP",
        "trigger_id": f"t-{time.time_ns()}", "response_urls": [],
        "view": {**view, "id": f"V{time.time_ns()}", "hash": "h", "state": {"values": values}},
    }


async def answers_in_thread(fake: FakeSlack, count: int) -> list[dict[str, Any]]:
    """The filter answers: messages posted in the thread that start with 🔎."""
    for _ in range(100):
        posted = [c.params for c in fake.calls("chat.postMessage")
                  if c.params.get("thread_ts") == THREAD and str(c.params.get("text", "")).startswith("🔎")]
        if len(posted) >= count:
            return posted
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} filter answers expected; got {all_text([c.params for c in fake.calls()])[:2000]}")


async def test_the_thread_reply_filters_the_last_run_without_running_it_again(
    bot: BotHarness, fake: FakeSlack
) -> None:
    await run_in_thread(bot, fake, "seq 1 3000")
    assert len(execute_command_calls()) == 1
    await bot.sender.event(event_callback_body(mention_event("filter -c '^2[0-9]{3}$'", thread_ts=THREAD)))
    [answer] = await answers_in_thread(fake, 1)
    assert answer["channel"] == "C0INCIDENT"
    assert "1,000 of 3,000 lines match" in all_text(answer)
    await bot.sender.event(event_callback_body(mention_event("filter --tail 2 '^29'", thread_ts=THREAD)))
    second = (await answers_in_thread(fake, 2))[-1]
    assert "2998\n2999" in all_text(second) and "111 of 3,000" in all_text(second)
    assert len(execute_command_calls()) == 1  # nothing ran again
    events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=200))
    assert [e.user for e in events if e.kind == "filtered"] == ["U0ALICE", "U0ALICE"]


async def test_the_filter_button_opens_a_form_whose_answer_lands_in_the_thread_once(
    bot: BotHarness, fake: FakeSlack
) -> None:
    result = await run_in_thread(bot, fake, "seq 1 3000")
    button = filter_button(result)
    assert (await bot.sender.interaction(click(button, str(result["ts"])))).status == 200
    [opened] = await fake.await_for("views.open")
    view = opened.params["view"] if isinstance(opened.params["view"], dict) else json.loads(opened.params["view"])
    assert view["callback_id"] == "ecs_exec_filter_modal" and "seq 1 3000" in all_text(view)
    # A pattern RE2 cannot run is shown on its field, and the form stays open.
    bad = await bot.sender.interaction(submission(view, "(a)\\1"))
    assert bad.status == 200 and "filter_pattern" in bad.json()["errors"]
    lines = await bot.sender.interaction(submission(view, "7$", lines="lots"))
    assert list(lines.json()["errors"]) == ["filter_lines"]
    form = submission(view, "7$", show="tail", lines="3", switches=("ignore_case",))
    assert (await bot.sender.interaction(form)).status == 200
    [answer] = await answers_in_thread(fake, 1)
    assert "2977\n2987\n2997" in all_text(answer) and "300 of 3,000 lines match" in all_text(answer)
    # The same submission delivered again answers once.
    assert (await bot.sender.interaction(form)).status == 200
    await asyncio.sleep(0.5)
    assert len(await answers_in_thread(fake, 1)) == 1
    assert len(execute_command_calls()) == 1


async def test_a_long_answer_is_cut_and_attached_whole_in_the_thread(bot: BotHarness, fake: FakeSlack) -> None:
    await run_in_thread(bot, fake, "seq 1 3000")
    await bot.sender.event(event_callback_body(mention_event("filter --head 2000 .", thread_ts=THREAD)))
    [answer] = await answers_in_thread(fake, 1)
    assert "attached below" in all_text(answer)
    await fake.await_for("files.completeUploadExternal", 2)  # the run's own file, then the filter's
    content = list(fake.uploads.values())[-1].decode()
    assert content.splitlines()[:2] == ["1", "2"] and content.splitlines()[-1] == "2000"


async def test_someone_the_policy_does_not_allow_is_told_alone_and_audited(bot: BotHarness, fake: FakeSlack) -> None:
    await run_in_thread(bot, fake, "seq 1 10")
    await bot.sender.event(event_callback_body(mention_event("filter 5", user="U0MALLORY", thread_ts=THREAD)))
    [told] = await fake.await_for("chat.postEphemeral")
    assert told.params["user"] == "U0MALLORY" and told.params["thread_ts"] == THREAD
    assert "may not filter its output" in all_text(told.params)
    await asyncio.sleep(0.3)
    assert not [c for c in fake.calls("chat.postMessage") if str(c.params.get("text", "")).startswith("🔎")]
    events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=200))
    assert [e.user for e in events if e.kind == "filter_refused"] == ["U0MALLORY"]


async def test_a_filter_where_nothing_ran_says_so(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.sender.event(event_callback_body(mention_event("filter 502", thread_ts="1699990000.000777")))
    [told] = await fake.await_for("chat.postEphemeral")
    assert "No run in this thread has its output kept" in all_text(told.params)
    response = await bot.command("filter 502")
    assert "slash commands cannot be used in threads" in response.message


async def test_the_result_without_kept_outputs_has_no_filter_button(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    async with running_bot(fake, lambda c, _i: build_services(config, slack_aws, tmp_path / "b.db", c)) as bot:
        await bot.sender.event(event_callback_body(mention_event("web seq 1 3", thread_ts=THREAD)))
        for _ in range(100):
            if any("3" in message_text(fake, str(u.params["ts"])) and "exit 0" in all_text(u.params)
                   for u in fake.calls("chat.update")):
                break
            await asyncio.sleep(0.1)
        assert FILTER_ACTION not in json.dumps([u.params for u in fake.calls("chat.update")])
