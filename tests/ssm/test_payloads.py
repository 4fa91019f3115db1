"""JSON payload vectors, AES-GCM vectors E1-E3 and the retransmission timer (pure code)."""

from __future__ import annotations

import json

import pytest

from bot.ssm import handshake as hs
from bot.ssm.errors import EncryptionError
from bot.ssm.frames import FrameError
from bot.ssm.kms import SessionCipher, data_key_context
from bot.ssm.outbox import Outbox, RetransmissionTimer

KEY = bytes.fromhex(
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
)
NONCE = bytes.fromhex("000102030405060708090a0b")
E1 = "000102030405060708090a0b2f67ba77aae8c89300047a31533ff9d4164be444aedcfa"
E2 = "000102030405060708090a0b302150796b6ce92de9e02938ee56f3d16b8741"
E3 = (
    "000102030405060708090a0bf6f8f70de09f41461653636c8cd9f496b9da43cec0bb0cbb8ea77910112b61328674b897b1b5ee4f"
    "40d150526661801b98a34754f0f95d2f0c97a6038f17c90520745da6e12bb6c9553e065d4e2adb56"
)


# --- JSON payloads (exactly as Go json.Marshal writes them with the plugin's structs) ----------------


def test_open_data_channel_input_is_byte_exact() -> None:
    text = hs.open_data_channel_input(
        token="TOKEN",
        request_id="5b1c4b0e-3c1f-4b45-9d55-6b6b4f3e2a10",
        client_id="8a8e3a59-9ad0-4d4f-8a4d-5b2f7c3f7a21",
        client_version="1.2.0.0",
    )
    assert text == (
        '{"MessageSchemaVersion":"1.0","RequestId":"5b1c4b0e-3c1f-4b45-9d55-6b6b4f3e2a10","TokenValue":"TOKEN",'
        '"ClientId":"8a8e3a59-9ad0-4d4f-8a4d-5b2f7c3f7a21","ClientVersion":"1.2.0.0"}'
    )


def test_handshake_responses_are_byte_exact() -> None:
    ok = hs.ProcessedAction(action_type="SessionType", status=hs.ActionStatus.SUCCESS)
    assert hs.handshake_response("1.2.0.0", [ok]) == (
        b'{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,'
        b'"ActionResult":null,"Error":""}],"Errors":null}'
    )
    kms = hs.ProcessedAction(
        action_type="KMSEncryption",
        status=hs.ActionStatus.SUCCESS,
        result=hs.kms_action_result(b"cipher-text-key", challenge_acknowledged=False),
    )
    assert hs.handshake_response("1.2.0.0", [ok, kms]) == (
        b'{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,'
        b'"ActionResult":null,"Error":""},{"ActionType":"KMSEncryption","ActionStatus":1,"ActionResult":'
        b'{"KMSCipherTextKey":"Y2lwaGVyLXRleHQta2V5","KMSCipherTextHash":null},"Error":""}],"Errors":null}'
    )
    failed = hs.ProcessedAction(action_type="KMSEncryption", status=hs.ActionStatus.FAILED, reason="boom")
    assert hs.handshake_response("1.2.0.0", [failed]) == (
        b'{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"KMSEncryption","ActionStatus":2,'
        b'"ActionResult":null,"Error":"Failed to process action KMSEncryption: boom"}],"Errors":["boom"]}'
    )


def test_kms_result_with_challenge_acknowledgement_matches_the_agent_side_vector() -> None:
    result = hs.kms_action_result(b"cipher-text-key", challenge_acknowledged=True)
    assert json.dumps(result, separators=(",", ":")) == (
        '{"KMSCipherTextKey":"Y2lwaGVyLXRleHQta2V5","KMSCipherTextHash":null,"ChallengeAcknowledgement":true}'
    )


def test_small_payloads_are_byte_exact() -> None:
    assert hs.challenge_payload(b"\x01\x02\x03") == b'{"Challenge":"AQID"}'
    assert hs.size_payload(80, 24) == b'{"cols":80,"rows":24}'
    assert hs.parse_challenge(b'{"Challenge":"AQID"}') == b"\x01\x02\x03"


