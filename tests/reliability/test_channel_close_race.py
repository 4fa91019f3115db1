"""The agent ends a session with ``channel_closed`` and closes the socket straight away. Under load (200
concurrent sessions, `benchmarks/concurrent_sessions.py`) the client is still acknowledging the last
output when the close arrives: that ack can no longer be sent, but ``channel_closed`` is already in the
client's queue. The session must end normally, not as "lost" (a resume would find it gone)."""

from __future__ import annotations

import asyncio
import struct

from bot.ssm.channel import DataChannelSession, SessionParams
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer, channel_closed_frame, output_frame
from tests.ssm.test_channel import FAST


def server_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server→client websocket frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


async def output_closed_and_close_in_one_write(conn: Conn) -> None:
    # One TCP write, so the client's websocket layer has seen the close frame (and can no longer send)
    # before its reader gets to acknowledge the output that came first.
    conn.ws.transport.write(
        server_frame(0x2, output_frame(0, b"last words\r\n"))
        + server_frame(0x2, channel_closed_frame(""))
        + server_frame(0x8, struct.pack("!H", 1000))
    )
    await asyncio.sleep(0.5)
    conn.ws.transport.close()


async def test_channel_closed_queued_behind_an_unsendable_ack_still_ends_the_session_normally() -> None:
    control = FakeControl()  # a resume would be told the session is gone
    sink: list[bytes] = []
    async with Peer(output_closed_and_close_in_one_write) as peer:
        session = DataChannelSession(
            SessionParams(SESSION_ID, peer.url, "TOKEN-1", target="ecs:c_t_r"),
            on_output=sink.append,
            control=control,
            config=FAST,
        )
        result = await asyncio.wait_for(session.run(), 15)
    assert b"".join(sink) == b"last words\r\n"
    assert result.closed_output == "" and result.resumes == 0
    assert control.resumed == [] and control.terminated == []
