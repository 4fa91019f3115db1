"""One websocket to the data channel: dial, the receive fast path, sends with deadlines, close, resume backoff.

Where frames are handled (docs/ssm-protocol.md §4.2): websockets parses a socket read into frames and
calls ``process_event`` for each, inside the event loop's read callback. Most frames of a session are
output in order; ``DataChannelConnection`` hands each one to a ``FrameSink`` right there, and writes the
acks it collected for the whole read in **one** transport write after the read. Without this, every frame
costs a queue, a switch to the reader task and one ``send()`` per ack. Anything the sink does not take
(handshake, channel_closed, publication notices, fragmented or odd frames) goes to websockets' message
queue for the reader task, and from then on every frame does, in order, until the reader has caught up.

Back-pressure: acks are written without waiting. When the transport's write buffer passes its high-water
mark (the peer stopped reading), the connection stops reading the socket, so it takes no more output it
would owe acks for, and notes when; the session drops the connection if that lasts ``send_timeout``.

This subclasses websockets' asyncio ``ClientConnection`` and relies on how it calls ``process_event``,
``data_received`` and its message assembler (``recv_messages``: ``put``, ``paused``, ``resume``), hence
the websockets pin in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from typing import Any, Protocol
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from bot.ssm.errors import ChannelConnectError

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

_BINARY = Opcode.BINARY
_TEXT = Opcode.TEXT
_FIN_BINARY = 0x82
_MASK_BIT = 0x80
_SHORT = struct.Struct(">BB")
_MEDIUM = struct.Struct(">BBH")
_LONG = struct.Struct(">BBQ")
_KICK = Frame(_BINARY, b"")  # an empty message: the reader's cue to drain held output (see ``kick``)
MAX_BACKOFF = 5.0
_QUEUE_FULL, _WRITES_STALLED, _COALESCING = 1, 2, 4  # why reading is paused


class FrameSink(Protocol):
    def take_frame(self, conn: DataChannelConnection, frame: bytes) -> bool:
        """Handle one complete message now; False: leave it (and every later one) to the reader task."""

    def end_of_read(self, conn: DataChannelConnection) -> bool:
        """Every frame of one socket read was offered: write what is owed for them. True: output came."""


def client_frames(messages: list[bytes], masks: bytes) -> bytes:
    """``messages`` as client-to-server websocket BINARY frames (RFC 6455 §5.2), concatenated.

    Each frame has its own masking key, ``masks[4*i : 4*i + 4]``: one ``os.urandom`` call per batch
    instead of one per frame, still a fresh key per frame as RFC 6455 §5.3 requires.
    """
    parts: list[bytes] = []
    append = parts.append
    for i, message in enumerate(messages):
        mask = masks[4 * i : 4 * i + 4]
        n = len(message)
        if n < 126:
            append(_SHORT.pack(_FIN_BINARY, _MASK_BIT | n))
        elif n < 65536:
            append(_MEDIUM.pack(_FIN_BINARY, _MASK_BIT | 126, n))
        else:
            append(_LONG.pack(_FIN_BINARY, _MASK_BIT | 127, n))
        append(mask)
        append(apply_mask(message, mask))
    return b"".join(parts)


class DataChannelConnection(ClientConnection):
    """A websockets client connection with the receive fast path and ack batching described above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sink: FrameSink | None = None
        self.queued = 0  # messages left to the reader task and not yet handled by it
        self.write_stalled_at: float | None = None  # loop time the write buffer went over its high mark
        self.read_pause = 0.0  # seconds to wait before reading again after a read that carried output
        self._read_pauses = 0  # bit set of the reasons reading is paused (_QUEUE_FULL, ...)
        self._socket_transport: asyncio.Transport | None = None  # under TLS: the transport of the socket

    # --- receive ------------------------------------------------------------------------------

    def process_event(self, event: Any) -> None:
        sink = self.sink
        if sink is not None and self.queued == 0 and self.response is not None:
            opcode = event.opcode
            if (opcode is _BINARY or opcode is _TEXT) and event.fin:
                data = event.data
                if sink.take_frame(self, data if type(data) is bytes else bytes(data)):
                    return
        if self.response is not None and (event.opcode is _BINARY or event.opcode is _TEXT):
            self.queued += 1  # the first frame of a message (continuations follow it into the queue)
        super().process_event(event)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        sink = self.sink
        if sink is not None and sink.end_of_read(self) and self.read_pause:
            # Output paced by the agent (1 KiB per ~1 ms) would wake us once per message: read again only
            # after a short pause, so the next read takes several messages and one ack write answers all.
            self._pause_reading(_COALESCING)
            self.loop.call_later(self.read_pause, self._resume_reading, _COALESCING)

    def message_done(self) -> None:
        """The reader handled one queued message."""
        self.queued -= 1

    def kick(self) -> None:
        """Wake the reader task with an empty message; the fast path stays off until it has run."""
        if not self.recv_messages.closed:
            self.queued += 1
            self.recv_messages.put(_KICK)

    # --- send ---------------------------------------------------------------------------------

    def write_messages(self, messages: list[bytes]) -> None:
        """Write data-channel messages now, in one transport write; never waits (see back-pressure)."""
        if self.protocol.state is not State.OPEN:
            return  # closing: no data frame may follow a close frame; what is unacked is sent again
        self.transport.write(client_frames(messages, os.urandom(4 * len(messages))))

    def pause_writing(self) -> None:
        super().pause_writing()
        self.write_stalled_at = self.loop.time()
        self._pause_reading(_WRITES_STALLED)  # take no more output we would owe acks for

    def resume_writing(self) -> None:
        super().resume_writing()
        self.write_stalled_at = None
        self._resume_reading(_WRITES_STALLED)

    # --- reading paused for any of three reasons ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # websockets' message queue pauses reading when the reader falls behind; it must not resume
        # reading while another reason still holds.
        self.recv_messages.pause = lambda: self._pause_reading(_QUEUE_FULL)
        self.recv_messages.resume = lambda: self._resume_reading(_QUEUE_FULL)
        # Under TLS, asyncio's pause_reading only stops handing decrypted data over: the socket is still
        # read, so every record would still wake us. The coalescing pause also pauses the socket's own
        # transport (an asyncio internal, hence looked up defensively; other loops pause what they pause).
        ssl_protocol = getattr(transport, "_ssl_protocol", None)
        raw = getattr(ssl_protocol, "_transport", None)
        self._socket_transport = raw if isinstance(raw, asyncio.Transport) else None

    def _pause_reading(self, reason: int) -> None:
        if not self._read_pauses:
            with contextlib.suppress(RuntimeError):  # already closing
                self.transport.pause_reading()
        if reason == _COALESCING and self._socket_transport is not None:
            with contextlib.suppress(RuntimeError):
                self._socket_transport.pause_reading()
        self._read_pauses |= reason

    def _resume_reading(self, reason: int) -> None:
        if self._read_pauses & reason:
            self._read_pauses &= ~reason
            if reason == _COALESCING and self._socket_transport is not None:
                with contextlib.suppress(RuntimeError):
                    self._socket_transport.resume_reading()
            if not self._read_pauses:
                with contextlib.suppress(RuntimeError):
                    self.transport.resume_reading()