def test_agent_payloads_parse() -> None:
    request = hs.parse_handshake_request(
        b'{"AgentVersion":"3.3.1142.0","RequestedClientActions":[{"ActionType":"SessionType","ActionParameters":'
        b'{"SessionType":"InteractiveCommands","Properties":null}},{"ActionType":"KMSEncryption","ActionParameters":'
        b'{"KMSKeyId":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",'
        b'"Challenge":"q83vEjRWeJCrze8SNFZ4kA=="}}]}'
    )
    assert request.agent_version == "3.3.1142.0"
    assert [a.action_type for a in request.actions] == ["SessionType", "KMSEncryption"]
    assert request.actions[1].param("Challenge") == "q83vEjRWeJCrze8SNFZ4kA=="
    complete = hs.parse_handshake_complete(
        b'{"HandshakeTimeToComplete":1500000000,"CustomerMessage":"This session is encrypted using AWS KMS."}'
    )
    assert complete.time_to_complete_ns == 1_500_000_000
    assert complete.customer_message == "This session is encrypted using AWS KMS."
    closed = hs.parse_channel_closed(
        b'{"MessageType":"channel_closed","MessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","CreatedDate":'
        b'"1503434274948","SessionId":"sessionId_01234567890abcedf","SchemaVersion":1,"Output":"payload"}'
    )
    assert (closed.session_id, closed.output) == ("sessionId_01234567890abcedf", "payload")
    assert hs.parse_channel_closed(b"").output == ""


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[1]", b'{"RequestedClientActions":"x"}', b'{"RequestedClientActions":[{"ActionType":5}]}'],
)
def test_bad_handshake_requests_are_frame_errors(payload: bytes) -> None:
    with pytest.raises(FrameError):
        hs.parse_handshake_request(payload)


def test_bad_challenges_are_frame_errors() -> None:
    for payload in (b"{}", b'{"Challenge":"***"}', b'{"Challenge":1}'):
        with pytest.raises(FrameError):
            hs.parse_challenge(payload)


# --- AES-256-GCM (E1-E3) ------------------------------------------------------------------------


def test_e1_agent_to_client_decrypts_with_first_half_of_the_key() -> None:
    assert SessionCipher(KEY).decrypt(bytes.fromhex(E1)) == b"hello\r\n"


def test_e2_e3_client_to_agent_encrypt_with_second_half_of_the_key() -> None:
    cipher = SessionCipher(KEY)
    assert cipher.encrypt(b"ls\r", nonce=NONCE).hex() == E2
    assert cipher.encrypt(b"\xaa" * 64, nonce=NONCE).hex() == E3


def test_random_nonces_and_tamper_detection() -> None:
    cipher = SessionCipher(KEY)
    a, b = cipher.encrypt(b"x"), cipher.encrypt(b"x")
    assert a[:12] != b[:12]
    tampered = bytearray.fromhex(E1)
    tampered[-1] ^= 1
    with pytest.raises(EncryptionError):
        cipher.decrypt(bytes(tampered))
    with pytest.raises(EncryptionError):
        cipher.decrypt(b"short")
    with pytest.raises(EncryptionError):
        SessionCipher(KEY[:32])


def test_data_key_context_includes_the_challenge_string_as_received() -> None:
    assert data_key_context("s", "ecs:c_t_r", None) == {"aws:ssm:SessionId": "s", "aws:ssm:TargetId": "ecs:c_t_r"}
    assert data_key_context("s", "t", "q83vEjRWeJCrze8SNFZ4kA==")["aws:ssm:RandomChallenge"] == (
        "q83vEjRWeJCrze8SNFZ4kA=="
    )


# --- retransmission ---------------------------------------------------------------------------------


def test_rto_after_one_sample_matches_the_plugin_unit_test() -> None:
    timer = RetransmissionTimer()
    timer.sample(0.140)
    assert timer.rtt == pytest.approx(0.105) and timer.rttvar == pytest.approx(0.010)
    assert timer.rto == pytest.approx(0.145)


def test_rto_is_clamped_to_one_second() -> None:
    timer = RetransmissionTimer()
    for _ in range(5):
        timer.sample(10.0)
    assert timer.rto == 1.0


def test_only_the_oldest_is_resent_and_last_sent_is_written_back() -> None:
    box = Outbox(capacity=10)
    box.add(0, b"zero")
    box.add(1, b"one")
    for entry in box.take_pending():
        box.mark_sent(entry, now=10.0)
    assert box.due(10.1) is None  # RTO 200 ms not passed
    due = box.due(10.25)
    assert due is not None and due.frame == b"zero"
    box.mark_sent(due, now=10.25)
    assert box.due(10.3) is None  # written back: not resent every tick (the plugin's bug)
    assert box.due(10.5) is not None and box.oldest_first_sent() == 10.0
    assert box.acknowledge(0, now=10.5)
    assert box.timer.rto != 0.2  # the ack fed the estimator
    assert not box.acknowledge(0, now=10.6)  # duplicate ack
    due = box.due(11.0)
    assert due is not None and due.frame == b"one"


def test_requeue_after_reconnect_sends_every_unacked_message_again_in_order() -> None:
    box = Outbox(capacity=3)
    for seq in range(3):
        box.add(seq, bytes([seq]))
    first = box.take_pending()
    for entry in first:
        box.mark_sent(entry, now=1.0)
    assert box.full and box.take_pending() == []
    box.acknowledge(1, now=1.1)
    box.requeue_all()
    assert [e.sequence_number for e in box.take_pending()] == [0, 2]
