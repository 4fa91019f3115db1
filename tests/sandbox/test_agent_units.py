"""Pure parts of the agent: UTF-8 carry, synthetic output, RTO, reordering, faults, local KMS, models."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from standins.agent_crypto import AgentCipher, KmsDecryptError, LocalKms
from standins.agent_faults import FaultInjector
from standins.agent_models import Faults, SessionSpec
from standins.agent_output import LINE_WIDTH, split_utf8_tail, synthetic_chunk, synthetic_output
from standins.agent_sequencing import Arrival, Inbox, Outbox


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_utf8_carry_never_splits_a_character_and_keeps_every_byte(text: str, step: int) -> None:
    data = text.encode()
    carry, sent = b"", []
    for i in range(0, len(data), step):
        complete, carry = split_utf8_tail(carry + data[i : i + step])
        assert len(carry) <= 3
        complete.decode("utf-8")  # raises if a character was cut
        sent.append(complete)
    assert b"".join(sent) + carry == data and carry == b""


def test_utf8_carry_examples() -> None:
    euro = "€".encode()
    assert split_utf8_tail(b"ab" + euro[:2]) == (b"ab", euro[:2])
    assert split_utf8_tail(b"ab" + euro) == (b"ab" + euro, b"")
    assert split_utf8_tail(b"\xff\xfe") == (b"\xff\xfe", b"")  # invalid bytes are not held back
    assert split_utf8_tail(b"") == (b"", b"")


def test_synthetic_output_is_numbered_fixed_width_lines() -> None:
    data = synthetic_output(10_000)
    assert len(data) == 10_000
    lines = data.split(b"\n")
    assert all(len(line) == LINE_WIDTH - 1 for line in lines[:-1])
    assert [int(line[:10]) for line in lines[:-1]] == list(range(len(lines) - 1))
    assert synthetic_chunk(1, 10_000) == data[1024:2048] and synthetic_chunk(10, 10_000) == b""
    assert synthetic_output(0) == b""


def test_rto_follows_the_agent_formula() -> None:
    box = Outbox()
    box.add(0, b"f0").last_sent = 10.0
    assert box.ack(0, now=10.140)  # one 140 ms sample from the defaults (plugin's unit test)
    assert (round(box.rtt, 6), round(box.rttvar, 6), round(box.rto, 6)) == (0.105, 0.01, 0.145)
    assert not box.ack(0, now=11.0)  # unknown seq: ignored
    slow = Outbox()
    slow.add(0, b"").last_sent = 0.0
    slow.ack(0, now=30.0)
    assert slow.rto == 1.0  # capped


def test_only_the_oldest_message_is_due() -> None:
    box = Outbox()
    for seq in range(3):
        box.add(seq, bytes([seq])).last_sent = 0.0
    assert box.due(0.1) is None  # RTO 200 ms not passed
    due = box.due(0.3)
    assert due is not None and due.seq == 0
    box.ack(0, now=0.3)  # RTO is now 325 ms
    assert box.due(0.3) is None
    assert box.due(0.4) is not None and box.due(0.4).seq == 1  # type: ignore[union-attr]
    assert [p.seq for p in box] == [1, 2]


def test_inbox_orders_and_bounds_early_messages() -> None:
    inbox: Inbox[str] = Inbox(capacity=1)
    assert inbox.classify(1) is Arrival.AHEAD and inbox.hold(1, "b")
    assert not inbox.hold(2, "c")  # full: not acked, the sender resends it later
    assert inbox.classify(0) is Arrival.IN_ORDER
    inbox.advance()
    assert inbox.next_held() == "b"
    inbox.release()
    assert inbox.expected == 2 and inbox.classify(1) is Arrival.DUPLICATE and inbox.next_held() is None


def test_fault_injector_is_seeded_and_counts() -> None:
    faults = Faults(seed=11, drop_rate=0.5, duplicate_rate=0.5, reorder_rate=0.5, close_after=3, pause_after=2)
    injectors = [FaultInjector(faults), FaultInjector(faults)]
    plans = [[inj.plan_first_send(s) for s in range(50)] for inj in injectors]
    assert plans[0] == plans[1] and any(p.drop for p in plans[0]) and any(p.duplicate for p in plans[0])
    f = FaultInjector(faults)
    assert [f.note_published() for _ in range(4)] == [False, True, False, False]
    closes = []
    for s in range(5):
        f.plan_first_send(s)
        closes.append(f.close_now())
    assert closes == [False, False, True, False, False]
    r = FaultInjector(Faults(reject_token=2))
    assert [r.reject_connection() for _ in range(3)] == [True, True, False]
    assert FaultInjector(Faults(drop_seqs=frozenset({4}))).plan_first_send(4).drop


def test_local_kms_binds_the_context_and_the_key() -> None:
    kms = LocalKms()
    ctx = {"aws:ssm:SessionId": "s", "aws:ssm:TargetId": "t"}
    plain, blob = kms.generate_data_key("arn:aws:kms:r:1:key/k", 64, ctx)
    assert kms.decrypt(blob, dict(reversed(list(ctx.items())))) == ("arn:aws:kms:r:1:key/k", plain)
    with pytest.raises(KmsDecryptError):
        kms.decrypt(blob, {**ctx, "aws:ssm:RandomChallenge": "x"})
    with pytest.raises(KmsDecryptError):
        LocalKms().decrypt(blob, ctx)  # another agent's master key
    with pytest.raises(KmsDecryptError):
        kms.decrypt(b"garbage", ctx)


def test_agent_cipher_directions_match_the_client() -> None:
    key = os.urandom(64)
    cipher = AgentCipher(key)
    sealed = cipher.encrypt(b"out")
    assert AESGCM(key[:32]).decrypt(sealed[:12], sealed[12:], None) == b"out"  # client reads with K[0:32]
    assert cipher.encrypt(b"out")[:12] != sealed[:12]  # a fresh nonce every time
    nonce = os.urandom(12)
    assert cipher.decrypt(nonce + AESGCM(key[32:]).encrypt(nonce, b"in", None)) == b"in"
    with pytest.raises(InvalidTag):
        cipher.decrypt(nonce + AESGCM(key[:32]).encrypt(nonce, b"in", None))
    with pytest.raises(ValueError):
        AgentCipher(b"short")


def test_session_spec_validation() -> None:
    assert SessionSpec(command="ls").session_id.startswith("ecs-execute-command-")
    with pytest.raises(ValidationError):
        SessionSpec()  # neither a command nor synthetic output
    with pytest.raises(ValidationError):
        SessionSpec(command="ls", kms_key_id="k")  # KMS needs the target
    with pytest.raises(ValidationError):
        SessionSpec(command="ls", faults=Faults(drop_rate=2))  # type: ignore[arg-type]
    assert SessionSpec.model_validate({"synthetic_output_bytes": 5, "faults": {"reject_token": True}}).faults.reject_token == 1
