"""A fast agent stand-in, run as a separate process, for streaming large outputs through the client.

    python -m tests.ssm.fast_peer <total_bytes>     # prints the port, serves one session, exits

It publishes ``total_bytes`` of 1 KiB output messages with at most ``WINDOW`` unacked, like the agent,
then ``channel_closed``. Payload ``i`` is ``payload(i)``, so the receiver can check the SHA-256 of the
whole stream. Acks are only counted, not parsed: the peer must be cheaper than the client it feeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import sys

from websockets.asyncio.server import ServerConnection, serve

from bot.ssm.frames import PayloadType, encode_message
from tests.ssm.peer import channel_closed_frame

CHUNK = 1024
WINDOW = 512
_FILL = bytes(range(256)) * 4


def payload(index: int, total_bytes: int) -> bytes:
    body = struct.pack(">Q", index) + _FILL[: CHUNK - 8]
    return body[: max(0, min(CHUNK, total_bytes - index * CHUNK))]


def expected_sha256(total_bytes: int) -> str:
    digest = hashlib.sha256()
    for i in range(-(-total_bytes // CHUNK)):
        digest.update(payload(i, total_bytes))
    return digest.hexdigest()


async def publish(ws: ServerConnection, total_bytes: int) -> None:
    await ws.recv()  # token frame
    count = -(-total_bytes // CHUNK)
    acked = 0
    window_open = asyncio.Event()
    window_open.set()

    async def count_acks() -> None:
        nonlocal acked
        async for _ in ws:  # only acknowledges arrive (no stdin in this test)
            acked += 1
            window_open.set()

    counter = asyncio.create_task(count_acks())
    for seq in range(count):
        while seq - acked >= WINDOW:
            window_open.clear()
            await window_open.wait()
        await ws.send(encode_message("output_stream_data", payload(seq, total_bytes), sequence_number=seq,
                                     payload_type=PayloadType.OUTPUT))
    while acked < count:
        window_open.clear()
        await window_open.wait()
    await ws.send(channel_closed_frame())
    await ws.wait_closed()
    counter.cancel()


async def main(total_bytes: int) -> None:
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        try:
            await publish(ws, total_bytes)
        finally:
            done.set()

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_queue=1024, write_limit=1 << 20) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
