"""What a running command has printed so far, for its live message: counters and the last lines. Pure.

The runner feeds it the same bytes as the capture (after the exit sentinel is taken out). It keeps only the
last ``keep_bytes``, and shows only *complete* lines: a line still being written, or one whose start fell
out of the window, could hold half a secret that the redactor would no longer recognise.
"""

from __future__ import annotations

from bot.output.clean import clean_terminal_output


class LiveTail:
    def __init__(self, keep_bytes: int = 4096) -> None:
        self._keep = max(256, keep_bytes)
        self._buf = bytearray()
        self._cut = False  # bytes before the buffer were dropped: its first line is partial
        self.total_bytes = 0
        self.lines = 0
        self._text: str | None = ""

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.total_bytes += len(data)
        self.lines += data.count(b"\n")
        self._buf += data
        if len(self._buf) > self._keep:
            del self._buf[: len(self._buf) - self._keep]
            self._cut = True
        self._text = None

    def text(self, max_lines: int = 5) -> str:
        """The last ``max_lines`` complete lines, cleaned (no ANSI, no CR); "" before the first newline."""
        if self._text is None:
            end = self._buf.rfind(b"\n")
            window = bytes(self._buf[: end + 1]) if end >= 0 else b""
            if self._cut:
                first = window.find(b"\n")
                window = window[first + 1 :] if first >= 0 else b""
            self._text = clean_terminal_output(window)
        lines = self._text.rstrip("\n").split("\n") if self._text.strip("\n") else []
        return "\n".join(lines[-max_lines:])
