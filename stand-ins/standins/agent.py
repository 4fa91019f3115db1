"""The local AWS side of ECS Exec sessions: agent + MGS data channel, SSM and KMS APIs, on one port.

    agent = LocalAgent()                      # 127.0.0.1, a free port
    await agent.start()
    params = agent.register_session(SessionSpec(command="printf hello"))
    # connect a DataChannelSession to params.stream_url with params.token; boto3 SSM/KMS clients
    # use endpoint_url=agent.http_url (any region, dummy credentials)
    await agent.stop()

``AgentThread`` runs one in a background thread for synchronous code (the demo, sync tests), and
``python -m standins.agent --port N`` runs one as a process, printing its URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from standins.agent_crypto import LocalKms
from standins.agent_http import JSON_CONTENT_TYPE, AwsJsonApi
from standins.agent_models import Faults, RegisteredSession, SessionSpec
from standins.agent_session import AgentSession, SessionStats

if TYPE_CHECKING:
    from bot.ssm.channel import SessionParams

__all__ = ["AgentThread", "Faults", "LocalAgent", "RegisteredSession", "SessionSpec", "SessionStats", "main"]

log = logging.getLogger(__name__)

TOKEN_FRAME_TIMEOUT = 10.0
# After our close frame, how long the client has to answer with its own (RFC 6455 §7.1.1) before the TCP
# connection is closed anyway. A client busy with many sessions can be seconds behind its socket; closing
# earlier makes its late acks meet a closed socket, and the kernel's reset then costs it channel_closed.
CLOSE_HANDSHAKE_TIMEOUT = 10.0
POLICY_VIOLATION = 1008  # close code for a refused token
MAX_ENDED_SESSIONS = 1000
T = TypeVar("T")


class LocalAgent:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sandbox_dir: str | Path | None = None,
        max_unacked_messages: int = 256,
        ssl_context: ssl.SSLContext | None = None,  # serve https:// and wss:// (benchmarks: TLS costs)
    ) -> None:
        self.host = host
        self.ssl_context = ssl_context
        self.port = port
        self.max_unacked_messages = max_unacked_messages
        self._sandbox_dir = Path(sandbox_dir) if sandbox_dir else None
        self._own_sandbox = sandbox_dir is None
        self._sessions: dict[str, AgentSession] = {}
        self._kms = LocalKms()
        self._api = AwsJsonApi(self._kms, self)
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._sandbox_dir is None:
            self._sandbox_dir = Path(tempfile.mkdtemp(prefix="ecs-exec-agent-"))
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/v1/data-channel/{session_id}", self._data_channel)
        app.router.add_post("/control/sessions", self._control_register)
        app.router.add_get("/control/sessions/{session_id}", self._control_stats)
        app.router.add_get("/control/health", self._control_health)
        app.router.add_post("/", self._aws_json)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_sandbox and self._sandbox_dir is not None:
            shutil.rmtree(self._sandbox_dir, ignore_errors=True)
            self._sandbox_dir = None

    async def __aenter__(self) -> LocalAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def http_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    @property
    def sandbox_dir(self) -> Path:
        """The default working directory of commands (created at start unless given), and their container
        paths' root: /var/log/x is <sandbox_dir>/var/log/x (``standins.agent_paths``)."""
        if self._sandbox_dir is None:
            raise RuntimeError("the agent has not been started")
        return self._sandbox_dir

    # --- sessions -------------------------------------------------------------------------------

    def register(self, spec: SessionSpec) -> RegisteredSession:
        """Register a session and return what ECS ExecuteCommand would (session id, URL, token)."""
        if spec.session_id in self._sessions:
            raise ValueError(f"session {spec.session_id} is already registered")
        session = AgentSession(
            spec,
            token=secrets.token_urlsafe(32),
            kms=self._kms,
            sandbox_dir=str(self.sandbox_dir),
            max_unacked=self.max_unacked_messages,
        )
        self._sessions[spec.session_id] = session
        self._forget_old_sessions()
        return RegisteredSession(
            session_id=spec.session_id, stream_url=self.stream_url(spec.session_id), token=session.token, target=spec.target
        )

    def _forget_old_sessions(self) -> None:
        # Ended sessions stay (small) so ResumeSession can say "ended"; keep only the newest ones.
        ended = [sid for sid, s in self._sessions.items() if s.ended]
        for sid in ended[: max(0, len(ended) - MAX_ENDED_SESSIONS)]:
            del self._sessions[sid]

    def register_session(self, spec: SessionSpec) -> SessionParams:
        """The contract's form of ``register``: the data-channel client's own parameters."""
        from bot.ssm.channel import SessionParams  # the client package; imported late on purpose

        r = self.register(spec)
        return SessionParams(session_id=r.session_id, stream_url=r.stream_url, token=r.token, target=r.target)

    def stream_url(self, session_id: str) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{host}:{self.port}/v1/data-channel/{session_id}?role=publish_subscribe"

    def stats(self, session_id: str) -> SessionStats:
        return self._sessions[session_id].stats

    async def wait_ended(self, session_id: str) -> SessionStats:
        session = self._sessions[session_id]
        await session.wait_ended()
        return session.stats

    async def resume_session(self, session_id: str) -> dict[str, str] | None:
        session = self._sessions.get(session_id)
        if session is None or session.ended:
            return None
        session.token = secrets.token_urlsafe(32)  # the old token stops working, like MGS
        return {"SessionId": session_id, "TokenValue": session.token, "StreamUrl": self.stream_url(session_id)}

    async def terminate_session(self, session_id: str) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            await session.terminate()

    # --- HTTP endpoints -------------------------------------------------------------------------

    async def _data_channel(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=1 << 20, timeout=CLOSE_HANDSHAKE_TIMEOUT)
        await ws.prepare(request)
        session = self._sessions.get(request.match_info["session_id"])
        try:
            first = await ws.receive(timeout=TOKEN_FRAME_TIMEOUT)
        except TimeoutError:
            await ws.close(code=POLICY_VIOLATION, message=b"no token frame")
            return ws
        token = _token_of(first.data) if first.type == WSMsgType.TEXT else None
        if session is None or token is None or token != session.token or session.reject_connection():
            # MGS answers nothing to the token frame; a bad one just ends the connection.
            await ws.close(code=POLICY_VIOLATION, message=b"invalid token")
            return ws
        await session.serve(ws, request.transport)
        return ws

    async def _control_register(self, request: web.Request) -> web.Response:
        try:
            spec = SessionSpec.model_validate_json(await request.read())
            registered = self.register(spec)
        except ValidationError as exc:
            return _json_response(400, {"__type": "ValidationException", "message": _first_error(exc)})
        except ValueError as exc:
            return _json_response(409, {"__type": "ConflictException", "message": str(exc)})
        return _json_response(200, registered.wire())

    async def _control_stats(self, request: web.Request) -> web.Response:
        session = self._sessions.get(request.match_info["session_id"])
        if session is None:
            return _json_response(404, {"__type": "DoesNotExistException", "message": "no such session"})
        stats = dataclasses.asdict(session.stats)
        stats["stdin_tail"] = stats["stdin_tail"].decode("utf-8", "replace")
        stats["ended"] = session.ended
        return _json_response(200, stats)

    async def _control_health(self, request: web.Request) -> web.Response:
        return _json_response(200, {"ok": True, "sessions": len(self._sessions)})

    async def _aws_json(self, request: web.Request) -> web.Response:
        status, body = await self._api.handle(
            request.headers.get("X-Amz-Target", ""), await request.read(), request.headers.get("Authorization", "")
        )
        return _json_response(status, body, content_type=JSON_CONTENT_TYPE)


