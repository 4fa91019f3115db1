"""One ECS Exec session as the agent and MGS play it, over whichever websocket is attached.

Behaviour follows docs/ssm-protocol.md: §4 sequencing/acks/retransmission, §5-§6 handshake and KMS,
§7 the end of a session, §8 size and stdin. The websocket may come and go (a closed socket pauses
the session, like MGS); sequence state and unacked output survive until the client resumes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import logging
import os
import socket
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidTag

from bot.ssm.frames import (
    DecodedMessage,
    FrameError,
    MessageType,
    PayloadType,
    compact_json,
    decode_message,
    encode_ack,
    encode_message,
    now_ms,
    parse_ack,
    parse_json_object,
)
from standins.agent_crypto import AgentCipher, KmsDecryptError, LocalKms
from standins.agent_faults import FaultInjector
from standins.agent_models import SessionSpec
from standins.agent_output import split_utf8_tail
from standins.agent_pty import (
    OutputSource,
    PtyProcess,
    SourceStartError,
    SyntheticSource,
    agent_environment,
    container_paths,
)
from standins.agent_sequencing import RESEND_INTERVAL, Arrival, Inbox, Outbox, Pending

log = logging.getLogger(__name__)

AGENT_VERSION = "3.3.1142.0"
HANDSHAKE_TIMEOUT = 15.0  # the agent's handshakeTimeout, for the response and for the challenge
KMS_CUSTOMER_MESSAGE = "This session is encrypted using AWS KMS."
MAX_EVENTS = 1000
_ENCRYPTED_TYPES = frozenset({PayloadType.OUTPUT, PayloadType.STDERR, PayloadType.EXIT_CODE})


class Handshake(enum.Enum):
    SKIPPED = "skipped"  # InteractiveCommands without KMS: the first output is plain PTY output
    PENDING = "pending"  # will send a HandshakeRequest when the session starts
    AWAITING_RESPONSE = "awaiting_response"
    AWAITING_CHALLENGE = "awaiting_challenge"
    DONE = "done"


_END_TYPES = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


@dataclass
class _Link:
    """One attached websocket, as its reading task sees it (see ``AgentSession.serve``)."""

    task: asyncio.Task[Any] | None
    receiving: bool = False  # waiting in ws.receive(): cancelling the task there loses nothing
    stop: bool = False  # close requested
    code: int = 1000
    message: bytes = b""


class SessionFailed(Exception):
    """Ends the session with this text as the channel_closed Output."""


@dataclass
class SessionStats:
    """What happened, for tests and benchmarks (no payload bytes are kept beyond ``stdin_tail``)."""

    connections: int = 0
    messages_published: int = 0
    output_bytes: int = 0  # plaintext output published
    transmissions: int = 0  # frames written, first sends + retransmissions + duplicates
    retransmissions: int = 0
    acks_received: int = 0
    inputs_acked: int = 0
    inputs_discarded: int = 0  # acked but ignored: the handshake was still in progress
    inputs_not_ready: int = 0  # neither acked nor processed: the PTY had not started
    stdin_bytes: int = 0
    stdin_tail: bytes = b""  # last 4 KiB of stdin, to check what reached the command
    terminal_size: tuple[int, int] | None = None  # (cols, rows)
    client_version: str | None = None
    encrypted: bool = False
    max_unacked: int = 0
    closed_output: str | None = None
    events: list[str] = field(default_factory=list)  # "paused", "resumed", "abrupt_close", ...


class AgentSession:
    def __init__(
        self,
        spec: SessionSpec,
        *,
        token: str,
        kms: LocalKms,
        sandbox_dir: str,
        max_unacked: int,
    ) -> None:
        self.spec = spec
        self.token = token
        self.stats = SessionStats()
        self._kms = kms
        self._sandbox_dir = sandbox_dir
        self._max_unacked = max_unacked
        self._faults = FaultInjector(spec.faults)
        self._outbox = Outbox()
        self._inbox: Inbox[DecodedMessage] = Inbox(capacity=1000)
        self._out_seq = 0
        self._ws: web.WebSocketResponse | None = None
        self._links: dict[int, _Link] = {}  # id(ws) -> its reader, for every socket being served
        self._transport: asyncio.BaseTransport | None = None
        self._paused = False
        self._held: Pending | None = None
        self._cipher: AgentCipher | None = None
        needs_handshake = bool(spec.kms_key_id) or spec.handshake
        self._handshake = Handshake.PENDING if needs_handshake else Handshake.SKIPPED
        self._handshake_reply: asyncio.Future[bytes] | None = None
        self._source: OutputSource | None = None
        self._source_started = False
        self._window = asyncio.Event()
        self._all_acked = asyncio.Event()
        self._all_acked.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ended = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def reject_connection(self) -> bool:
        return self._faults.reject_connection()

    async def serve(self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None) -> None:
        """Attach a client websocket (token already checked) and read it until it goes away.

        This task (the websocket's handler) is the only one that reads the socket and the only one that
        closes it: other tasks ask with ``_request_close``. aiohttp's ``close()`` called from another task
        while this one waits in ``receive()`` skips the closing handshake and closes the TCP connection at
        once; the client's frames still in flight (acks of the last output) then reach a closed socket, the
        kernel answers with a reset, and the reset makes the client lose ``channel_closed`` unread. MGS, like
        any RFC 6455 server, reads on until the client's close frame (bounded by the websocket's timeout).
        """
        self.stats.connections += 1
        if self.ended:
            await self._send_channel_closed(ws)
            await ws.close()
            return
        link = _Link(asyncio.current_task())
        self._links[id(ws)] = link
        previous = self._ws
        self._ws, self._transport = ws, transport
        if previous is not None and not previous.closed:
            # Its own handler closes it; not awaited: a half-open old socket must not hold up the client
            # that just resumed.
            self._request_close(previous, message=b"replaced by a new connection")
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._resend_loop())]
        elif not self._paused:
            await self._resend_all()  # a resumed client gets what it missed, in order
        try:
            while not link.stop:
                link.receiving = True
                try:
                    message = await ws.receive()
                finally:
                    link.receiving = False
                if message.type in _END_TYPES:
                    break
                data = message.data
                if isinstance(data, str):
                    data = data.encode()  # the plugin parses text frames as binary ones too
                if isinstance(data, bytes):
                    await self._on_frame(data)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not link.stop or task is None or task.uncancel() > 0:
                raise  # a real cancellation (server shutdown), not our wake-up call
        finally:
            del self._links[id(ws)]
            if self._ws is ws:
                self._ws = self._transport = None
                if not self.ended:
                    self._event("disconnected")
        if link.stop and not ws.closed:
            # The closing handshake: our close frame, then read (and drop) what the client still sends
            # until its close frame, so the TCP connection ends with FIN, not a reset.
            await ws.close(code=link.code, message=link.message)

    def _request_close(self, ws: web.WebSocketResponse, *, code: int = 1000, message: bytes = b"") -> None:
        """Ask the task that reads ``ws`` to close it with the closing handshake (see ``serve``)."""
        link = self._links.get(id(ws))
        if link is None:
            if not ws.closed:
                self._spawn(ws.close(code=code, message=message))
            return
        if link.stop:
            return
        link.stop, link.code, link.message = True, code, message
        if link.receiving and link.task is not None:
            link.task.cancel()  # only while it waits for a frame: a frame being processed is finished first

    async def terminate(self) -> None:
        """ssm:TerminateSession: kill the command, tell the client, close its socket."""
        self._event("terminated")
        if self.ended:
            # Over already, but a client may still hold the socket (no channel_closed fault): drop it.
            if self._ws is not None and not self._ws.closed:
                self._request_close(self._ws)
            return
        for task in self._tasks:
            task.cancel()
        await self._finish("", force_close=True)

    async def close(self) -> None:
        """Agent shutdown: stop everything without ceremony."""
        for task in self._tasks:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._source is not None:
            await self._source.close()
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        self._ended.set()

    # --- the session's main line ----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            if self._handshake is Handshake.PENDING:
                await self._perform_handshake()
            if self.spec.faults.pty_start_delay:
                await asyncio.sleep(self.spec.faults.pty_start_delay)
            source = self._make_source()
            self._source = source
            try:
                await source.start()
            except SourceStartError as exc:
                await self._publish(PayloadType.STDERR, f"{exc}\r\n".encode())
            else:
                self._source_started = True
                await self._drain_inbox()
                await self._pump(source)
            await self._wait_for_acks()
            await self._finish(self.spec.faults.channel_closed_error)
        except SessionFailed as exc:
            log.info("session %s failed: %s", self.spec.session_id, exc)
            await self._wait_for_acks()
            await self._finish(str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s crashed", self.spec.session_id)
            await self._finish("Internal error in the local agent; see its log.")

    def _make_source(self) -> OutputSource:
        if self.spec.synthetic_output_bytes is not None:
            return SyntheticSource(self.spec.synthetic_output_bytes, self.spec.synthetic_interval)
        env = agent_environment(os.environ, self.spec.env)
        root = self.spec.cwd or self._sandbox_dir  # the task's filesystem: its working dir is its `/`
        return PtyProcess(self.spec.command, cwd=root, env=env, paths=container_paths(root))

    async def _pump(self, source: OutputSource) -> None:
        carry = b""
        while True:
            # Flow control: the outgoing buffer is bounded, so stop reading while too much is unacked.
            while len(self._outbox) >= self._max_unacked:
                self._window.clear()
                await self._window.wait()
            data = await source.read()
            if not data:
                break
            complete, carry = split_utf8_tail(carry + data)
            if complete:
                await self._publish(PayloadType.OUTPUT, complete)
        if carry:
            await self._publish(PayloadType.OUTPUT, carry)

    async def _wait_for_acks(self) -> None:
        if self._held is not None:
            await self._release_held()
        # The agent's PrepareToCloseChannel: at most this long, then output still unacked is lost.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_acked.wait(), self.spec.close_ack_wait)

    async def _finish(self, output: str, *, force_close: bool = False) -> None:
        if self.ended:
            return
        self.stats.closed_output = output
        self._ended.set()
        # Output nobody acked by now is lost (as with the agent); free it, the session may linger.
        self._outbox = Outbox()
        self._inbox = Inbox(capacity=0)
        if self._source is not None:
            await self._source.close()
        ws = self._ws
        if ws is None or ws.closed:
            return
        if self.spec.faults.no_channel_closed and not force_close:
            return  # the client must notice on its own (deadline, then TerminateSession)
        if self.spec.faults.reset_at_end and not force_close:
            self._abrupt_close(reset=True)  # all output went out; a reset instead of channel_closed
            return
        await self._send_channel_closed(ws)
        self._request_close(ws)

    async def _send_channel_closed(self, ws: web.WebSocketResponse) -> None:
        if self.spec.faults.no_channel_closed:
            return
        payload = {
            "MessageId": str(uuid.uuid4()),
            "CreatedDate": str(now_ms()),
            "DestinationId": self.spec.target or self.spec.session_id,
            "SessionId": self.spec.session_id,
            "MessageType": MessageType.CHANNEL_CLOSED,
            "SchemaVersion": 1,
            "Output": self.stats.closed_output or "",
        }
        frame = encode_message(MessageType.CHANNEL_CLOSED, compact_json(payload), sequence_number=0)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(frame)

    # --- handshake (§5, §6) ---------------------------------------------------------------------

    async def _perform_handshake(self) -> None:
        started = time.monotonic()
        challenge = base64.b64encode(os.urandom(16)).decode()
        actions: list[dict[str, Any]] = [
            {
                "ActionType": "SessionType",
                "ActionParameters": {"SessionType": "InteractiveCommands", "Properties": None},
            }
        ]
        if self.spec.kms_key_id:
            actions.append(
                {
                    "ActionType": "KMSEncryption",
                    "ActionParameters": {"KMSKeyId": self.spec.kms_key_id, "Challenge": challenge},
                }
            )
        request = {"AgentVersion": AGENT_VERSION, "RequestedClientActions": actions}
        response = await self._exchange(Handshake.AWAITING_RESPONSE, PayloadType.HANDSHAKE_REQUEST, request)
        data = self._json(response, "HandshakeResponse")
        self.stats.client_version = str(data.get("ClientVersion", ""))
        data_key: bytes | None = None
        for action in data.get("ProcessedClientActions") or []:
            if not isinstance(action, dict):
                raise SessionFailed("HandshakeResponse has a malformed action")
            kind, status = action.get("ActionType"), action.get("ActionStatus")
            if status != 1:
                raise SessionFailed(f"{kind} failed on client with status {status} error: {action.get('Error', '')}")
            if kind == "KMSEncryption" and self.spec.kms_key_id:
                data_key = self._open_data_key(action.get("ActionResult"), challenge)
        if self.spec.kms_key_id:
            if data_key is None:
                raise SessionFailed("KMSEncryption failed on client: no data key in the HandshakeResponse")
            await self._challenge(AgentCipher(data_key))
        elapsed_ns = int((time.monotonic() - started) * 1e9)
        complete = {
            "HandshakeTimeToComplete": elapsed_ns,
            "CustomerMessage": KMS_CUSTOMER_MESSAGE if self._cipher else "",
        }
        self._handshake = Handshake.DONE
        await self._publish(PayloadType.HANDSHAKE_COMPLETE, compact_json(complete))

    def _open_data_key(self, result: Any, challenge: str) -> bytes:
        if not isinstance(result, dict) or not isinstance(result.get("KMSCipherTextKey"), str):
            raise SessionFailed("KMSEncryption failed on client: ActionResult has no KMSCipherTextKey")
        context = {"aws:ssm:SessionId": self.spec.session_id, "aws:ssm:TargetId": self.spec.target or ""}
        if result.get("ChallengeAcknowledgement") is True:
            context["aws:ssm:RandomChallenge"] = challenge
        elif self.spec.require_kms_challenge:
            raise SessionFailed("client does not support required encryption context random challenge")
        try:
            key_id, key = self._kms.decrypt(base64.b64decode(result["KMSCipherTextKey"], validate=True), context)
        except (KmsDecryptError, binascii.Error) as exc:
            raise SessionFailed(f"Failed to decrypt the session data key with KMS: {exc}") from None
        wanted = self.spec.kms_key_id or ""
        if key_id != wanted and not key_id.endswith(("/" + wanted, ":" + wanted)):
            raise SessionFailed(f"The data key was made with KMS key {key_id}, not the session's key {wanted}")
        if len(key) != 64:
            raise SessionFailed(f"the session data key must be 64 bytes, got {len(key)}")
        return key

    async def _challenge(self, cipher: AgentCipher) -> None:
        secret = os.urandom(64)
        request = {"Challenge": base64.b64encode(cipher.encrypt(secret)).decode()}
        response = await self._exchange(Handshake.AWAITING_CHALLENGE, PayloadType.ENC_CHALLENGE_REQUEST, request)
        data = self._json(response, "EncChallengeResponse")
        try:
            answer = cipher.decrypt(base64.b64decode(str(data.get("Challenge", "")), validate=True))
        except (InvalidTag, binascii.Error, ValueError):
            answer = b""
        if answer != secret:
            raise SessionFailed("Encryption challenge does not match!")
        self._cipher = cipher
        self.stats.encrypted = True

    async def _exchange(self, state: Handshake, payload_type: PayloadType, request: dict[str, Any]) -> bytes:
        self._handshake = state
        self._handshake_reply = asyncio.get_running_loop().create_future()
        await self._publish(payload_type, compact_json(request))
        try:
            return await asyncio.wait_for(self._handshake_reply, HANDSHAKE_TIMEOUT)
        except TimeoutError:
            raise SessionFailed(
                "Handshake timed out. Please ensure that you have the latest version of the session "
                "manager plugin."
            ) from None

    @staticmethod
    def _json(payload: bytes, what: str) -> dict[str, Any]:
        try:
            return parse_json_object(payload, what)
        except FrameError as exc:
            raise SessionFailed(exc.message) from None

    # --- incoming frames ------------------------------------------------------------------------

    async def _on_frame(self, frame: bytes) -> None:
        try:
            message = decode_message(frame)
        except FrameError as exc:
            log.debug("dropping a bad frame: %s", exc)  # not acked: the sender will resend it
            return
        if message.message_type == MessageType.ACKNOWLEDGE:
            self._on_ack(message)
        elif message.message_type == MessageType.INPUT_STREAM_DATA:
            await self._on_input(message)

    def _on_ack(self, message: DecodedMessage) -> None:
        try:
            ack = parse_ack(message.payload)
        except FrameError:
            return
        self.stats.acks_received += 1
        if self._outbox.ack(ack.sequence_number, asyncio.get_running_loop().time()):
            if len(self._outbox) < self._max_unacked:
                self._window.set()
            if not self._outbox:
                self._all_acked.set()

    async def _on_input(self, message: DecodedMessage) -> None:
        arrival = self._inbox.classify(message.sequence_number)
        if arrival is Arrival.DUPLICATE:
            await self._ack(message)  # the ack may have been lost: ack again, process once
        elif arrival is Arrival.AHEAD:
            if self._inbox.hold(message.sequence_number, message):
                await self._ack(message)
        elif self._process_input(message):
            await self._ack(message)
            self._inbox.advance()
            await self._drain_inbox()
        else:
            self.stats.inputs_not_ready += 1  # not acked: the client retransmits it later

    async def _drain_inbox(self) -> None:
        while (held := self._inbox.next_held()) is not None:
            if not self._process_input(held):
                return  # acked already; kept until the PTY can take it
            self._inbox.release()

    def _process_input(self, message: DecodedMessage) -> bool:
        """Handle one in-order input; False means "not ready" (the PTY has not started)."""
        ptype = message.payload_type
        if self._handshake in (Handshake.PENDING, Handshake.AWAITING_RESPONSE, Handshake.AWAITING_CHALLENGE):
            wanted = {
                Handshake.AWAITING_RESPONSE: PayloadType.HANDSHAKE_RESPONSE,
                Handshake.AWAITING_CHALLENGE: PayloadType.ENC_CHALLENGE_RESPONSE,
            }.get(self._handshake)
            reply = self._handshake_reply
            if ptype == wanted and reply is not None and not reply.done():
                reply.set_result(message.payload)
            else:
                # AGENT: "Handshake still in progress, ignore stream data message" (acked, dropped).
                self.stats.inputs_discarded += 1
            return True
        if ptype in (PayloadType.HANDSHAKE_RESPONSE, PayloadType.ENC_CHALLENGE_RESPONSE):
            return True  # a late or repeated handshake reply: nothing left to do with it
        if not self._source_started or self._source is None:
            return False
        if ptype == PayloadType.OUTPUT:
            data = message.payload
            if self._cipher is not None:
                try:
                    data = self._cipher.decrypt(data)
                except (InvalidTag, ValueError):
                    log.warning("session %s: dropping stdin that does not decrypt", self.spec.session_id)
                    return True
            self.stats.stdin_bytes += len(data)
            self.stats.stdin_tail = (self.stats.stdin_tail + data)[-4096:]
            self._source.write(data)
        elif ptype == PayloadType.SIZE:
            self._resize(message.payload)
        return True  # Flag and anything else: acked and ignored, as the shell plugin does

    def _resize(self, payload: bytes) -> None:
        try:
            size = parse_json_object(payload, "Size")
            cols, rows = int(size["cols"]), int(size["rows"])
        except (FrameError, KeyError, TypeError, ValueError):
            return
        if 0 <= cols < 65536 and 0 <= rows < 65536 and self._source is not None:
            self.stats.terminal_size = (cols, rows)
            self._source.resize(cols, rows)

    async def _ack(self, message: DecodedMessage) -> None:
        self.stats.inputs_acked += 1
        frame = encode_ack(message)
        delay = self.spec.faults.ack_delay
        if delay:
            self._spawn(self._send_later(delay, frame))
        else:
            await self._transmit(frame)

    async def _send_later(self, delay: float, frame: bytes) -> None:
        await asyncio.sleep(delay)
        await self._transmit(frame)

    # --- outgoing frames ------------------------------------------------------------------------

    async def _publish(self, payload_type: PayloadType, payload: bytes) -> None:
        if payload_type in _ENCRYPTED_TYPES:
            self.stats.output_bytes += len(payload)
            if self._cipher is not None:
                payload = self._cipher.encrypt(payload)
        seq = self._out_seq
        self._out_seq += 1
        frame = encode_message(
            MessageType.OUTPUT_STREAM_DATA,
            payload,
            sequence_number=seq,
            payload_type=payload_type,
            flags=1 if seq == 0 else 0,  # the agent's SYN on its first message
        )
        entry = self._outbox.add(seq, frame)
        self._all_acked.clear()
        self.stats.messages_published += 1
        self.stats.max_unacked = max(self.stats.max_unacked, len(self._outbox))
        if self._faults.note_published():
            await self._pause_publication()
        await self._first_send(entry)

    async def _first_send(self, entry: Pending) -> None:
        if self._paused or self._ws is None:
            return  # stays unsent; goes out when publication starts again or the client resumes
        plan = self._faults.plan_first_send(entry.seq)
        entry.last_sent = asyncio.get_running_loop().time()
        entry.attempts = 1
        if plan.drop:
            self._event(f"dropped:{entry.seq}")
        elif plan.hold and self._held is None:
            self._held = entry
        else:
            await self._transmit(entry.frame)
            if plan.duplicate:
                await self._transmit(entry.frame)
            if self._held is not None:
                await self._release_held()
        if self._faults.close_now():
            self._abrupt_close()

    async def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._paused:
            await self._transmit(held.frame)

    async def _transmit(self, frame: bytes) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            return False  # the socket went away; the frame stays unacked and is resent on resume
        self.stats.transmissions += 1
        return True

    async def _resend_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.ended:
            await asyncio.sleep(RESEND_INTERVAL)
            if self._paused or self._ws is None:
                continue  # the agent does not resend while publication is paused
            entry = self._outbox.due(loop.time())
            if entry is None:
                continue
            if self._held is entry:
                self._held = None
            entry.last_sent = loop.time()
            entry.attempts += 1
            if await self._transmit(entry.frame):
                self.stats.retransmissions += 1

    async def _resend_all(self) -> None:
        now = asyncio.get_running_loop().time()
        for entry in self._outbox:
            entry.last_sent = now
            entry.attempts += 1
            if await self._transmit(entry.frame):
                self.stats.retransmissions += 1
        self._held = None

    async def _pause_publication(self) -> None:
        self._paused = True
        self._event("paused")
        await self._transmit(encode_message(MessageType.PAUSE_PUBLICATION, b"", sequence_number=0))
        self._spawn(self._start_publication_later(self.spec.faults.pause_seconds))

    async def _start_publication_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._paused = False
        self._event("started")
        await self._transmit(encode_message(MessageType.START_PUBLICATION, b"", sequence_number=0))
        await self._resend_all()

    def _abrupt_close(self, *, reset: bool = False) -> None:
        """Drop the TCP connection without a close frame; the session stays resumable (unless it ended).

        ``reset``: abort with SO_LINGER 0, so the client gets a TCP reset rather than a FIN.
        """
        self._event("reset" if reset else "abrupt_close")
        transport, self._transport = self._transport, None
        self._ws = None
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()

    def _event(self, name: str) -> None:
        if len(self.stats.events) < MAX_EVENTS:  # bounded: a long faulty session must not grow forever
            self.stats.events.append(name)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
