"""What produces a session's output: a real command in a PTY, or synthetic bytes for benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shlex
import signal
import struct
import termios
from collections.abc import Mapping
from typing import Protocol

from standins.agent_output import CHUNK_SIZE, synthetic_chunk
from standins.agent_paths import ContainerPaths, OutputUnmapper, PathMapError


class SourceStartError(Exception):
    """The command could not be started; the text is what the agent shows the user."""


class OutputSource(Protocol):
    async def start(self) -> None: ...
    async def read(self) -> bytes: ...  # b"" once the output has ended
    def write(self, data: bytes) -> None: ...  # stdin
    def resize(self, cols: int, rows: int) -> None: ...
    def kill(self) -> None: ...
    async def close(self) -> None: ...


def agent_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment the agent gives the command: TERM forced, LANG defaulted (AGENT shell_unix.go)."""
    env = {**base, **extra}
    env["TERM"] = "xterm-256color"
    env.setdefault("LANG", "C.UTF-8")
    return env


def _take_controlling_tty() -> None:  # pragma: no cover - runs in the child between fork and exec
    # After setsid() the child has no terminal; making the PTY its controlling terminal puts it in
    # the PTY's foreground process group, so a "\x03" written by the client becomes SIGINT.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def container_paths(root: str) -> ContainerPaths:
    """The task's directory as the container's ``/``, with the other spelling output may show (a symlinked
    temp dir: macOS's /var → /private/var)."""
    absolute = os.path.abspath(root)
    real = os.path.realpath(absolute)
    return ContainerPaths(absolute, aliases=(real,) if real != absolute else ())


class PtyProcess:
    """``command`` shlex-split and exec'd (no shell, like the agent in a container) on a new PTY.

    With ``paths``, container paths in its words are the task's files (``agent_paths``), and output shows
    them as the container would.
    """

    def __init__(self, command: str, *, cwd: str, env: Mapping[str, str], paths: ContainerPaths | None = None) -> None:
        self._argv = shlex.split(command)
        self._cwd = cwd
        self._env = dict(env)
        self._paths = paths
        self._unmapper: OutputUnmapper | None = paths.unmapper() if paths else None
        self._master: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pending_input = bytearray()
        self._exited: asyncio.Future[int] | None = None
        self._killed = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        if not self._argv:
            raise SourceStartError("Unable to start command: the command is empty.")
        try:
            argv = self._paths.map_argv(self._argv) if self._paths else self._argv
        except PathMapError as exc:
            raise SourceStartError(f"Unable to start command: {exc}") from None
        master, slave = os.openpty()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=self._cwd,
                env=self._env,
                start_new_session=True,
                preexec_fn=_take_controlling_tty,
            )
        except OSError as exc:
            os.close(master)
            # Same wording as the agent's StdErr message for a command that cannot start.
            raise SourceStartError(f"Unable to start command: {exc}") from None
        finally:
            os.close(slave)  # only the child holds the slave now, so its exit gives EIO on the master
        os.set_blocking(master, False)
        self._master = master

    async def read(self) -> bytes:
        if self._unmapper is None:
            return await self._read_pty()
        while data := await self._read_pty():
            if shown := self._unmapper.feed(data):
                return shown
        return self._unmapper.flush()  # then b"": flush empties it

    async def _read_pty(self) -> bytes:
        fd, proc = self._master, self._proc
        if fd is None or proc is None:
            return b""
        loop = asyncio.get_running_loop()
        if self._exited is None:
            self._exited = asyncio.ensure_future(proc.wait())
        while True:
            try:
                return os.read(fd, CHUNK_SIZE)
            except BlockingIOError:
                if self._exited.done():
                    # The command is gone and its output drained. A background child may still hold
                    # the PTY open (no EIO ever): the session ends with the command, as it should.
                    return b""
            except OSError as exc:
                if exc.errno == errno.EIO:  # every slave fd is closed: the command has ended
                    return b""
                raise
            readable = loop.create_future()
            loop.add_reader(fd, _resolve, readable)
            try:
                await asyncio.wait({readable, self._exited}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                loop.remove_reader(fd)
                readable.cancel()

    def write(self, data: bytes) -> None:
        if self._master is None:
            return
        self._pending_input += data
        self._flush_input()

    def _flush_input(self) -> None:
        fd = self._master
        if fd is None:
            return
        loop = asyncio.get_running_loop()
        loop.remove_writer(fd)
        while self._pending_input:
            try:
                written = os.write(fd, self._pending_input)
            except BlockingIOError:
                # The PTY's input queue is full (the command is not reading): retry when it drains.
                loop.add_writer(fd, self._flush_input)
                return
            except OSError:
                self._pending_input.clear()  # the command is gone; nobody will read this
                return
            del self._pending_input[:written]

    def resize(self, cols: int, rows: int) -> None:
        if self._master is not None:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def kill(self) -> None:
        # The whole process group (the command ran as a session leader), even after the command
        # itself exited: background children it left behind go too, as when the agent ends a session.
        if self._proc is not None and not self._killed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._killed = self._proc.returncode is not None

    async def close(self) -> None:
        self.kill()
        if self._master is not None:
            loop = asyncio.get_running_loop()
            loop.remove_writer(self._master)
            os.close(self._master)
            self._master = None
        if self._proc is not None:
            await self._proc.wait()
        if self._exited is not None:
            await self._exited


class SyntheticSource:
    """Deterministic numbered lines (``agent_output.synthetic_output``), as fast as they are acked.

    ``b"\\x03"`` on stdin stops it, like Ctrl-C stops a command.
    """

    def __init__(self, total_bytes: int, interval: float = 0.0) -> None:
        self._total = total_bytes
        self._interval = interval
        self._index = 0
        self._stopped = False

    async def start(self) -> None:
        return None

    async def read(self) -> bytes:
        if self._stopped:
            return b""
        if self._interval and self._index:
            await asyncio.sleep(self._interval)
        chunk = synthetic_chunk(self._index, self._total)
        self._index += 1
        if self._index % 64 == 0:
            await asyncio.sleep(0)  # let acks and input in between long bursts
        return chunk

    def write(self, data: bytes) -> None:
        if b"\x03" in data:
            self._stopped = True

    def resize(self, cols: int, rows: int) -> None:
        return None

    def kill(self) -> None:
        self._stopped = True

    async def close(self) -> None:
        self._stopped = True
