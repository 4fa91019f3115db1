"""JSON payloads of the data channel: the token frame, handshake, challenge, size, channel_closed.

Pure code. Builders write byte-for-byte what Go's ``json.Marshal`` writes (field order, compact
separators) so the agent sees exactly what the reference plugin sends; parsers are lenient (pydantic,
unknown keys ignored) and turn every defect into ``FrameError`` because the agent is an untrusted edge.
"""

from __future__ import annotations

import base64
import binascii
import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.ssm.frames import FrameError, compact_json, parse_json_object

MESSAGE_SCHEMA_VERSION = "1.0"

# Session types the agent may announce; all three are the shell-style stream we implement.
STREAM_SESSION_TYPES = frozenset({"Standard_Stream", "InteractiveCommands", "NonInteractiveCommands"})
ACTION_SESSION_TYPE = "SessionType"
ACTION_KMS = "KMSEncryption"
MAX_ACTIONS = 16  # the agent requests at most two (SessionType, KMSEncryption); more is not an agent


class ActionStatus(enum.IntEnum):
    SUCCESS = 1
    FAILED = 2
    UNSUPPORTED = 3


def open_data_channel_input(*, token: str, request_id: str, client_id: str, client_version: str) -> str:
    """The first (TEXT) frame of every connection; key order as the plugin's OpenDataChannelInput."""
    return compact_json(
        {
            "MessageSchemaVersion": MESSAGE_SCHEMA_VERSION,
            "RequestId": request_id,
            "TokenValue": token,
            "ClientId": client_id,
            "ClientVersion": client_version,
        }
    ).decode("utf-8")


def size_payload(cols: int, rows: int) -> bytes:
    return compact_json({"cols": int(cols), "rows": int(rows)})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RequestedAction(_Lenient):
    action_type: str = Field(alias="ActionType")
    parameters: dict[str, Any] | None = Field(default=None, alias="ActionParameters")

    def param(self, key: str) -> Any:
        return (self.parameters or {}).get(key)


class HandshakeRequest(_Lenient):
    agent_version: str = Field(default="", alias="AgentVersion")
    actions: list[RequestedAction] = Field(default_factory=list, alias="RequestedClientActions")


class HandshakeComplete(_Lenient):
    time_to_complete_ns: int = Field(default=0, alias="HandshakeTimeToComplete")
    customer_message: str = Field(default="", alias="CustomerMessage")


class ChannelClosed(_Lenient):
    session_id: str = Field(default="", alias="SessionId")
    output: str = Field(default="", alias="Output")


def _parse(model: type[_Lenient], payload: bytes, what: str) -> Any:
    data = parse_json_object(payload, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FrameError(f"{what} has unexpected fields ({exc.error_count()} problems)") from None


def parse_handshake_request(payload: bytes) -> HandshakeRequest:
    return _parse(HandshakeRequest, payload, "HandshakeRequest")


def parse_handshake_complete(payload: bytes) -> HandshakeComplete:
    return _parse(HandshakeComplete, payload, "HandshakeComplete")


def parse_channel_closed(payload: bytes) -> ChannelClosed:
    """channel_closed is MGS's last word; an unreadable one still ends the stream, with no error text."""
    if not payload:
        return ChannelClosed()
    return _parse(ChannelClosed, payload, "channel_closed")


class ProcessedAction(BaseModel):
    action_type: str
    status: ActionStatus
    result: dict[str, Any] | None = None
    reason: str = ""  # why it failed; the agent logs it and fails the session with it

    @property
    def error(self) -> str:
        return f"Failed to process action {self.action_type}: {self.reason}" if self.reason else ""


def handshake_response(client_version: str, actions: list[ProcessedAction]) -> bytes:
    """HandshakeResponse (PayloadType 6). ``Errors`` is null when empty, as Go marshals a nil slice."""
    errors = [a.reason for a in actions if a.reason]
    return compact_json(
        {
            "ClientVersion": client_version,
            "ProcessedClientActions": [
                {
                    "ActionType": a.action_type,
                    "ActionStatus": int(a.status),
                    "ActionResult": a.result,
                    "Error": a.error,
                }
                for a in actions
            ],
            "Errors": errors or None,
        }
    )


def kms_action_result(ciphertext_blob: bytes, *, challenge_acknowledged: bool) -> dict[str, Any]:
    # ChallengeAcknowledgement tells the agent to add aws:ssm:RandomChallenge to its kms:Decrypt context;
    # we only claim it when we put the same pair in our GenerateDataKey context (see kms.data_key_context).
    result: dict[str, Any] = {
        "KMSCipherTextKey": base64.b64encode(ciphertext_blob).decode("ascii"),
        "KMSCipherTextHash": None,
    }
    if challenge_acknowledged:
        result["ChallengeAcknowledgement"] = True
    return result


def challenge_payload(blob: bytes) -> bytes:
    """EncChallengeResponse (PayloadType 9): Go encodes []byte as padded standard base64."""
    return compact_json({"Challenge": base64.b64encode(blob).decode("ascii")})


def parse_challenge(payload: bytes) -> bytes:
    data = parse_json_object(payload, "EncChallengeRequest")
    value = data.get("Challenge")
    if not isinstance(value, str):
        raise FrameError("EncChallengeRequest has no Challenge string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError("EncChallengeRequest Challenge is not base64") from None
