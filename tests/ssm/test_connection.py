"""The websocket edge: client frames built in a batch, and our own frame reader against raw server bytes."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from bot.errors import DataChannelError
from bot.ssm.channel import DataChannelSession, SessionParams
from bot.ssm.connection import backoff, client_frames
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer, output_frame
from tests.ssm.test_channel import FAST


def parse_all(data: bytes, count: int) -> list[Frame]:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames = []
    for _ in range(count):
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
    assert reader.at_eof()
    return frames


@pytest.mark.parametrize("sizes", [[0], [1, 125, 126, 300], [65535, 65536], [296] * 50])
def test_client_frames_are_masked_binary_frames_each_with_its_own_key(sizes: list[int]) -> None:
    messages = [os.urandom(n) for n in sizes]
    masks = os.urandom(4 * len(messages))
    data = client_frames(messages, masks)
    frames = parse_all(data, len(messages))
    assert [(f.opcode, f.fin, bytes(f.data)) for f in frames] == [(Opcode.BINARY, True, m) for m in messages]
    offset = 0
    for i, message in enumerate(messages):
        head = 2 if len(message) < 126 else 4 if len(message) < 65536 else 10
        assert data[offset + head : offset + head + 4] == masks[4 * i : 4 * i + 4]
        offset += head + 4 + len(message)


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 0.2) for n in (1, 2, 3)] == [0.2, 0.4, 0.8] and backoff(10, 0.2) == 5.0


# --- the connection's own frame reader, against a peer writing raw bytes ------------------------------


def server_frame(payload: bytes, first: int = 0x82) -> bytes:
    """An unmasked server-to-client frame; ``first`` is FIN/RSV/opcode."""
    n = len(payload)
    if n < 126:
        return bytes([first, n]) + payload
    if n < 65536:
        return bytes([first, 126]) + n.to_bytes(2, "big") + payload
    return bytes([first, 127]) + n.to_bytes(8, "big") + payload


async def stream_raw(chunks: list[bytes]) -> tuple[list[bytes], list[int]]:
    """Serve ``chunks`` as raw socket writes after the client's first ack, then channel_closed."""

    async def script(c: Conn) -> None:
        await c.output(0, b"<0>")
        await c.wait_ack(0)  # no handshake: from now on frames take the fast path
        for chunk in chunks:
            c.ws.transport.write(chunk)
            await asyncio.sleep(0.002)  # separate reads
        await c.wait_until(lambda: len(set(c.acks)) == 11)
        await c.close_channel()

    sink: list[bytes] = []
    control = FakeControl()
    async with Peer(script) as peer:
        s = DataChannelSession(SessionParams(SESSION_ID, peer.url, "T"), on_output=sink.append, control=control,
                               config=replace(FAST, read_pause=0.0))
        await asyncio.wait_for(s.run(), 15)
    return sink, sorted(set(peer.conns[0].acks))


def outputs(first: int, last: int) -> bytes:
    return b"".join(server_frame(output_frame(seq, f"<{seq}>".encode())) for seq in range(first, last + 1))


EXPECTED = [f"<{i}>".encode() for i in range(11)]


async def test_frames_split_across_reads_at_every_boundary_are_reassembled() -> None:
    data = outputs(1, 10)
    sink, acks = await stream_raw([data[i : i + 7] for i in range(0, len(data), 7)])
    assert sink == EXPECTED and acks == list(range(11))


async def test_control_frames_and_a_fragmented_message_between_data_frames() -> None:
    ping = server_frame(b"are you there", 0x89)
    seven = output_frame(7, b"<7>")
    fragmented = server_frame(seven[:50], 0x02) + ping + server_frame(seven[50:], 0x80)  # BINARY, CONT+FIN
    data = outputs(1, 3) + ping + outputs(4, 6) + fragmented + outputs(8, 10)
    sink, acks = await stream_raw([data[:200], data[200:]])
    assert sink == EXPECTED and acks == list(range(11))


async def test_a_frame_header_claiming_a_terabyte_fails_at_once_instead_of_being_buffered() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"<0>")
        await c.wait_ack(0)  # our frame reader is in charge now
        c.ws.transport.write(bytes([0x82, 127]) + (1 << 40).to_bytes(8, "big") + b"x" * 1000)
        await asyncio.sleep(10)

    control = FakeControl(tokens=["T2"])
    async with Peer(script) as peer:
        s = DataChannelSession(SessionParams(SESSION_ID, peer.url, "T"), on_output=lambda _: None,
                               control=control, config=replace(FAST, max_frame_bytes=65_536))
        with pytest.raises(DataChannelError) as info:
            await asyncio.wait_for(s.run(), 8)
    assert "larger than" in info.value.message and control.resumed == []
