"""Socket Mode end to end: the real app opens its websocket via apps.connections.open on FakeSlack's
base URL, receives a slash_commands envelope from a local websocket server, acks over the socket, runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.config import BotConfig
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot
from tests.support.slack_requests import command_body, event_callback_body, mention_event


class SlackSocket:
    """The Slack side of a Socket Mode connection: push envelopes, read acks."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ws: ServerConnection | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self._ws = ws
        await ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        self.connected.set()
        async for raw in ws:
            await self.acks.put(json.loads(raw))

    async def send_command(self, envelope_id: str, body: str) -> dict[str, Any]:
        assert self._ws is not None
        envelope = {
            "envelope_id": envelope_id,
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": dict(parse_qsl(body)),
        }
        await self._ws.send(json.dumps(envelope))
        return await asyncio.wait_for(self.acks.get(), 10)

    async def send_interactive(self, envelope_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """An ``interactive`` envelope: a button click (block_actions) or a form (view_submission)."""
        assert self._ws is not None
        envelope = {"envelope_id": envelope_id, "type": "interactive", "accepts_response_payload": True,
                    "payload": payload}
        await self._ws.send(json.dumps(envelope))
        return await asyncio.wait_for(self.acks.get(), 10)

    async def send_event(self, envelope_id: str, body: str, retry_attempt: int = 0) -> dict[str, Any]:
        """An ``events_api`` envelope (Slack redelivers with ``retry_attempt`` > 0, the same event_id)."""
        assert self._ws is not None
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": json.loads(body),
        }
        await self._ws.send(json.dumps(envelope))
        return await asyncio.wait_for(self.acks.get(), 10)


@pytest.fixture
async def socket_side(fake: FakeSlack) -> AsyncIterator[SlackSocket]:
    side = SlackSocket()
    async with serve(side.handler, "127.0.0.1", 0) as server:
        fake.socket_url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/link/?ticket=t"
        yield side


@asynccontextmanager
async def socket_bot(
    fake: FakeSlack, config: BotConfig, aws: LocalAws, tmp_path: Path, socket_side: SlackSocket, **overrides: Any
) -> AsyncIterator[BotHarness]:
    """The real bot in Socket Mode against the local socket, connected, with a fresh ECS sandbox."""
    from standins.ecs import SANDBOX

    SANDBOX.reset()
    SANDBOX.agent_url = aws.agent.http_url
    build = lambda c, _i: build_services(config, aws, tmp_path / "bot.db", c, **overrides)  # noqa: E731
    async with running_bot(fake, build, socket_mode=True) as bot:
        await asyncio.wait_for(socket_side.connected.wait(), 10)
        yield bot


SocketBot = Callable[..., AbstractAsyncContextManager[BotHarness]]


@pytest.fixture
def open_socket_bot(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path, socket_side: SlackSocket
) -> SocketBot:
    """`socket_bot` with this test's fixtures; keyword arguments go to `build_services` (e.g. ``kept=``)."""
    return lambda **overrides: socket_bot(fake, config, slack_aws, tmp_path, socket_side, **overrides)


@pytest.mark.timeout(60)
async def test_socket_mode_command_is_acked_on_the_socket_and_runs_once(
    fake: FakeSlack, socket_side: SlackSocket, open_socket_bot: SocketBot
) -> None:
    async with open_socket_bot() as bot:
        opened = fake.calls("apps.connections.open")
        assert len(opened) == 1 and opened[0].token == fake.app_token

        body = command_body("web echo via-socket-mode", response_url=fake.response_url("sock"))
        ack = await socket_side.send_command("env-1", body)
        assert ack["envelope_id"] == "env-1"
        assert "Running" in json.dumps(ack["payload"])
        update = (await fake.await_for("chat.update"))[-1]
        assert "via-socket-mode" in message_text(fake, str(update.params["ts"]))

        # Slack may redeliver an envelope; the same trigger_id must not run twice.
        again = await socket_side.send_command("env-2", body)
        assert "Already received" in json.dumps(again["payload"])

        async with aiohttp.ClientSession() as session, session.get(f"{bot.url}/healthz") as resp:
            assert resp.status == 200  # health server on PORT even in Socket Mode
        async with aiohttp.ClientSession() as session, session.post(f"{bot.url}/slack/events") as resp:
            assert resp.status in (404, 405)  # no HTTP events endpoint in Socket Mode
    assert len(execute_command_calls()) == 1


