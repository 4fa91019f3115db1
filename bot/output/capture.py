"""Bounded capture of a command's output stream: head + tail + counters + SHA-256, in fixed memory.

It sits on the data-channel hot path (every ``output_stream_data`` payload goes through ``write``), so a
write is: hash update, one ``bytearray`` append and, once in a while, an amortised trim. Everything that
needs thought (where to cut, how many lines were dropped) happens once, in ``result()``.

Two views are kept from the same bytes:

* the **message view**: the first ``head_bytes`` and the last ``tail_bytes`` — what the Slack message is
  rendered from;
* the **file view**: the first ``file_bytes - tail_bytes`` (the "spool") and the same tail — the
  "full (bounded) output" uploaded in the thread when the message had to cut.

Cuts are moved to line boundaries when a newline is near (so a secret on one line is never split across
the gap, which matters for redaction), otherwise off any escape sequence or UTF-8 character the cut would
split (so the cleaner never sees half a ``ESC [31m`` at the start of the tail). A line cut that way is
reported (``tail_starts_line``, a head not ending in a newline) and ``bot.output.cut`` hides it whole.

Memory bound: ``prefix`` holds at most ``file_bytes - tail_bytes`` bytes and the ring at most
``tail_bytes + _GUARD + max(tail_bytes, _MIN_SLACK)``; see ``max_held_bytes``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.output.clean import escape_sequence_end

KiB = 1024
MiB = 1024 * KiB

# How far a cut may move to reach a line boundary. Small enough that a cut never throws away much.
_ALIGN_WINDOW = 4 * KiB
# How far back from a tail cut we look for the ESC that may start a sequence the cut falls into.
# OSC 8 hyperlinks are the longest sequences in ordinary output; 512 bytes covers them.
_ESC_LOOKBACK = 512
# Bytes kept in front of the ideal tail start so the alignment above can look back; this makes the
# result a function of the stream alone, independent of how it was chunked or when the ring was trimmed.
_GUARD = _ALIGN_WINDOW + _ESC_LOOKBACK
# The ring is trimmed only after it grew by this much, so trimming costs O(1) amortised per byte.
_MIN_SLACK = 64 * KiB


class CaptureLimits(BaseModel):
    """Sizes of the capture (settings edge). Defaults keep ~0.5 MiB for the message and 8 MiB for the file."""

    model_config = ConfigDict(frozen=True)

    head_bytes: int = Field(default=64 * KiB, ge=1)
    tail_bytes: int = Field(default=448 * KiB, ge=1)
    # Total size of the "full output" file: its head (spool) plus the shared tail.
    file_bytes: int = Field(default=8 * MiB, ge=2)

    @model_validator(mode="after")
    def _file_holds_the_message(self) -> CaptureLimits:
        if self.file_bytes < self.head_bytes + self.tail_bytes:
            raise ValueError("file_bytes must be at least head_bytes + tail_bytes")
        return self


@dataclass(frozen=True)
class CapturedOutput:
    """An immutable snapshot of a capture. ``head``/``tail`` are raw PTY bytes (clean + redact them)."""

    head: bytes
    tail: bytes  # empty unless something was dropped between head and tail
    total_bytes: int
    dropped_bytes: int  # bytes between head and tail that the message view does not have
    dropped_lines: int  # newlines in those bytes
    sha256: str  # hex digest of every byte written, dropped ones included
    file_head: bytes
    file_tail: bytes
    file_dropped_bytes: int
    file_dropped_lines: int
    # False when a cut fell inside a line (no newline near it): the first tail line is a fragment.
    tail_starts_line: bool = True
    file_tail_starts_line: bool = True

    @property
    def truncated(self) -> bool:
        return self.dropped_bytes > 0

    @property
    def file_truncated(self) -> bool:
        return self.file_dropped_bytes > 0

    @classmethod
    def from_bytes(cls, data: bytes, limits: CaptureLimits | None = None) -> CapturedOutput:
        """Convenience for tests and callers that already hold the whole output."""
        capture = BoundedCapture.from_limits(limits or CaptureLimits())
        capture.write(data)
        return capture.result()


class BoundedCapture:
    """Accepts any amount of output through ``write`` and keeps at most ``max_held_bytes`` of it."""

    __slots__ = (
        "head_bytes",
        "tail_bytes",
        "file_bytes",
        "_prefix_limit",
        "_ring_keep",
        "_ring_limit",
        "_prefix",
        "_prefix_room",
        "_ring",
        "_trimmed",
        "_trimmed_newlines",
        "_sha",
        "_snapshot",
    )

    def __init__(self, head_bytes: int = 64 * KiB, tail_bytes: int = 448 * KiB, *,
                 file_bytes: int | None = None) -> None:
        limits = CaptureLimits(head_bytes=head_bytes, tail_bytes=tail_bytes,
                               file_bytes=file_bytes if file_bytes is not None
                               else max(8 * MiB, head_bytes + tail_bytes))
        self.head_bytes = limits.head_bytes
        self.tail_bytes = limits.tail_bytes
        self.file_bytes = limits.file_bytes
        self._prefix_limit = limits.file_bytes - limits.tail_bytes  # >= head_bytes
        self._ring_keep = limits.tail_bytes + _GUARD
        self._ring_limit = self._ring_keep + max(limits.tail_bytes, _MIN_SLACK)
        self._prefix = bytearray()
        self._prefix_room = self._prefix_limit
        self._ring = bytearray()
        self._trimmed = 0  # bytes dropped from the front of the ring == absolute offset of ring[0]
        self._trimmed_newlines = 0
        self._sha = hashlib.sha256()
        self._snapshot: CapturedOutput | None = None

    @classmethod
    def from_limits(cls, limits: CaptureLimits) -> BoundedCapture:
        return cls(limits.head_bytes, limits.tail_bytes, file_bytes=limits.file_bytes)

    @property
    def max_held_bytes(self) -> int:
        """Upper bound of ``held_bytes``, whatever the size of the stream."""
        return self._prefix_limit + self._ring_limit

    @property
    def held_bytes(self) -> int:
        return len(self._prefix) + len(self._ring)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._snapshot = None
        self._sha.update(data)
        if self._prefix_room:
            chunk = data[: self._prefix_room]
            self._prefix += chunk
            self._prefix_room -= len(chunk)
        ring = self._ring
        ring += data
        if len(ring) > self._ring_limit:
            self._trim()

    def _trim(self) -> None:
        ring = self._ring
        cut = len(ring) - self._ring_keep
        if cut <= 0:
            return
        self._trimmed_newlines += ring.count(b"\n", 0, cut)
        self._trimmed += cut
        # Deleting from the front of a bytearray only moves its start pointer in CPython.
        del ring[:cut]

    # -- the views ------------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        return self._trimmed + len(self._ring)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def head(self) -> bytes:
        return self.result().head

    @property
    def tail(self) -> bytes:
        return self.result().tail

    @property
    def dropped_bytes(self) -> int:
        return self.result().dropped_bytes

    @property
    def dropped_lines(self) -> int:
        return self.result().dropped_lines

    def result(self) -> CapturedOutput:
        """Snapshot of what was captured so far (cached until the next write)."""
        if self._snapshot is None:
            head, tail, dropped, dropped_lines, at_line = self._view(self.head_bytes)
            fhead, ftail, fdropped, fdropped_lines, file_at_line = self._view(self._prefix_limit)
            self._snapshot = CapturedOutput(
                head=head, tail=tail, total_bytes=self.total_bytes, dropped_bytes=dropped,
                dropped_lines=dropped_lines, sha256=self.sha256, file_head=fhead, file_tail=ftail,
                file_dropped_bytes=fdropped, file_dropped_lines=fdropped_lines, tail_starts_line=at_line,
                file_tail_starts_line=file_at_line,
            )
        return self._snapshot

    def _view(self, first: int) -> tuple[bytes, bytes, int, int, bool]:
        """(head, tail, dropped bytes, dropped lines, tail starts a line) for ``first`` + ``tail_bytes``."""
        total = self.total_bytes
        prefix, ring, ring_start = self._prefix, self._ring, self._trimmed
        if total <= first + self.tail_bytes:
            # Everything is held: ring_start <= total - tail - guard < first <= len(prefix) when trimmed.
            return bytes(prefix) + bytes(ring[len(prefix) - ring_start:]), b"", 0, 0, True
        head_end = _head_cut(prefix, first)
        tail_start = ring_start + _tail_cut(ring, total - self.tail_bytes - ring_start)
        newlines_before_tail = self._trimmed_newlines + ring.count(b"\n", 0, tail_start - ring_start)
        dropped_lines = newlines_before_tail - prefix.count(b"\n", 0, head_end)
        at_line = ring[tail_start - ring_start - 1] == 0x0A  # the guard keeps that byte in the ring
        return (bytes(prefix[:head_end]), bytes(ring[tail_start - ring_start:]),
                tail_start - head_end, dropped_lines, at_line)


def _head_cut(buf: bytearray, limit: int) -> int:
    """Where the head ends: after the last newline near ``limit``, else not inside a UTF-8 character."""
    window = min(_ALIGN_WINDOW, limit // 4)
    newline = buf.rfind(b"\n", limit - window, limit)
    if newline >= 0:
        return newline + 1
    # A trailing incomplete escape sequence is dropped by the cleaner; only UTF-8 needs care here.
    return _utf8_start_at_or_before(buf, limit)


def _tail_cut(buf: bytearray, ideal: int) -> int:
    """Where the tail starts (index into ``buf``, >= ``ideal``): at a line start near ``ideal``, else
    after any escape sequence or UTF-8 character that ``ideal`` falls into."""
    window = min(_ALIGN_WINDOW, (len(buf) - ideal) // 4)
    if ideal > 0 and window > 0:
        newline = buf.find(b"\n", ideal - 1, ideal - 1 + window)
        if newline >= 0:
            return newline + 1
    esc = buf.rfind(b"\x1b", max(0, ideal - _ESC_LOOKBACK), ideal)
    if esc >= 0:
        end = escape_sequence_end(buf, esc)
        if end is None:  # the sequence runs to the end of what we have: the tail starts inside it
            return len(buf)
        ideal = max(ideal, end)
    steps = 0
    while ideal < len(buf) and steps < 3 and (buf[ideal] & 0xC0) == 0x80:
        ideal += 1
        steps += 1
    return ideal


def _utf8_start_at_or_before(buf: bytearray, cut: int) -> int:
    """Move ``cut`` back to the lead byte of a multi-byte character that would continue past it."""
    for back in range(1, 4):
        i = cut - back
        if i < 0:
            break
        b = buf[i]
        if b & 0xC0 == 0x80:  # continuation byte: keep looking for its lead byte
            continue
        if b >= 0xC0:
            length = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if i + length > cut:
                return i
        break
    return cut
