"""The task's filesystem at the container's paths: which words of a command name it, and how output shows it.

The local agent runs commands on this machine, in the task's directory (its *root*). In a container
``/var/log/nginx/access.log`` is the task's file; here it is ``<root>/var/log/nginx/access.log``.
``ContainerPaths.map_argv`` rewrites such paths in a command's words before exec, inside ``sh -c '…'``
scripts too (the bot wraps every command in one), and ``OutputUnmapper`` shows ``<root>`` as ``/`` again
in what the command prints. Pure: the agent's PTY (``agent_pty``) applies both.

A view, not a jail (docs/demo.md, "How the stand-in maps container paths"): a path the shell builds at
run time (``d=var; cat /$d/log``) is never seen here, so it names the host's file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The container's own top-level directories. Not /usr, /bin, /dev or /proc: the host's programs and
# devices run the command. Not /tmp or /opt: the host's temp dirs and some Pythons (Homebrew) live there.
CONTAINER_DIRS: tuple[str, ...] = ("/app", "/etc", "/srv", "/var")

# What ends a path inside a word: whitespace, shell syntax (quotes, operators, expansions, escapes), and
# `=`/`:`, after which another path may start (`--file=/var/x`, `PATH=/bin:/var/x`).
_END = r"""\s'"`;|&()<>$\\=:"""
_PATH = re.compile(rf"(?:^|(?<=[{_END}]))/[^{_END}]*")
# The root is pasted into shell scripts unquoted, so it must mean the same to sh as it does here.
_SHELL_SAFE = re.compile(r"/[A-Za-z0-9_./@%+,-]*")
_QUOTING = str.maketrans("", "", "'\"\\")
# `..` as a whole path segment once quotes and backslashes are gone: sh reads `.''.` and `\.\.` as `..`.
_DOTDOT = re.compile(r"(?:^|[^\w.~+-])\.\.(?:$|[^\w.~+-])")


class PathMapError(ValueError):
    """A word whose container paths cannot be mapped safely; the command is not started."""


def container_normpath(path: str) -> str:
    """``path`` resolved as in a chroot without symlinks: ``//``, ``.`` and ``..`` gone, never above ``/``."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class ContainerPaths:
    root: str  # the task's directory on this machine: absolute, normalised
    aliases: tuple[str, ...] = ()  # other spellings of root that output may show (macOS: /private/var/…)
    dirs: tuple[str, ...] = CONTAINER_DIRS

    def map_argv(self, argv: Sequence[str]) -> list[str]:
        return [self.map_word(word) for word in argv]

    def map_word(self, word: str) -> str:
        """``word`` with each container path (``/var/log/x``) at ``<root>/var/log/x``; other text as is."""
        mapped = False

        def one(match: re.Match[str]) -> str:
            nonlocal mapped
            token = match.group()
            if token.startswith("//") and word[match.start() - 1 : match.start()] == ":":
                return token  # a URL's `//host/…` (postgres://app:…@db/app), not a path
            target = self._host_path(token)
            if target is None:
                return token
            mapped = True
            return target

        out = _PATH.sub(one, word)
        if mapped and not _SHELL_SAFE.fullmatch(self.root):
            raise PathMapError(f"the task's directory {self.root!r} has characters a shell would interpret")
        if mapped and _DOTDOT.search(out.translate(_QUOTING)):
            # A `..` the mapping could not resolve (quoted, escaped, after a space in quotes) may climb out
            # of the root at run time.
            raise PathMapError("`..` in a word with a container path is refused: the stand-in cannot tell where "
                               "it leads; write the path without `..`")
        return out

    def _host_path(self, token: str) -> str | None:
        path = container_normpath(token)
        if _under(path, self.root):
            return None  # already the task's own file on this machine
        typed = next((p for p in token.split("/") if p not in ("", ".")), "")
        if not any(_under(path, d) or "/" + typed == d for d in self.dirs):
            return None  # the host's: /usr/bin/env, /dev/null, /proc/…
        root = self.root.rstrip("/")
        if ".." not in token.split("/"):
            return root + token  # as typed, so output maps back to exactly what was typed
        # Chroot semantics: `/var/../../home/x` is the task's /home/x, never the host's. Keep a final `/` or
        # `/.`: what follows the token (`/var/log/..''/x`) must still read as typed.
        tail = next((t for t in ("/", "/.") if token.endswith(t)), "")
        return root + path + tail if path != "/" else root + path + tail.lstrip("/")

    def unmapper(self) -> OutputUnmapper:
        return OutputUnmapper((self.root, *self.aliases))


class OutputUnmapper:
    """Streams a command's output with the task's directory shown as ``/`` (``<root>/var/x`` → ``/var/x``).

    A chunk may end inside a root path, so a tail that could still grow into one is held for the next.
    """

    def __init__(self, roots: Iterable[str]) -> None:
        spellings = {r.rstrip("/").encode() for r in roots}
        self._roots = sorted((s for s in spellings if s), key=len, reverse=True)
        alternatives = b"|".join(re.escape(s) for s in self._roots)
        # Not `<root>-old` nor `<root>2`: a sibling, not the root.
        self._pattern = re.compile(b"(?:" + alternatives + rb")(?![\w.-])/?") if self._roots else None
        self._held = b""

    def feed(self, data: bytes) -> bytes:
        if self._pattern is None:
            return data
        buf = self._held + data
        cut = len(buf) - self._partial_tail(buf)
        # A whole root at the cut needs its next byte (`/` or not) to be replaced right: hold it too.
        while (whole := next((s for s in self._roots if buf[:cut].endswith(s)), None)) is not None:
            cut -= len(whole)
        self._held = buf[cut:]
        return self._replace(buf[:cut])

    def flush(self) -> bytes:
        """What is still held, at the end of the output."""
        held, self._held = self._held, b""
        return self._replace(held)

    def _partial_tail(self, buf: bytes) -> int:
        """Length of the longest end of ``buf`` that is the start of a root (or a whole root)."""
        longest = max(len(s) for s in self._roots)
        for start in range(max(0, len(buf) - longest), len(buf)):
            if buf[start] != 0x2F:  # every root starts with "/"
                continue
            tail = buf[start:]
            if any(s.startswith(tail) for s in self._roots):
                return len(tail)
        return 0

    def _replace(self, data: bytes) -> bytes:
        return self._pattern.sub(b"/", data) if self._pattern is not None and data else data
