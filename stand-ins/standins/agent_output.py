"""Pure helpers for what the agent publishes: UTF-8-safe chunking and deterministic synthetic output."""

from __future__ import annotations

CHUNK_SIZE = 1024  # the agent reads its PTY 1024 bytes at a time (StreamDataPayloadSize)

# Synthetic output: fixed-width numbered lines, so any byte range is computable without state and
# a reader can check byte-exactness, order and completeness from the text alone.
LINE_WIDTH = 64
_FILLER = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LINES_PER_CHUNK = CHUNK_SIZE // LINE_WIDTH


def split_utf8_tail(data: bytes) -> tuple[bytes, bytes]:
    """Split ``data`` into (complete, carry) so no UTF-8 character straddles two messages.

    ``carry`` is at most 3 bytes: the start of a multi-byte character whose remaining bytes have
    not been read yet (the agent's ``processStdoutData`` does the same). Invalid sequences are not
    held back: the terminal shows them as they come.
    """
    n = len(data)
    for back in range(1, min(3, n) + 1):
        byte = data[n - back]
        if byte & 0xC0 == 0x80:  # continuation byte: keep looking for the lead byte
            continue
        if byte >= 0xF8:  # never valid in UTF-8
            return data, b""
        if byte >= 0xF0:
            need = 4
        elif byte >= 0xE0:
            need = 3
        elif byte >= 0xC0:
            need = 2
        else:
            return data, b""
        return (data[: n - back], data[n - back :]) if back < need else (data, b"")
    return data, b""


def _line_bodies() -> tuple[bytes, ...]:
    width = LINE_WIDTH - 11 - 1  # after "%010d " and before "\n"
    rotations = (_FILLER[i:] + _FILLER[:i] for i in range(len(_FILLER)))
    return tuple(((r * 2)[:width] + "\n").encode("ascii") for r in rotations)


_BODIES = _line_bodies()  # precomputed once: output generation must cost far less than sending it


def synthetic_line(number: int) -> bytes:
    """Line ``number`` (0-based) of the synthetic output: exactly LINE_WIDTH bytes ending in "\\n"."""
    return b"%010d " % number + _BODIES[number % len(_BODIES)]


def synthetic_chunk(index: int, total_bytes: int) -> bytes:
    """The ``index``-th 1024-byte chunk of ``synthetic_output(total_bytes)`` (shorter at the end)."""
    start = index * CHUNK_SIZE
    if start >= total_bytes:
        return b""
    first = index * _LINES_PER_CHUNK
    chunk = b"".join(synthetic_line(first + i) for i in range(_LINES_PER_CHUNK))
    return chunk[: total_bytes - start]


def synthetic_output(total_bytes: int) -> bytes:
    """Everything a synthetic session of ``total_bytes`` publishes, for byte-exact comparison."""
    count = -(-total_bytes // CHUNK_SIZE)
    return b"".join(synthetic_chunk(i, total_bytes) for i in range(count))
