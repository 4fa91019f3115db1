"""The Cancel button of a running command: only the requester may use it, and it really stops the run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.slack.e2e_helpers import message_text, responses
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import SIGNING_SECRET, BotHarness
from tests.support.slack_requests import block_actions_body, sign


def cancel_click(user_id: str, button: dict[str, Any], ts: str, response_url: str) -> str:
    return block_actions_body(
        {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0TEAM"},
            "api_app_id": "A0APP",
            "team": {"id": "T0TEAM", "domain": "fake"},
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": "C0INCIDENT",
                "is_ephemeral": False,
            },
            "channel": {"id": "C0INCIDENT", "name": "incident"},
            "trigger_id": f"t-{time.time_ns()}",
            "response_url": response_url,
            "actions": [
                {
                    "type": "button",
                    "action_id": button["action_id"],
                    "block_id": "run",
                    "value": button["value"],
                    "action_ts": str(time.time()),
                }
            ],
        }
    )


def cancel_button(fake: FakeSlack, ts: str) -> dict[str, Any]:
    for block in fake.messages[ts]["blocks"]:
        if block.get("type") == "actions":
            return block["elements"][0]
    raise AssertionError("no Cancel button on the running message")


@pytest.mark.timeout(60)
async def test_requester_cancels_a_running_command(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.command("web sleep 30")
    await fake.await_for("chat.postMessage")
    ts = next(iter(fake.messages))
    button = cancel_button(fake, ts)

    other = await bot.sender.post(
        sign(SIGNING_SECRET, cancel_click("U0MALLORY", button, ts, fake.response_url("m")))
    )
    assert other.status == 200
    await fake.await_for("/response/m")
    assert "Only <@U0ALICE>" in responses(fake, "m")[0]["text"]
    await asyncio.sleep(0.2)
    assert fake.calls("chat.update") == []  # still running

    mine = await bot.sender.post(
        sign(SIGNING_SECRET, cancel_click("U0ALICE", button, ts, fake.response_url("a")))
    )
    assert mine.status == 200
    await fake.await_for("chat.update")
    text = message_text(fake, ts)
    assert "cancelled" in text and "cancelled by <@U0ALICE>" in text
