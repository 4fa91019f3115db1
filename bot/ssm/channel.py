"""The SSM Session Manager data-channel client: one ECS Exec session over a websocket.

Protocol reference: shared/ssm-protocol.md (sections in comments below). Two tasks per connection:

- the *reader* decodes each frame, advances the receive state (deliver output, handshake), then acks;
  out-of-order messages are acked and kept in a bounded reorder buffer; duplicates are re-acked (§11.1);
- the *sender* owns everything sequenced that goes out (handshake replies, Size, stdin): it puts new
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
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import CloseCode

from bot.errors import DataChannelError
from bot.ssm import handshake as hs
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
    PayloadType,
    decode_message,
    encode_ack_fields,
    encode_message,
    parse_ack,
)
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
    # websocket max_size; agent payloads are ~1 KiB (§9). With max_queue=64 a hostile peer can make us hold
    # at most 64 x 256 KiB = 16 MiB of unread frames per session.
    max_frame_bytes: int = 256 * 1024
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
    expected: int = 0  # next agent sequence number to deliver
    reorder: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # seq -> (PayloadType, payload)
    reorder_bytes: int = 0  # payload bytes held in ``reorder``
    next_seq: int = 0  # our next input_stream_data sequence number
    bytes_received: int = 0
    messages_received: int = 0


class _SendStalled(OSError):
    """A frame could not be written within ``send_timeout``: the peer stopped reading (handled as a drop)."""


async def _send(ws: ClientConnection, frame: bytes | str, seconds: float) -> None:
    # ws.send waits for the write buffer to drain; a peer that never reads would block it (and with it
    # the deadline checks of the task that sends) forever. It can only wait when the write would cross the
    # transport's high-water mark, so below it the frame goes out without a timer: one ack per output
    # message makes this the hot path, and a timer per ack costs ~10 ms of CPU per MB of output.
    if _cannot_block(ws, len(frame)):
        await ws.send(frame)
        return
    try:
        async with asyncio.timeout(seconds):
            await ws.send(frame)
    except TimeoutError:
        raise _SendStalled(f"the peer read nothing for {seconds:g} s") from None


def _cannot_block(ws: ClientConnection, size: int) -> bool:
    try:
        if ws.paused:
            return False
        _low, high = ws.transport.get_write_buffer_limits()
        return ws.transport.get_write_buffer_size() + size + 16 < high  # 16: websocket frame header
    except AttributeError:  # not a websockets asyncio connection: take the timed path
        return False


async def _send_ack(ws: ClientConnection, frame: bytes, seconds: float) -> None:
    """Acknowledge a message; a socket that closed meanwhile is not a reason to stop reading.

    The agent closes right after ``channel_closed``: an ack for a message received just before may find
    the socket closed while ``channel_closed`` is still queued, unread. Reading on delivers it (or ends
    in a drop, after which a resume gets the unacked message again).
    """
    with contextlib.suppress(websockets.ConnectionClosed):
        await _send(ws, frame, seconds)


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
        self._outbox = Outbox(config.max_unacked_input)
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
        loop = asyncio.get_running_loop()
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
        return min(self._cfg.resume_backoff * (2 ** (attempt - 1)), 5.0)

    async def _dial(self) -> ClientConnection:
        cfg = self._cfg
        url = self._params.stream_url
        try:
            return await connect(
                url,
                compression=None,  # the plugin (gorilla DefaultDialer) never offers permessage-deflate
                open_timeout=cfg.connect_timeout,
                ping_interval=cfg.ping_interval,
                ping_timeout=cfg.ping_timeout,
                close_timeout=min(cfg.close_timeout, 5.0),
                max_size=cfg.max_frame_bytes,
                max_queue=64,
                user_agent_header=None,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            detail = str(exc) or type(exc).__name__
            raise ChannelConnectError(urlsplit(url).netloc or url, detail) from None

    async def _serve(self, ws: ClientConnection, token: str) -> _Ended | _Dropped:
        loop = asyncio.get_running_loop()
        self._conn_got_message = False
        self._conn_started = loop.time()
        if not self._first_conn_at:
            self._first_conn_at = self._conn_started
        self._outbox.requeue_all()  # in flight on a previous socket = presumed lost
        try:
            await _send(
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
        try:
            async with asyncio.timeout(min(self._cfg.close_timeout, 5.0)):
                await ws.close()
        except (TimeoutError, OSError, websockets.WebSocketException):
            ws.transport.abort()

    # --- receive path ---------------------------------------------------------------------------

    async def _read_loop(self, ws: ClientConnection) -> _Ended | _Dropped:
        loop = asyncio.get_running_loop()
        st = self._st
        on_output = self._on_output
        send_timeout = self._cfg.send_timeout
        try:
            async for frame in ws:
                if isinstance(frame, str):  # the plugin parses text frames the same way
                    frame = frame.encode("utf-8")
                try:
                    m = decode_message(frame)
                except FrameError as exc:
                    log.debug("dropping a malformed frame without ack: %s", exc)
                    continue  # not acked: the agent will resend it
                mtype = m.message_type
                self._conn_got_message = True
                if mtype == _OUTPUT:
                    seq = m.sequence_number
                    if seq == st.expected:
                        # Only in-order delivery is progress: an agent that keeps sending later or
                        # duplicate messages but never the missing one is stuck (idle deadline).
                        self._last_progress = loop.time()
                        if m.payload_type == _STDOUT and self._cipher is None and self._handshake is _Handshake.NONE:
                            # Fast path (most messages of an unencrypted session): count, deliver, ack.
                            st.expected = seq + 1
                            st.messages_received += 1
                            st.bytes_received += len(m.payload)
                            on_output(m.payload)
                        else:
                            st.expected = seq + 1
                            await self._process(m.payload_type, m.payload)
                        await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
                        while st.expected in st.reorder:
                            ptype, payload = st.reorder.pop(st.expected)
                            st.reorder_bytes -= len(payload)
                            st.expected += 1
                            await self._process(ptype, payload)
                    elif seq > st.expected:
                        if seq not in st.reorder:
                            if (
                                len(st.reorder) >= self._cfg.reorder_window
                                or st.reorder_bytes + len(m.payload) > self._cfg.reorder_bytes
                                or seq - st.expected > self._cfg.reorder_max_gap
                            ):
                                continue  # full (or absurdly far ahead): drop unacked, the agent resends it
                            st.reorder[seq] = (m.payload_type, m.payload)
                            st.reorder_bytes += len(m.payload)
                        await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
                    else:
                        # Already delivered: our ack was lost. The agent resends only its oldest unacked
                        # message, so staying silent here would stall the whole stream (§11.1).
                        await _send_ack(ws, encode_ack_fields(mtype, m.message_id_wire, seq), send_timeout)
                elif mtype == _ACK:
                    try:
                        ack = parse_ack(m.payload)
                    except FrameError as exc:
                        log.debug("ignoring unreadable acknowledge: %s", exc)
                        continue
                    if self._outbox.acknowledge(ack.sequence_number, loop.time()):
                        # Only an ack of something outstanding is progress: a flood of acks for nothing
                        # must not hold the idle deadline off forever.
                        self._last_progress = loop.time()
                        self._wake.set()
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
        except websockets.ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                # A protocol violation, not a network drop: resuming would only get the same frame again.
                raise FrameError(f"a message larger than {self._cfg.max_frame_bytes:,} bytes") from None
            return _Dropped(f"connection closed: {_why(exc)}", self._conn_got_message)
        except OSError as exc:
            return _Dropped(f"connection error: {_why(exc)}", self._conn_got_message)
        return _Dropped("connection closed by the service", self._conn_got_message)

    async def _process(self, ptype: int, payload: bytes) -> None:
        """One in-order message, identical whether it came straight off the wire or out of the buffer."""
        st = self._st
        if ptype == _STDOUT or ptype == _STDERR or ptype == _EXIT_CODE:
            if self._cipher is not None:
                payload = self._cipher.decrypt(payload)
            if self._handshake is not _Handshake.COMPLETE and self._handshake is not _Handshake.NONE:
                self._become_ready(_Handshake.NONE)
            st.messages_received += 1
            if ptype == _EXIT_CODE:
                self._exit_code = _parse_exit_code(payload)
                return
            st.bytes_received += len(payload)
            self._on_output(payload)
        elif ptype == PayloadType.HANDSHAKE_REQUEST:
            await self._on_handshake_request(payload)
        elif ptype == PayloadType.ENC_CHALLENGE_REQUEST:
            self._on_challenge(payload)
        elif ptype == PayloadType.HANDSHAKE_COMPLETE:
            self._customer_message = hs.parse_handshake_complete(payload).customer_message
            self._become_ready(_Handshake.COMPLETE)
        # other payload types carry nothing for a shell-style session; they are still acked

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
                if not self._paused:  # pause_publication: the remote side is inactive, hold everything
                    for entry in outbox.take_pending():
                        await _send(ws, entry.frame, cfg.send_timeout)
                        outbox.mark_sent(entry, loop.time())
                if self._failure is not None:
                    raise self._failure
                entry = None if self._paused else outbox.due(now)
                if entry is not None:
                    await _send(ws, entry.frame, cfg.send_timeout)  # same bytes: same seq, MessageId and CreatedDate
                    outbox.mark_sent(entry, loop.time())
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
        reorder = self._st.reorder
        missing = (max(reorder) - self._st.expected + 1 - len(reorder)) if reorder else 0
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