def _token_of(data: Any) -> str | None:
    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return None
    token = value.get("TokenValue") if isinstance(value, dict) else None
    return token if isinstance(token, str) else None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def _json_response(status: int, body: dict[str, Any], *, content_type: str = "application/json") -> web.Response:
    response = web.Response(status=status, body=json.dumps(body).encode(), content_type=None)
    response.headers["Content-Type"] = content_type
    if "__type" in body:
        response.headers["x-amzn-ErrorType"] = str(body["__type"])
    return response


class AgentThread:
    """A ``LocalAgent`` on its own event loop in a daemon thread; a context manager for sync code."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self.agent = LocalAgent(host, port, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-agent", daemon=True)

    def start(self) -> AgentThread:
        self._thread.start()
        self.call(self.agent.start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.call(self.agent.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> AgentThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the agent's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def http_url(self) -> str:
        return self.agent.http_url

    @property
    def sandbox_dir(self) -> Path:
        return self.agent.sandbox_dir

    def register(self, spec: SessionSpec) -> RegisteredSession:
        return self.call(_on_loop(self.agent.register, spec))

    def _forget_old_sessions(self) -> None:
        # Ended sessions stay (small) so ResumeSession can say "ended"; keep only the newest ones.
        ended = [sid for sid, s in self._sessions.items() if s.ended]
        for sid in ended[: max(0, len(ended) - MAX_ENDED_SESSIONS)]:
            del self._sessions[sid]

    def register_session(self, spec: SessionSpec) -> SessionParams:
        return self.call(_on_loop(self.agent.register_session, spec))

    def stats(self, session_id: str) -> SessionStats:
        return self.call(_on_loop(self.agent.stats, session_id))


async def _on_loop(fn: Any, *args: Any) -> Any:
    return fn(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standins.agent", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default 0: any free port)")
    parser.add_argument("--sandbox-dir", default=None, help="working directory of commands (default: a temp dir)")
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve https:// and wss:// (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    context: ssl.SSLContext | None = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def serve() -> None:
        agent = LocalAgent(args.host, args.port, sandbox_dir=args.sandbox_dir, ssl_context=context)
        await agent.start()
        print(agent.http_url, flush=True)  # the one line a parent process reads
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await agent.stop()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
