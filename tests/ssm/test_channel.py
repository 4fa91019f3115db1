"""The data-channel client against a scripted in-test peer: ordering, acks, handshake, faults, deadlines."""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import replace

import pytest

from bot.ssm.channel import ChannelConfig, ChannelResult, DataChannelSession, SessionParams
from bot.ssm.errors import (
    AgentClosedError,
    ChannelConnectError,
    ConnectionLostError,
    DeadlineError,
    SessionExpiredError,
    TokenRejectedError,
)
from bot.ssm.frames import MessageType, PayloadType, encode_message
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer, publication_frame

FAST = ChannelConfig(
    handshake_grace=0.05,
    tick=0.01,
    connect_timeout=2.0,
    first_message_timeout=5.0,
    idle_timeout=5.0,
    close_timeout=1.0,
    control_timeout=2.0,
    resume_backoff=0.01,
    ping_interval=None,
    ping_timeout=None,
)


def session(peer: Peer, control: FakeControl, sink: list[bytes], **kw: object) -> DataChannelSession:
    config = kw.pop("config", FAST)
    return DataChannelSession(
        SessionParams(SESSION_ID, peer.url, "TOKEN-1", target="ecs:c_t_r"),
        on_output=sink.append,
        control=control,
        config=config,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


async def run(s: DataChannelSession) -> ChannelResult:
    return await asyncio.wait_for(s.run(), 15)


async def test_in_order_stream_token_frame_acks_and_size() -> None:
    async def script(c: Conn) -> None:
        for seq in range(5):
            await c.output(seq, f"line {seq}\r\n".encode())
        size = await c.next_input(PayloadType.SIZE)  # sent once output proved there is no handshake
        await c.ack(size)
        await c.wait_ack(4)
        await c.close_channel()

    sink: list[bytes] = []
    control = FakeControl()
    async with Peer(script) as peer:
        result = await run(session(peer, control, sink))
    conn = peer.conns[0]
    assert list(conn.token) == ["MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"]
    assert conn.token["TokenValue"] == "TOKEN-1" and conn.token["ClientVersion"] == "1.2.650.0"
    assert conn.token["MessageSchemaVersion"] == "1.0"
    assert b"".join(sink) == b"".join(f"line {i}\r\n".encode() for i in range(5))
    assert sorted(conn.acks) == [0, 1, 2, 3, 4]
    size = [m for m in conn.inputs if m.payload_type == PayloadType.SIZE]
    assert [json.loads(m.payload) for m in size] == [{"cols": 200, "rows": 50}]
    assert size[0].sequence_number == 0
    assert result == ChannelResult("", bytes_received=len(b"".join(sink)), messages_received=5, encrypted=False, resumes=0)
    assert control.terminated == []


async def test_reorder_and_duplicates_are_delivered_once_and_every_copy_is_acked() -> None:
    # §11.1 and §11.2: seq 0/1 arriving out of order, duplicates of delivered and of buffered messages.
    order = [2, 1, 2, 0, 0, 3, 1]

    async def script(c: Conn) -> None:
        for seq in order:
            await c.output(seq, f"<{seq}>".encode())
        await c.wait_ack(3)
        await c.wait_until(lambda: all(c.acks.count(seq) == order.count(seq) for seq in range(4)))
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        await run(session(peer, FakeControl(), sink))
    assert sink == [b"<0>", b"<1>", b"<2>", b"<3>"]
    assert sorted(peer.conns[0].acks) == sorted(order)  # duplicates are re-acked, not ignored


async def test_unacked_input_is_retransmitted_with_identical_bytes_until_acked() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"$ ")
        first = await c.next_input(PayloadType.SIZE)  # drop the first transmission: no ack
        again = await c.next_input(PayloadType.SIZE)
        assert again.sequence_number == first.sequence_number and again.message_id == first.message_id
        assert again.created_date == first.created_date
        await c.ack(again)
        stdin = await c.next_input(PayloadType.OUTPUT)
        await c.ack(stdin)
        await c.output(1, b"done")
        await c.wait_ack(1)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        s = session(peer, FakeControl(), sink)
        s.send_input(b"ls\r")
        await run(s)
    sizes = [m for m in peer.conns[0].inputs if m.payload_type == PayloadType.SIZE]
    assert len(sizes) >= 2 and len({m.message_id for m in sizes}) == 1
    stdin = [m for m in peer.conns[0].inputs if m.payload_type == PayloadType.OUTPUT]
    assert stdin[0].payload == b"ls\r" and stdin[0].sequence_number == 1
    assert sink == [b"$ ", b"done"]


