"""How the agent (as MGS) ends the websocket: ``channel_closed``, a close frame, then it reads on until the
client's close frame before closing TCP (RFC 6455 §7.1), however late the client is.

The simulator used to close TCP right after its close frame (aiohttp's ``close()`` from another task
than the one reading skips the handshake). A client still acknowledging the last output — every session
under 200 concurrent ones, `benchmarks/concurrent_sessions.py` — then wrote to a closed socket; the
kernel answered with a reset, the client's next write failed (EPIPE), asyncio tore the connection down
and ``channel_closed``, still unread in the client's socket buffer, was lost: 2-20 % of sessions
reported "ended while the data channel was disconnected" after every byte had arrived.
"""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from bot.ssm.frames import MessageType
from standins.agent import LocalAgent, SessionSpec
from standins.agent_output import synthetic_output
from tests.sandbox.raw_client import RawClient
from tests.sandbox.test_agent_protocol import open_session


async def late_acks(client: RawClient, messages: list) -> None:  # type: ignore[type-arg]
    """Acks written while the agent's channel_closed and close frame wait unread in our socket buffer."""
    for m in messages:
        with contextlib.suppress(websockets.ConnectionClosed):
            await client.ack(m)
        await asyncio.sleep(0.1)  # a reset (if the agent closed already) comes back before the next write


async def read_to_the_end(client: RawClient) -> BaseException:
    while True:
        try:
            client.note(await client.recv(5.0))
        except websockets.ConnectionClosed as exc:
            return exc


async def test_a_client_that_acks_after_the_close_frame_still_reads_channel_closed(agent: LocalAgent) -> None:
    # The agent waits 0.2 s for acks (2 s in the benchmark's sessions), then ends the session.
    client, sid = await open_session(agent, synthetic_output_bytes=3 * 1024, close_ack_wait=0.2)
    output = [await client.recv() for _ in range(3)]
    assert [m.message_type for m in output] == [MessageType.OUTPUT_STREAM_DATA] * 3
    client.ws.transport.pause_reading()  # busy elsewhere: what the agent sends next stays in the kernel
    await asyncio.wait_for(agent.wait_ended(sid), 5)
    await asyncio.sleep(0.2)  # channel_closed and the close frame are on their way (or read, by now)
    await late_acks(client, output)
    client.ws.transport.resume_reading()
    end = await read_to_the_end(client)
    assert client.t.closed is not None and client.t.closed["Output"] == ""
    assert isinstance(end, websockets.ConnectionClosedOK), repr(end)  # the closing handshake, then FIN


async def test_a_replaced_connection_is_closed_with_the_handshake_too(agent: LocalAgent) -> None:
    r = agent.register(SessionSpec(synthetic_output_bytes=2 * 1024))
    old = await RawClient.connect(r.stream_url, r.token)
    await old.recv()
    resumed = await agent.resume_session(r.session_id)
    assert resumed is not None
    new = await RawClient.connect(r.stream_url, resumed["TokenValue"])
    end = await read_to_the_end(old)  # the old socket: the agent's close frame, our reply, FIN
    assert isinstance(end, websockets.ConnectionClosedOK) and end.rcvd is not None
    assert end.rcvd.reason == "replaced by a new connection"
    t = await new.run_to_close()
    assert bytes(t.output) == synthetic_output(2 * 1024) and t.closed is not None
