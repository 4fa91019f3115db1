"""Binary framing of the SSM Session Manager data channel (ClientMessage / AgentMessage).

Pure code, no I/O. Layout (all integers big-endian, see docs/ssm-protocol.md §2)::

    0   HeaderLength   u32  always 116: the offset of PayloadLength
    4   MessageType    32 bytes, UTF-8, right-padded with spaces (readers strip NUL and space)
    36  SchemaVersion  u32
    40  CreatedDate    u64  epoch milliseconds, non-zero
    48  SequenceNumber i64
    56  Flags          u64
    64  MessageId      16 bytes: the UUID's two 8-byte halves swapped
    80  PayloadDigest  32 bytes: SHA-256 of the payload
    112 PayloadType    u32
    116 PayloadLength  u32
    120 Payload
"""

from __future__ import annotations

import binascii
import enum
import hashlib
import json
import os
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bot.errors import DataChannelError

HEADER_LENGTH = 116
PAYLOAD_OFFSET = HEADER_LENGTH + 4
SCHEMA_VERSION = 1
_HEADER = struct.Struct(">I32sIQqQ16s32sII")
assert _HEADER.size == PAYLOAD_OFFSET

_SYN_FIN = 3
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class MessageType:
    INPUT_STREAM_DATA = "input_stream_data"
    OUTPUT_STREAM_DATA = "output_stream_data"
    ACKNOWLEDGE = "acknowledge"
    CHANNEL_CLOSED = "channel_closed"
    START_PUBLICATION = "start_publication"
    PAUSE_PUBLICATION = "pause_publication"
    AGENT_SESSION_STATE = "agent_session_state"


# MGS generates these; their headers may not be fully populated, so the plugin skips validation.
_UNVALIDATED_TYPES = frozenset({MessageType.START_PUBLICATION, MessageType.PAUSE_PUBLICATION})


class PayloadType(enum.IntEnum):
    UNSET = 0
    OUTPUT = 1
    ERROR = 2
    SIZE = 3
    PARAMETER = 4
    HANDSHAKE_REQUEST = 5
    HANDSHAKE_RESPONSE = 6
    HANDSHAKE_COMPLETE = 7
    ENC_CHALLENGE_REQUEST = 8
    ENC_CHALLENGE_RESPONSE = 9
    FLAG = 10
    STDERR = 11
    EXIT_CODE = 12


