"""The AWS JSON APIs the agent's port answers: SSM Terminate/ResumeSession and KMS data keys.

Shapes follow the AWS JSON 1.1 protocol, so boto3 clients with ``endpoint_url`` pointed here work:
``POST /`` with ``X-Amz-Target: <Service>.<Operation>``; errors are ``{"__type", "message"}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Protocol

from standins.agent_crypto import KmsDecryptError, LocalKms

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
ACCOUNT_ID = "111122223333"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")
_KEY_SPECS = {"AES_256": 32, "AES_128": 16}


class AwsApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def body(self) -> dict[str, str]:
        return {"__type": self.error_type, "message": self.message}


class SessionDirectory(Protocol):
    async def resume_session(self, session_id: str) -> dict[str, str] | None: ...  # None: unknown/ended
    async def terminate_session(self, session_id: str) -> None: ...


def region_of(authorization: str) -> str:
    match = _REGION.search(authorization)
    return match.group(1) if match else "us-east-1"


def _string(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise AwsApiError(400, "ValidationException", f"1 validation error detected: {name} must be a non-empty string")
    return value


def _context(body: dict[str, Any]) -> dict[str, str]:
    context = body.get("EncryptionContext") or {}
    if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
        raise AwsApiError(400, "ValidationException", "EncryptionContext must map strings to strings")
    return context


class AwsJsonApi:
    def __init__(self, kms: LocalKms, sessions: SessionDirectory) -> None:
        self._kms = kms
        self._sessions = sessions

    async def handle(self, target: str, raw_body: bytes, authorization: str) -> tuple[int, dict[str, Any]]:
        try:
            try:
                body = json.loads(raw_body or b"{}")
            except ValueError:
                raise AwsApiError(400, "SerializationException", "The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise AwsApiError(400, "SerializationException", "The request body must be a JSON object")
            return 200, await self._dispatch(target, body, region_of(authorization))
        except AwsApiError as exc:
            return exc.status, exc.body()

    async def _dispatch(self, target: str, body: dict[str, Any], region: str) -> dict[str, Any]:
        if target == "AmazonSSM.TerminateSession":
            session_id = _string(body, "SessionId")
            assert session_id is not None
            await self._sessions.terminate_session(session_id)
            return {"SessionId": session_id}  # idempotent, like SSM: unknown sessions are not an error
        if target == "AmazonSSM.ResumeSession":
            session_id = _string(body, "SessionId")
            assert session_id is not None
            resumed = await self._sessions.resume_session(session_id)
            if resumed is None:
                raise AwsApiError(400, "DoesNotExistException", f"Session {session_id} does not exist or has ended.")
            return resumed
        if target == "TrentService.GenerateDataKey":
            return self._generate_data_key(body, region)
        if target == "TrentService.Decrypt":
            return self._decrypt(body, region)
        raise AwsApiError(400, "UnknownOperationException", f"Operation {target or '(none)'} is not supported here")

    def _generate_data_key(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        key_id = _key_arn(_string(body, "KeyId") or "", region)
        size = body.get("NumberOfBytes")
        spec = body.get("KeySpec")
        if (size is None) == (spec is None):
            raise AwsApiError(400, "ValidationException", "Specify exactly one of NumberOfBytes and KeySpec")
        if spec is not None:
            if spec not in _KEY_SPECS:
                raise AwsApiError(400, "ValidationException", f"KeySpec must be one of {sorted(_KEY_SPECS)}")
            size = _KEY_SPECS[spec]
        if not isinstance(size, int) or not 1 <= size <= 1024:
            raise AwsApiError(400, "ValidationException", "NumberOfBytes must be an integer from 1 to 1024")
        plaintext, blob = self._kms.generate_data_key(key_id, size, _context(body))
        return {
            "KeyId": key_id,
            "Plaintext": base64.b64encode(plaintext).decode(),
            "CiphertextBlob": base64.b64encode(blob).decode(),
        }

    def _decrypt(self, body: dict[str, Any], region: str) -> dict[str, Any]:
        try:
            blob = base64.b64decode(_string(body, "CiphertextBlob") or "", validate=True)
            key_id, plaintext = self._kms.decrypt(blob, _context(body))
        except (KmsDecryptError, binascii.Error):
            raise AwsApiError(400, "InvalidCiphertextException", "The ciphertext or its encryption context is invalid") from None
        return {"KeyId": key_id, "Plaintext": base64.b64encode(plaintext).decode(), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}


def _key_arn(key_id: str, region: str) -> str:
    if key_id.startswith("arn:"):
        return key_id
    if key_id.startswith("alias/"):
        return f"arn:aws:kms:{region}:{ACCOUNT_ID}:{key_id}"
    return f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"
