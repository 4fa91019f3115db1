"""PTY output → plain text. Pure and linear-time.

ECS Exec runs the command in a pseudo-terminal, so what comes back is what a terminal would interpret:
colour codes, window titles, cursor movement, ``\\r\\n`` line ends, progress bars redrawn with ``\\r``
and spinners drawn with backspaces. Slack shows none of that, so we reduce it to the text a person would
have read on the screen, close enough for logs:

* escape sequences (CSI, OSC, DCS/SOS/PM/APC, SS2/SS3, two-byte ESC) are removed, including an
  incomplete one at the end of a fragment;
* ``\\r\\n`` → ``\\n``; a lone ``\\r`` overwrites the line, so the last non-empty segment is kept;
* a backspace erases the character before it;
* other C0 controls, DEL and C1 controls are dropped (``\\t`` and ``\\n`` stay);
* invalid UTF-8 becomes U+FFFD.

Nothing is added (no banners, no markers): the caller decides how to show a cut.
"""

from __future__ import annotations

import re

# ECMA-48 grammar. The "complete" form requires the final byte/terminator; the "any" form also matches
# a sequence cut short by the end of the buffer (or aborted by a control character), so it can be
# removed too. String sequences (OSC, DCS, ...) stop at BEL/ST and are aborted by CAN, SUB, ESC or a
# newline: a missing terminator then costs one line, not the rest of the output.
_STRING_BODY = rb"[^\x07\x1b\x18\x1a\n]*"
_TWO_BYTE_FINAL = rb"[\x30-\x4d\x51-\x57\x59\x5a\x5c\x60-\x7e]"  # not one of N O P X [ ] ^ _
_COMPLETE = re.compile(
    rb"\x1b(?:"
    rb"\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    rb"|[\]PX^_]" + _STRING_BODY + rb"(?:\x07|\x1b\\)"
    rb"|[NO][\x20-\x7e]"
    rb"|[\x20-\x2f]+[\x30-\x7e]"
    rb"|" + _TWO_BYTE_FINAL + rb")"
)
_ANY = re.compile(
    rb"\x1b(?:"
    rb"\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    rb"|[\]PX^_]" + _STRING_BODY + rb"(?:\x07|\x1b\\)?"
    rb"|[NO][\x20-\x7e]?"
    rb"|[\x20-\x2f]*[\x30-\x7e]?)"
)

_CR_NEWLINE = re.compile(rb"\r+\n")
# Anchored at line starts (MULTILINE) so each line is scanned once: linear, whatever the line lengths.
_CR_OVERWRITE = re.compile(rb"^[^\n]*\r(?=[^\r\n])", re.MULTILINE)
_BACKSPACES = re.compile(r"\x08+")
# C0 controls and DEL never occur inside a UTF-8 multi-byte sequence, so they can be deleted from the
# bytes (bytes.translate runs at memory speed); C1 controls only exist once decoded.
_C0_EXCEPT_TAB_LF_BS = bytes(c for c in [*range(0x00, 0x20), 0x7F] if c not in (0x09, 0x0A, 0x08))
_C0_EXCEPT_TAB_LF = _C0_EXCEPT_TAB_LF_BS + b"\x08"
_C1_AND_BS = re.compile(r"[\x08\x80-\x9f]+")


def escape_sequence_end(buf: bytes | bytearray, start: int) -> int | None:
    """End index of the escape sequence whose ESC is at ``buf[start]``; ``None`` if ``buf`` ends inside it.

    A sequence aborted by a control character ends before that character (as terminals treat it).
    """
    m = _COMPLETE.match(buf, start)
    if m:
        return m.end()
    m = _ANY.match(buf, start)
    assert m is not None  # _ANY matches any ESC
    return None if m.end() == len(buf) else m.end()


def strip_escape_sequences(data: bytes) -> bytes:
    return _ANY.sub(b"", data) if b"\x1b" in data else data


def clean_terminal_output(data: bytes | bytearray) -> str:
    """The text a person would have read; see the module docstring for the rules."""
    raw = strip_escape_sequences(bytes(data))
    if b"\r" in raw:
        raw = raw.replace(b"\r\n", b"\n")
        if b"\r\n" in raw:  # "\r\r\n" and longer runs (rare)
            raw = _CR_NEWLINE.sub(b"\n", raw)
        if b"\r" in raw:
            raw = _CR_OVERWRITE.sub(b"", raw)
            raw = raw.replace(b"\r", b"")  # only trailing \r are left: nothing followed them on the line
    backspaces = b"\x08" in raw
    raw = raw.translate(None, _C0_EXCEPT_TAB_LF_BS if backspaces else _C0_EXCEPT_TAB_LF)
    text = raw.decode("utf-8", errors="replace")
    if backspaces:
        text = _apply_backspaces(text)
    if not text.isascii():
        text = _C1_AND_BS.sub("", text)
    return text


def _apply_backspaces(text: str) -> str:
    """Each backspace erases the character before it on the same line (never a newline)."""
    out: list[str] = []
    pos = 0
    for m in _BACKSPACES.finditer(text):
        out.append(text[pos : m.start()])
        erase = m.end() - m.start()
        while erase and out:
            last = out[-1]
            line_start = last.rfind("\n") + 1
            erasable = len(last) - line_start
            if erasable >= erase:
                out[-1] = last[: len(last) - erase]
                break
            out[-1] = last[:line_start]
            if line_start:  # reached the start of the line: a backspace cannot go further
                break
            out.pop()
            erase -= erasable
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
