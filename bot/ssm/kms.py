"""Client-side crypto of KMS-encrypted ECS Exec sessions, and the boto3 data-key provider.

The agent asks for a 64-byte KMS data key. ``K[0:32]`` encrypts agent→client traffic and ``K[32:64]``
client→agent traffic (plugin ``encrypter.go``: decryptionKey = K[:32], encryptionKey = K[32:]). Every
payload is AES-256-GCM, no AAD, framed as ``nonce(12) || ciphertext || tag(16)``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.ssm.errors import EncryptionError, KmsAccessError

DATA_KEY_BYTES = 64
NONCE_BYTES = 12
TAG_BYTES = 16

CONTEXT_SESSION_ID = "aws:ssm:SessionId"
CONTEXT_TARGET_ID = "aws:ssm:TargetId"
CONTEXT_RANDOM_CHALLENGE = "aws:ssm:RandomChallenge"


class DataKeyProvider(Protocol):
    async def generate_data_key(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        """Return (64-byte plaintext key, ciphertext blob) for ``key_id`` under ``context``."""
        ...


def data_key_context(session_id: str, target: str, challenge: str | None) -> dict[str, str]:
    """The encryption context the agent will use for kms:Decrypt; both sides must agree exactly.

    ``challenge`` is the agent's Challenge string *as received* (base64 text, not decoded): the agent puts
    that string into its context when we answer with ChallengeAcknowledgement=true.
    """
    context = {CONTEXT_SESSION_ID: session_id, CONTEXT_TARGET_ID: target}
    if challenge:
        context[CONTEXT_RANDOM_CHALLENGE] = challenge
    return context


class SessionCipher:
    """AES-256-GCM in both directions of one session."""

    __slots__ = ("_from_agent", "_to_agent")

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != DATA_KEY_BYTES:
            raise EncryptionError(f"the KMS data key is {len(data_key)} bytes, expected {DATA_KEY_BYTES}")
        self._from_agent = AESGCM(data_key[:32])
        self._to_agent = AESGCM(data_key[32:])

    def decrypt(self, blob: bytes) -> bytes:
        """Open an agent→client payload."""
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise EncryptionError(f"an encrypted payload of {len(blob)} bytes is too short")
        try:
            return self._from_agent.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)
        except InvalidTag:
            raise EncryptionError("a payload from the agent failed authentication (wrong key or corrupted)") from None

    def encrypt(self, plaintext: bytes, *, nonce: bytes | None = None) -> bytes:
        """Seal a client→agent payload; nonces are random (``nonce`` exists for test vectors)."""
        nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
        return nonce + self._to_agent.encrypt(nonce, plaintext, None)


class Boto3DataKeyProvider:
    """``kms:GenerateDataKey`` through a boto3 KMS client, off the event loop."""

    def __init__(self, kms_client: Any) -> None:
        self._kms = kms_client

    async def generate_data_key(self, key_id: str, context: dict[str, str]) -> tuple[bytes, bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = await asyncio.to_thread(
                self._kms.generate_data_key,
                KeyId=key_id,
                NumberOfBytes=DATA_KEY_BYTES,
                EncryptionContext=context,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise KmsAccessError(key_id, f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()) from None
        except BotoCoreError as exc:
            raise KmsAccessError(key_id, str(exc)) from None
        plaintext, blob = response.get("Plaintext"), response.get("CiphertextBlob")
        if not isinstance(plaintext, bytes | bytearray) or not isinstance(blob, bytes | bytearray) or not blob:
            # Whatever answers on the KMS endpoint is input too: a missing field is not a KeyError.
            raise KmsAccessError(key_id, "the GenerateDataKey response has no Plaintext or CiphertextBlob")
        if len(plaintext) != DATA_KEY_BYTES:
            raise KmsAccessError(key_id, f"KMS returned a {len(plaintext)}-byte key instead of {DATA_KEY_BYTES}")
        return bytes(plaintext), bytes(blob)
