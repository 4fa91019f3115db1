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
_WHOLE_DATA_FRAMES = frozenset({0x81, 0x82})  # FIN, no reserved bits, TEXT or BINARY
_CONTROL_FRAMES = frozenset({0x88, 0x89, 0x8A})  # FIN, no reserved bits, CLOSE, PING, PONG


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
        self._own_frames = False  # splitting reads into frames ourselves (see _read_frames)
        self._own_frames_off = False  # something unusual came: websockets parses everything from then on
        self._partial = b""  # the start of a frame whose end has not arrived yet
        self._bypass_sink = False
        limit = getattr(self.protocol, "max_message_size", None)  # connect(max_size=...)
        self._max_size: int = limit if isinstance(limit, int) else 1 << 20

    # --- receive ------------------------------------------------------------------------------

    def process_event(self, event: Any) -> None:
        sink = self.sink
        if sink is not None and self.queued == 0 and self.response is not None and not self._bypass_sink:
            opcode = event.opcode
            if (opcode is _BINARY or opcode is _TEXT) and event.fin:
                data = event.data
                if sink.take_frame(self, data if type(data) is bytes else bytes(data)):
                    return
        if self.response is not None and (event.opcode is _BINARY or event.opcode is _TEXT):
            self.queued += 1  # the first frame of a message (continuations follow it into the queue)
        super().process_event(event)

    def data_received(self, data: bytes) -> None:
        if self._own_frames or self._can_read_own_frames():
            self._read_frames(data)
        else:
            super().data_received(data)
        sink = self.sink
        if sink is not None and sink.end_of_read(self) and self.read_pause:
            # Output paced by the agent (1 KiB per ~1 ms) would wake us once per message: read again only
            # after a short pause, so the next read takes several messages and one ack write answers all.
            self._pause_reading(_COALESCING)
            self.loop.call_later(self.read_pause, self._resume_reading, _COALESCING)

    # --- our own frame reader for the common case ------------------------------------------------

    def _can_read_own_frames(self) -> bool:
        # Only from a frame boundary: websockets' reader must hold nothing (it has parsed the handshake
        # response and every byte after it). From then on it only ever gets complete frames from us.
        if self.sink is None or self.protocol.state is not State.OPEN or self._own_frames_off:
            return False
        reader = getattr(self.protocol, "reader", None)
        if getattr(reader, "buffer", None) != b"":
            return False
        self._own_frames = True
        return True

    def _read_frames(self, data: bytes) -> None:
        """Split a read into frames ourselves (websockets' generator-based parser costs several times more
        per frame): complete unfragmented data frames go to the sink; complete control frames, and data
        frames the sink leaves to the reader, go to websockets one whole frame at a time. Anything else
        (fragments, reserved bits, a masked or oversized frame, a closing connection) goes to websockets
        with the rest of the stream, for good."""
        buf = self._partial + data if self._partial else data
        n = len(buf)
        pos = 0
        sink = self.sink
        while pos + 2 <= n:
            b0 = buf[pos]
            length = buf[pos + 1]
            if length & 0x80 or self.protocol.state is not State.OPEN:  # a masked server frame is an error
                return self._hand_over_rest(buf[pos:])
            head = 2
            if length == 126:
                if pos + 4 > n:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if pos + 10 > n:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            control = b0 in _CONTROL_FRAMES
            if length > (125 if control else self._max_size) or not (control or b0 in _WHOLE_DATA_FRAMES):
                return self._hand_over_rest(buf[pos:])  # before buffering a frame we would refuse
            end = pos + head + length
            if end > n:
                break
            if control or sink is None or self.queued or not sink.take_frame(self, buf[pos + head : end]):
                self._to_websockets(buf[pos:end])
            pos = end
        self._partial = buf[pos:] if pos < n else b""

    def _to_websockets(self, frame: bytes) -> None:
        self._bypass_sink = True  # the sink has seen (or must not see) this frame: queue it
        try:
            super().data_received(frame)
        finally:
            self._bypass_sink = False

    def _hand_over_rest(self, rest: bytes) -> None:
        self._own_frames, self._own_frames_off, self._partial = False, True, b""
        self._to_websockets(rest)

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
