"""Clean (and optionally redact) PTY output as it streams in, in bounded memory.

``clean_terminal_output`` works on whole text; the CLI must print gigabytes as they arrive. Its rules are
all local to a line: an escape sequence never spans a newline (string sequences are aborted by one), a
``\\r`` only overwrites its own line, a backspace never erases a newline, and a newline never sits inside
a UTF-8 sequence. So cleaning everything up to the last newline of what has arrived, and keeping the
rest for later, gives exactly the same text as cleaning the whole output at once — with no rule copied
here. The one exception is a line longer than ``max_line`` bytes: it is released in pieces cut outside
escape and UTF-8 sequences, so a ``\\r`` redraw or a backspace then acts within its piece only (a screen
would have wrapped such a line long before anyway).

Redaction (``--redact``) runs on the same complete-line chunks, except that a private-key block is held
back (bounded) until its END line so the key detector sees it whole.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.output.clean import clean_terminal_output, escape_sequence_end

MAX_LINE_BYTES = 1 << 20  # a partial line is held back up to this size
# A PEM block is held back until its END line, up to this many characters (then released as is).
MAX_KEY_BLOCK_CHARS = 64 * 1024
_KEY_BEGIN = "-----BEGIN "
_KEY_END = "-----END "
_ESC_LOOKBACK = 4096  # an escape sequence cut by a chunk boundary starts this close to the end


class StreamCleaner:
    """``feed(bytes) -> str`` releases the cleaned text of every complete line so far; ``flush()`` the rest."""

    def __init__(self, *, max_line: int = MAX_LINE_BYTES) -> None:
        self._pending = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> str:
        if not data:
            return ""
        newline = data.rfind(b"\n")
        if newline >= 0:
            cut = len(self._pending) + newline + 1
            self._pending += data
        else:
            self._pending += data
            if len(self._pending) <= self._max_line:
                return ""
            cut = _safe_cut(self._pending)
        ready = bytes(self._pending[:cut])
        del self._pending[:cut]
        return clean_terminal_output(ready)

    def flush(self) -> str:
        ready = bytes(self._pending)
        self._pending.clear()
        return clean_terminal_output(ready)


class StreamRedactor:
    """Redacts cleaned, complete-line text chunk by chunk (``redact`` is e.g. ``Redactor.redact``)."""

    def __init__(self, redact: Callable[[str], str], *, max_block: int = MAX_KEY_BLOCK_CHARS) -> None:
        self._redact = redact
        self._held = ""
        self._max_block = max_block

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        begin = text.rfind(_KEY_BEGIN)
        if begin >= 0 and text.find(_KEY_END, begin) < 0 and len(text) - begin <= self._max_block:
            line_start = text.rfind("\n", 0, begin) + 1
            text, self._held = text[:line_start], text[line_start:]
        return self._redact(text) if text else ""

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._redact(text) if text else ""


class OutputStream:
    """Raw PTY bytes in, final text out: cleaning, then (optionally) redaction."""

    def __init__(self, redact: Callable[[str], str] | None = None, *, max_line: int = MAX_LINE_BYTES) -> None:
        self._cleaner = StreamCleaner(max_line=max_line)
        self._redactor = StreamRedactor(redact) if redact is not None else None

    def feed(self, data: bytes) -> str:
        text = self._cleaner.feed(data)
        return self._redactor.feed(text) if self._redactor is not None and text else text

    def flush(self) -> str:
        text = self._cleaner.flush()
        if self._redactor is None:
            return text
        return self._redactor.feed(text) + self._redactor.flush()


def _safe_cut(buf: bytearray) -> int:
    """Where a long line may be cut: not inside an escape sequence, a UTF-8 sequence or a ``\\r\\n``."""
    cut = len(buf)
    esc = buf.rfind(b"\x1b", max(0, cut - _ESC_LOOKBACK))
    if esc >= 0 and escape_sequence_end(buf, esc) is None:
        cut = esc
    lead = cut
    while lead > 0 and cut - lead < 3 and (buf[lead - 1] & 0xC0) == 0x80:  # continuation bytes
        lead -= 1
    if lead > 0 and buf[lead - 1] >= 0xC0:  # the lead byte of a sequence ending at or after ``cut``
        size = 2 if buf[lead - 1] < 0xE0 else 3 if buf[lead - 1] < 0xF0 else 4
        if cut - (lead - 1) < size:
            cut = lead - 1
    while cut > 0 and buf[cut - 1] in (0x0D, 0x08):  # keep \r (before a possible \n) and backspaces
        cut -= 1
    return cut or len(buf)
