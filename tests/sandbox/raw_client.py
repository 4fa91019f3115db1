"""A deliberately small, hand-built client of the data channel, for testing the local agent.

It is *not* the project's client (bot/ssm/channel.py): frames are built with bot.ssm.frames and
every protocol step is explicit, so a test can misbehave on purpose (not ack, send too early, ...).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.ssm.frames import (
    DecodedMessage,
    MessageType,
    PayloadType,
    compact_json,
    decode_message,
    encode_ack,
    encode_message,
    parse_ack,
)


def token_frame(token: str) -> str:
    return json.dumps(
        {"MessageSchemaVersion": "1.0", "RequestId": str(uuid.uuid4()), "TokenValue": token,
         "ClientId": str(uuid.uuid4()), "ClientVersion": "1.2.650.0"},
        separators=(",", ":"),
    )


@dataclass
class Transcript:
    output: bytearray = field(default_factory=bytearray)
    messages: list[DecodedMessage] = field(default_factory=list)  # every output_stream_data received
    other: list[DecodedMessage] = field(default_factory=list)  # pause/start_publication etc.
    acks: list[int] = field(default_factory=list)  # seqs of our input the agent acked
    closed: dict[str, Any] | None = None


class RawClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.next_seq = 0
        self.expected = 0
        self.ahead: dict[int, DecodedMessage] = {}
        self.t = Transcript()
        self.key: bytes | None = None  # 64-byte KMS data key once the handshake is done
        self.pending_key = b""
        self.sent_frames: list[bytes] = []
        self.session_id = ""
        self.target = ""

    @classmethod
    async def connect(cls, stream_url: str, token: str) -> RawClient:
        ws = await websockets.connect(stream_url, compression=None)
        await ws.send(token_frame(token))
        return cls(ws)

    async def reconnect(self, stream_url: str, token: str) -> None:
        """A new socket for the same session; sequence state and output so far are kept."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.close()
        self.ws = await websockets.connect(stream_url, compression=None)
        await self.ws.send(token_frame(token))

    async def close(self) -> None:
        await self.ws.close()

    async def recv(self, limit: float = 5.0) -> DecodedMessage:
        frame = await asyncio.wait_for(self.ws.recv(), limit)
        assert isinstance(frame, bytes), "the agent sends binary frames only"
        return decode_message(frame)

    async def send_input(self, payload: bytes, payload_type: int = PayloadType.OUTPUT, *, seq: int | None = None) -> bytes:
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        if payload_type == PayloadType.OUTPUT and self.key is not None:
            nonce = os.urandom(12)
            payload = nonce + AESGCM(self.key[32:]).encrypt(nonce, payload, None)
        frame = encode_message(MessageType.INPUT_STREAM_DATA, payload, sequence_number=seq, payload_type=payload_type)
        self.sent_frames.append(frame)
        await self.ws.send(frame)
        return frame

    async def send_size(self, cols: int, rows: int) -> bytes:
        return await self.send_input(compact_json({"cols": cols, "rows": rows}), PayloadType.SIZE)

    async def ack(self, message: DecodedMessage) -> None:
        await self.ws.send(encode_ack(message))

    def decrypt(self, payload: bytes) -> bytes:
        assert self.key is not None
        return AESGCM(self.key[:32]).decrypt(payload[:12], payload[12:], None)

    def note(self, m: DecodedMessage) -> list[DecodedMessage]:
        """Record one message; returns the output messages now deliverable in order."""
        if m.message_type == MessageType.ACKNOWLEDGE:
            self.t.acks.append(parse_ack(m.payload).sequence_number)
            return []
        if m.message_type == MessageType.CHANNEL_CLOSED:
            self.t.closed = json.loads(m.payload)
            return []
        if m.message_type != MessageType.OUTPUT_STREAM_DATA:
            self.t.other.append(m)
            return []
        self.t.messages.append(m)
        if m.sequence_number < self.expected:
            return []
        self.ahead[m.sequence_number] = m
        ready = []
        while self.expected in self.ahead:
            ready.append(self.ahead.pop(self.expected))
            self.expected += 1
        return ready

    def deliver(self, m: DecodedMessage) -> None:
        if m.payload_type in (PayloadType.OUTPUT, PayloadType.STDERR):
            self.t.output += self.decrypt(m.payload) if self.key is not None else m.payload

    async def run_to_close(self, *, limit: float = 10.0, ack: bool = True) -> Transcript:
        """Read until channel_closed (or the socket closes), acking and reordering output."""
        async def loop() -> None:
            while True:
                try:
                    m = await self.recv(limit)
                except websockets.ConnectionClosed:
                    return
                if ack and m.message_type == MessageType.OUTPUT_STREAM_DATA:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await self.ack(m)  # the agent may have closed right after this message
                for ready in self.note(m):
                    self.deliver(ready)
                if self.t.closed is not None:
                    return
        await asyncio.wait_for(loop(), limit)
        return self.t

    async def wait_for_ack(self, seq: int, limit: float = 5.0, *, resend: bytes | None = None) -> int:
        """Wait until ``seq`` is acked, resending ``resend`` every 100 ms meanwhile; returns #sends."""
        sends = 1
        async def loop() -> None:
            nonlocal sends
            while seq not in self.t.acks:
                try:
                    m = await self.recv(0.1)
                except TimeoutError:
                    if resend is not None:
                        await self.ws.send(resend)
                        sends += 1
                    continue
                if m.message_type == MessageType.OUTPUT_STREAM_DATA:
                    await self.ack(m)
                for ready in self.note(m):
                    self.deliver(ready)
        await asyncio.wait_for(loop(), limit)
        return sends

    async def handshake(self, *, kms: Any = None, context_extra: bool = True, status: int = 1) -> dict[str, Any]:
        """Answer the HandshakeRequest (and the KMS challenge); returns the HandshakeComplete JSON.

        ``kms`` is a boto3 KMS client (called in a thread: the agent may share this event loop).
        """
        request = await self.next_output()
        assert request.payload_type == PayloadType.HANDSHAKE_REQUEST, request
        body = json.loads(request.payload)
        actions = []
        for action in body["RequestedClientActions"]:
            kind, params = action["ActionType"], action["ActionParameters"]
            result: Any = None
            if kind == "KMSEncryption":
                context = {"aws:ssm:SessionId": self.session_id, "aws:ssm:TargetId": self.target}
                if context_extra:
                    context["aws:ssm:RandomChallenge"] = params["Challenge"]
                resp = await asyncio.to_thread(
                    kms.generate_data_key, KeyId=params["KMSKeyId"], NumberOfBytes=64, EncryptionContext=context
                )
                self.pending_key = resp["Plaintext"]
                result = {"KMSCipherTextKey": base64.b64encode(resp["CiphertextBlob"]).decode(),
                          "KMSCipherTextHash": None, "ChallengeAcknowledgement": context_extra}
            actions.append({"ActionType": kind, "ActionStatus": status, "ActionResult": result,
                            "Error": "" if status == 1 else "refused by the test"})
        await self.send_input(
            compact_json({"ClientVersion": "1.2.650.0", "ProcessedClientActions": actions, "Errors": None}),
            PayloadType.HANDSHAKE_RESPONSE,
        )
        message = await self.next_output()
        if message.payload_type == PayloadType.ENC_CHALLENGE_REQUEST:
            key = self.pending_key
            sealed = base64.b64decode(json.loads(message.payload)["Challenge"])
            secret = AESGCM(key[:32]).decrypt(sealed[:12], sealed[12:], None)
            nonce = os.urandom(12)
            answer = nonce + AESGCM(key[32:]).encrypt(nonce, secret, None)
            await self.send_input(compact_json({"Challenge": base64.b64encode(answer).decode()}),
                                  PayloadType.ENC_CHALLENGE_RESPONSE)
            self.key = key
            message = await self.next_output()
        assert message.payload_type == PayloadType.HANDSHAKE_COMPLETE, message
        return json.loads(message.payload)

    async def next_output(self, limit: float = 5.0) -> DecodedMessage:
        """The next in-order output_stream_data (acked), skipping acks and other types."""
        while True:
            m = await self.recv(limit)
            if m.message_type == MessageType.OUTPUT_STREAM_DATA:
                await self.ack(m)
            ready = self.note(m)
            if ready:
                for extra in ready[1:]:
                    self.ahead[extra.sequence_number] = extra  # keep for the next call
                self.expected = ready[0].sequence_number + 1
                return ready[0]
            if self.t.closed is not None:
                raise AssertionError(f"channel closed: {self.t.closed}")