class FrameError(DataChannelError):
    """A frame that cannot be decoded or fails validation. The receiver drops it without acking."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Malformed data-channel message: {message}.")


def uuid_to_wire(message_id: uuid.UUID) -> bytes:
    b = message_id.bytes
    return b[8:] + b[:8]


def uuid_from_wire(wire: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=wire[8:] + wire[:8])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ClientMessage:
    message_type: str
    sequence_number: int
    payload: bytes
    payload_type: int = 0
    flags: int = 0
    message_id: uuid.UUID | None = None  # None: a fresh uuid4 when encoded
    created_date: int = 0  # 0: "now" when encoded
    schema_version: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return encode_message(
            self.message_type,
            self.payload,
            sequence_number=self.sequence_number,
            payload_type=self.payload_type,
            flags=self.flags,
            message_id=self.message_id,
            created_date=self.created_date,
            schema_version=self.schema_version,
        )


def encode_message(
    message_type: str,
    payload: bytes,
    *,
    sequence_number: int,
    payload_type: int = 0,
    flags: int = 0,
    message_id: uuid.UUID | None = None,
    created_date: int = 0,
    schema_version: int = SCHEMA_VERSION,
) -> bytes:
    """Serialize one message exactly as the Go ``SerializeClientMessage`` does."""
    type_bytes = message_type.encode("utf-8")
    if not type_bytes or len(type_bytes) > 32:
        raise ValueError(f"message type must be 1..32 bytes: {message_type!r}")
    header = _HEADER.pack(
        HEADER_LENGTH,
        type_bytes.ljust(32, b" "),
        schema_version,
        created_date or now_ms(),
        sequence_number,
        flags,
        uuid_to_wire(message_id or uuid.uuid4()),
        hashlib.sha256(payload).digest(),
        int(payload_type),
        len(payload),
    )
    return header + payload


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    message_type: str
    schema_version: int
    created_date: int
    sequence_number: int
    flags: int
    message_id_wire: bytes
    payload_digest: bytes
    payload_type: int
    payload: bytes

    @property
    def message_id(self) -> uuid.UUID:
        return uuid_from_wire(self.message_id_wire)


def decode_message(frame: bytes, *, verify_digest: bool = True) -> DecodedMessage:
    """Parse and validate one frame; any defect raises ``FrameError`` (never another exception)."""
    if len(frame) < PAYLOAD_OFFSET:
        raise FrameError(f"{len(frame)} bytes is shorter than the {PAYLOAD_OFFSET}-byte header")
    (hl, raw_type, schema, created, seq, flags, mid, digest, ptype, plen) = _HEADER.unpack_from(frame)
    try:
        message_type = raw_type.strip(b"\x00 \t\r\n").decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError("message type is not UTF-8") from None
    if message_type and not message_type.isprintable():
        raise FrameError("message type has control characters")
    unvalidated = message_type in _UNVALIDATED_TYPES
    if hl != HEADER_LENGTH:
        # HeaderLength is the offset of PayloadLength; only the one layout has ever existed.
        if unvalidated and hl == 0:
            hl = HEADER_LENGTH
        else:
            raise FrameError(f"header length {hl}, expected {HEADER_LENGTH}")
    available = len(frame) - PAYLOAD_OFFSET
    if plen > available:
        raise FrameError(f"payload length {plen} but only {available} bytes follow the header")
    payload = frame[PAYLOAD_OFFSET:] if plen == available else frame[PAYLOAD_OFFSET : PAYLOAD_OFFSET + plen]
    if not unvalidated:
        if not message_type:
            raise FrameError("empty message type")
        if created == 0:
            raise FrameError("created date is zero")
        if verify_digest and plen and hashlib.sha256(payload).digest() != digest:
            raise FrameError("payload digest does not match")
    return DecodedMessage(message_type, schema, created, seq, flags, mid, digest, ptype, payload)


# --- acknowledgements -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    message_type: str
    message_id: str
    sequence_number: int


def ack_payload(message_type: str, message_id: uuid.UUID | str, sequence_number: int) -> bytes:
    # Field order and compact separators match Go's json.Marshal, so frames are byte-identical.
    return (
        b'{"AcknowledgedMessageType":'
        + json.dumps(message_type).encode()
        + b',"AcknowledgedMessageId":"'
        + str(message_id).encode()
        + b'","AcknowledgedMessageSequenceNumber":'
        + str(int(sequence_number)).encode()
        + b',"IsSequentialMessage":true}'
    )


def encode_ack(
    acked: DecodedMessage,
    *,
    message_id: uuid.UUID | None = None,
    created_date: int = 0,
) -> bytes:
    """The ``acknowledge`` frame for ``acked``: seq 0, flags SYN|FIN, PayloadType unset."""
    return encode_ack_fields(
        acked.message_type,
        acked.message_id_wire,
        acked.sequence_number,
        ack_id_wire=uuid_to_wire(message_id) if message_id else None,
        created_date=created_date,
    )


_ACK_TYPE_FIELD = MessageType.ACKNOWLEDGE.encode().ljust(32, b" ")
_ACK_TYPE_JSON: dict[str, bytes] = {}


def encode_ack_fields(
    acked_type: str,
    acked_id_wire: bytes,
    acked_sequence_number: int,
    *,
    ack_id_wire: bytes | None = None,
    created_date: int = 0,
) -> bytes:
    """Hot path of the receiver (one ack per output message): no UUID objects, one struct pack.

    Produces exactly ``encode_message(ACKNOWLEDGE, ack_payload(...), sequence_number=0, flags=3)``.
    """
    type_json = _ACK_TYPE_JSON.get(acked_type)
    if type_json is None:
        type_json = _ACK_TYPE_JSON.setdefault(acked_type, json.dumps(acked_type).encode())
    h = (acked_id_wire[8:] + acked_id_wire[:8]).hex()
    payload = b"".join(
        (
            b'{"AcknowledgedMessageType":',
            type_json,
            b',"AcknowledgedMessageId":"',
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode(),
            b'","AcknowledgedMessageSequenceNumber":',
            str(acked_sequence_number).encode(),
            b',"IsSequentialMessage":true}',
        )
    )
    header = _HEADER.pack(
        HEADER_LENGTH,
        _ACK_TYPE_FIELD,
        SCHEMA_VERSION,
        created_date or time.time_ns() // 1_000_000,
        0,
        _SYN_FIN,
        ack_id_wire or uuid_to_wire(uuid.uuid4()),
        hashlib.sha256(payload).digest(),
        0,
        len(payload),
    )
    return header + payload


_OUTPUT_TYPE_FIELD = MessageType.OUTPUT_STREAM_DATA.encode().ljust(32, b" ")
# HeaderLength, MessageType, CreatedDate, SequenceNumber, MessageId, PayloadDigest, PayloadType, PayloadLength;
# SchemaVersion and Flags are skipped (nobody acts on them, §3.3).
_PEEK = struct.Struct(">I32s4xQq8x16s32sII")
assert _PEEK.size == PAYLOAD_OFFSET


def peek_output(frame: bytes) -> tuple[int, int, bytes, bytes] | None:
    """``(seq, payload_type, message_id_wire, payload)`` of an output_stream_data frame in the exact form
    the agent writes, validated as ``decode_message`` would (digest included); ``None`` for anything else,
    valid or not: the caller then decodes it with ``decode_message``.

    The receiver's hot path: one unpack, no message object.
    """
    if len(frame) < PAYLOAD_OFFSET:
        return None
    hl, mtype, created, seq, mid, digest, ptype, plen = _PEEK.unpack_from(frame)
    if hl != HEADER_LENGTH or mtype != _OUTPUT_TYPE_FIELD or not created or plen != len(frame) - PAYLOAD_OFFSET:
        return None
    payload = frame[PAYLOAD_OFFSET:]
    if plen and hashlib.sha256(payload).digest() != digest:
        return None
    return seq, ptype, mid, payload


_ACK_FIXED = struct.pack(">I32sI", HEADER_LENGTH, _ACK_TYPE_FIELD, SCHEMA_VERSION)
# CreatedDate, SequenceNumber 0, Flags SYN|FIN, MessageId (wire order: low half, high half), digest, PayloadType
# unset, PayloadLength.
_ACK_REST = struct.Struct(">QqQQ8s32sII")
assert len(_ACK_FIXED) + _ACK_REST.size == PAYLOAD_OFFSET
_OUTPUT_ACK_JSON = (
    b'{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"%s-%s-%s-%s-%s",'
    b'"AcknowledgedMessageSequenceNumber":%d,"IsSequentialMessage":true}'
)
_UUID_VARIANT = 0x8000_0000_0000_0000  # RFC 4122 variant bits (10) at the top of the low half
_COUNTER_MASK = (1 << 62) - 1


class OutputAckEncoder:
    """Acknowledgements of output_stream_data, byte-identical in layout to ``encode_ack_fields``.

    One ack per output message makes this the receiver's busiest encoder, so its message ids are not
    fresh ``uuid4()`` calls: each encoder draws one random version-4 high half and a random start for a
    62-bit counter in the low half. Ids stay unique and well-formed; nobody matches acks by id (both
    sides match by sequence number, §4.1).
    """

    __slots__ = ("_id_high", "_counter")

    def __init__(self, seed: bytes | None = None) -> None:
        seed = seed if seed is not None else os.urandom(16)
        high = bytearray(seed[:8])
        high[6] = (high[6] & 0x0F) | 0x40  # version 4
        self._id_high = bytes(high)
        self._counter = int.from_bytes(seed[8:16], "big") & _COUNTER_MASK

    def encode(self, acked_id_wire: bytes, acked_sequence_number: int, created_date: int) -> bytes:
        h = binascii.hexlify(acked_id_wire)  # wire order: low half first, then high half
        payload = _OUTPUT_ACK_JSON % (h[16:24], h[24:28], h[28:32], h[0:4], h[4:16], acked_sequence_number)
        self._counter = counter = (self._counter + 1) & _COUNTER_MASK
        return (
            _ACK_FIXED
            + _ACK_REST.pack(
                created_date,
                0,
                _SYN_FIN,
                _UUID_VARIANT | counter,
                self._id_high,
                hashlib.sha256(payload).digest(),
                0,
                len(payload),
            )
            + payload
        )


def parse_ack(payload: bytes) -> Acknowledgement:
    data = parse_json_object(payload, "acknowledge")
    raw = data.get("AcknowledgedMessageSequenceNumber", 0)
    try:
        seq = int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e400 parses as inf
        raise FrameError("acknowledge has a non-integer sequence number") from None
    if isinstance(raw, bool) or not _INT64_MIN <= seq <= _INT64_MAX:
        raise FrameError("acknowledge has a sequence number outside int64")
    return Acknowledgement(
        str(data.get("AcknowledgedMessageType", "")),
        str(data.get("AcknowledgedMessageId", "")),
        seq,
    )


def parse_json_object(payload: bytes, what: str) -> dict[str, Any]:
    """Decode a JSON object payload, turning every defect into ``FrameError``."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" nested deeper than the stack
        raise FrameError(f"{what} payload is not JSON") from None
    if not isinstance(data, dict):
        raise FrameError(f"{what} payload is not a JSON object")
    return data


def compact_json(value: Any) -> bytes:
    """JSON as Go's json.Marshal writes it (compact, no ASCII escaping of non-ASCII)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
