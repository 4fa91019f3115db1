"""KMS-encrypted sessions: data key + RandomChallenge context, EncChallenge, AES-GCM both ways, failures."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.ssm.channel import DataChannelSession, SessionParams
from bot.ssm.errors import KmsAccessError, KmsRequiredError
from bot.ssm.frames import PayloadType
from tests.ssm.peer import SESSION_ID, Conn, FakeControl, Peer
from tests.ssm.test_channel import COMPLETE, FAST

KEY = bytes(range(64))
BLOB = b"cipher-text-key"
KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CHALLENGE = "q83vEjRWeJCrze8SNFZ4kA=="
TARGET = "ecs:prod_0123456789abcdef_0123456789abcdef-1234567890"


def kms_request(challenge: str | None = CHALLENGE) -> bytes:
    params = {"KMSKeyId": KEY_ARN} | ({"Challenge": challenge} if challenge else {})
    return json.dumps(
        {
            "AgentVersion": "3.3.1142.0",
            "RequestedClientActions": [
                {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None}},
                {"ActionType": "KMSEncryption", "ActionParameters": params},
            ],
        }
    ).encode()


def agent_seal(plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(KEY[:32]).encrypt(nonce, plaintext, None)


def agent_open(blob: bytes) -> bytes:
    return AESGCM(KEY[32:]).decrypt(blob[:12], blob[12:], None)


class FakeKeys:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.error = error

    async def generate_data_key(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        self.calls.append((key_id, context))
        if self.error:
            raise self.error
        return KEY, BLOB


@pytest.mark.parametrize("challenge", [CHALLENGE, None])
async def test_encrypted_session_end_to_end(challenge: str | None) -> None:
    secret = os.urandom(64)

    async def script(c: Conn) -> None:
        await c.output(0, kms_request(challenge), PayloadType.HANDSHAKE_REQUEST)
        response = await c.next_input(PayloadType.HANDSHAKE_RESPONSE)
        await c.ack(response)
        actions = json.loads(response.payload)["ProcessedClientActions"]
        kms = next(a for a in actions if a["ActionType"] == "KMSEncryption")
        assert kms["ActionStatus"] == 1 and base64.b64decode(kms["ActionResult"]["KMSCipherTextKey"]) == BLOB
        assert kms["ActionResult"].get("ChallengeAcknowledgement", False) is (challenge is not None)
        await c.output(1, json.dumps({"Challenge": base64.b64encode(agent_seal(secret)).decode()}).encode(), 8)
        answer = await c.next_input(PayloadType.ENC_CHALLENGE_RESPONSE)
        await c.ack(answer)
        assert agent_open(base64.b64decode(json.loads(answer.payload)["Challenge"])) == secret
        await c.output(2, COMPLETE, PayloadType.HANDSHAKE_COMPLETE)
        size = await c.next_input(PayloadType.SIZE)
        assert json.loads(size.payload) == {"cols": 200, "rows": 50}  # Size travels in clear
        stdin = await c.next_input(PayloadType.OUTPUT)
        assert agent_open(stdin.payload) == b"\x03"
        await c.ack(size)
        await c.ack(stdin)
        await c.output(4, agent_seal(b" world"))  # overtakes seq 3: decrypted when drained
        await c.output(3, agent_seal(b"hello"))
        await c.wait_ack(4)
        await c.close_channel()

    keys = FakeKeys()
    sink: list[bytes] = []
    async with Peer(script) as peer:
        s = DataChannelSession(
            SessionParams(SESSION_ID, peer.url, "T", target=TARGET),
            on_output=sink.append,
            control=FakeControl(),
            data_keys=keys,
            config=FAST,
        )
        s.send_input(b"\x03")
        result = await asyncio.wait_for(s.run(), 15)
    assert sink == [b"hello", b" world"] and result.encrypted
    expected_context = {"aws:ssm:SessionId": SESSION_ID, "aws:ssm:TargetId": TARGET}
    if challenge:
        expected_context["aws:ssm:RandomChallenge"] = challenge
    assert keys.calls == [(KEY_ARN, expected_context)]


@pytest.mark.parametrize(
    ("keys", "target", "error"),
    [
        (None, TARGET, KmsRequiredError),
        (FakeKeys(), None, KmsRequiredError),
        (FakeKeys(KmsAccessError(KEY_ARN, "AccessDeniedException: not allowed")), TARGET, KmsAccessError),
    ],
)
async def test_kms_impossible_replies_failed_then_raises_and_terminates(
    keys: FakeKeys | None, target: str | None, error: type[Exception]
) -> None:
    async def script(c: Conn) -> None:
        await c.output(0, kms_request(), PayloadType.HANDSHAKE_REQUEST)
        await asyncio.sleep(30)

    control = FakeControl()
    async with Peer(script) as peer:
        s = DataChannelSession(
            SessionParams(SESSION_ID, peer.url, "T", target=target),
            on_output=lambda b: None,
            control=control,
            data_keys=keys,
            config=FAST,
        )
        with pytest.raises(error) as info:
            await asyncio.wait_for(s.run(), 15)
    assert KEY_ARN in info.value.message and "kms:GenerateDataKey" in info.value.user_text()
    assert control.terminated == [SESSION_ID]
    response = peer.conns[0].inputs[0]  # the Failed reply went out before the error was raised
    assert response.payload_type == PayloadType.HANDSHAKE_RESPONSE
    body = json.loads(response.payload)
    kms = next(a for a in body["ProcessedClientActions"] if a["ActionType"] == "KMSEncryption")
    assert kms["ActionStatus"] == 2 and kms["Error"].startswith("Failed to process action KMSEncryption: ")
    assert body["Errors"] and KEY_ARN in body["Errors"][0]


async def test_unknown_session_type_is_refused_clearly() -> None:
    request = (
        b'{"AgentVersion":"3","RequestedClientActions":[{"ActionType":"SessionType",'
        b'"ActionParameters":{"SessionType":"Port","Properties":{"portNumber":"80"}}}]}'
    )

    async def script(c: Conn) -> None:
        await c.output(0, request, PayloadType.HANDSHAKE_REQUEST)
        await asyncio.sleep(30)

    from bot.ssm.errors import HandshakeError

    async with Peer(script) as peer:
        s = DataChannelSession(
            SessionParams(SESSION_ID, peer.url, "T"), on_output=lambda b: None, control=FakeControl(), config=FAST
        )
        with pytest.raises(HandshakeError, match="Port"):
            await asyncio.wait_for(s.run(), 15)
    assert json.loads(peer.conns[0].inputs[0].payload)["ProcessedClientActions"][0]["ActionStatus"] == 2
