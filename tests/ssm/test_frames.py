"""Frame codec against the byte-exact vectors of shared/ssm-vectors.md (made by the Go serializer)."""

from __future__ import annotations

import uuid

import pytest

from bot.ssm.frames import FrameError, decode_message, encode_ack, encode_message

FIXTURE_ID = uuid.UUID("dd01e56b-ff48-483e-a508-b5f073f31b16")

V1 = (
    "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000015e0baa7884"
    "00000000000000010000000000000002a508b5f073f31b16dd01e56bff48483e239f59ed55e737c77147cf55ad0c1b03"
    "0b6d7ee748a7426952f9b852d5a935e500000000000000077061796c6f6164"
)
V4 = (
    "0000007461636b6e6f776c65646765202020202020202020202020202020202020202020000000010000018bcfe56800"
    "0000000000000000000000000000000344445555555555551111111122223333713a0a17057de630213f7292907ce384"
    "62812ea213a29366f537f68c6ab60e8500000000000000b07b2241636b6e6f776c65646765644d657373616765547970"
    "65223a226f75747075745f73747265616d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a"
    "2264643031653536622d666634382d343833652d613530382d623566303733663331623136222c2241636b6e6f776c65"
    "646765644d65737361676553657175656e63654e756d626572223a302c22497353657175656e7469616c4d6573736167"
    "65223a747275657d"
)
V6 = (
    "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000018bcfe56800"
    "00000000000000000000000000000001a508b5f073f31b16dd01e56bff48483ecd2eca3535741f27a8ae40c31b0c41d4"
    "057a7a7b912b33b9aed86485d1c84676000000010000000768656c6c6f0d0a"
)


def test_v1_round_trips_byte_for_byte() -> None:
    frame = bytes.fromhex(V1)
    m = decode_message(frame)
    assert (m.message_type, m.sequence_number, m.flags, m.payload_type) == ("input_stream_data", 1, 2, 0)
    assert m.message_id == FIXTURE_ID and m.created_date == 1503434274948 and m.payload == b"payload"
    again = encode_message(
        m.message_type, m.payload, sequence_number=1, flags=2, message_id=FIXTURE_ID, created_date=m.created_date
    )
    assert again == frame


def test_ack_of_v6_is_v4() -> None:
    ack = encode_ack(
        decode_message(bytes.fromhex(V6)),
        message_id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        created_date=1700000000000,
    )
    assert ack.hex() == V4


@pytest.mark.parametrize(
    "mutate",
    [
        lambda f: f[:119],  # shorter than the header
        lambda f: f[:-1],  # payload shorter than PayloadLength
        lambda f: f[:-1] + bytes([f[-1] ^ 1]),  # digest mismatch
        lambda f: b"\x00\x00\x00\x00" + f[4:],  # header length 0
        lambda f: f[:40] + b"\x00" * 8 + f[48:],  # created date 0
        lambda f: f[:4] + b" " * 32 + f[36:],  # empty message type
    ],
)
def test_malformed_frames_are_typed_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FrameError):
        decode_message(mutate(bytes.fromhex(V6)))
