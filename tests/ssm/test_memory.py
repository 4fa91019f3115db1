"""200 MB of output through the client: complete, and the client's memory does not grow with it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from bot.output.capture import BoundedCapture
from bot.ssm.channel import ChannelConfig, DataChannelSession, SessionParams
from tests.ssm.fast_peer import expected_sha256
from tests.ssm.peer import SESSION_ID, FakeControl

TOTAL = 200 * 1024 * 1024


@pytest.fixture
def fast_peer_port() -> Iterator[int]:
    # Another process, so the RSS measured in the test is the client's (plus the capture's fixed bound).
    peer = subprocess.Popen(
        [sys.executable, "-m", "tests.ssm.fast_peer", str(TOTAL)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout is not None
        yield int(peer.stdout.readline())
    finally:
        peer.kill()
        peer.wait()


async def test_200_mb_stream_with_bounded_client_memory(fast_peer_port: int) -> None:
    capture = BoundedCapture()
    me = psutil.Process()
    peak = before = me.memory_info().rss

    def on_output(data: bytes) -> None:
        nonlocal peak
        capture.write(data)
        if capture.total_bytes % (8 * 1024 * 1024) == 0:  # sample every 8 MiB
            peak = max(peak, me.memory_info().rss)

    session = DataChannelSession(
        SessionParams(SESSION_ID, f"ws://127.0.0.1:{fast_peer_port}/v1/data-channel/{SESSION_ID}", "T"),
        on_output=on_output,
        control=FakeControl(),
        config=ChannelConfig(ping_interval=None, ping_timeout=None),
    )
    async with asyncio.timeout(110):
        result = await session.run()
    peak = max(peak, me.memory_info().rss)
    assert capture.total_bytes == TOTAL and result.bytes_received == TOTAL and result.missing_messages == 0
    assert capture.sha256 == expected_sha256(TOTAL)  # complete and in order
    assert peak - before < 60 * 1024 * 1024, f"RSS grew by {(peak - before) / 2**20:.1f} MiB"
