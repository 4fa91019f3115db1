"""A peer that stops reading while the client owes it a batch of acks: the client stops reading too (its
memory stays bounded), drops the connection after ``send_timeout``, and ends with a typed error."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import replace

import pytest

from bot.ssm.channel import DataChannelSession, SessionParams
from bot.ssm.connection import DataChannelConnection
from bot.ssm.errors import SessionExpiredError
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer
from tests.ssm.test_channel import FAST

MESSAGES = 20_000  # 20 MiB the peer would like to send; far more than the socket buffers below hold
PAYLOAD = b"x" * 1024


async def test_a_peer_that_stops_reading_while_owed_acks_is_dropped_and_memory_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stalls: list[tuple[bool, int]] = []  # (still reading the socket, bytes waiting to be written) per stall
    original_pause = DataChannelConnection.pause_writing

    def recording_pause(self: DataChannelConnection) -> None:
        original_pause(self)
        stalls.append((self.transport.is_reading(), self.transport.get_write_buffer_size()))

    monkeypatch.setattr(DataChannelConnection, "pause_writing", recording_pause)
    sent = 0

    async def script(c: Conn) -> None:
        nonlocal sent
        c.ws.transport.pause_reading()  # never reads another byte: every ack the client writes piles up
        for seq in range(MESSAGES):
            await c.output(seq, PAYLOAD)  # blocks once the client stops reading in turn
            sent += 1

    delivered: list[bytes] = []
    session = DataChannelSession(
        SessionParams(SESSION_ID, "", "TOKEN-1"),
        on_output=delivered.append,
        control=FakeControl(tokens=[]),  # after the drop, ResumeSession says the session is gone
        config=replace(FAST, send_timeout=0.3, idle_timeout=60.0),
    )
    real_dial = session._dial

    async def dial_with_small_buffers() -> DataChannelConnection:
        ws = await real_dial()
        sock = ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # acks overflow into user space quickly
        assert isinstance(ws, DataChannelConnection)
        return ws

    session._dial = dial_with_small_buffers  # type: ignore[method-assign]
    async with Peer(script) as peer:
        session._params = replace(session._params, stream_url=peer.url)
        with pytest.raises(SessionExpiredError) as failure:
            await asyncio.wait_for(session.run(), 30)
    assert "read nothing for 0.3 s" in failure.value.message
    assert stalls, "the client's acks never exceeded its write buffer: the test did not stall the peer"
    assert all(not reading for reading, _ in stalls)  # stopped taking output it would owe acks for
    # Bounded: the write buffer's high-water mark (32 KiB) plus the acks of one socket read (asyncio reads at
    # most 256 KiB: ~230 frames of 1 KiB, ~320 bytes of ack each), however much the peer wanted to send.
    one_read_of_acks = (256 * 1024 // (120 + len(PAYLOAD)) + 1) * 320
    assert max(size for _, size in stalls) < 32 * 1024 + one_read_of_acks
    assert 0 < len(delivered) < MESSAGES and sent < MESSAGES
