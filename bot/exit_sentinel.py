"""Exit codes for ECS Exec: wrap the command so the shell prints a per-run sentinel, then strip it.

ECS Exec never reports the command's exit status (the agent always records 0, see
/work/shared/ssm-protocol.md §7.3). When the container has a shell we run

    sh -c '(
    <command>
    )
    printf '\\n%s%s%s\\n' <left> <right> "$?"'

and look for ``\\n<left><right><digits>\\n`` in the output. The sentinel is random per run, so the
command's output cannot forge it without knowing it, and it is *split in two* inside the command text,
so even a command that prints its own command line (``ps``, ``/proc/self/cmdline``) never shows the
joined sentinel. The subshell makes ``exit 3`` report 3 instead of skipping ``printf``; newlines (not
``;``) around the command keep a trailing ``# comment`` or ``&`` from swallowing or backgrounding it.
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ExitSentinel:
    left: str
    right: str

    @classmethod
    def random(cls) -> ExitSentinel:
        return cls(left=f"__ecsx_{secrets.token_hex(8)}", right=f"{secrets.token_hex(8)}__")

    @property
    def marker(self) -> bytes:
        return (self.left + self.right).encode("ascii")

    def wrap(self, command: str) -> str:
        """The command string for ExecuteCommand; the agent shlex-splits it into ``sh``, ``-c``, script."""
        script = f"(\n{command}\n)\nprintf '\\n%s%s%s\\n' {self.left} {self.right} \"$?\""
        return shlex.join(["sh", "-c", script])

    def filter(self) -> SentinelFilter:
        return SentinelFilter(self.marker)


_MAX_DIGITS = 3  # exit statuses are 0..255


@dataclass
class SentinelFilter:
    """Streaming filter: passes output through, removes the sentinel line and records the exit code.

    The PTY turns ``\\n`` into ``\\r\\n`` and the sentinel may arrive split across any number of
    messages, so the filter holds back only the longest tail that could still be the start of
    ``\\r\\n<marker><digits>\\r\\n``; everything else is released immediately.
    """

    marker: bytes
    exit_code: int | None = None
    _pending: bytearray = field(default_factory=bytearray)
    _pattern: re.Pattern[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(rb"\r?\n" + re.escape(self.marker) + rb"(\d{1,3})\r?\n")

    def feed(self, data: bytes) -> bytes:
        if self.exit_code is not None:
            return data
        self._pending += data
        buf = bytes(self._pending)
        match = self._pattern.search(buf)
        if match:
            self.exit_code = int(match.group(1))
            self._pending.clear()
            return buf[: match.start()] + buf[match.end():]
        keep = self._holdback(buf)
        out = buf[: len(buf) - keep]
        del self._pending[: len(buf) - keep]
        return out

    def flush(self) -> bytes:
        """End of stream: whatever was held back was not a sentinel after all."""
        out = bytes(self._pending)
        self._pending.clear()
        return out

    def _holdback(self, buf: bytes) -> int:
        """Length of the longest suffix of ``buf`` that may still grow into a full sentinel line."""
        longest = len(self.marker) + 2 + _MAX_DIGITS + 2
        for size in range(min(len(buf), longest), 0, -1):
            if self._could_start(buf[-size:]):
                return size
        return 0

    def _could_start(self, tail: bytes) -> bool:
        if tail == b"\r":
            return True
        if tail.startswith(b"\r\n"):
            rest = tail[2:]
        elif tail.startswith(b"\n"):
            rest = tail[1:]
        else:
            return False
        marker = self.marker
        if len(rest) <= len(marker):
            return marker.startswith(rest)
        if not rest.startswith(marker):
            return False
        after = rest[len(marker):]
        digits = len(after) - len(after.lstrip(b"0123456789"))
        return 0 < digits <= _MAX_DIGITS and after[digits:] in (b"", b"\r")
