"""Live progress rendering and `handlers.live.LiveMessage`'s ordering guarantees (no timing asserted)."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.output.redact import Redactor
from bot.runs.fanout import TargetProgress
from bot.runs.order import RunOrder
from bot.service_ref import ServiceRef
from bot.targets import Target
from handlers.live import LiveMessage, LiveSettings, LiveUpdates
from handlers.mentions import command_text
from handlers.replies import live_message
from tests.output.slack_limits import assert_valid_message
from tests.slack.e2e_helpers import all_text

TARGET = Target("prod", "prod", "web-nginx", "arn:aws:ecs:us-east-1:1:task/prod/abc123def456", "abc123def456",
                "nginx", "rt-1", True)
ORDER = RunOrder(request_id="r1", requester="U0ALICE", channel_id="C1",
                 service=ServiceRef("web", "prod", "prod", "web-nginx"), command="tail -f x", timeout=30)


def test_the_live_message_shows_elapsed_counts_and_redacted_last_lines_with_the_cancel_button() -> None:
    tail = "\n".join(f"GET /{n} 200" for n in range(20)) + "\npassword=hunter2hunter2"
    progress = [TargetProgress(TARGET, 123_456, 21, tail, 7.0)]
    text, blocks = live_message(ORDER, [TARGET], progress, 12.5, Redactor(), tail_lines=5)
    shown = all_text(blocks)
    assert "12.5 s" in shown and "21 lines" in shown and "121 KB" in shown
    assert "GET /19 200" in shown and "GET /14 200" not in shown  # the last 5 lines only
    assert "hunter2hunter2" not in shown and "[redacted:" in shown
    assert any(b.get("type") == "actions" for b in blocks)  # Cancel stays
    assert_valid_message(text, blocks)


def test_a_huge_live_tail_stays_within_slack_limits() -> None:
    progress = [TargetProgress(TARGET, 10**9, 5, ("&<>" * 3000 + "\n") * 5, 1.0)]
    text, blocks = live_message(ORDER, [TARGET], progress, 1.0, Redactor())
    assert_valid_message(text, blocks)


def test_the_command_is_what_follows_the_bots_mention() -> None:
    assert command_text("<@U0BOT> web echo hi", "U0BOT") == "web echo hi"
    assert command_text("hey <@U0BOT|ecs-exec>  web ls", "U0BOT") == "web ls"
    assert command_text("<@U0BOB> look: <@U0BOT> web id", "U0BOT") == "web id"
    assert command_text("<@U0BOT> web echo <@U0BOB>", None) == "web echo <@U0BOB>"  # parse refuses it later


class StubClient:
    def __init__(self, *, slow: float = 0.0, fail_429: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.finished: list[int] = []
        self.slow = slow
        self.fail_429 = fail_429
        self.called = asyncio.Event()

    async def chat_update(self, **params: Any) -> None:
        n = len(self.calls)
        self.calls.append(params)
        self.called.set()
        if self.fail_429:
            self.fail_429 -= 1
            response: Any = type("R", (), {"status_code": 429, "headers": {"Retry-After": "30"},
                                           "get": lambda self, k, d=None: "ratelimited"})()
            raise SlackApiError("ratelimited", response)
        await asyncio.sleep(self.slow)
        self.finished.append(n)


class StubUpdates(LiveUpdates):
    def __init__(self, stub: StubClient, settings: LiveSettings) -> None:
        super().__init__(settings)
        self.stub = stub

    def client_for(self, client: AsyncWebClient) -> AsyncWebClient:
        return self.stub  # type: ignore[return-value]


FAST = LiveSettings(interval_s=0.01, first_update_s=0.0, updates_per_minute=6000, burst=100)


async def test_close_waits_for_the_update_in_flight_and_nothing_follows_it() -> None:
    stub = StubClient(slow=0.2)
    msg = LiveMessage(None, "C1", "1.0", lambda: ("t", []), StubUpdates(stub, FAST))  # type: ignore[arg-type]
    msg.changed()
    await stub.called.wait()
    await msg.close()
    assert stub.finished == [0]  # the in-flight update completed before close returned
    msg.changed()
    await asyncio.sleep(0.05)
    assert len(stub.calls) == 1


async def test_a_429_pauses_the_shared_budget_instead_of_retrying() -> None:
    stub = StubClient(fail_429=1)
    updates = StubUpdates(stub, FAST)
    msg = LiveMessage(None, "C1", "1.0", lambda: ("t", []), updates)  # type: ignore[arg-type]
    msg.changed()
    await stub.called.wait()
    await asyncio.sleep(0.05)
    await msg.close()
    assert msg.rate_limited == 1 and len(stub.calls) == 1  # no retry: every live message waits 30 s
    assert updates.budget().wait_s() > 20
