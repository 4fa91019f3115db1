"""The local stand-in for KMS, and the agent's half of the session encryption (docs/ssm-protocol.md §6)."""

from __future__ import annotations

import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_SIZE = 12
_BLOB_MAGIC = b"LKMS1"
_KEY_ID_LEN = struct.Struct(">H")


class KmsDecryptError(Exception):
    """The blob was not made by this agent, or the encryption context differs."""


def _context_aad(key_material_context: dict[str, str]) -> bytes:
    # KMS binds the context as a set of pairs: order must not matter, every pair must match.
    return json.dumps(key_material_context, sort_keys=True, separators=(",", ":")).encode()


class LocalKms:
    """GenerateDataKey/Decrypt with a master key that never leaves this process.

    A CiphertextBlob is ``magic || nonce || AES-GCM(master, len(keyId) || keyId || plaintext)`` with
    the encryption context as associated data, so (like real KMS) only this agent can open it and
    only with exactly the same context.
    """

    def __init__(self, master_key: bytes | None = None) -> None:
        self._aead = AESGCM(master_key or AESGCM.generate_key(bit_length=256))

    def generate_data_key(self, key_id: str, size: int, context: dict[str, str]) -> tuple[bytes, bytes]:
        plaintext = os.urandom(size)
        return plaintext, self.encrypt(key_id, plaintext, context)

    def encrypt(self, key_id: str, plaintext: bytes, context: dict[str, str]) -> bytes:
        key = key_id.encode()
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, _KEY_ID_LEN.pack(len(key)) + key + plaintext, _context_aad(context))
        return _BLOB_MAGIC + nonce + sealed

    def decrypt(self, blob: bytes, context: dict[str, str]) -> tuple[str, bytes]:
        """(key id, plaintext); raises KmsDecryptError for a foreign blob or a different context."""
        if not blob.startswith(_BLOB_MAGIC) or len(blob) < len(_BLOB_MAGIC) + NONCE_SIZE + 16:
            raise KmsDecryptError("not a ciphertext of this KMS")
        nonce = blob[len(_BLOB_MAGIC) : len(_BLOB_MAGIC) + NONCE_SIZE]
        try:
            inner = self._aead.decrypt(nonce, blob[len(_BLOB_MAGIC) + NONCE_SIZE :], _context_aad(context))
        except InvalidTag:
            raise KmsDecryptError("ciphertext does not match its key or encryption context") from None
        (length,) = _KEY_ID_LEN.unpack_from(inner)
        start = _KEY_ID_LEN.size
        return inner[start : start + length].decode(), inner[start + length :]


class AgentCipher:
    """The agent's AES-256-GCM pair: encrypts with K[0:32], decrypts client input with K[32:64].

    The agent's nonce is a 96-bit little-endian counter from a random start (AGENT ``nonce.go``);
    the receiver only reads the 12 bytes in front of each ciphertext.
    """

    def __init__(self, data_key: bytes) -> None:
        if len(data_key) != 64:
            raise ValueError(f"the session data key must be 64 bytes, got {len(data_key)}")
        self._out = AESGCM(data_key[:32])
        self._in = AESGCM(data_key[32:])
        self._counter = int.from_bytes(os.urandom(NONCE_SIZE), "little")

    def _next_nonce(self) -> bytes:
        self._counter = (self._counter + 1) % (1 << 96)
        return self._counter.to_bytes(NONCE_SIZE, "little")

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = self._next_nonce()
        return nonce + self._out.encrypt(nonce, plaintext, None)

    def decrypt(self, sealed: bytes) -> bytes:
        """Raises cryptography's InvalidTag for input not sealed with K[32:64]."""
        return self._in.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], None)
