"""A minimal scripted agent/MGS peer for data-channel client tests (websockets server on 127.0.0.1:0).

Each test supplies ``script(conn)``, run once per client connection after the token frame; everything the
client sends is decoded into ``conn.inbox``. Deliberately independent of stand-ins/standins/agent.py: the client
is tested against the protocol, with hand-built frames.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Opcode

from bot.ssm.frames import (
    DecodedMessage,
    MessageType,
    PayloadType,
    decode_message,
    encode_ack,
    encode_message,
    parse_ack,
)

SESSION_ID = "ecs-execute-command-0123456789abcdef0"


class PingCountingConnection(ServerConnection):
    pings = 0

    def process_event(self, event: Any) -> None:
        if getattr(event, "opcode", None) is Opcode.PING:
            type(self).pings += 1
        super().process_event(event)


@dataclass
class Conn:
    ws: ServerConnection
    token: dict[str, Any]
    inbox: asyncio.Queue[DecodedMessage] = field(default_factory=asyncio.Queue)
    acks: list[int] = field(default_factory=list)  # seqs of output_stream_data the client acked
    inputs: list[DecodedMessage] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, frame: bytes) -> None:
        await self.ws.send(frame)

    async def output(self, seq: int, payload: bytes, ptype: int = PayloadType.OUTPUT) -> None:
        await self.send(output_frame(seq, payload, ptype))

    async def next(self, within: float = 5.0) -> DecodedMessage:
        async with asyncio.timeout(within):
            return await self.inbox.get()

    async def next_input(self, ptype: int | None = None, within: float = 5.0) -> DecodedMessage:
        """Next input_stream_data (optionally of one PayloadType); acks are recorded, not returned."""
        async with asyncio.timeout(within):
            while True:
                m = await self.inbox.get()
                if m.message_type == MessageType.INPUT_STREAM_DATA and (ptype is None or m.payload_type == ptype):
                    return m

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Until ``predicate()`` holds; re-checked after every frame the client sends."""
        async with asyncio.timeout(within):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def wait_ack(self, seq: int, within: float = 5.0) -> None:
        await self.wait_until(lambda: seq in self.acks, within)

    async def ack(self, m: DecodedMessage) -> None:
        await self.send(encode_ack(m))

    async def close_channel(self, output: str = "") -> None:
        await self.send(channel_closed_frame(output))

    def abort(self) -> None:
        self.ws.transport.abort()


def output_frame(seq: int, payload: bytes, ptype: int = PayloadType.OUTPUT) -> bytes:
    return encode_message(
        MessageType.OUTPUT_STREAM_DATA, payload, sequence_number=seq, payload_type=int(ptype), flags=1 if seq == 0 else 0
    )


def channel_closed_frame(output: str = "") -> bytes:
    body = {
        "MessageId": str(uuid.uuid4()),
        "CreatedDate": "1700000000000",
        "DestinationId": "ecs:c_t_r",
        "SessionId": SESSION_ID,
        "MessageType": "channel_closed",
        "SchemaVersion": 1,
        "Output": output,
    }
    return encode_message(MessageType.CHANNEL_CLOSED, json.dumps(body).encode(), sequence_number=0, flags=3)


def publication_frame(kind: str) -> bytes:
    return encode_message(kind, b"", sequence_number=0)


Script = Callable[[Conn], Awaitable[None]]


class Peer:
    """Serves the data channel; ``scripts[i]`` handles the i-th connection (the last one repeats)."""

    def __init__(self, *scripts: Script, count_pings: bool = False) -> None:
        self.scripts = list(scripts)
        self.conns: list[Conn] = []
        self.errors: list[BaseException] = []  # failed assertions inside scripts, raised on exit
        self.port = 0
        self._server: Any = None
        self._count_pings = count_pings

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/data-channel/{SESSION_ID}?role=publish_subscribe"

    async def __aenter__(self) -> Peer:
        kwargs: dict[str, Any] = {"compression": None, "ping_interval": None}
        if self._count_pings:
            PingCountingConnection.pings = 0
            kwargs["create_connection"] = PingCountingConnection
        self._server = await serve(self._handle, "127.0.0.1", 0, **kwargs)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()
        if self.errors:
            raise self.errors[0]

    async def _handle(self, ws: ServerConnection) -> None:
        first = await ws.recv()
        assert isinstance(first, str), "the token must be a TEXT frame"
        conn = Conn(ws, json.loads(first))
        index = len(self.conns)
        self.conns.append(conn)
        reader = asyncio.create_task(self._read(conn))
        script = asyncio.create_task(self.scripts[min(index, len(self.scripts) - 1)](conn))
        closed = asyncio.create_task(ws.wait_closed())
        try:
            await asyncio.wait({script, closed}, return_when=asyncio.FIRST_COMPLETED)
            if script.done():
                error = script.exception()
                # A script still sending when the client hangs up is the client leaving, not a failure.
                if error is not None and not isinstance(error, websockets.ConnectionClosed):
                    self.errors.append(error)
                await closed
        finally:
            for task in (reader, script, closed):
                task.cancel()

    async def _read(self, conn: Conn) -> None:
        async for frame in conn.ws:
            assert isinstance(frame, bytes), "after the token every frame is BINARY"
            m = decode_message(frame)
            if m.message_type == MessageType.ACKNOWLEDGE:
                conn.acks.append(parse_ack(m.payload).sequence_number)
            elif m.message_type == MessageType.INPUT_STREAM_DATA:
                conn.inputs.append(m)
            await conn.inbox.put(m)
            conn.changed.set()


@dataclass
class FakeControl:
    """SessionControl double: hands out ``tokens`` on resume (None = session gone) and records calls."""

    tokens: list[str | None] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)
    on_terminate: Callable[[], Awaitable[None]] | None = None

    async def resume_session(self, session_id: str) -> str | None:
        self.resumed.append(session_id)
        return self.tokens.pop(0) if self.tokens else None

    async def terminate_session(self, session_id: str) -> None:
        self.terminated.append(session_id)
        if self.on_terminate is not None:
            await self.on_terminate()
