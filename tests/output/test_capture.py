"""BoundedCapture: exact counters, fixed memory, cuts at safe places, chunking does not matter."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.output.capture import BoundedCapture, CapturedOutput, CaptureLimits
from bot.output.clean import clean_terminal_output


def _feed(data: bytes, cuts: list[int], **limits: int) -> BoundedCapture:
    cap = BoundedCapture(**limits)
    prev = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        cap.write(data[prev:cut])
        prev = cut
    return cap


def _check_invariants(stream: bytes, out: CapturedOutput, head_bytes: int, tail_bytes: int) -> None:
    assert out.total_bytes == len(stream)
    assert out.sha256 == hashlib.sha256(stream).hexdigest()
    assert stream.startswith(out.head)
    assert len(out.head) + out.dropped_bytes + len(out.tail) == len(stream)
    if out.dropped_bytes:
        assert stream.endswith(out.tail)
        assert len(out.head) <= head_bytes and len(out.tail) <= tail_bytes
        gap = stream[len(out.head) : len(stream) - len(out.tail)]
        assert out.dropped_lines == gap.count(b"\n")
    else:
        assert out.head == stream and out.tail == b"" and out.dropped_lines == 0


def test_small_output_is_kept_whole() -> None:
    cap = BoundedCapture(64, 128, file_bytes=1024)
    cap.write(b"hello\n")
    cap.write(b"world\n")
    out = cap.result()
    assert (out.head, out.tail, out.dropped_bytes, out.dropped_lines) == (b"hello\nworld\n", b"", 0, 0)
    assert (out.file_head, out.file_tail, out.file_dropped_bytes) == (b"hello\nworld\n", b"", 0)
    assert not out.truncated and not out.file_truncated
    assert cap.head == out.head and cap.total_bytes == 12


def test_empty_capture() -> None:
    out = BoundedCapture().result()
    assert out.head == b"" and out.total_bytes == 0
    assert out.sha256 == hashlib.sha256(b"").hexdigest()


def test_cuts_are_moved_to_line_boundaries_and_lines_are_counted() -> None:
    lines = [f"line {i:05d}\n".encode() for i in range(20_000)]  # 11 bytes each
    stream = b"".join(lines)
    cap = BoundedCapture(1000, 2000, file_bytes=50_000)
    for line in lines:
        cap.write(line)
    out = cap.result()
    _check_invariants(stream, out, 1000, 2000)
    assert out.head.endswith(b"\n") and out.head.startswith(b"line 00000\n")
    assert out.tail.startswith(b"line ") and out.tail.endswith(b"line 19999\n")
    assert out.dropped_lines == 20_000 - out.head.count(b"\n") - out.tail.count(b"\n")
    # the file view keeps more of the same stream
    assert len(out.file_head) > len(out.head) and out.file_tail == out.tail
    assert out.file_dropped_lines == 20_000 - out.file_head.count(b"\n") - out.file_tail.count(b"\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from([b"a", b"bc\n", b"\xc3\xa9", b"\x1b[31m", b"\r\n", b"\xe2\x82\xac",
                                     b"\n", b"xyz" * 50]), min_size=0, max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=40),
    head=st.integers(min_value=4, max_value=600),
    tail=st.integers(min_value=4, max_value=900),
)
def test_any_chunking_gives_the_same_result(pieces: list[bytes], cuts: list[int], head: int, tail: int) -> None:
    joined = b"".join(pieces)
    # Repeat to ~150 KB or more so the ring is trimmed (its trim threshold is ~70 KB + tail).
    stream = joined * (150_000 // max(1, len(joined)) + 1)
    whole = BoundedCapture(head, tail, file_bytes=head + tail + 5000)
    whole.write(stream)
    chunked = _feed(stream, cuts, head_bytes=head, tail_bytes=tail, file_bytes=head + tail + 5000)
    assert chunked.result() == whole.result()
    _check_invariants(stream, whole.result(), head, tail)
    assert whole.held_bytes <= whole.max_held_bytes


def test_tail_never_starts_inside_an_escape_sequence_or_character() -> None:
    # One long line (no newline to align to): coloured words and multi-byte characters.
    unit = b"\x1b[38;5;196m\xe2\x82\xacred\x1b[0m \x1b]8;;https://example.com/x\x1b\\link\x1b]8;;\x1b\\ "
    stream = unit * 5000
    for tail in range(200, 200 + len(unit) * 2):  # every possible cut position within a unit
        out = CapturedOutput.from_bytes(stream, CaptureLimits(head_bytes=100, tail_bytes=tail, file_bytes=10_000))
        text = clean_terminal_output(out.tail)
        assert "\ufffd" not in text and "[" not in text and ";" not in text, (tail, text[:40])
        head_text = clean_terminal_output(out.head)
        assert "\ufffd" not in head_text and "[" not in head_text


def test_a_gigabyte_stays_within_the_bound() -> None:
    block = b"".join(f"{i:08d} GET /index.html 200\n".encode() for i in range(2048))  # 64 KiB
    blocks = 16 * 1024  # 1 GiB in total
    cap = BoundedCapture()  # production defaults
    reference = hashlib.sha256()
    peak = 0
    view = memoryview(block)
    for _ in range(blocks):
        for off in range(0, len(block), 16 * 1024):
            cap.write(view[off : off + 16 * 1024])
        reference.update(block)
        peak = max(peak, cap.held_bytes)
    out = cap.result()
    assert peak <= cap.max_held_bytes < 10 * 1024 * 1024
    assert out.total_bytes == len(block) * blocks
    assert out.sha256 == reference.hexdigest()
    assert len(out.head) <= cap.head_bytes and len(out.tail) <= cap.tail_bytes
    assert out.head.endswith(b"\n") and out.tail.endswith(b"200\n")
    total_lines = 2048 * blocks
    assert out.dropped_lines == total_lines - out.head.count(b"\n") - out.tail.count(b"\n")
    assert out.file_dropped_lines == total_lines - out.file_head.count(b"\n") - out.file_tail.count(b"\n")
    assert len(out.file_head) + len(out.file_tail) <= 8 * 1024 * 1024


def test_limits_are_validated() -> None:
    with pytest.raises(ValidationError):
        CaptureLimits(head_bytes=10, tail_bytes=10, file_bytes=15)
    with pytest.raises(ValidationError):
        CaptureLimits(head_bytes=0)
    limits = CaptureLimits()
    assert (limits.head_bytes, limits.tail_bytes, limits.file_bytes) == (65536, 458752, 8388608)


def test_tail_reports_whether_it_starts_a_line() -> None:
    lined = CapturedOutput.from_bytes(b"x" * 50 + b"\n" + b"y\n" * 5000,
                                      CaptureLimits(head_bytes=40, tail_bytes=100, file_bytes=200))
    assert lined.tail_starts_line and lined.file_tail_starts_line
    one_line = CapturedOutput.from_bytes(b"z" * 100_000, CaptureLimits(head_bytes=40, tail_bytes=100, file_bytes=200))
    assert not one_line.tail_starts_line and not one_line.file_tail_starts_line
