"""The SSM, KMS and control APIs on the agent's port, through real boto3 clients and plain HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from standins.agent import LocalAgent, SessionSpec
from standins.agent_output import synthetic_output
from tests.sandbox.conftest import aws_client
from tests.sandbox.raw_client import RawClient

TARGET = "ecs:demo_0123456789abcdef_0123456789abcdef-1234567890"


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_kms_data_key_opens_only_with_the_same_context(agent: LocalAgent) -> None:
    kms = aws_client("kms", agent.http_url)
    context = {"aws:ssm:SessionId": "s-1", "aws:ssm:TargetId": TARGET}
    key = await asyncio.to_thread(kms.generate_data_key, KeyId="alias/exec", NumberOfBytes=64, EncryptionContext=context)
    assert len(key["Plaintext"]) == 64 and key["KeyId"] == "arn:aws:kms:eu-west-3:111122223333:alias/exec"
    opened = await asyncio.to_thread(kms.decrypt, CiphertextBlob=key["CiphertextBlob"], EncryptionContext=context)
    assert opened["Plaintext"] == key["Plaintext"]
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(
            kms.decrypt, CiphertextBlob=key["CiphertextBlob"], EncryptionContext={**context, "aws:ssm:SessionId": "s-2"}
        )
    assert info.value.response["Error"]["Code"] == "InvalidCiphertextException"
    spec_key = await asyncio.to_thread(kms.generate_data_key, KeyId="k", KeySpec="AES_128")
    assert len(spec_key["Plaintext"]) == 16


async def test_kms_rejects_bad_requests_with_aws_errors(agent: LocalAgent) -> None:
    kms = aws_client("kms", agent.http_url)
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(kms.generate_data_key, KeyId="k")  # neither NumberOfBytes nor KeySpec
    assert info.value.response["Error"]["Code"] == "ValidationException"
    status, body = await asyncio.to_thread(
        post, agent.http_url + "/", b"{nope", {"X-Amz-Target": "TrentService.GenerateDataKey"}
    )
    assert status == 400 and body["__type"] == "SerializationException"
    status, body = await asyncio.to_thread(post, agent.http_url + "/", b"{}", {"X-Amz-Target": "AmazonSSM.StartSession"})
    assert status == 400 and body["__type"] == "UnknownOperationException" and body["message"]


async def test_resume_session_gives_a_new_token_and_errors_for_unknown(agent: LocalAgent) -> None:
    ssm = aws_client("ssm", agent.http_url, region="ap-southeast-2")
    r = agent.register(SessionSpec(synthetic_output_bytes=10))
    resumed = await asyncio.to_thread(ssm.resume_session, SessionId=r.session_id)
    assert resumed["SessionId"] == r.session_id and resumed["StreamUrl"] == r.stream_url
    assert resumed["TokenValue"] and resumed["TokenValue"] != r.token
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(ssm.resume_session, SessionId="ecs-execute-command-unknown")
    assert info.value.response["Error"]["Code"] == "DoesNotExistException"


async def test_terminate_session_kills_the_command_and_closes_the_channel(agent: LocalAgent) -> None:
    ssm = aws_client("ssm", agent.http_url)
    r = agent.register(SessionSpec(command="sleep 60"))
    client = await RawClient.connect(r.stream_url, r.token)
    frame = await client.send_input(b"x")
    await client.wait_for_ack(0, resend=frame)  # acked: the PTY has started
    result = await asyncio.to_thread(ssm.terminate_session, SessionId=r.session_id)
    assert result["SessionId"] == r.session_id
    t = await client.run_to_close()
    assert t.closed is not None and t.closed["Output"] == ""
    assert "terminated" in agent.stats(r.session_id).events
    with pytest.raises(ClientError):  # the session is over: nothing to resume
        await asyncio.to_thread(ssm.resume_session, SessionId=r.session_id)
    # Unknown sessions terminate without an error, like SSM.
    await asyncio.to_thread(ssm.terminate_session, SessionId="ecs-execute-command-unknown")


async def test_control_api_registers_sessions_and_validates(agent: LocalAgent) -> None:
    spec = {"session_id": "ecs-execute-command-http", "synthetic_output_bytes": 3000}
    status, body = await asyncio.to_thread(post, agent.http_url + "/control/sessions", json.dumps(spec).encode())
    assert status == 200 and set(body) == {"sessionId", "streamUrl", "tokenValue"}
    assert body["streamUrl"] == agent.stream_url("ecs-execute-command-http")
    client = await RawClient.connect(body["streamUrl"], body["tokenValue"])
    t = await client.run_to_close()
    assert bytes(t.output) == synthetic_output(3000)
    status, again = await asyncio.to_thread(post, agent.http_url + "/control/sessions", json.dumps(spec).encode())
    assert status == 409 and again["__type"] == "ConflictException"
    for bad in ({}, {"command": "ls", "bogus": 1}, {"command": "ls", "kms_key_id": "k"}):
        status, err = await asyncio.to_thread(post, agent.http_url + "/control/sessions", json.dumps(bad).encode())
        assert status == 400 and err["__type"] == "ValidationException" and err["message"]