@pytest.mark.timeout(60)
async def test_socket_mode_mention_in_a_thread_runs_once_and_answers_there(
    fake: FakeSlack, socket_side: SlackSocket, open_socket_bot: SocketBot
) -> None:
    async with open_socket_bot():
        body = event_callback_body(mention_event("web echo via-socket-thread", thread_ts="1699990000.000900"))
        ack = await socket_side.send_event("env-e1", body)
        assert ack["envelope_id"] == "env-e1"
        [posted] = await fake.await_for("chat.postMessage")
        assert posted.params["thread_ts"] == "1699990000.000900"
        update = (await fake.await_for("chat.update"))[-1]
        assert "via-socket-thread" in message_text(fake, str(update.params["ts"]))
        again = await socket_side.send_event("env-e2", body, retry_attempt=1)
        assert again["envelope_id"] == "env-e2"
        await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1
    assert len(fake.calls("chat.postMessage")) == 1


@pytest.mark.timeout(60)
async def test_socket_mode_filter_button_and_form_answer_in_the_thread(
    fake: FakeSlack, socket_side: SlackSocket, open_socket_bot: SocketBot, tmp_path: Path
) -> None:
    from bot.store.outputs import DirectoryOutputs
    from tests.slack.test_e2e_followups import THREAD, answers_in_thread, click, filter_button, submission

    async with open_socket_bot(kept=DirectoryOutputs(tmp_path / "k")):
        await socket_side.send_event("env-f1", event_callback_body(mention_event("web seq 1 500", thread_ts=THREAD)))
        for _ in range(100):
            results = [u.params for u in fake.calls("chat.update") if "ecs_exec_filter" in json.dumps(u.params)]
            if results:
                break
            await asyncio.sleep(0.1)
        result = results[-1]
        ack = await socket_side.send_interactive("env-f2", click(filter_button(result), str(result["ts"])))
        assert ack["envelope_id"] == "env-f2"
        [opened] = await fake.await_for("views.open")
        view = opened.params["view"] if isinstance(opened.params["view"], dict) else json.loads(opened.params["view"])
        bad = await socket_side.send_interactive("env-f3", submission(view, "(?=x)"))
        assert "filter_pattern" in bad["payload"]["errors"]  # shown on the field, over the socket
        await socket_side.send_interactive("env-f4", submission(view, "^4.$", show="count"))
        [answer] = await answers_in_thread(fake, 1)
        assert "10 of 500 lines match" in json.dumps(answer)
    assert len(execute_command_calls()) == 1


@pytest.mark.timeout(60)
async def test_socket_mode_message_shortcut_and_its_modal_run_in_the_thread(
    fake: FakeSlack, socket_side: SlackSocket, open_socket_bot: SocketBot
) -> None:
    from tests.support.slack_requests import message_action_payload, view_submission_payload

    async with open_socket_bot():
        shortcut = message_action_payload(message_ts="1699990000.000300", thread_ts="1699990000.000200")
        ack = await socket_side.send_interactive("env-s1", shortcut)
        assert ack["envelope_id"] == "env-s1"
        [opened] = await fake.await_for("views.open")
        view = opened.params["view"] if isinstance(opened.params["view"], dict) else json.loads(opened.params["view"])
        submit = view_submission_payload(view, service="web", command="echo via-socket-shortcut")
        await socket_side.send_interactive("env-s2", submit)
        [posted] = await fake.await_for("chat.postMessage")
        assert posted.params["thread_ts"] == "1699990000.000200"
        update = (await fake.await_for("chat.update"))[-1]
        assert "via-socket-shortcut" in message_text(fake, str(update.params["ts"]))
        await socket_side.send_interactive("env-s3", submit)  # redelivered: claimed on the view id
        await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1
