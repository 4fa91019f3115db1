"""Client websocket frames built in one batch: what websockets' own parser reads back."""

from __future__ import annotations

import os

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from bot.ssm.connection import backoff, client_frames


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