async def test_stdin_before_any_output_reaches_a_silent_command() -> None:
    # §11.4: `cat`-like command prints nothing until it reads input; no handshake (ECS without KMS).
    async def script(c: Conn) -> None:
        stdin = await c.next_input(PayloadType.OUTPUT)
        await c.ack(stdin)
        await c.output(0, stdin.payload.upper())
        await c.wait_ack(0)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        s = session(peer, FakeControl(), sink)
        s.send_input(b"hello\r")
        await run(s)
    assert sink == [b"HELLO\r"]


HANDSHAKE_REQUEST = (
    b'{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType",'
    b'"ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}}]}'
)
COMPLETE = b'{"HandshakeTimeToComplete":1000000,"CustomerMessage":"Handshake Complete"}'


async def test_handshake_then_output_overtaking_handshake_complete_is_kept() -> None:
    # §11.2: Output seq 2 arrives before HandshakeComplete seq 1; queued stdin waits for completion.
    async def script(c: Conn) -> None:
        await c.output(0, HANDSHAKE_REQUEST, PayloadType.HANDSHAKE_REQUEST)
        response = await c.next_input(PayloadType.HANDSHAKE_RESPONSE)
        await c.ack(response)
        await c.output(2, b"first output")
        await c.output(1, COMPLETE, PayloadType.HANDSHAKE_COMPLETE)
        size = await c.next_input(PayloadType.SIZE)
        stdin = await c.next_input(PayloadType.OUTPUT)
        await c.ack(size)
        await c.ack(stdin)
        await c.wait_ack(2)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        s = session(peer, FakeControl(), sink, config=replace(FAST, handshake_grace=30))
        s.send_input(b"\x03")
        result = await run(s)
    conn = peer.conns[0]
    assert sink == [b"first output"]
    assert result.customer_message == "Handshake Complete"
    response = next(m for m in conn.inputs if m.payload_type == PayloadType.HANDSHAKE_RESPONSE)
    assert response.payload == (
        b'{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,'
        b'"ActionResult":null,"Error":""}],"Errors":null}'
    )
    # Nothing but the handshake reply before HandshakeComplete: the agent would ack and discard it (§4.3).
    assert [m.payload_type for m in conn.inputs[:3]] == [PayloadType.HANDSHAKE_RESPONSE, PayloadType.SIZE, 1]
    assert [m.sequence_number for m in conn.inputs[:3]] == [0, 1, 2]


async def test_input_sent_tentatively_is_sent_again_after_a_late_handshake() -> None:
    async def script(c: Conn) -> None:
        early = await c.next_input(PayloadType.OUTPUT)  # client assumed "no handshake" after the grace
        await c.ack(early)  # the agent acks and discards input during a handshake
        await c.output(0, HANDSHAKE_REQUEST, PayloadType.HANDSHAKE_REQUEST)
        await c.ack(await c.next_input(PayloadType.HANDSHAKE_RESPONSE))
        await c.output(1, COMPLETE, PayloadType.HANDSHAKE_COMPLETE)
        again = await c.next_input(PayloadType.OUTPUT)
        assert again.payload == early.payload == b"y\r"
        await c.ack(again)
        await c.output(2, b"ok")
        await c.wait_ack(2)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        s = session(peer, FakeControl(), sink)
        s.send_input(b"y\r")
        await run(s)
    sizes = [m for m in peer.conns[0].inputs if m.payload_type == PayloadType.SIZE]
    assert len({m.sequence_number for m in sizes}) == 2  # Size sent again after the handshake too
    assert sink == [b"ok"]


