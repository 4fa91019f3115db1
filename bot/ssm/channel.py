"""The SSM Session Manager data-channel client: one ECS Exec session over a websocket.

Protocol reference: docs/ssm-protocol.md (sections in comments below). Per connection:

- the *receive fast path* (``take_frame``, called by ``connection.DataChannelConnection`` for each frame of
  a socket read) handles output and acks once the handshake question is settled: deliver in order, keep
  what arrives ahead in the ``Inbox`` (acked), re-ack duplicates (§11.1); the acks of one read go out in
  one write (``end_of_read``);
- the *reader* task handles everything else, in arrival order: the handshake, channel_closed, publication
  notices, and every frame that arrives while it still has something queued;
- the *sender* task owns everything sequenced that goes out (handshake replies, Size, stdin): it puts new
  messages on the wire, retransmits the oldest unacked one on RTO (§4.3), and enforces the deadlines.

A dropped connection is resumed with ``ssm:ResumeSession`` and a new token while all sequence state is
kept (§1.2). Giving up for any reason calls ``ssm:TerminateSession`` first, so no command is left running
unobserved (§11.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode

from bot.errors import DataChannelError
from bot.ssm import connection as wsconn
from bot.ssm import handshake as hs
from bot.ssm.connection import DataChannelConnection, SendStalled, send_frame
from bot.ssm.control import SessionControl
from bot.ssm.errors import (
    AgentClosedError,
    ChannelConnectError,
    ConnectionLostError,
    DeadlineError,
    EncryptionError,
    HandshakeError,
    KmsAccessError,
    KmsRequiredError,
    SessionExpiredError,
    TokenRejectedError,
)
from bot.ssm.frames import (
    FrameError,
    MessageType,
    OutputAckEncoder,
    PayloadType,
    decode_message,
    encode_ack_fields,
    encode_message,
    parse_ack,
    peek_output,
)
from bot.ssm.inbox import Inbox
from bot.ssm.kms import DataKeyProvider, SessionCipher, data_key_context
from bot.ssm.outbox import Outbox

__all__ = [
    "ChannelConfig",
    "ChannelResult",
    "DataChannelSession",
    "DataKeyProvider",
    "SessionControl",
    "SessionParams",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

CLIENT_VERSION = "1.2.650.0"  # a released plugin version >= 1.2.312.0 (no output-separation notice, §1.2)
_OUTPUT = MessageType.OUTPUT_STREAM_DATA
_ACK = MessageType.ACKNOWLEDGE
_INPUT = MessageType.INPUT_STREAM_DATA
_STDOUT = int(PayloadType.OUTPUT)
_STDERR = int(PayloadType.STDERR)
_EXIT_CODE = int(PayloadType.EXIT_CODE)
# Payload types the receive fast path handles itself: output, and types that carry nothing for a shell
# session (still acked). The handshake payloads (5, 7, 8) go to the reader task, in order.
_FAST_TYPES = frozenset(int(t) for t in PayloadType if t not in (
    PayloadType.HANDSHAKE_REQUEST, PayloadType.HANDSHAKE_COMPLETE, PayloadType.ENC_CHALLENGE_REQUEST))
# Errors after which TerminateSession is pointless: the service already ended the session.
_SESSION_ALREADY_OVER = (AgentClosedError, SessionExpiredError)


@dataclass(frozen=True)
class SessionParams:
    session_id: str
    stream_url: str
    token: str
    target: str | None = None  # "ecs:<clusterName>_<taskId>_<runtimeId>", required for KMS sessions


@dataclass(frozen=True)
class ChannelConfig:
    """Deadlines (seconds) per phase and limits. Every wait of the session is bounded by one of these."""

    client_version: str = CLIENT_VERSION
    terminal_cols: int = 200
    terminal_rows: int = 50
    connect_timeout: float = 30.0  # one websocket opening handshake
    connect_attempts: int = 3  # first connection, same token (the plugin retries its first dial too)
    first_message_timeout: float = 60.0  # token sent -> first message on that connection
    idle_timeout: float = 1200.0  # nothing received (ECS Exec's own idle timeout is 20 min)
    input_ack_timeout: float = 300.0  # oldest input unacked (the plugin gives up after 3000 x 100 ms)
    close_timeout: float = 10.0  # terminate() -> channel_closed
    control_timeout: float = 30.0  # one ResumeSession / TerminateSession / GenerateDataKey call
    resume_attempts: int = 5  # reconnects per session
    resume_backoff: float = 0.2  # first delay before a reconnect; doubles, capped at 5 s
    handshake_grace: float = 1.0  # no HandshakeRequest by then -> assume ECS's no-handshake path
    ping_interval: float | None = 30.0  # websocket keepalive; a missing pong counts as a dropped connection
    ping_timeout: float | None = 30.0
    tick: float = 0.1  # retransmission scheduler period (plugin ResendSleepInterval)
    reorder_window: int = 8192  # out-of-order messages kept (~1 KiB each); beyond it: dropped unacked
    reorder_bytes: int = 16 << 20  # ... and their payload bytes: frames may be up to max_frame_bytes each
    # A message further ahead than this cannot be real (the agent keeps at most 100000 unacked): dropped.
    reorder_max_gap: int = 100_000
    # websocket max_size; agent payloads are ~1 KiB (§9). A hostile peer can make us hold at most
    # 64 (the reader's queue) x 256 KiB = 16 MiB of unread frames per session.
    max_frame_bytes: int = 256 * 1024
    # After a read that carried output, wait this long before reading again: output paced by the agent
    # (1 KiB per ~1 ms, §9) then arrives ~10 messages per read, answered by one ack write (measured: half
    # the CPU per MiB of reading every message as it comes). Output and acks wait at most this long; the
    # agent's RTO stays above it (its smoothed RTT plus at least 10 ms, §4.3). 0: read as data comes.
    read_pause: float = 0.010
    send_timeout: float = 30.0  # one frame onto the socket; a peer that stops reading is a dropped connection
    max_unacked_input: int = 10000
    stdin_chunk: int = 1024  # StdinBufferLimit


@dataclass
class ChannelResult:
    closed_output: str  # channel_closed Output ("" on a normal end)
    bytes_received: int
    messages_received: int
    encrypted: bool
    resumes: int
    terminated: bool = False  # terminate() was called before the session ended
    customer_message: str = ""  # HandshakeComplete CustomerMessage, e.g. "This session is encrypted..."
    exit_code: int | None = None  # only NonInteractiveCommands sessions send one (§7.3); ECS Exec never does
    # Sequence numbers never received although later ones were, when channel_closed came: the agent gave up
    # resending them (it waits only ~2 s for acks at the end, §7.2), so the output has a hole. 0 = complete.
    missing_messages: int = 0


class _Handshake(enum.Enum):
    UNKNOWN = "unknown"  # nothing heard yet
    ASSUMED_NONE = "assumed-none"  # grace passed without a HandshakeRequest: input is sent tentatively
    NONE = "none"  # output arrived without a handshake (ECS Exec without KMS)
    IN_PROGRESS = "in-progress"
    COMPLETE = "complete"


_READY = frozenset({_Handshake.ASSUMED_NONE, _Handshake.NONE, _Handshake.COMPLETE})


@dataclass
class _Dropped:
    reason: str
    got_message: bool


@dataclass
class _Ended:
    closed_output: str = ""


@dataclass
class _State:
    next_seq: int = 0  # our next input_stream_data sequence number
    bytes_received: int = 0
    messages_received: int = 0


_ConnectionClosed = websockets.ConnectionClosed  # bound once: the lazy module attribute costs µs per use


async def _send_ack(ws: ClientConnection, frame: bytes, seconds: float) -> None:
    """Acknowledge a message; a socket that closed meanwhile is not a reason to stop reading.

    The agent closes right after ``channel_closed``: an ack for a message received just before may find
    the socket closed while ``channel_closed`` is still queued, unread. Reading on delivers it (or ends
    in a drop, after which a resume gets the unacked message again).
    """
    try:
        await send_frame(ws, frame, seconds)
    except _ConnectionClosed:
        pass


class DataChannelSession:
    def __init__(
        self,
        params: SessionParams,
        *,
        on_output: Callable[[bytes], None],
        control: SessionControl,
        data_keys: DataKeyProvider | None = None,
        config: ChannelConfig = ChannelConfig(),  # noqa: B008 - frozen dataclass, shared safely
    ) -> None:
        self._params = params
        self._on_output = on_output
        self._control = control
        self._data_keys = data_keys
        self._cfg = config
        self._client_id = str(uuid.uuid4())
        self._st = _State()
        self._inbox = Inbox(
            max_messages=config.reorder_window, max_bytes=config.reorder_bytes, max_gap=config.reorder_max_gap
        )
        self._outbox = Outbox(config.max_unacked_input)
        self._acks = OutputAckEncoder()
        self._owed: list[bytes] = []  # acks for the frames of the current socket read (fast path)
        self._progressed = False  # the current read delivered in-order output
        self._fatal: BaseException | None = None  # raised in the fast path; the reader raises it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stdin: deque[bytes] = deque()  # waiting for the agent to be ready
        self._tentative: list[bytes] = []  # stdin sent before we knew whether a handshake would come
        self._size_sent = False
        self._handshake = _Handshake.UNKNOWN
        self._cipher: SessionCipher | None = None
        self._paused = False
        self._customer_message = ""
        self._exit_code: int | None = None
        self._resumes = 0
        self._failure: DataChannelError | None = None  # raised by the sender once its reply is on the wire
        self._terminated = False  # TerminateSession called (or in flight: the service may close first)
        self._terminate_at: float | None = None  # when it succeeded: start of the close deadline
        self._wake = asyncio.Event()
        self._last_progress = 0.0
        self._conn_started = 0.0
        self._first_conn_at = 0.0
        self._conn_got_message = False
        self._closed = False

    # --- public API -----------------------------------------------------------------------------

    async def run(self) -> ChannelResult:
        """Stream the session until ``channel_closed``; raise a ``DataChannelError`` subclass otherwise."""
        try:
            return await self._run()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if not isinstance(exc, _SESSION_ALREADY_OVER) and not self._terminated:
                await self._terminate_quietly(exc)
            raise
        finally:
            self._closed = True

    def send_input(self, data: bytes) -> None:
        """Queue stdin bytes (e.g. b"\\x03" for Ctrl-C). Allowed before the first output (§11.4)."""
        if self._closed or not data:
            return
        step = self._cfg.stdin_chunk
        for i in range(0, len(data), step):
            chunk = data[i : i + step]
            if self._handshake in _READY:
                self._queue_stdin(chunk)
            else:
                if len(self._stdin) >= self._cfg.max_unacked_input:
                    raise DataChannelError(
                        "Too much input is queued for a session that has not started yet.",
                        fix="Wait for the command's first output before sending more input.",
                    )
                self._stdin.append(chunk)
        self._wake.set()

    async def terminate(self) -> None:
        """``ssm:TerminateSession``; ``run()`` then ends at ``channel_closed`` or after ``close_timeout``."""
        if self._terminated:
            return
        self._terminated = True
        try:
            await self._bounded(self._control.terminate_session(self._params.session_id), "TerminateSession")
        except BaseException:
            # Not terminated after all (e.g. no ssm:TerminateSession): keep streaming, so the caller can
            # still interrupt with b"\x03" and run() still ends on its own deadlines.
            self._terminated = False
            raise
        if self._terminate_at is None:
            self._terminate_at = asyncio.get_running_loop().time()
        self._wake.set()

    # --- connection lifecycle -------------------------------------------------------------------

    async def _run(self) -> ChannelResult:
        cfg = self._cfg
        self._loop = loop = asyncio.get_running_loop()
        self._last_progress = loop.time()
        token = self._params.token
        dial_failures = 0
        connected_once = False
        last_drop: _Dropped | None = None
        while True:
            try:
                ws = await self._dial()
            except ChannelConnectError as exc:
                if not connected_once:
                    dial_failures += 1
                    if dial_failures >= cfg.connect_attempts:
                        raise
                    await asyncio.sleep(self._backoff(dial_failures))
                    continue
                last_drop = _Dropped(exc.message, got_message=False)
                ws = None
            if ws is not None:
                connected_once = True
                outcome = await self._serve(ws, token)
                if isinstance(outcome, _Ended):
                    return self._result(outcome.closed_output)
                last_drop = outcome
            assert last_drop is not None
            if self._terminated:
                return self._result("")  # we asked for the end; the socket closing is part of it
            self._resumes += 1
            if self._resumes > cfg.resume_attempts:
                if self._st.messages_received == 0 and not last_drop.got_message:
                    raise TokenRejectedError(last_drop.reason)
                raise ConnectionLostError(f"{cfg.resume_attempts} reconnects used; last: {last_drop.reason}")
            log.info(
                "data channel dropped (%s); resuming session %s (%d/%d)",
                last_drop.reason,
                self._params.session_id,
                self._resumes,
                cfg.resume_attempts,
            )
            await asyncio.sleep(self._backoff(self._resumes))
            new_token = await self._bounded(self._control.resume_session(self._params.session_id), "ResumeSession")
            if not new_token:
                # Over while we were away: finished or terminated, we cannot tell which (the service only
                # says so in channel_closed, which the drop took). Whoever knows more (the runner's exit
                # sentinel) decides whether the output is complete; we say what we had.
                raise SessionExpiredError(
                    self._params.session_id,
                    f"{self._st.bytes_received:,} bytes of output received; the drop: {last_drop.reason}",
                )
            token = new_token

    def _backoff(self, attempt: int) -> float:
        return wsconn.backoff(attempt, self._cfg.resume_backoff)

    async def _dial(self) -> ClientConnection:
        cfg = self._cfg
        return await wsconn.dial(
            self._params.stream_url,
            open_timeout=cfg.connect_timeout,
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_timeout,
            close_timeout=min(cfg.close_timeout, 5.0),
            max_frame_bytes=cfg.max_frame_bytes,
        )

    async def _serve(self, ws: ClientConnection, token: str) -> _Ended | _Dropped:
        loop = asyncio.get_running_loop()
        self._conn_got_message = False
        self._conn_started = loop.time()
        if not self._first_conn_at:
            self._first_conn_at = self._conn_started
        self._outbox.requeue_all()  # in flight on a previous socket = presumed lost
        try:
            await send_frame(
                ws,
                hs.open_data_channel_input(
                    token=token,
                    request_id=str(uuid.uuid4()),
                    client_id=self._client_id,
                    client_version=self._cfg.client_version,
                ),
                self._cfg.send_timeout,
            )
        except websockets.ConnectionClosed as exc:
            return _Dropped(f"closed while sending the token: {exc}", got_message=False)
        except OSError as exc:
            return _Dropped(f"could not send the token: {exc}", got_message=False)
        log.debug("data channel open for session %s", self._params.session_id)
        if isinstance(ws, DataChannelConnection):
            ws.read_pause = self._cfg.read_pause
            ws.sink = self
        reader = asyncio.create_task(self._read_loop(ws))
        sender = asyncio.create_task(self._send_loop(ws))
        try:
            done, _ = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, sender):
                if not task.done():
                    task.cancel()
            await asyncio.gather(reader, sender, return_exceptions=True)
            await self._close_socket(ws)
        # The reader's outcome wins when both finished: it is the one that saw channel_closed.
        first = reader if reader in done else sender
        return first.result()

    async def _close_socket(self, ws: ClientConnection) -> None:
        await wsconn.close(ws, min(self._cfg.close_timeout, 5.0))

    # --- receive path: the fast path (called by the connection, inside its read callback) ---------

    def take_frame(self, conn: DataChannelConnection, frame: bytes) -> bool:
        handshake = self._handshake
        if (handshake is not _Handshake.NONE and handshake is not _Handshake.COMPLETE) or self._fatal is not None:
            return False  # until we know whether a handshake comes, everything goes the reader's way
        try:
            peeked = peek_output(frame)
            if peeked is None:
                return self._take_other(frame)
            seq, ptype, mid, payload = peeked
            self._conn_got_message = True
            inbox = self._inbox
            if seq == inbox.expected:
                if ptype not in _FAST_TYPES:
                    return False
                inbox.expected = seq + 1  # advance first: output shown is output counted (§11.3)
                self._deliver(ptype, payload)
                self._owed.append(self._acks.encode(mid, seq, time.time_ns() // 1_000_000))
                self._progressed = True
                while (held_type := inbox.peek_type()) is not None:
                    if held_type not in _FAST_TYPES:
                        conn.kick()  # a held handshake payload is next: the reader takes it from here
                        break
                    entry = inbox.pop_next()
                    assert entry is not None
                    self._deliver(entry[0], entry[1])
            elif seq > inbox.expected:
                if inbox.hold(seq, ptype, payload):
                    self._owed.append(self._acks.encode(mid, seq, time.time_ns() // 1_000_000))
                # else: full or absurdly far ahead: dropped unacked, the agent resends it
            else:
                # Already delivered: our ack was lost. The agent resends only its oldest unacked message,
                # so staying silent here would stall the whole stream (§11.1).
                self._owed.append(self._acks.encode(mid, seq, time.time_ns() // 1_000_000))
        except Exception as exc:  # the reader raises it: nothing may escape into the event loop's callback
            self._fatal = exc
            conn.kick()
        return True

    def _take_other(self, frame: bytes) -> bool:
        try:
            m = decode_message(frame)
        except FrameError as exc:
            log.debug("dropping a malformed frame without ack: %s", exc)
            return True  # not acked: the agent will resend it
        if m.message_type != _ACK:
            return False
        self._conn_got_message = True
        self._on_ack(m.payload)
        return True

    def _deliver(self, ptype: int, payload: bytes) -> None:
        """In-order output, still encrypted if the session is (fast path and reader alike)."""
        if ptype == _STDOUT or ptype == _STDERR:
            if self._cipher is not None:
                payload = self._cipher.decrypt(payload)
            st = self._st
            st.messages_received += 1
            st.bytes_received += len(payload)
            self._on_output(payload)
        elif ptype == _EXIT_CODE:
            if self._cipher is not None:
                payload = self._cipher.decrypt(payload)
            self._st.messages_received += 1
            self._exit_code = _parse_exit_code(payload)
        # other payload types carry nothing for a shell-style session; they are still acked

    def end_of_read(self, conn: DataChannelConnection) -> bool:
        if not self._owed:
            return False
        owed, self._owed = self._owed, []
        conn.write_messages(owed)
        if self._progressed:
            # Only in-order delivery is progress: an agent that keeps sending later or duplicate messages
            # but never the missing one is stuck (idle deadline).
            self._progressed = False
            if self._loop is not None:
                self._last_progress = self._loop.time()
        return True

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = parse_ack(payload)
        except FrameError as exc:
            log.debug("ignoring unreadable acknowledge: %s", exc)
            return
        assert self._loop is not None
        now = self._loop.time()
        if self._outbox.acknowledge(ack.sequence_number, now):
            # Only an ack of something outstanding is progress: a flood of acks for nothing must not hold
            # the idle deadline off forever.
            self._last_progress = now
            self._wake.set()

    # --- receive path: the reader task ------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> _Ended | _Dropped:
        fast = ws if isinstance(ws, DataChannelConnection) else None
        try:
            async for frame in ws:
                try:
                    outcome = await self._read_one(ws, fast, frame)
                finally:
                    if fast is not None:
                        fast.message_done()
                if outcome is not None:
                    return outcome
        except websockets.ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # A protocol violation, not a network drop: resuming would only get the same frame again.
                raise FrameError(f"a message larger than {self._cfg.max_frame_bytes:,} bytes") from None
            return _Dropped(f"connection closed: {_why(exc)}", self._conn_got_message)
        except OSError as exc:
            return _Dropped(f"connection error: {_why(exc)}", self._conn_got_message)
        return _Dropped("connection closed by the service", self._conn_got_message)

    async def _read_one(
        self, ws: ClientConnection, fast: DataChannelConnection | None, frame: bytes | str
    ) -> _Ended | None:
        """One message the fast path left to us, with the full rules (§4.2)."""
        if self._fatal is not None:
            raise self._fatal
        if isinstance(frame, str):  # the plugin parses text frames the same way
            frame = frame.encode("utf-8")
        if not frame:  # the fast path's cue (or an empty message, which means nothing): drain held output
            await self._drain_held()
            return None
        if fast is not None and self.take_frame(fast, frame):
            # Output queued behind a slow message (or while the loop was too busy to keep up): handled as
            # the fast path would, without a send to await per ack, so the queue drains in one go and
            # the fast path takes over again.
            self.end_of_read(fast)
            return None
        try:
            m = decode_message(frame)
        except FrameError as exc:
            log.debug("dropping a malformed frame without ack: %s", exc)
            return None  # not acked: the agent will resend it
        mtype = m.message_type
        self._conn_got_message = True
        send_timeout = self._cfg.send_timeout
        if mtype == _OUTPUT:
            inbox = self._inbox
            seq = m.sequence_number
            if seq == inbox.expected:
                self._last_progress = asyncio.get_running_loop().time()
                inbox.advance()
                await self._process(m.payload_type, m.payload)
                await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
                await self._drain_held()
            elif seq > inbox.expected:
                if inbox.hold(seq, m.payload_type, m.payload):
                    await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
                # else: full (or absurdly far ahead): dropped unacked, the agent resends it
            else:
                # A duplicate: re-ack it (§11.1).
                await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
        elif mtype == _ACK:
            self._on_ack(m.payload)
        elif mtype == MessageType.CHANNEL_CLOSED:
            closed = hs.parse_channel_closed(m.payload)
            log.info("channel_closed for session %s: %r", self._params.session_id, closed.output)
            if closed.output:
                raise AgentClosedError(closed.output)
            return _Ended("")
        elif mtype == MessageType.PAUSE_PUBLICATION:
            self._paused = True
        elif mtype == MessageType.START_PUBLICATION:
            self._paused = False
            self._wake.set()
        # other types (agent_session_state, ...) are not for us
        return None

    async def _drain_held(self) -> None:
        """Held messages that have become next, processed exactly like in-order ones (§11.2)."""
        while (entry := self._inbox.pop_next()) is not None:
            await self._process(*entry)

    async def _process(self, ptype: int, payload: bytes) -> None:
        """One in-order message, identical whether it came straight off the wire or out of the buffer."""
        if ptype == _STDOUT or ptype == _STDERR or ptype == _EXIT_CODE:
            if self._handshake is not _Handshake.COMPLETE and self._handshake is not _Handshake.NONE:
                self._become_ready(_Handshake.NONE)
            self._deliver(ptype, payload)
        elif ptype == PayloadType.HANDSHAKE_REQUEST:
            await self._on_handshake_request(payload)
        elif ptype == PayloadType.ENC_CHALLENGE_REQUEST:
            self._on_challenge(payload)
        elif ptype == PayloadType.HANDSHAKE_COMPLETE:
            self._customer_message = hs.parse_handshake_complete(payload).customer_message
            self._become_ready(_Handshake.COMPLETE)

    async def _on_handshake_request(self, payload: bytes) -> None:
        request = hs.parse_handshake_request(payload)
        if self._handshake is _Handshake.ASSUMED_NONE:
            # We guessed "no handshake" and sent input early; the agent discards input until the handshake
            # completes (§4.3), so send Size and that input again afterwards.
            self._stdin.extendleft(reversed(self._tentative))
            self._size_sent = False
        self._tentative = []
        self._handshake = _Handshake.IN_PROGRESS
        processed: list[hs.ProcessedAction] = []
        failure: DataChannelError | None = None
        kms_actions = 0  # one data key per handshake: a peer repeating the action must not buy more KMS calls
        if len(request.actions) > hs.MAX_ACTIONS:
            failure = HandshakeError(f"the agent requested {len(request.actions)} actions")
        for action in request.actions[: hs.MAX_ACTIONS]:
            if action.action_type == hs.ACTION_SESSION_TYPE:
                session_type = str(action.param("SessionType") or "")
                if session_type in hs.STREAM_SESSION_TYPES:
                    processed.append(hs.ProcessedAction(action_type=action.action_type, status=hs.ActionStatus.SUCCESS))
                else:
                    reason = f"Unknown session type {session_type}"
                    processed.append(
                        hs.ProcessedAction(action_type=action.action_type, status=hs.ActionStatus.FAILED, reason=reason)
                    )
                    failure = failure or HandshakeError(f"the agent asked for session type {session_type!r}")
            elif action.action_type == hs.ACTION_KMS and kms_actions == 0:
                kms_actions += 1
                done, error = await self._kms_action(action)
                processed.append(done)
                failure = failure or error
            else:
                reason = f"Unsupported action {action.action_type}"
                processed.append(
                    hs.ProcessedAction(action_type=action.action_type, status=hs.ActionStatus.UNSUPPORTED, reason=reason)
                )
                failure = failure or HandshakeError(f"the agent requested the unsupported action {action.action_type!r}")
        self._queue_data(PayloadType.HANDSHAKE_RESPONSE, hs.handshake_response(self._cfg.client_version, processed))
        if failure is not None:
            # The Failed response makes the agent end the session at once instead of after its 15 s
            # handshake timeout; the sender raises this once the response is on the wire.
            self._failure = failure
            self._wake.set()

    async def _kms_action(self, action: hs.RequestedAction) -> tuple[hs.ProcessedAction, DataChannelError | None]:
        key_id = str(action.param("KMSKeyId") or "")
        challenge = action.param("Challenge")
        challenge = challenge if isinstance(challenge, str) and challenge else None
        error: DataChannelError | None = None
        if self._data_keys is None:
            error = KmsRequiredError(key_id, "the bot has no KMS data-key provider configured")
        elif not self._params.target:
            error = KmsRequiredError(key_id, "the session target (ecs:<cluster>_<taskId>_<runtimeId>) is unknown")
        else:
            context = data_key_context(self._params.session_id, self._params.target, challenge)
            try:
                async with asyncio.timeout(self._cfg.control_timeout):
                    plaintext, blob = await self._data_keys.generate_data_key(key_id, context)
                self._cipher = SessionCipher(plaintext)
            except TimeoutError:
                error = KmsAccessError(key_id, f"no answer within {self._cfg.control_timeout:g} s")
            except DataChannelError as exc:
                error = exc
            else:
                result = hs.kms_action_result(blob, challenge_acknowledged=challenge is not None)
                return hs.ProcessedAction(action_type=hs.ACTION_KMS, status=hs.ActionStatus.SUCCESS, result=result), None
        return (
            hs.ProcessedAction(action_type=hs.ACTION_KMS, status=hs.ActionStatus.FAILED, reason=error.message),
            error,
        )

    def _on_challenge(self, payload: bytes) -> None:
        if self._cipher is None:
            raise EncryptionError("the agent sent an encryption challenge but no data key was agreed")
        plaintext = self._cipher.decrypt(hs.parse_challenge(payload))
        self._queue_data(PayloadType.ENC_CHALLENGE_RESPONSE, hs.challenge_payload(self._cipher.encrypt(plaintext)))

    def _become_ready(self, state: _Handshake) -> None:
        previous = self._handshake
        self._handshake = state
        if state is _Handshake.NONE and previous is _Handshake.ASSUMED_NONE:
            self._tentative = []  # confirmed: the early input was consumed, never resend it
        self._flush_ready()

    # --- send path ------------------------------------------------------------------------------

    def _flush_ready(self) -> None:
        """Once the agent can take input: Size first (§8), then the queued stdin, in order."""
        if not self._size_sent:
            self._size_sent = True
            self._queue_data(PayloadType.SIZE, hs.size_payload(self._cfg.terminal_cols, self._cfg.terminal_rows))
        while self._stdin:
            self._queue_stdin(self._stdin.popleft())

    def _queue_stdin(self, chunk: bytes) -> None:
        if self._handshake is _Handshake.ASSUMED_NONE:
            self._tentative.append(chunk)
        self._queue_data(PayloadType.OUTPUT, self._cipher.encrypt(chunk) if self._cipher else chunk)

    def _queue_data(self, ptype: PayloadType, payload: bytes) -> None:
        if self._outbox.full:
            raise DataChannelError(
                f"More than {self._cfg.max_unacked_input} input messages are waiting for the agent.",
                fix="The agent is not reading input; terminate the session and retry.",
            )
        seq = self._st.next_seq
        self._st.next_seq += 1
        self._outbox.add(seq, encode_message(_INPUT, payload, sequence_number=seq, payload_type=int(ptype)))
        self._wake.set()

    async def _send_loop(self, ws: ClientConnection) -> _Ended | _Dropped:
        loop = asyncio.get_running_loop()
        cfg = self._cfg
        outbox = self._outbox
        try:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # races with the event, leaving this task running after the connection is done.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(cfg.tick):
                        await self._wake.wait()
                self._wake.clear()
                now = loop.time()
                if self._terminate_at is not None and now - self._terminate_at > cfg.close_timeout:
                    log.info("no channel_closed %g s after TerminateSession; ending", cfg.close_timeout)
                    return _Ended("")
                self._check_deadlines(now)
                if self._handshake is _Handshake.UNKNOWN and now - self._first_conn_at > cfg.handshake_grace:
                    # ECS Exec without KMS has no handshake and a silent command sends nothing: input must
                    # not wait for output that may never come (§11.4). If a handshake does come, the
                    # input is sent again after it (see _on_handshake_request).
                    self._become_ready(_Handshake.ASSUMED_NONE)
                stalled_at = getattr(ws, "write_stalled_at", None)
                if stalled_at is not None and now - stalled_at > cfg.send_timeout:
                    # Acks of the fast path are written without waiting; this is their send timeout.
                    raise SendStalled(f"the peer read nothing for {cfg.send_timeout:g} s")
                if not self._paused:  # pause_publication: the remote side is inactive, hold everything
                    for pending in outbox.take_pending():
                        await send_frame(ws, pending.frame, cfg.send_timeout)
                        outbox.mark_sent(pending, loop.time())
                if self._failure is not None:
                    raise self._failure
                due = None if self._paused else outbox.due(now)
                if due is not None:
                    await send_frame(ws, due.frame, cfg.send_timeout)  # same bytes: same seq, MessageId and CreatedDate
                    outbox.mark_sent(due, loop.time())
        except websockets.ConnectionClosed as exc:
            return _Dropped(f"connection closed while sending: {_why(exc)}", self._conn_got_message)
        except OSError as exc:
            return _Dropped(f"connection error while sending: {_why(exc)}", self._conn_got_message)

    def _check_deadlines(self, now: float) -> None:
        cfg = self._cfg
        if not self._conn_got_message and now - self._conn_started > cfg.first_message_timeout:
            raise DeadlineError("waiting for the first message from the agent", cfg.first_message_timeout)
        if now - self._last_progress > cfg.idle_timeout:
            raise DeadlineError("waiting for new output or acknowledgements (idle, no progress)", cfg.idle_timeout)
        first_sent = self._outbox.oldest_first_sent()
        if first_sent is not None and not self._paused and now - first_sent > cfg.input_ack_timeout:
            raise DeadlineError("waiting for the agent to acknowledge input", cfg.input_ack_timeout)

    # --- helpers --------------------------------------------------------------------------------

    async def _bounded(self, call: Awaitable[T], action: str) -> T:
        try:
            async with asyncio.timeout(self._cfg.control_timeout):
                return await call
        except TimeoutError:
            raise DeadlineError(f"ssm:{action}", self._cfg.control_timeout) from None

    async def _terminate_quietly(self, cause: BaseException) -> None:
        self._terminated = True
        try:
            await self._bounded(self._control.terminate_session(self._params.session_id), "TerminateSession")
        except Exception as exc:  # the original failure is what the user needs to see
            log.warning("TerminateSession after %r failed: %s", cause, exc)
            cause.add_note(f"ssm:TerminateSession also failed: {exc}")

    def _result(self, closed_output: str) -> ChannelResult:
        missing = self._inbox.missing()
        if missing:
            log.warning(
                "session %s ended with %d output messages never received; the output is incomplete",
                self._params.session_id,
                missing,
            )
        return ChannelResult(
            closed_output=closed_output,
            bytes_received=self._st.bytes_received,
            messages_received=self._st.messages_received,
            encrypted=self._cipher is not None,
            resumes=self._resumes,
            terminated=self._terminated,
            customer_message=self._customer_message,
            exit_code=self._exit_code,
            missing_messages=missing,
        )


def _why(exc: BaseException) -> str:
    """The exception and the socket error under it: "no close frame" alone hides a reset or a broken pipe."""
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause is not exc:
        return f"{text} ({type(cause).__name__}: {cause})"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {text}"
    return text


def _parse_exit_code(payload: bytes) -> int | None:
    # NonInteractiveCommands sends ASCII "EXIT_CODE: <n>" (agent shell.go sendExitCode).
    text = payload.decode("ascii", "replace").strip()
    _, _, number = text.rpartition(":")
    try:
        return int(number.strip())
    except ValueError:
        return None
