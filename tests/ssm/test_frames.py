"""Frame codec against byte-exact vectors made by the plugin's Go serializer (docs/ssm-protocol.md §2)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ssm.frames import (
    FrameError,
    OutputAckEncoder,
    PayloadType,
    decode_message,
    encode_ack,
    encode_ack_fields,
    encode_message,
    parse_ack,
    peek_output,
    uuid_to_wire,
)

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

V2 = (
    "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800"
    "00000000000000000000000000000000a508b5f073f31b16dd01e56bff48483e1d887ce0f8672e4914d9000e801cd74e"
    "cd805dd9366c0bc42dc16adc0197dc2f00000001000000036c730d"
)

V3 = (
    "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800"
    "00000000000000010000000000000000a508b5f073f31b16dd01e56bff48483ed53ca1ea7dce87c11432052a8550ed26"
    "15cf715ca843c89710ed83325b691cba00000003000000157b22636f6c73223a38302c22726f7773223a32347d"
)

V5 = (
    "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800"
    "00000000000000020000000000000000a508b5f073f31b16dd01e56bff48483e433ebf5bc03dffa38536673207a21281"
    "612cef5faa9bc7a4d5b9be2fdb12cf1a0000000a0000000400000002"
)

V9 = (
    "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000018bcfe56800"
    "00000000000000000000000000000001a508b5f073f31b16dd01e56bff48483e4f4c0fca2b18cab5cd282a797e73fc3e"
    "d8929264aeb46b7a22349a464ea1fca800000005000000a07b224167656e7456657273696f6e223a22332e332e313134"
    "322e30222c22526571756573746564436c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a225365"
    "7373696f6e54797065222c22416374696f6e506172616d6574657273223a7b2253657373696f6e54797065223a22496e"
    "746572616374697665436f6d6d616e6473222c2250726f70657274696573223a6e756c6c7d7d5d7d"
)

F0 = (
    "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000015e0baa7884"
    "00000000000000000000000000000002a508b5f073f31b16dd01e56bff48483ee283f78fbba7cee08374c77de54973ac"
    "a4184788f3760ea2b80517c8b6343d92000000010000000c746573745061796c6f616430"
)

F1 = (
    "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000015e0baa7884"
    "00000000000000010000000000000002a508b5f073f31b16dd01e56bff48483e8a177c9ebf8eec65040d395053c17aa7"
    "8cb57a324202c76fde628fd7846858ee000000010000000c746573745061796c6f616431"
)

F2 = (
    "000000746f75747075745f73747265616d5f646174612020202020202020202020202020000000010000015e0baa7884"
    "00000000000000020000000000000002a508b5f073f31b16dd01e56bff48483e1c651cea0c5b941b7dc636242c67fb32"
    "651e888972adb6149a45849223d749e4000000010000000c746573745061796c6f616432"
)

X1 = (
    "00000074000000000000000000000000000000696e7075745f73747265616d5f6461746100000001000000001e5b37e2"
    "00000000000000000000000000000001730f664914534e2a9f01a37dbffefce165343433363562393531313632656461"
    "3634616365666432373537323230396500000003000000167b22636f6c73223a3230322c22726f7773223a31387d"
)

CD = 1700000000000


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


@pytest.mark.parametrize(
    ("vector", "mtype", "seq", "flags", "ptype", "created", "payload"),
    [
        (V2, "input_stream_data", 0, 0, PayloadType.OUTPUT, CD, b"ls\r"),
        (V3, "input_stream_data", 1, 0, PayloadType.SIZE, CD, b'{"cols":80,"rows":24}'),
        (V5, "input_stream_data", 2, 0, PayloadType.FLAG, CD, b"\x00\x00\x00\x02"),
        (V6, "output_stream_data", 0, 1, PayloadType.OUTPUT, CD, b"hello\r\n"),
        (
            V9,
            "output_stream_data",
            0,
            1,
            PayloadType.HANDSHAKE_REQUEST,
            CD,
            b'{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType",'
            b'"ActionParameters":{"SessionType":"InteractiveCommands","Properties":null}}]}',
        ),
        (F0, "output_stream_data", 0, 2, PayloadType.OUTPUT, 1503434274948, b"testPayload0"),
        (F1, "output_stream_data", 1, 2, PayloadType.OUTPUT, 1503434274948, b"testPayload1"),
        (F2, "output_stream_data", 2, 2, PayloadType.OUTPUT, 1503434274948, b"testPayload2"),
    ],
    ids=["V2", "V3", "V5", "V6", "V9", "F0", "F1", "F2"],
)
def test_go_serializer_vectors_decode_and_reencode_byte_for_byte(  # type: ignore[no-untyped-def]
    vector, mtype, seq, flags, ptype, created, payload
) -> None:
    frame = bytes.fromhex("".join(vector))
    m = decode_message(frame)
    assert (m.message_type, m.sequence_number, m.flags, m.payload_type) == (mtype, seq, flags, ptype)
    assert (m.created_date, m.payload, m.schema_version, m.message_id) == (created, payload, 1, FIXTURE_ID)
    again = encode_message(
        mtype, payload, sequence_number=seq, flags=flags, payload_type=ptype, message_id=FIXTURE_ID, created_date=created
    )
    assert again == frame


def test_v4_ack_decodes_to_its_fields() -> None:
    m = decode_message(bytes.fromhex(V4))
    assert (m.message_type, m.sequence_number, m.flags, m.payload_type) == ("acknowledge", 0, 3, 0)
    assert m.message_id == uuid.UUID("11111111-2222-3333-4444-555555555555")
    ack = parse_ack(m.payload)
    assert (ack.message_type, ack.message_id, ack.sequence_number) == (
        "output_stream_data",
        str(FIXTURE_ID),
        0,
    )


def test_fast_ack_encoder_matches_the_generic_encoder_for_any_sequence() -> None:
    m = decode_message(bytes.fromhex(V6))
    ack_id = uuid.UUID("11111111-2222-3333-4444-555555555555")
    for seq in (0, 1, 12345, 2**40):
        fast = encode_ack_fields(m.message_type, m.message_id_wire, seq, ack_id_wire=V4_ID_WIRE, created_date=CD)
        slow = encode_message(
            "acknowledge",
            (
                b'{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"'
                + str(FIXTURE_ID).encode()
                + b'","AcknowledgedMessageSequenceNumber":'
                + str(seq).encode()
                + b',"IsSequentialMessage":true}'
            ),
            sequence_number=0,
            flags=3,
            message_id=ack_id,
            created_date=CD,
        )
        assert fast == slow
    fresh = decode_message(encode_ack_fields(m.message_type, m.message_id_wire, 7))
    assert fresh.message_id.version == 4 and fresh.created_date > CD


V4_ID_WIRE = bytes.fromhex("44445555555555551111111122223333")


def test_x1_third_party_frame_parses_leniently() -> None:
    # NUL left-padded type, 32-bit CreatedDate, ASCII-hex "digest": only a lenient parse accepts it.
    frame = bytes.fromhex("".join(X1))
    with pytest.raises(FrameError, match="digest"):
        decode_message(frame)
    m = decode_message(frame, verify_digest=False)
    assert (m.message_type, m.schema_version, m.created_date, m.sequence_number, m.flags) == (
        "input_stream_data",
        1,
        509294562,
        0,
        1,
    )
    assert m.payload_type == PayloadType.SIZE and m.payload == b'{"cols":202,"rows":18}'
    assert m.message_id_wire == bytes.fromhex("730f664914534e2a9f01a37dbffefce1")


def test_publication_messages_skip_validation_and_empty_payload_is_accepted() -> None:
    frame = bytearray(encode_message("start_publication", b"", sequence_number=0))
    frame[0:4] = b"\x00\x00\x00\x00"  # MGS may leave the header unpopulated
    frame[40:48] = bytes(8)
    m = decode_message(bytes(frame))
    assert m.message_type == "start_publication" and m.payload == b""


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_decode_message_raises_only_frame_error(data: bytes) -> None:
    try:
        decode_message(data)
    except FrameError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.integers(0, 119),
    st.binary(min_size=1, max_size=8),
)
def test_corrupted_valid_frames_raise_only_frame_error(payload: bytes, at: int, junk: bytes) -> None:
    frame = bytearray(encode_message("output_stream_data", payload, sequence_number=3, payload_type=1))
    frame[at : at + len(junk)] = junk
    try:
        m = decode_message(bytes(frame))
    except FrameError:
        return
    assert isinstance(m.payload, bytes)


# --- the receiver's hot path: peek_output and OutputAckEncoder ---------------------------------------


def test_output_ack_encoder_of_v6_is_v4_but_for_its_own_message_id() -> None:
    v6 = decode_message(bytes.fromhex(V6))
    ack = OutputAckEncoder(seed=bytes(16)).encode(v6.message_id_wire, v6.sequence_number, 1700000000000)
    m = decode_message(ack)
    assert ack[:64] == bytes.fromhex(V4)[:64] and ack[80:] == bytes.fromhex(V4)[80:]  # all but MessageId
    assert m.message_id.version == 4 and m.message_id.variant == uuid.RFC_4122


def test_output_ack_encoder_ids_are_unique_and_well_formed() -> None:
    encoder = OutputAckEncoder()
    ids = [decode_message(encoder.encode(uuid_to_wire(FIXTURE_ID), 1, 1)).message_id for _ in range(1000)]
    assert len(set(ids)) == 1000 and {(i.version, i.variant) for i in ids} == {(4, uuid.RFC_4122)}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**32 - 1))
def test_peek_output_agrees_with_decode_message(payload: bytes, seq: int, ptype: int) -> None:
    frame = encode_message("output_stream_data", payload, sequence_number=seq, payload_type=ptype)
    m = decode_message(frame)
    assert peek_output(frame) == (m.sequence_number, m.payload_type, m.message_id_wire, m.payload)
    ack = OutputAckEncoder().encode(m.message_id_wire, seq, 1700000000000)
    generic = encode_ack_fields("output_stream_data", m.message_id_wire, seq, ack_id_wire=ack[64:80],
                                created_date=1700000000000)
    assert ack == generic


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 119), st.binary(min_size=1, max_size=8))
def test_peek_output_never_accepts_what_decode_message_rejects(payload: bytes, at: int, junk: bytes) -> None:
    frame = bytearray(encode_message("output_stream_data", payload, sequence_number=3, payload_type=1))
    frame[at : at + len(junk)] = junk
    peeked = peek_output(bytes(frame))
    if peeked is None:
        return  # the caller falls back to decode_message, which decides
    m = decode_message(bytes(frame))
    assert m.message_type == "output_stream_data"
    assert peeked == (m.sequence_number, m.payload_type, m.message_id_wire, m.payload)


def test_peek_output_leaves_everything_but_output_to_decode_message() -> None:
    assert peek_output(bytes.fromhex(V1)) is None  # input_stream_data
    assert peek_output(bytes.fromhex(V4)) is None  # acknowledge
    assert peek_output(bytes.fromhex(V6)[:-1]) is None  # short payload
    corrupted = bytes.fromhex(V6)[:-1] + b"\x00"
    assert peek_output(corrupted) is None  # digest mismatch
