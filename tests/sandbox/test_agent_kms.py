"""KMS-encrypted sessions: handshake, data key through the agent's own KMS API, challenge, AES-GCM."""

from __future__ import annotations

import pytest

from bot.ssm.frames import PayloadType
from standins.agent import LocalAgent, SessionSpec
from standins.agent_output import synthetic_output
from tests.sandbox.conftest import aws_client
from tests.sandbox.raw_client import RawClient

TARGET = "ecs:prod_3f2a9c00aa11bb22cc33dd44ee55ff66_3f2a9c00aa11bb22cc33dd44ee55ff66-2531612879"


async def open_kms(agent: LocalAgent, **spec: object) -> tuple[RawClient, str]:
    r = agent.register(SessionSpec(kms_key_id="alias/ecs-exec", target=TARGET, **spec))  # type: ignore[arg-type]
    client = await RawClient.connect(r.stream_url, r.token)
    client.session_id, client.target = r.session_id, TARGET
    return client, r.session_id


async def test_kms_session_encrypts_both_ways(agent: LocalAgent) -> None:
    client, sid = await open_kms(agent, command="cat")
    complete = await client.handshake(kms=aws_client("kms", agent.http_url))
    assert complete["CustomerMessage"] == "This session is encrypted using AWS KMS."
    assert isinstance(complete["HandshakeTimeToComplete"], int)
    await client.send_size(120, 40)
    await client.send_input(b"secret line\r")  # encrypted with K[32:64] by the client
    await client.send_input(b"\x04")
    t = await client.run_to_close()
    assert b"secret line" in t.output  # decrypted with K[0:32]: echo and cat's copy
    output_messages = [m for m in t.messages if m.payload_type == PayloadType.OUTPUT]
    assert output_messages and all(b"secret" not in m.payload for m in output_messages)
    stats = agent.stats(sid)
    assert stats.encrypted and stats.stdin_tail == b"secret line\r\x04" and stats.terminal_size == (120, 40)
    assert t.closed is not None and t.closed["Output"] == ""


async def test_kms_session_without_challenge_acknowledgement(agent: LocalAgent) -> None:
    client, _ = await open_kms(agent, synthetic_output_bytes=3000)
    await client.handshake(kms=aws_client("kms", agent.http_url), context_extra=False)
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(3000)


async def test_kms_challenge_required_by_agent_config(agent: LocalAgent) -> None:
    client, _ = await open_kms(agent, synthetic_output_bytes=10, require_kms_challenge=True)
    with pytest.raises(AssertionError, match="channel closed"):
        await client.handshake(kms=aws_client("kms", agent.http_url), context_extra=False)
    assert client.t.closed is not None
    assert client.t.closed["Output"] == "client does not support required encryption context random challenge"


async def test_kms_wrong_target_fails_the_handshake(agent: LocalAgent) -> None:
    client, _ = await open_kms(agent, synthetic_output_bytes=10)
    client.target = "ecs:prod_wrong_task"  # the data key's context no longer matches the agent's
    with pytest.raises(AssertionError, match="channel closed"):
        await client.handshake(kms=aws_client("kms", agent.http_url))
    assert client.t.closed is not None and "Failed to decrypt the session data key" in client.t.closed["Output"]
