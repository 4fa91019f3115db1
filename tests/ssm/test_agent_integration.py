"""The client through the project's local agent (stand-ins/standins/agent.py): real PTY commands, every fault,
KMS via the agent's KMS API, resume/terminate via its SSM API with the boto3 implementations."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from bot.ssm.channel import ChannelConfig, ChannelResult, DataChannelSession
from bot.ssm.control import Boto3SessionControl
from bot.ssm.errors import AgentClosedError, DeadlineError
from bot.ssm.kms import Boto3DataKeyProvider
from standins.agent import Faults, LocalAgent, SessionSpec
from standins.agent_output import synthetic_output

CONFIG = ChannelConfig(
    handshake_grace=0.2,
    first_message_timeout=10,
    idle_timeout=10,
    close_timeout=2,
    control_timeout=10,
    resume_backoff=0.02,
    ping_interval=None,
    ping_timeout=None,
)
TARGET = "ecs:prod_0123456789abcdef0123456789abcdef_0123456789abcdef0123456789abcdef-1234567890"


@pytest.fixture
async def agent() -> AsyncIterator[LocalAgent]:
    a = LocalAgent()
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


def aws(service: str, agent: LocalAgent) -> Any:
    return boto3.client(
        service,
        endpoint_url=agent.http_url,
        region_name="eu-west-3",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.chunks.append(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


async def run_session(
    agent: LocalAgent, spec: SessionSpec, *, config: ChannelConfig = CONFIG, stdin: bytes = b"", keys: bool = False
) -> tuple[ChannelResult, Sink]:
    params = agent.register_session(spec)
    sink = Sink()
    session = DataChannelSession(
        params,
        on_output=sink,
        control=Boto3SessionControl(aws("ssm", agent)),
        data_keys=Boto3DataKeyProvider(aws("kms", agent)) if keys else None,
        config=config,
    )
    if stdin:
        session.send_input(stdin)
    async with asyncio.timeout(60):
        result = await session.run()
    return result, sink


async def test_pty_command_output_and_terminal_size(agent: LocalAgent) -> None:
    result, sink = await run_session(agent, SessionSpec(command="printf 'hello from the pty'"))
    assert b"hello from the pty" in sink.data and result.closed_output == ""
    stats = await agent.wait_ended(result_session(agent))
    assert stats.terminal_size == (200, 50)


def result_session(agent: LocalAgent) -> str:
    return next(iter(agent._sessions))  # one session per test


FAULTS = {
    "reorder": Faults(seed=1, reorder_rate=0.3),
    "duplicate": Faults(seed=2, duplicate_rate=0.3),
    "drop-first-transmission": Faults(seed=3, drop_rate=0.05, drop_seqs=frozenset({0, 1})),
    "pause-start-publication": Faults(pause_after=5, pause_seconds=0.3),
    "ack-delay": Faults(ack_delay=0.3),
    "everything": Faults(seed=4, reorder_rate=0.2, duplicate_rate=0.2, drop_rate=0.03, pause_after=20),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_faulty_agent_output_is_complete_and_in_order(agent: LocalAgent, name: str) -> None:
    # close_ack_wait: every lost first transmission costs the agent one RTO (it resends only its oldest),
    # so give the end of the session time for them; with the real 2 s the agent itself would truncate.
    size = 300_000
    spec = SessionSpec(synthetic_output_bytes=size, faults=FAULTS[name], close_ack_wait=20)
    result, sink = await run_session(agent, spec)
    assert hashlib.sha256(sink.data).hexdigest() == hashlib.sha256(synthetic_output(size)).hexdigest()
    assert result.bytes_received == size and result.resumes == 0 and result.missing_messages == 0
    assert agent.stats(spec.session_id).acks_received >= 293  # every message acked, duplicates again


async def test_output_lost_by_the_agent_is_reported_as_missing(agent: LocalAgent) -> None:
    # The agent gives up after close_ack_wait with output unacked: the client cannot get it back, but it
    # must say so rather than return a silently truncated stream.
    spec = SessionSpec(synthetic_output_bytes=100_000, faults=Faults(seed=3, drop_rate=0.3), close_ack_wait=0.2)
    result, sink = await run_session(agent, spec)
    assert result.missing_messages > 0 and len(sink.data) < 100_000


async def test_abrupt_close_is_resumed_through_ssm_resume_session(agent: LocalAgent) -> None:
    size = 200_000
    result, sink = await run_session(
        agent, SessionSpec(synthetic_output_bytes=size, faults=Faults(close_after=50, seed=5, reorder_rate=0.1))
    )
    assert sink.data == synthetic_output(size)
    stats = agent.stats(result_session(agent))
    assert result.resumes == 1 and stats.connections == 2


async def test_rejected_token_then_resumed(agent: LocalAgent) -> None:
    result, sink = await run_session(agent, SessionSpec(synthetic_output_bytes=5000, faults=Faults(reject_token=2)))
    assert sink.data == synthetic_output(5000) and result.resumes == 2


async def test_never_closed_channel_hits_the_deadline_and_terminates(agent: LocalAgent) -> None:
    spec = SessionSpec(synthetic_output_bytes=3000, faults=Faults(no_channel_closed=True))
    with pytest.raises(DeadlineError):
        await run_session(agent, spec, config=replace(CONFIG, idle_timeout=0.5))
    stats = await asyncio.wait_for(agent.wait_ended(spec.session_id), 10)
    assert "terminated" in stats.events  # ssm:TerminateSession reached the agent through boto3


async def test_error_text_in_channel_closed(agent: LocalAgent) -> None:
    text = "Plugin with name InteractiveCommands not found. Step name: InteractiveCommands"
    spec = SessionSpec(synthetic_output_bytes=100, faults=Faults(channel_closed_error=text))
    with pytest.raises(AgentClosedError, match="InteractiveCommands not found"):
        await run_session(agent, spec)


async def test_stdin_before_output_with_late_pty(agent: LocalAgent) -> None:
    # `head -n 1` prints nothing until it reads a line; the PTY starts late, so the first transmissions
    # of our input are not acked and must be retransmitted (§4.3, §11.4).
    spec = SessionSpec(command="head -n 1", faults=Faults(pty_start_delay=0.3))
    result, sink = await run_session(agent, spec, stdin=b"typed early\r")
    assert sink.data.count(b"typed early") >= 1  # echoed by the PTY and/or printed by head
    assert result.closed_output == ""


async def test_ctrl_c_interrupts_the_command(agent: LocalAgent) -> None:
    params = agent.register_session(SessionSpec(command="sleep 30"))
    sink = Sink()
    session = DataChannelSession(
        params, on_output=sink, control=Boto3SessionControl(aws("ssm", agent)), config=CONFIG
    )
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.5)
    session.send_input(b"\x03")
    async with asyncio.timeout(20):
        result = await task
    assert result.closed_output == "" and not result.terminated


async def test_terminate_through_the_ssm_api(agent: LocalAgent) -> None:
    params = agent.register_session(SessionSpec(command="sleep 30"))
    session = DataChannelSession(
        params, on_output=Sink(), control=Boto3SessionControl(aws("ssm", agent)), config=CONFIG
    )
    task = asyncio.create_task(session.run())
    await asyncio.sleep(0.3)
    await session.terminate()
    async with asyncio.timeout(20):
        result = await task
    assert result.terminated


@pytest.mark.parametrize("require_challenge", [False, True])
async def test_kms_encrypted_session(agent: LocalAgent, require_challenge: bool) -> None:
    spec = SessionSpec(
        synthetic_output_bytes=100_000,
        kms_key_id="alias/ecs-exec",
        target=TARGET,
        require_kms_challenge=require_challenge,
        faults=Faults(seed=6, reorder_rate=0.2, duplicate_rate=0.1),
    )
    result, sink = await run_session(agent, spec, keys=True, stdin=b"x")
    assert sink.data == synthetic_output(100_000)
    assert result.encrypted and "KMS" in result.customer_message
    stats = agent.stats(spec.session_id)
    assert stats.encrypted and stats.terminal_size == (200, 50)


async def test_handshake_without_kms(agent: LocalAgent) -> None:
    result, sink = await run_session(agent, SessionSpec(synthetic_output_bytes=10_000, handshake=True))
    assert sink.data == synthetic_output(10_000) and not result.encrypted
    assert agent.stats(result_session(agent)).client_version == "1.2.650.0"  # from the HandshakeResponse