async def test_pause_publication_holds_input_until_start_publication() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"$ ")
        await c.ack(await c.next_input(PayloadType.SIZE))
        await c.wait_ack(0)
        await c.send(publication_frame(MessageType.PAUSE_PUBLICATION))
        await c.output(1, b"paused")  # the client types once it sees this
        await c.wait_ack(1)
        await asyncio.sleep(0.3)  # many scheduler ticks
        assert all(m.payload_type != PayloadType.OUTPUT for m in c.inputs), "input sent while paused"
        await c.send(publication_frame(MessageType.START_PUBLICATION))
        stdin = await c.next_input(PayloadType.OUTPUT)
        await c.ack(stdin)
        await c.close_channel()

    sink: list[bytes] = []

    def on_output(data: bytes) -> None:
        sink.append(data)
        if data == b"paused":
            s.send_input(b"q")

    async with Peer(script) as peer:
        s = DataChannelSession(
            SessionParams(SESSION_ID, peer.url, "T"), on_output=on_output, control=FakeControl(), config=FAST
        )
        await run(s)
    assert sink == [b"$ ", b"paused"]


async def test_abrupt_close_is_resumed_with_a_new_token_and_sequence_state_kept() -> None:
    async def first(c: Conn) -> None:
        await c.output(0, b"a")
        await c.output(1, b"b")
        await c.wait_ack(1)
        await c.ack(await c.next_input(PayloadType.SIZE))
        c.abort()

    async def second(c: Conn) -> None:
        await c.output(1, b"b")  # the agent resends what it thinks may be lost
        await c.output(2, b"c")
        await c.wait_ack(2)
        await c.wait_ack(1)  # duplicate re-acked on the new socket
        stdin = await c.next_input(PayloadType.OUTPUT)
        assert stdin.sequence_number == 1  # our counter survived the reconnect
        await c.ack(stdin)
        await c.close_channel()

    sink: list[bytes] = []
    control = FakeControl(tokens=["TOKEN-2"])
    async with Peer(first, second) as peer:
        s = session(peer, control, sink)

        def typed(data: bytes) -> None:
            sink.append(data)
            if data == b"c":
                s.send_input(b"x")

        s._on_output = typed  # type in response to output from the second connection
        result = await run(s)
    assert sink == [b"a", b"b", b"c"]
    assert [c.token["TokenValue"] for c in peer.conns] == ["TOKEN-1", "TOKEN-2"]
    assert peer.conns[0].token["RequestId"] != peer.conns[1].token["RequestId"]
    assert peer.conns[0].token["ClientId"] == peer.conns[1].token["ClientId"]
    assert control.resumed == [SESSION_ID] and result.resumes == 1 and control.terminated == []


async def test_output_counted_before_a_failed_ack_write_is_not_shown_twice() -> None:
    # §11.3: the socket dies right after a message; its ack may be lost. After resume the agent resends
    # it: the client must re-ack it without displaying it again, and then the stream continues.
    async def first(c: Conn) -> None:
        await c.output(0, b"once")
        c.abort()

    async def second(c: Conn) -> None:
        await c.output(0, b"once")
        await c.output(1, b"more")
        await c.wait_ack(0)
        await c.wait_ack(1)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(first, second) as peer:
        result = await run(session(peer, FakeControl(tokens=["T2"]), sink))
    assert sink == [b"once", b"more"] and result.resumes == 1


async def test_silent_agent_hits_the_idle_deadline_and_the_session_is_terminated() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"started\r\n")
        await asyncio.sleep(30)  # never closes

    control = FakeControl()
    async with Peer(script) as peer:
        s = session(peer, control, [], config=replace(FAST, idle_timeout=0.4))
        with pytest.raises(DeadlineError) as info:
            await run(s)
    assert "idle" in info.value.message and info.value.fix
    assert control.terminated == [SESSION_ID]


async def test_first_message_deadline() -> None:
    async def script(c: Conn) -> None:
        await asyncio.sleep(30)

    control = FakeControl()
    async with Peer(script) as peer:
        with pytest.raises(DeadlineError) as info:
            await run(session(peer, control, [], config=replace(FAST, first_message_timeout=0.3)))
    assert "first message" in info.value.message
    assert control.terminated == [SESSION_ID]


