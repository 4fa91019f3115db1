"""Hostile agent/MGS peers: every session must end with a typed DataChannelError, within a deadline and
in bounded memory (docs/ssm-protocol.md §2, §4, §11)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from bot.errors import DataChannelError
from bot.ssm import handshake as hs
from bot.ssm.channel import ChannelConfig, DataChannelSession, SessionParams
from bot.ssm.errors import AgentClosedError, DeadlineError, HandshakeError
from bot.ssm.frames import FrameError, MessageType, PayloadType, encode_message, parse_ack, parse_json_object
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer, output_frame

FAST = ChannelConfig(
    handshake_grace=0.05, tick=0.01, connect_timeout=2.0, first_message_timeout=5.0, idle_timeout=5.0,
    close_timeout=1.0, control_timeout=2.0, resume_backoff=0.01, ping_interval=None, ping_timeout=None,
)


def _session(url: str, control: FakeControl, sink: list[bytes], config: ChannelConfig = FAST,
             **kw: object) -> DataChannelSession:
    return DataChannelSession(SessionParams(SESSION_ID, url, "TOKEN-1", target="ecs:c_t_r"),
                              on_output=sink.append, control=control, config=config, **kw)  # type: ignore[arg-type]


def _ack_frame(seq: object) -> bytes:
    body = ('{"AcknowledgedMessageType":"input_stream_data",'
            '"AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16",'
            f'"AcknowledgedMessageSequenceNumber":{seq},"IsSequentialMessage":true}}')
    return encode_message(MessageType.ACKNOWLEDGE, body.encode(), sequence_number=0, flags=3)


# --- JSON payloads: nothing but FrameError --------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b'{"AcknowledgedMessageSequenceNumber":1e400}',  # inf -> OverflowError in int()
    b'{"AcknowledgedMessageSequenceNumber":-1e400}',
    b'{"AcknowledgedMessageSequenceNumber":' + b"9" * 30 + b"}",  # beyond int64
    b"[" * 200_000,  # RecursionError inside json
    b'{"a":' * 100_000,
])
def test_hostile_ack_payloads_are_frame_errors(payload: bytes) -> None:
    with pytest.raises(FrameError):
        parse_ack(payload)


def test_deeply_nested_handshake_and_channel_closed_are_frame_errors() -> None:
    with pytest.raises(FrameError):
        parse_json_object(b"[" * 200_000, "x")
    with pytest.raises(FrameError):
        hs.parse_handshake_request(b'{"RequestedClientActions":' * 100_000)
    with pytest.raises(FrameError):
        hs.parse_channel_closed(b'{"Output":' * 100_000)


async def test_an_ack_with_an_infinite_sequence_number_does_not_crash_the_session() -> None:
    async def script(c: Conn) -> None:
        await c.send(_ack_frame("1e999"))
        await c.output(0, b"fine")
        await c.wait_ack(0)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        await asyncio.wait_for(_session(peer.url, FakeControl(), sink).run(), 10)
    assert sink == [b"fine"]


# --- deadlines that a hostile peer must not hold off ----------------------------------------------------

async def test_an_ack_flood_for_nothing_does_not_hold_off_the_idle_deadline() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"started\r\n")
        for _ in range(3000):  # >= 30 s of acks for a message we never sent
            await c.send(_ack_frame(987654))
            await asyncio.sleep(0.01)

    control = FakeControl()
    async with Peer(script) as peer:
        s = _session(peer.url, control, [], replace(FAST, idle_timeout=0.4))
        with pytest.raises(DeadlineError):
            await asyncio.wait_for(s.run(), 15)
    assert control.terminated == [SESSION_ID]


async def test_a_peer_that_never_reads_ends_with_a_typed_error() -> None:
    """ws.send waits for the socket to drain: a stalled peer must not block the sender (and its
    deadline checks) forever."""
    inbound: asyncio.Queue[bytes] = asyncio.Queue()

    class Stuck:
        transport = SimpleNamespace(abort=lambda: None)

        async def send(self, frame: bytes | str) -> None:
            if isinstance(frame, bytes):
                await asyncio.Event().wait()  # the write buffer never drains

        def __aiter__(self) -> Stuck:
            return self

        async def __anext__(self) -> bytes:
            return await inbound.get()

        async def close(self) -> None:
            return None

    async def dial() -> Stuck:
        inbound.put_nowait(output_frame(0, b"hello"))
        return Stuck()

    s = _session("ws://127.0.0.1:9/x", FakeControl(tokens=["T2", "T3"]), [],
                 replace(FAST, send_timeout=0.2, idle_timeout=60.0))
    s._dial = dial  # type: ignore[method-assign]
    with pytest.raises(DataChannelError):
        await asyncio.wait_for(s.run(), 8)


# --- memory bounds ----------------------------------------------------------------------------------------

async def test_reorder_buffer_is_bounded_in_bytes_and_distance() -> None:
    big = b"x" * 200_000

    async def script(c: Conn) -> None:
        for seq in range(1, 40):  # 39 x 200 KB far-ahead messages: 7.8 MB if all were kept
            await c.output(seq, big)
        await c.output(2**63 - 1, b"absurd")  # int64 max
        await c.output(-(2**63), b"negative")  # a "duplicate": re-acked, never delivered
        await c.output(0, b"zero")
        await asyncio.sleep(0.2)
        await c.close_channel()

    sink: list[bytes] = []
    s = _session("", FakeControl(), sink, replace(FAST, reorder_bytes=1_000_000))
    async with Peer(script) as peer:
        s._params = replace(s._params, stream_url=peer.url)
        result = await asyncio.wait_for(s.run(), 10)
    assert s._inbox.held_bytes <= 1_000_000
    assert sum(len(p) for _, p in s._inbox._held.values()) <= 1_000_000
    assert 2**63 - 1 not in s._inbox._held
    assert sink[0] == b"zero" and b"negative" not in sink and b"absurd" not in sink
    assert result.missing_messages < 100


async def test_a_frame_bigger_than_max_size_is_a_typed_error_without_resume_loops() -> None:
    async def script(c: Conn) -> None:
        await c.send(output_frame(0, b"y" * 70_000))
        await asyncio.sleep(5)

    control = FakeControl(tokens=["T2", "T3", "T4", "T5", "T6"])
    async with Peer(script) as peer:
        with pytest.raises(DataChannelError) as info:
            await asyncio.wait_for(
                _session(peer.url, control, [], replace(FAST, max_frame_bytes=65_536)).run(), 8)
    assert "larger than" in info.value.message
    assert control.resumed == []  # the same frame would come again: no resume
    assert control.terminated == [SESSION_ID]


async def test_channel_closed_with_a_huge_output_gives_a_bounded_one_line_error() -> None:
    async def script(c: Conn) -> None:
        await c.close_channel("boom\x1b[31m\r\n" + "A" * 200_000)

    async with Peer(script) as peer:
        with pytest.raises(AgentClosedError) as info:
            await asyncio.wait_for(_session(peer.url, FakeControl(), []).run(), 10)
    assert len(info.value.message) < 1000 and "\x1b" not in info.value.message
    assert "\n" not in info.value.message and info.value.message.count("A") < 600


async def test_a_handshake_repeating_the_kms_action_buys_one_data_key_and_fails() -> None:
    calls: list[str] = []

    class Keys:
        async def generate_data_key(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
            calls.append(key_id)
            return b"k" * 64, b"blob"

    action = {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "alias/k"}}
    request = {"AgentVersion": "3", "RequestedClientActions": [
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands"}},
        *[action] * 500]}

    async def script(c: Conn) -> None:
        await c.output(0, json.dumps(request).encode(), PayloadType.HANDSHAKE_REQUEST)
        await c.next_input(PayloadType.HANDSHAKE_RESPONSE)
        await asyncio.sleep(2)

    async with Peer(script) as peer:
        with pytest.raises(HandshakeError):
            await asyncio.wait_for(_session(peer.url, FakeControl(), [], data_keys=Keys()).run(), 8)
    assert len(calls) <= 1


@pytest.mark.parametrize("response", [
    {},  # neither field
    {"Plaintext": b"k" * 64},  # no CiphertextBlob
    {"Plaintext": "k" * 64, "CiphertextBlob": b"blob"},  # not bytes
    {"Plaintext": b"k" * 32, "CiphertextBlob": b"blob"},  # wrong length
])
async def test_a_hostile_generate_data_key_response_is_a_typed_error(response: dict[str, object]) -> None:
    from bot.ssm.errors import KmsAccessError
    from bot.ssm.kms import Boto3DataKeyProvider

    class Kms:
        def generate_data_key(self, **_: object) -> dict[str, object]:
            return response

    with pytest.raises(KmsAccessError):
        await Boto3DataKeyProvider(Kms()).generate_data_key("alias/k", {"aws:ssm:SessionId": "s"})
