"""The transport layer on its own: signed HTTP into /slack/events, /healthz, Socket Mode acks.

A bare Bolt app with one echo listener stands in for the handlers, so these tests pin what the listener
and Bolt's verification do regardless of what the command does (the end-to-end tests use the real app).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
import pytest
from slack_bolt.app.async_app import AsyncApp
from websockets.asyncio.server import ServerConnection, serve

from handlers.app import build_web_client
from handlers.server.http import HttpListener, build_web_app
from handlers.server.socket_mode import SocketModeListener
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import SlackSender, command_body, sign

SECRET = "transport-test-secret"


def echo_app(fake: FakeSlack, *, signing_secret: str = SECRET) -> AsyncApp:
    app = AsyncApp(
        client=build_web_client(fake.bot_token, fake.api_url),
        signing_secret=signing_secret,
        process_before_response=True,
    )

    @app.command("/ecs-exec")
    async def _echo(ack, command):  # type: ignore[no-untyped-def]
        await ack(f"echo: {command['text']}")

    return app


@pytest.fixture
def fake() -> AsyncIterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


@pytest.fixture
async def served(fake: FakeSlack) -> AsyncIterator[tuple[HttpListener, list[bool]]]:
    healthy = [True]

    async def health() -> tuple[bool, str]:
        return healthy[0], "test"

    listener = HttpListener(build_web_app(echo_app(fake), health), "127.0.0.1", 0)
    await listener.start()
    yield listener, healthy
    await listener.stop()


async def test_signed_command_is_acked_over_http(served: tuple[HttpListener, list[bool]]) -> None:
    listener, _ = served
    ack = await SlackSender(listener.url, SECRET).command("web uptime")
    assert (ack.status, ack.body) == (200, "echo: web uptime")


async def test_forged_signature_is_rejected(served: tuple[HttpListener, list[bool]]) -> None:
    listener, _ = served
    ack = await SlackSender(listener.url, "not-the-secret").command("web uptime")
    assert ack.status == 401


async def test_tampered_body_is_rejected(served: tuple[HttpListener, list[bool]]) -> None:
    listener, _ = served
    signed = sign(SECRET, command_body("web uptime"))
    tampered = type(signed)(body=signed.body.replace("uptime", "reboot"), headers=signed.headers)
    ack = await SlackSender(listener.url, SECRET).post(tampered)
    assert ack.status == 401


async def test_stale_timestamp_is_rejected(served: tuple[HttpListener, list[bool]]) -> None:
    # Slack's replay window is 5 minutes; 301 s old is outside it even though the HMAC is right.
    listener, _ = served
    ack = await SlackSender(listener.url, SECRET).post(
        sign(SECRET, command_body("x"), int(time.time()) - 301)
    )
    assert ack.status == 401


async def test_healthz_reports_draining_as_503(served: tuple[HttpListener, list[bool]]) -> None:
    listener, healthy = served
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{listener.url}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"
        healthy[0] = False
        async with session.get(f"{listener.url}/healthz") as resp:
            assert resp.status == 503


async def test_socket_mode_envelope_is_acked_over_the_websocket(fake: FakeSlack) -> None:
    acks: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    envelope = {
        "envelope_id": "env-1",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": dict(parse_qsl(command_body("web df"))),
    }

    async def slack_side(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "hello", "num_connections": 1}))
        await ws.send(json.dumps(envelope))
        async for raw in ws:
            await acks.put(json.loads(raw))

    async with serve(slack_side, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        fake.socket_url = f"ws://127.0.0.1:{port}/link"
        app = echo_app(fake, signing_secret="")
        listener = SocketModeListener(app, fake.app_token, app.client)
        await listener.start()
        try:
            ack = await asyncio.wait_for(acks.get(), 10)
            assert await listener.is_connected()
        finally:
            await listener.stop()
    assert ack["envelope_id"] == "env-1"
    assert ack["payload"] == {"text": "echo: web df"}
    opened = fake.calls("apps.connections.open")
    assert len(opened) == 1 and opened[0].token == fake.app_token
