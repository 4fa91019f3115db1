"""The agent side of the data channel, checked frame by frame with a hand-built client."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from bot.ssm.frames import MessageType, PayloadType, encode_message
from standins.agent import LocalAgent, SessionSpec
from standins.agent_models import Faults
from standins.agent_output import synthetic_output
from tests.sandbox.raw_client import RawClient, token_frame


async def open_session(agent: LocalAgent, **spec: object) -> tuple[RawClient, str]:
    r = agent.register(SessionSpec(**spec))  # type: ignore[arg-type]
    client = await RawClient.connect(r.stream_url, r.token)
    client.session_id, client.target = r.session_id, r.target or ""
    return client, r.session_id


async def test_wrong_token_is_closed_without_data(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(synthetic_output_bytes=10))
    async with websockets.connect(r.stream_url, compression=None) as ws:
        await ws.send(token_frame("not-the-token"))
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert agent.stats(r.session_id).messages_published == 0


async def test_unknown_session_is_closed(agent: LocalAgent) -> None:
    async with websockets.connect(agent.stream_url("nope"), compression=None) as ws:
        await ws.send(token_frame("x"))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()


async def test_no_handshake_first_output_is_seq0_flag1_and_output_is_exact(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, synthetic_output_bytes=5000)
    first = await client.recv()
    assert (first.message_type, first.sequence_number, first.flags) == (MessageType.OUTPUT_STREAM_DATA, 0, 1)
    assert first.payload_type == PayloadType.OUTPUT and len(first.payload) == 1024
    await client.ack(first)
    client.note(first)
    client.deliver(first)
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(5000)
    assert [m.flags for m in t.messages] == [1, 0, 0, 0, 0]  # only seq 0 carries SYN
    assert t.closed is not None and t.closed["Output"] == "" and t.closed["SessionId"] == sid
    assert t.closed["MessageType"] == "channel_closed" and t.closed["SchemaVersion"] == 1
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv()  # the agent closes the socket after channel_closed


async def test_unacked_output_is_retransmitted_identically_oldest_only(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, synthetic_output_bytes=3 * 1024)
    frames = []
    while len(frames) < 6:  # 3 first sends, then retransmissions
        frames.append(await client.ws.recv())
    firsts, resent = frames[:3], frames[3:]
    assert all(f == firsts[0] for f in resent)  # byte-identical (same MessageId, CreatedDate), only seq 0
    t = await client.run_to_close()
    assert t.closed == {**t.closed, "Output": ""}
    assert agent.stats(sid).retransmissions >= 3


async def test_channel_closed_waits_for_acks(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, synthetic_output_bytes=2048)
    held = [await client.recv(), await client.recv()]
    await asyncio.sleep(0.3)  # the output has ended; nothing is acked yet
    assert agent.stats(sid).closed_output is None  # still waiting for acks, not closed
    for m in held:
        await client.ack(m)
    t = await client.run_to_close()
    assert t.closed is not None and t.closed["Output"] == ""


async def test_close_gives_up_waiting_for_acks(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, synthetic_output_bytes=100, close_ack_wait=0.2)
    t = await client.run_to_close(ack=False)
    assert t.closed is not None and agent.stats(sid).closed_output == ""


async def test_input_is_acked_reordered_and_duplicates_reacked(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, command="cat")
    second = await client.send_input(b"b", seq=1)  # ahead of seq 0: acked and held
    await client.wait_for_ack(1, resend=second)
    first = await client.send_input(b"a", seq=0)
    await client.wait_for_ack(0, resend=first)
    await client.ws.send(first)  # a duplicate: acked again, not processed again
    client.t.acks.clear()
    await client.wait_for_ack(0)
    await client.send_input(b"\r\x04", seq=2)  # end the line, then EOF for cat
    t = await client.run_to_close()
    assert agent.stats(sid).stdin_tail == b"ab\r\x04"
    assert b"ab" in t.output


async def test_input_before_the_pty_starts_is_not_acked(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, command="cat", faults=Faults(pty_start_delay=0.3))
    frame = await client.send_input(b"early\r")
    sends = await client.wait_for_ack(0, resend=frame)
    assert sends > 1 and agent.stats(sid).inputs_not_ready >= 1
    await client.send_input(b"\x04")
    t = await client.run_to_close()
    assert b"early" in t.output


async def test_handshake_discards_early_input_then_runs(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, command="cat", handshake=True)
    request = await client.recv()
    assert (request.sequence_number, request.flags, request.payload_type) == (0, 1, PayloadType.HANDSHAKE_REQUEST)
    body = json.loads(request.payload)
    assert body["RequestedClientActions"] == [
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None}}
    ]
    client.note(request)  # in order: expected is now 1
    await client.ack(request)
    early = await client.send_input(b"lost\r")  # before the handshake completes: acked, dropped
    await client.wait_for_ack(0, resend=early)
    await client.send_input(
        b'{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType",'
        b'"ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}',
        PayloadType.HANDSHAKE_RESPONSE,
    )
    complete = await client.next_output()
    assert complete.payload_type == PayloadType.HANDSHAKE_COMPLETE
    assert json.loads(complete.payload)["CustomerMessage"] == ""
    await client.send_input(b"kept\r")
    await client.send_input(b"\x04")
    t = await client.run_to_close()
    stats = agent.stats(sid)
    assert stats.inputs_discarded == 1 and stats.client_version == "1.2.650.0"
    assert b"kept" in t.output and b"lost" not in t.output


async def test_handshake_failure_is_reported_in_channel_closed(agent: LocalAgent) -> None:
    client, _ = await open_session(agent, command="cat", handshake=True)
    with pytest.raises(AssertionError, match="channel closed"):
        await client.handshake(status=2)
    assert client.t.closed is not None
    assert client.t.closed["Output"] == "SessionType failed on client with status 2 error: refused by the test"


async def test_utf8_characters_are_never_split(agent: LocalAgent) -> None:
    import sys

    client, _ = await open_session(agent, command=f"{sys.executable} -c \"print('é€😀' * 700, end='')\"")
    t = await client.run_to_close()
    for m in t.messages:
        m.payload.decode("utf-8")  # each message on its own is valid UTF-8
        assert len(m.payload) <= 1027
    assert t.output.decode() == "é€😀" * 700


async def test_flow_control_bounds_unacked_output() -> None:
    async with LocalAgent(max_unacked_messages=8) as agent:
        client, sid = await open_session(agent, synthetic_output_bytes=200 * 1024)
        seen = [await client.recv() for _ in range(8)]
        await asyncio.sleep(0.3)  # without acks the agent must stop reading its source
        assert agent.stats(sid).messages_published == 8
        for m in seen:
            await client.ack(m)
            for ready in client.note(m):
                client.deliver(ready)
        t = await client.run_to_close()
        assert bytes(t.output) == synthetic_output(200 * 1024)
        assert agent.stats(sid).max_unacked <= 8


async def test_stdin_frames_are_ignored_when_malformed(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, command="cat")
    bad = bytearray(encode_message(MessageType.INPUT_STREAM_DATA, b"zz", sequence_number=0, payload_type=1))
    bad[-1] ^= 1  # digest mismatch: dropped, not acked
    await client.ws.send(bytes(bad))
    good = await client.send_input(b"ok\r", seq=0)
    await client.wait_for_ack(0, resend=good)
    await client.send_input(b"\x04", seq=1)
    await client.run_to_close()
    assert agent.stats(sid).stdin_tail == b"ok\r\x04"