# --- sends with deadlines (the sender task, the token, the reader's rare acks) ------------------------


class SendStalled(OSError):
    """A frame could not be written within ``send_timeout``: the peer stopped reading (handled as a drop)."""


async def send_frame(ws: ClientConnection, frame: bytes | str, seconds: float) -> None:
    # ws.send waits for the write buffer to drain; a peer that never reads would block it (and with it
    # the deadline checks of the task that sends) forever. It can only wait when the write would cross the
    # transport's high-water mark, so below it the frame goes out without a timer.
    if _cannot_block(ws, len(frame)):
        await ws.send(frame)
        return
    try:
        async with asyncio.timeout(seconds):
            await ws.send(frame)
    except TimeoutError:
        raise SendStalled(f"the peer read nothing for {seconds:g} s") from None


def _cannot_block(ws: ClientConnection, size: int) -> bool:
    try:
        if ws.paused:
            return False
        _low, high = ws.transport.get_write_buffer_limits()
        return ws.transport.get_write_buffer_size() + size + 16 < high  # 16: websocket frame header
    except AttributeError:  # not a websockets asyncio connection: take the timed path
        return False


# --- dial, close, resume ------------------------------------------------------------------------------


async def dial(
    url: str,
    *,
    open_timeout: float,
    ping_interval: float | None,
    ping_timeout: float | None,
    close_timeout: float,
    max_frame_bytes: int,
) -> DataChannelConnection:
    """Open the websocket as the plugin does (§1.2): no subprotocol, no compression, no extra headers."""
    try:
        ws = await connect(
            url,
            compression=None,  # the plugin (gorilla DefaultDialer) never offers permessage-deflate
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=close_timeout,
            max_size=max_frame_bytes,
            # With max_queue=64 a hostile peer can make us hold at most 64 x max_size of unread frames.
            max_queue=64,
            user_agent_header=None,
            create_connection=DataChannelConnection,
        )
    except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        detail = str(exc) or type(exc).__name__
        raise ChannelConnectError(urlsplit(url).netloc or url, detail) from None
    assert isinstance(ws, DataChannelConnection)
    return ws


async def close(ws: ClientConnection, seconds: float) -> None:
    """The closing handshake, bounded; past the bound (or on any error) the TCP connection is aborted."""
    if isinstance(ws, DataChannelConnection):
        ws.sink = None  # nothing arriving from now on changes the session
    try:
        async with asyncio.timeout(seconds):
            await ws.close()
    except (TimeoutError, OSError, websockets.WebSocketException):
        ws.transport.abort()


def backoff(attempt: int, first: float) -> float:
    """Delay before reconnect ``attempt`` (1-based): doubling from ``first``, capped like the plugin's."""
    return min(first * (2 ** (attempt - 1)), MAX_BACKOFF)
