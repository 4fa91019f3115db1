"""App Home and the command builder end to end, over signed HTTP (and one over Socket Mode): the real app
against FakeSlack, moto ECS and the local agent.

- ``app_home_opened`` → ``views.publish`` with a pending request's Approve/Deny for an approver, none for
  the requester; Approve clicked on Home runs it, updates the card in the channel, republishes Home;
- ``/ecs-exec`` with no arguments → ``views.open`` with the builder; picking a service → ``views.update``
  with the patterns allowed there; submitting → the run, in the channel; a refusal stays in the form.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, parse_config
from bot.store.base import RunState
from tests.slack.conftest import CONFIG, execute_command_calls
from tests.slack.e2e_helpers import all_text, message_text
from tests.slack.test_e2e_socket_mode import (  # noqa: F401 - fixtures
    SlackSocket,
    SocketBot,
    open_socket_bot,
    socket_side,
)
from tests.support.fake_slack import Call, FakeSlack
from tests.support.polling import until
from tests.support.slack_app import BotHarness
from tests.support.slack_requests import command_body, event_callback_body

# The e2e policy plus a rule whose commands need Bob's approval.
HOME_CONFIG = CONFIG.replace("  redact:", """    - name: needs-approval
      users: [U0ALICE]
      services: [web]
      commands:
        - argv: ["uname", "**"]
      approval: {approvers: {users: [U0ALICE, U0BOB]}}
  redact:""")
_n = iter(range(1, 1_000_000))


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    return parse_config(HOME_CONFIG.replace("WORKDIR", str(tmp_path)), source="e2e-home.yaml")


def home_opened(user: str) -> str:
    return event_callback_body({"type": "app_home_opened", "user": user, "channel": f"D{user[1:]}", "tab": "home",
                                "event_ts": f"{time.time():.6f}"})


def buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def published(fake: FakeSlack, user: str, count: int = 1) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        calls = [c for c in fake.calls("views.publish") if c.params.get("user_id") == user]
        if len(calls) >= count:
            return _view(calls[-1])
        assert time.monotonic() < deadline, f"no views.publish #{count} for {user}"
        await asyncio.sleep(0.02)


def _view(call: Call) -> dict[str, Any]:
    view = call.params["view"]
    return view if isinstance(view, dict) else json.loads(view)


def interaction(kind: str, user: str, view: dict[str, Any], **extra: Any) -> dict[str, Any]:
    n = next(_n)
    return {"type": kind, "team": {"id": "T0TEAM", "domain": "fake"}, "user": {"id": user, "team_id": "T0TEAM"},
            "api_app_id": "A0APP", "trigger_id": f"{n}.{int(time.time())}.home", "view": view, **extra}


def select_action(action_id: str, value: str) -> dict[str, Any]:
    return {"type": "static_select", "action_id": action_id, "block_id": "service",
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
            "action_ts": f"{time.time():.6f}"}


def submitted(view: dict[str, Any], *, service: str, command: str, block: str = "command") -> dict[str, Any]:
    values = {
        "service": {"ecs_exec_builder_service": {"type": "static_select", "selected_option": {"value": service}}},
        block: {"command": {"type": "plain_text_input", "value": command}},
        "reason": {"reason": {"type": "plain_text_input", "value": None}},
    }
    return {**view, "state": {"values": values}}


async def builder_opened(bot: BotHarness, fake: FakeSlack, user: str = "U0ALICE") -> dict[str, Any]:
    ack = await bot.command("", user_id=user)
    assert ack.status == 200 and "Usage" not in ack.body  # no help text: the builder opens instead
    [opened] = await fake.await_for("views.open")
    return fake.views[_opened_id(fake, opened)]


def _opened_id(fake: FakeSlack, opened: Call) -> str:
    view = _view(opened)
    [view_id] = [k for k, v in fake.views.items() if v["callback_id"] == view["callback_id"]]
    return view_id


async def test_home_shows_a_pending_request_to_its_approver_and_approve_there_runs_it(
    bot: BotHarness, fake: FakeSlack
) -> None:
    assert (await bot.command("web uname -s", user_id="U0ALICE")).status == 200
    await fake.await_for("chat.postMessage")
    [(card_ts, card)] = list(fake.messages.items())
    card_buttons = {b["action_id"]: b["value"] for b in buttons(card)}
    assert "ecs_exec_approve" in card_buttons

    assert (await bot.sender.event(home_opened("U0ALICE"))).status == 200
    alice = await published(fake, "U0ALICE")
    assert not any(b["action_id"] in ("ecs_exec_approve", "ecs_exec_deny") for b in buttons(alice))
    text = all_text(alice)
    assert "uname -s" in text and "pending" in text  # her recent request
    assert f"/archives/C0INCIDENT/p{card_ts.replace('.', '')}" in text  # with a link to its message
    assert "needs-approval" in text and "Build a command" in text

    assert (await bot.sender.event(home_opened("U0BOB"))).status == 200
    bob = await published(fake, "U0BOB")
    home_buttons = {b["action_id"]: b["value"] for b in buttons(bob) if b["action_id"] != "ecs_exec_home_build"}
    # The card's own buttons: same action ids, same values (one handler serves both).
    assert home_buttons == {k: v for k, v in card_buttons.items() if k in ("ecs_exec_approve", "ecs_exec_deny")}

    [approve] = [b for b in buttons(bob) if b["action_id"] == "ecs_exec_approve"]
    click = interaction("block_actions", "U0BOB", {**bob, "id": "V0HOMEBOB", "type": "home"},
                        container={"type": "view", "view_id": "V0HOMEBOB"},
                        actions=[{**approve, "block_id": "b", "action_ts": f"{time.time():.6f}"}])
    assert (await bot.sender.interaction(click)).status == 200
    request_id = card_buttons["ecs_exec_approve"].split("|")[0]
    deadline = time.monotonic() + 20
    while (record := await bot.services.runs.find(request_id)) is None or record.state is not RunState.FINISHED:
        assert time.monotonic() < deadline, record
        await asyncio.sleep(0.05)
    assert len(execute_command_calls()) == 1
    assert "approved by <@U0BOB>" in message_text(fake, card_ts)  # the card in the channel, as today
    again = await published(fake, "U0BOB", count=2)  # Home republished: nothing waits any more
    assert not any(b["action_id"] == "ecs_exec_approve" for b in buttons(again))


async def test_ecs_exec_alone_opens_the_builder_and_a_service_shows_its_patterns(
    bot: BotHarness, fake: FakeSlack
) -> None:
    view = await builder_opened(bot, fake)
    assert view["callback_id"] == "ecs_exec_builder"
    assert json.loads(view["private_metadata"])["channel"] == "C0INCIDENT"
    [service] = [b for b in view["blocks"] if b.get("block_id") == "service"]
    assert [o["value"] for o in service["element"]["options"]] == ["api", "legacy", "web"]
    assert not [b for b in view["blocks"] if b.get("block_id") == "pattern"]

    step = interaction("block_actions", "U0ALICE", view, container={"type": "view", "view_id": view["id"]},
                       actions=[select_action("ecs_exec_builder_service", "web")])
    step["view"] = {**view, "state": {"values": {"service": {"ecs_exec_builder_service": {
        "type": "static_select", "selected_option": {"value": "web"}}}}}}
    assert (await bot.sender.interaction(step)).status == 200
    [update] = await fake.await_for("views.update")
    assert update.params["view_id"] == view["id"] and update.params["hash"] == view["hash"]
    updated = fake.views[view["id"]]
    [patterns] = [b for b in updated["blocks"] if b.get("block_id") == "pattern"]
    labels = [o["text"]["text"] for o in patterns["element"]["options"]]
    assert "echo **" in labels and "uname ** · approval" in labels
    # Picking one pre-fills the command with its literal words (a new block id, so Slack shows it).
    uname = next(o["value"] for o in patterns["element"]["options"] if o["text"]["text"].startswith("uname"))
    step = interaction("block_actions", "U0ALICE", updated, container={"type": "view", "view_id": view["id"]},
                       actions=[select_action("ecs_exec_builder_pattern", uname)])
    step["view"] = {**updated, "state": {"values": {
        "service": {"ecs_exec_builder_service": {"type": "static_select", "selected_option": {"value": "web"}}},
        "pattern": {"ecs_exec_builder_pattern": {"type": "static_select", "selected_option": {"value": uname}}}}}}
    assert (await bot.sender.interaction(step)).status == 200
    await fake.await_for("views.update", 2)
    [command] = [b for b in fake.views[view["id"]]["blocks"] if b.get("block_id", "").startswith("command")]
    assert command["block_id"] == f"command-{uname}" and command["element"]["initial_value"] == "uname "


async def test_a_builder_submission_runs_like_a_typed_command_and_lands_in_the_channel(
    bot: BotHarness, fake: FakeSlack
) -> None:
    view = await builder_opened(bot, fake)
    ack = await bot.sender.interaction(
        interaction("view_submission", "U0ALICE", submitted(view, service="web", command="echo from-the-builder")))
    assert ack.status == 200 and "errors" not in ack.body  # the modal closes
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["channel"] == "C0INCIDENT" and not posted.params.get("thread_ts")
    await until(lambda: "exit 0" in message_text(fake, _ts(fake)), 20.0, what="the result in the message")
    assert "from-the-builder" in message_text(fake, _ts(fake)) and len(execute_command_calls()) == 1


def _ts(fake: FakeSlack) -> str:
    [ts] = list(fake.messages)
    return ts


async def test_a_refused_builder_submission_stays_in_the_form_on_the_command(
    bot: BotHarness, fake: FakeSlack
) -> None:
    view = await builder_opened(bot, fake)
    ack = await bot.sender.interaction(
        interaction("view_submission", "U0ALICE", submitted(view, service="web", command="rm -rf /")))
    body = ack.json()
    assert body["response_action"] == "errors" and "refused" in body["errors"]["command"]
    empty = await bot.sender.interaction(interaction("view_submission", "U0ALICE", submitted(view, service="", command=" ")))
    assert empty.json()["errors"] == {"service": "Pick a service.", "command": "Type the command to run."}
    await asyncio.sleep(0.2)
    assert execute_command_calls() == [] and fake.calls("chat.postMessage") == []


@pytest.mark.timeout(60)
async def test_socket_mode_builder_opens_and_its_submission_runs(
    fake: FakeSlack, socket_side: SlackSocket, open_socket_bot: SocketBot  # noqa: F811
) -> None:
    async with open_socket_bot():
        ack = await socket_side.send_command("env-b1", command_body("", response_url=fake.response_url("s")))
        assert ack["envelope_id"] == "env-b1"
        [opened] = await fake.await_for("views.open")
        view = fake.views[_opened_id(fake, opened)]
        payload = interaction("view_submission", "U0ALICE", submitted(view, service="web", command="echo via-socket"))
        closed = await socket_side.send_interactive("env-b2", payload)
        assert closed["envelope_id"] == "env-b2" and "errors" not in json.dumps(closed)
        [posted] = await fake.await_for("chat.postMessage")
        assert posted.params["channel"] == "C0INCIDENT"
        await until(lambda: "exit 0" in message_text(fake, _ts(fake)), 20.0, what="the result in the message")
        assert "via-socket" in message_text(fake, _ts(fake))
    assert len(execute_command_calls()) == 1


async def test_from_home_a_channel_the_user_is_not_in_is_refused_on_the_channel_field(
    bot: BotHarness, fake: FakeSlack
) -> None:
    """A rule limited to #incident must not be reachable from Home by someone who is not in #incident."""
    assert (await bot.sender.event(home_opened("U0ALICE"))).status == 200
    home = await published(fake, "U0ALICE")
    [build] = [b for b in buttons(home) if b["action_id"] == "ecs_exec_home_build"]
    click = interaction("block_actions", "U0ALICE", {**home, "id": "V0HOME", "type": "home"},
                        container={"type": "view", "view_id": "V0HOME"},
                        actions=[{**build, "block_id": "build", "action_ts": f"{time.time():.6f}"}])
    assert (await bot.sender.interaction(click)).status == 200
    [opened] = await fake.await_for("views.open")
    view = fake.views[_opened_id(fake, opened)]
    fake.channel_members["C0INCIDENT"] = {"U0BOB"}
    form = submitted(view, service="web", command="echo from-home")
    form["state"]["values"]["channel"] = {"ecs_exec_builder_channel": {
        "type": "conversations_select", "selected_conversation": "C0INCIDENT"}}
    refused = await bot.sender.interaction(interaction("view_submission", "U0ALICE", form))
    assert "not a member of that channel" in refused.json()["errors"]["channel"]
    fake.channel_members["C0INCIDENT"] = {"U0ALICE", "U0BOB"}
    ran = await bot.sender.interaction(interaction("view_submission", "U0ALICE", form))
    assert "errors" not in ran.body
    [posted] = await fake.await_for("chat.postMessage")
    assert posted.params["channel"] == "C0INCIDENT"
    await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1
