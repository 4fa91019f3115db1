"""Exit codes for ECS Exec: wrap the command so the shell prints a per-run sentinel, then strip it.

ECS Exec never reports the command's exit status (the agent always records 0, see
docs/ssm-protocol.md §7.3). When the container has a shell we run

    sh -c '(
    <command>
    )
    printf '\\n%s%s%s\\n' <left> <right> "$?"'

and look for ``\\n<left><right><digits>\\n`` in the output. The sentinel is random per run, so the
command's output cannot forge it without knowing it, and it is *split in two* inside the command text,
so even a command that prints its own command line (``ps``, ``/proc/self/cmdline``) never shows the
joined sentinel. The subshell makes ``exit 3`` report 3 instead of skipping ``printf``; newlines (not
``;``) around the command keep a trailing ``# comment`` or ``&`` from swallowing or backgrounding it.

With a deadline (``wrap(command, deadline_s=N)``), the command also ends on its own at N seconds even if
the bot's TerminateSession is lost (the bot crashed, the network went): when the container has a working
``timeout`` it runs as ``timeout -s KILL N sh -c "$1"``, else (no ``timeout``) as before, without one.
``set -m`` (job control, since the PTY is a terminal) makes that a foreground job in its own process
group: the bot's Ctrl-C still reaches the command and everything it started, and at the deadline
coreutils' ``timeout`` kills the whole group, pipelines and children included (BusyBox's kills the
command's own process only). The command text is passed as ``$1``, never spliced into the script; the
status of whichever branch ran goes to the same sentinel line (137 = killed at the deadline; the shell
also prints "Killed").
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

    def wrap(self, command: str, *, deadline_s: int | None = None) -> str:
        """The command string for ExecuteCommand; the agent shlex-splits it into ``sh``, ``-c``, script
        (and, with a deadline, ``sh`` and the command as ``$0`` and ``$1``)."""
        report = f"printf '\\n%s%s%s\\n' {self.left} {self.right} \"$?\""
        if deadline_s is None:
            return shlex.join(["sh", "-c", f"(\n{command}\n)\n{report}"])
        n = max(1, int(deadline_s))
        script = (
            "if timeout -s KILL 1 true 2>/dev/null; then\n"
            "set -m 2>/dev/null\n"
            f"timeout -s KILL {n} sh -c \"$1\"\n"
            "else\n"
            # `set --`: the command sees no positional parameters, as in the other branch and without a deadline
            "( __ecsx_command=$1; set --; eval \"$__ecsx_command\"\n)\n"
            "fi\n"
            f"{report}"
        )
        return shlex.join(["sh", "-c", script, "sh", command])

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
        # Hot path (every output message): C-level finds only; Python work is per CR/LF near the end.
        buf = bytes(self._pending) + data if self._pending else bytes(data)
        self._pending.clear()
        if self.marker in buf:
            match = self._pattern.search(buf)
            if match:
                self.exit_code = int(match.group(1))
                return buf[: match.start()] + buf[match.end():]
        keep = self._holdback(buf)
        if keep:
            self._pending += buf[-keep:]
            return buf[:-keep]
        return buf

    def flush(self) -> bytes:
        """End of stream: whatever was held back was not a sentinel after all."""
        out = bytes(self._pending)
        self._pending.clear()
        return out

    def _holdback(self, buf: bytes) -> int:
        """Length of the longest suffix of ``buf`` that may still grow into a full sentinel line.

        Only two shapes qualify: a newline followed by the start of the marker, or newline bytes at the
        very end; both are found with C-level searches, so ordinary line-by-line output stays cheap.
        """
        window = len(self.marker) + 2 + _MAX_DIGITS + 2
        pos = max(0, len(buf) - window)
        probe = b"\n" + self.marker[:1]
        i = buf.find(probe, pos)
        while i != -1:
            start = i - 1 if i > pos and buf[i - 1] == 0x0D else i
            if self._could_start(buf[start:]):
                return len(buf) - start
            i = buf.find(probe, i + 1)
        if buf.endswith(b"\r\n"):
            return 2
        return 1 if buf.endswith((b"\n", b"\r")) else 0

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
