"""The project's data-channel client (bot/ssm/channel.py) against the local agent, end to end."""

from __future__ import annotations

import asyncio

import pytest

from bot.ssm.channel import ChannelConfig, ChannelResult, DataChannelSession
from bot.ssm.control import Boto3SessionControl
from bot.ssm.errors import AgentClosedError
from bot.ssm.kms import Boto3DataKeyProvider
from standins.agent import AgentThread, LocalAgent, SessionSpec
from standins.agent_models import Faults
from standins.agent_output import synthetic_output
from tests.sandbox.conftest import aws_client

TARGET = "ecs:prod_0a1b2c3d4e5f60718293a4b5c6d7e8f9_0a1b2c3d4e5f60718293a4b5c6d7e8f9-3812765402"
FAST = ChannelConfig(resume_backoff=0.05, handshake_grace=0.2)


def channel(agent: LocalAgent, spec: SessionSpec, sink: bytearray, config: ChannelConfig = FAST) -> DataChannelSession:
    return DataChannelSession(
        agent.register_session(spec),
        on_output=sink.extend,
        control=Boto3SessionControl(aws_client("ssm", agent.http_url)),
        data_keys=Boto3DataKeyProvider(aws_client("kms", agent.http_url)),
        config=config,
    )


async def test_synthetic_megabyte_is_byte_exact(agent: LocalAgent) -> None:
    sink = bytearray()
    result = await channel(agent, SessionSpec(synthetic_output_bytes=1 << 20), sink).run()
    assert bytes(sink) == synthetic_output(1 << 20)
    assert (result.closed_output, result.bytes_received, result.encrypted) == ("", 1 << 20, False)


async def test_kms_session_with_stdin(agent: LocalAgent) -> None:
    sink = bytearray()
    spec = SessionSpec(command="cat", kms_key_id="alias/ecs-exec", target=TARGET)
    session = channel(agent, spec, sink)
    session.send_input(b"over the encrypted channel\r\x04")
    result = await session.run()
    assert result.encrypted and result.customer_message == "This session is encrypted using AWS KMS."
    assert b"over the encrypted channel" in sink
    assert agent.stats(spec.session_id).terminal_size == (200, 50)  # the client's Size reached the PTY


async def test_faults_and_a_dropped_connection_are_recovered(agent: LocalAgent) -> None:
    sink = bytearray()
    faults = Faults(seed=5, reorder_rate=0.2, duplicate_rate=0.2, drop_rate=0.1, close_after=40, pause_after=60)
    result = await channel(agent, SessionSpec(synthetic_output_bytes=300_000, faults=faults), sink).run()
    assert bytes(sink) == synthetic_output(300_000)
    assert result.resumes == 1


async def test_ctrl_c_ends_a_long_command(agent: LocalAgent) -> None:
    sink = bytearray()
    session = channel(agent, SessionSpec(command="sleep 30"), sink)
    session.send_input(b"\x03")
    result = await asyncio.wait_for(session.run(), 10)
    assert result.closed_output == ""


async def test_terminate_ends_the_run(agent: LocalAgent) -> None:
    echoed = asyncio.Event()
    spec = SessionSpec(command="sleep 60")
    session = DataChannelSession(
        agent.register_session(spec),
        on_output=lambda data: echoed.set(),
        control=Boto3SessionControl(aws_client("ssm", agent.http_url)),
        config=FAST,
    )
    session.send_input(b"x")  # echoed by the PTY: proof the command runs
    runner = asyncio.create_task(session.run())
    await asyncio.wait_for(echoed.wait(), 10)
    await session.terminate()
    result: ChannelResult = await asyncio.wait_for(runner, 10)
    # Not result.terminated: the agent sends channel_closed before the TerminateSession response
    # returns, and the client only records "terminated" after that response (see the report).
    assert result.closed_output == "" and "terminated" in agent.stats(spec.session_id).events


async def test_channel_closed_error_becomes_a_bot_error(agent: LocalAgent) -> None:
    sink = bytearray()
    faults = Faults(channel_closed_error="Plugin with name InteractiveCommands not found.")
    with pytest.raises(AgentClosedError) as info:
        await channel(agent, SessionSpec(synthetic_output_bytes=10, faults=faults), sink).run()
    assert "InteractiveCommands not found" in info.value.user_text()


def test_agent_thread_serves_sync_callers() -> None:
    with AgentThread() as thread:
        (thread.sandbox_dir / "hello.txt").write_text("from a thread\n")
        params = thread.register_session(SessionSpec(command="cat hello.txt"))
        sink = bytearray()

        async def run() -> ChannelResult:
            return await DataChannelSession(
                params, on_output=sink.extend, control=Boto3SessionControl(aws_client("ssm", thread.http_url))
            ).run()

        result = asyncio.run(run())
        assert result.closed_output == "" and bytes(sink) == b"from a thread\r\n"
        assert thread.stats(params.session_id).connections == 1
