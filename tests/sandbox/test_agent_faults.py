"""Each fault of ``Faults``, and that a client following the protocol still gets every byte."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from bot.ssm.frames import MessageType, PayloadType, compact_json
from standins.agent import LocalAgent, SessionSpec
from standins.agent_models import Faults
from standins.agent_output import synthetic_output
from tests.sandbox.conftest import aws_client
from tests.sandbox.raw_client import RawClient, token_frame

SIZE = 40 * 1024


async def open_session(agent: LocalAgent, faults: Faults, **spec: object) -> tuple[RawClient, str]:
    spec.setdefault("synthetic_output_bytes", SIZE)
    r = agent.register(SessionSpec(faults=faults, **spec))  # type: ignore[arg-type]
    return await RawClient.connect(r.stream_url, r.token), r.session_id


async def test_reorder_duplicate_and_drop_are_recovered(agent: LocalAgent) -> None:
    faults = Faults(seed=7, reorder_rate=0.3, duplicate_rate=0.3, drop_rate=0.2, drop_seqs=frozenset({0}))
    client, sid = await open_session(agent, faults)
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(SIZE)
    seqs = [m.sequence_number for m in t.messages]
    assert seqs[0] != 0  # seq 0's first transmission was lost
    assert any(b < a for a, b in zip(seqs, seqs[1:], strict=False))  # out of order
    assert len(seqs) > len(set(seqs))  # duplicates
    stats = agent.stats(sid)
    assert stats.retransmissions >= 1 and "dropped:0" in stats.events


async def test_faults_are_deterministic_for_a_seed(agent: LocalAgent) -> None:
    faults = Faults(seed=3, drop_rate=0.3, duplicate_rate=0.2)
    runs = []
    for _ in range(2):
        client, sid = await open_session(agent, faults, synthetic_output_bytes=12 * 1024)
        await client.run_to_close()
        runs.append([e for e in agent.stats(sid).events if e.startswith("dropped")])
    assert runs[0] == runs[1] and runs[0]


async def test_pause_and_start_publication(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, Faults(pause_after=3, pause_seconds=0.2))
    t = await client.run_to_close()
    kinds = [m.message_type for m in t.other]
    assert kinds[:2] == [MessageType.PAUSE_PUBLICATION, MessageType.START_PUBLICATION]
    assert bytes(t.output) == synthetic_output(SIZE)
    assert agent.stats(sid).events[:2] == ["paused", "started"]


async def test_nothing_is_retransmitted_while_publication_is_paused(agent: LocalAgent) -> None:
    client, _ = await open_session(agent, Faults(pause_after=1, pause_seconds=0.5), synthetic_output_bytes=100)
    pause = await client.recv()  # seq 0 is published, publication pauses before it is sent
    assert pause.message_type == MessageType.PAUSE_PUBLICATION
    start = await client.recv()  # we ack nothing, yet no retransmission comes during the pause
    assert start.message_type == MessageType.START_PUBLICATION
    first = await client.recv()
    assert first.sequence_number == 0 and first.flags == 1
    await client.ack(first)
    t = await client.run_to_close()
    assert t.closed is not None


async def test_abrupt_close_then_resume_with_a_new_token(agent: LocalAgent) -> None:
    ssm = aws_client("ssm", agent.http_url)
    client, sid = await open_session(agent, Faults(close_after=5))
    first = await client.run_to_close()  # ends when the socket drops, without channel_closed
    assert first.closed is None and 0 < len(first.messages) <= 5
    resumed = await asyncio.to_thread(ssm.resume_session, SessionId=sid)
    old_token_ws = await websockets.connect(agent.stream_url(sid), compression=None)
    await old_token_ws.send(token_frame("stale"))
    with pytest.raises(websockets.ConnectionClosed):
        await old_token_ws.recv()
    await client.reconnect(resumed["StreamUrl"], resumed["TokenValue"])
    t = await client.run_to_close()
    assert t.closed is not None and t.closed["Output"] == ""
    assert bytes(t.output) == synthetic_output(SIZE)
    assert agent.stats(sid).connections == 2


async def test_no_channel_closed_leaves_the_socket_open_until_terminated(agent: LocalAgent) -> None:
    ssm = aws_client("ssm", agent.http_url)
    client, sid = await open_session(agent, Faults(no_channel_closed=True), synthetic_output_bytes=2000)
    reader = asyncio.create_task(client.run_to_close(limit=30))
    await agent.wait_ended(sid)  # the command is over and acked...
    assert not reader.done()  # ...but the client has heard nothing
    await asyncio.to_thread(ssm.terminate_session, SessionId=sid)
    t = await reader  # the socket closes; still no channel_closed
    assert t.closed is None and bytes(t.output) == synthetic_output(2000)


async def test_channel_closed_carries_the_error_text(agent: LocalAgent) -> None:
    message = "Plugin with name InteractiveCommands not found. Step name: InteractiveCommands"
    client, _ = await open_session(agent, Faults(channel_closed_error=message), synthetic_output_bytes=10)
    t = await client.run_to_close()
    assert t.closed is not None and t.closed["Output"] == message


async def test_slow_acks_make_the_client_retransmit(agent: LocalAgent) -> None:
    client, sid = await open_session(agent, Faults(ack_delay=0.3), synthetic_output_bytes=None, command="sleep 5")
    frame = await client.send_input(compact_json({"cols": 100, "rows": 30}), PayloadType.SIZE)
    sends = await client.wait_for_ack(0, resend=frame)  # the ack comes 0.3 s late: resent meanwhile
    assert sends > 1 and agent.stats(sid).terminal_size == (100, 30)
    await asyncio.to_thread(aws_client("ssm", agent.http_url).terminate_session, SessionId=sid)


async def test_reject_token_refuses_the_first_connections(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(synthetic_output_bytes=100, faults=Faults(reject_token=1)))
    refused = await websockets.connect(r.stream_url, compression=None)
    await refused.send(token_frame(r.token))
    with pytest.raises(websockets.ConnectionClosed) as info:
        await refused.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    client = await RawClient.connect(r.stream_url, r.token)  # the same token works next time
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(100)


async def test_a_second_connection_replaces_the_first(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(synthetic_output_bytes=SIZE, faults=Faults(pause_after=2, pause_seconds=0.2)))
    old = await RawClient.connect(r.stream_url, r.token)
    await old.recv()  # attached and publishing
    client = await RawClient.connect(r.stream_url, r.token)  # e.g. after a half-open socket
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(SIZE) and agent.stats(r.session_id).connections == 2
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await old.recv()