async def test_channel_closed_with_output_is_the_error_text() -> None:
    text = "Plugin with name InteractiveCommands not found. Step name: InteractiveCommands"

    async def script(c: Conn) -> None:
        await c.close_channel(text)

    control = FakeControl()
    async with Peer(script) as peer:
        with pytest.raises(AgentClosedError) as info:
            await run(session(peer, control, []))
    assert text in info.value.message and info.value.agent_text == text
    assert control.terminated == []  # the service already ended it


async def test_unreachable_stream_url_fails_clearly_and_terminates() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        control = FakeControl()
        s = DataChannelSession(
            SessionParams(SESSION_ID, f"ws://127.0.0.1:{port}/v1/data-channel/x", "T"),
            on_output=lambda b: None,
            control=control,
            config=FAST,
        )
        with pytest.raises(ChannelConnectError) as info:
            await run(s)
    assert f"127.0.0.1:{port}" in info.value.message and "443" in (info.value.fix or "")
    assert control.terminated == [SESSION_ID]


async def test_token_rejected_every_time_ends_with_a_clear_error() -> None:
    async def reject(c: Conn) -> None:
        await c.ws.close(1008, "invalid token")

    control = FakeControl(tokens=["T2", "T3"])
    async with Peer(reject) as peer:
        s = session(peer, control, [], config=replace(FAST, resume_attempts=2))
        with pytest.raises(TokenRejectedError):
            await run(s)
    assert len(peer.conns) == 3 and control.resumed == [SESSION_ID] * 2
    assert control.terminated == [SESSION_ID]


async def test_resume_session_gone_is_a_clear_error() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"x")
        await c.wait_ack(0)
        c.abort()

    async with Peer(script) as peer:
        with pytest.raises(SessionExpiredError):
            await run(session(peer, FakeControl(tokens=[]), []))


async def test_resume_attempts_are_bounded() -> None:
    async def script(c: Conn) -> None:
        await c.output(0, b"x")
        await asyncio.sleep(0.02)
        c.abort()

    control = FakeControl(tokens=["T2", "T3", "T4"])
    async with Peer(script) as peer:
        with pytest.raises(ConnectionLostError):
            await run(session(peer, control, [], config=replace(FAST, resume_attempts=2)))
    assert len(peer.conns) == 3 and control.terminated == [SESSION_ID]


async def test_terminate_ends_run_at_channel_closed() -> None:
    started = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.output(0, b"sleeping")
        await c.wait_ack(0)
        started.set()
        await asyncio.sleep(30)

    async with Peer(script) as peer:
        control = FakeControl()

        async def closed_by_service() -> None:
            await peer.conns[0].close_channel()

        control.on_terminate = closed_by_service
        s = session(peer, control, [])
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(started.wait(), 5)
        await s.terminate()
        result = await asyncio.wait_for(task, 5)
    assert result.terminated and control.terminated == [SESSION_ID]


async def test_terminate_without_channel_closed_ends_after_close_timeout() -> None:
    started = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.output(0, b"x")
        started.set()
        await asyncio.sleep(30)

    async with Peer(script) as peer:
        control = FakeControl()
        s = session(peer, control, [], config=replace(FAST, close_timeout=0.2))
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(started.wait(), 5)
        await s.terminate()
        result = await asyncio.wait_for(task, 5)
    assert result.terminated and control.terminated == [SESSION_ID]  # called once, not again on exit


async def test_full_reorder_buffer_drops_unacked_and_recovers_on_resend() -> None:
    async def script(c: Conn) -> None:
        for seq in (3, 4, 5):
            await c.output(seq, f"<{seq}>".encode())
        await c.wait_ack(4)
        await asyncio.sleep(0.1)
        assert 5 not in c.acks  # window of 2 was full: dropped, not acked
        for seq in (0, 1, 2, 5):
            await c.output(seq, f"<{seq}>".encode())
        await c.wait_ack(5)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        await run(session(peer, FakeControl(), sink, config=replace(FAST, reorder_window=2)))
    assert sink == [f"<{i}>".encode() for i in range(6)]


async def test_malformed_frames_are_dropped_unacked_and_the_resend_is_accepted() -> None:
    async def script(c: Conn) -> None:
        good = encode_message(MessageType.OUTPUT_STREAM_DATA, b"ok", sequence_number=0, payload_type=1)
        await c.send(good[:-1] + b"X")  # digest mismatch
        await c.send(b"\x00" * 10)
        await asyncio.sleep(0.05)
        assert c.acks == []
        await c.send(good)
        await c.wait_ack(0)
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        await run(session(peer, FakeControl(), sink))
    assert sink == [b"ok"]


async def test_websocket_keepalive_pings() -> None:
    async def script(c: Conn) -> None:
        await asyncio.sleep(0.35)
        await c.close_channel()

    async with Peer(script, count_pings=True) as peer:
        await run(session(peer, FakeControl(), [], config=replace(FAST, ping_interval=0.05, ping_timeout=1.0)))
        from tests.ssm.peer import PingCountingConnection

        assert PingCountingConnection.pings >= 2


async def test_failed_terminate_keeps_the_session_running() -> None:
    from bot.ssm.errors import SessionControlError

    started = asyncio.Event()

    async def script(c: Conn) -> None:
        await c.output(0, b"x")
        await c.wait_ack(0)
        started.set()
        stdin = await c.next_input(PayloadType.OUTPUT, within=10)  # the caller falls back to Ctrl-C
        assert stdin.payload == b"\x03"
        await c.ack(stdin)
        await c.close_channel()

    class DeniedControl(FakeControl):
        async def terminate_session(self, session_id: str) -> None:
            raise SessionControlError("TerminateSession", "denied", fix="grant it")

    async with Peer(script) as peer:
        s = session(peer, DeniedControl(), [], config=replace(FAST, close_timeout=0.1))
        task = asyncio.create_task(s.run())
        await asyncio.wait_for(started.wait(), 5)
        with pytest.raises(SessionControlError):
            await s.terminate()
        await asyncio.sleep(0.3)  # longer than close_timeout: run() must not have ended as "terminated"
        assert not task.done()
        s.send_input(b"\x03")
        result = await asyncio.wait_for(task, 5)
    assert not result.terminated


async def test_a_gap_that_is_never_filled_hits_the_no_progress_deadline() -> None:
    async def script(c: Conn) -> None:
        while True:  # later messages and duplicates, never seq 0
            for seq in (1, 2, 3):
                await c.output(seq, b"later")
            await asyncio.sleep(0.05)

    control = FakeControl()
    sink: list[bytes] = []
    async with Peer(script) as peer:
        with pytest.raises(DeadlineError, match="idle"):
            await run(session(peer, control, sink, config=replace(FAST, idle_timeout=0.4)))
    assert sink == [] and control.terminated == [SESSION_ID]


@pytest.mark.parametrize("read_pause", [0.0, 0.01])
async def test_fast_path_hands_a_held_handshake_payload_to_the_reader_and_keeps_order(read_pause: float) -> None:
    # Output has started (no handshake), so frames are handled where websockets parses them. Seq 3 is a
    # HandshakeComplete held behind a gap: when the gap fills, the fast path must stop at it and let the
    # reader process it, then everything after it still comes out once, in order, each copy acked.
    order = [0, 2, 4, 3, 5, 1, 4, 6]

    async def script(c: Conn) -> None:
        await c.output(0, b"<0>")
        await c.wait_ack(0)  # the reader handled seq 0 (no handshake): later frames take the fast path
        for seq in order[1:]:
            if seq == 3:
                await c.output(3, b'{"HandshakeTimeToComplete":1,"CustomerMessage":"late"}', PayloadType.HANDSHAKE_COMPLETE)
            else:
                await c.output(seq, f"<{seq}>".encode())
        await c.wait_until(lambda: sorted(c.acks) == sorted(order))
        await c.close_channel()

    sink: list[bytes] = []
    async with Peer(script) as peer:
        result = await run(session(peer, FakeControl(), sink, config=replace(FAST, read_pause=read_pause)))
    assert sink == [b"<0>", b"<1>", b"<2>", b"<4>", b"<5>", b"<6>"]
    assert result.customer_message == "late" and result.missing_messages == 0
