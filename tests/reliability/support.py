"""Helpers of the reliability suite: read the audit trail, wait for outcomes, inject faults on the wire.

``ThrottlingProxy`` sits between boto3 and the local ECS (moto) and answers the next N calls of one
action with ``ThrottlingException`` (HTTP 400, the JSON protocol's shape), then forwards. ``ResetProxy``
forwards a TCP stream and resets it (RST, no websocket close) after a byte count from the server side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bot.config import BotConfig, parse_config
from bot.store.base import AuditEvent, AuditQuery, Store
from bot.store.sqlite import SqliteStore
from standins.ecs import SANDBOX
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot, wired_services

CONFIG = """
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx, timeout: 30}
  api: {environment: prod, cluster: prod, service: api, timeout: 30}
policy:
  rules:
    - name: oncall
      users: [U0ALICE]
      groups: [S0ONCALL]
      channels: [C0INCIDENT]
      services: [web]
      commands:
        - argv: ["echo", "**"]
        - argv: ["seq", "**"]
        - argv: ["sleep", "*"]
        - argv: ["cat", "WORKDIR/*"]
      timeout: 30
    - name: api-needs-approval
      users: [U0ALICE]
      services: [api]
      commands:
        - argv: ["echo", "**"]
        - argv: ["sleep", "*"]
      approval: {approvers: {users: [U0BOB], groups: [S0SRE]}, min_approvals: 1, ttl: 900}
  redact:
    - {name: internal-token, pattern: 'itk_[A-Za-z0-9]{32}'}
"""


def make_config(workdir: Path) -> BotConfig:
    return parse_config(CONFIG.replace("WORKDIR", str(workdir)), source="reliability.yaml")


build_services = wired_services  # the shared wiring, with this suite's store and optional runner


@asynccontextmanager
async def serve_bot(
    fake: FakeSlack, config: BotConfig, aws: LocalAws, store: Store | Path, **kwargs: Any
) -> AsyncIterator[BotHarness]:
    """The real bot (`handlers.server.runtime.serve`, aiohttp listener on 127.0.0.1:0) over ``store``."""
    the_store = SqliteStore(store) if isinstance(store, Path) else store
    async with running_bot(fake, lambda client, _info: build_services(config, aws, the_store, client, **kwargs)) as h:
        yield h


def audit_events(store: Store, request_id: str | None = None) -> list[AuditEvent]:
    """Oldest first."""
    return list(reversed(store.query_audit(AuditQuery(request_id=request_id, limit=1000))))


def audit_kinds(store: Store, request_id: str | None = None) -> list[str]:
    return [e.kind for e in audit_events(store, request_id)]


async def wait_audit(store: Store, kind: str, *, count: int = 1, within: float = 30.0) -> list[AuditEvent]:
    """Until ``count`` events of ``kind`` are recorded (polling; the bot writes them from its jobs)."""
    deadline = time.monotonic() + within
    while True:
        events = [e for e in await asyncio.to_thread(audit_events, store) if e.kind == kind]
        if len(events) >= count:
            return events
        if time.monotonic() > deadline:
            kinds = await asyncio.to_thread(audit_kinds, store)
            raise AssertionError(f"expected {count} {kind!r} audit event(s); trail: {kinds}")
        await asyncio.sleep(0.05)


def execute_command_calls() -> list[dict[str, Any]]:
    with SANDBOX.lock:
        return list(SANDBOX.requests)


def agent_session_stats(agent_url: str, session_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{agent_url}/control/sessions/{session_id}", timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


class ThrottlingProxy:
    """HTTP proxy for an AWS JSON-protocol endpoint that throttles one action ``times`` times."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.throttle: dict[str, int] = {}  # action (X-Amz-Target suffix) -> answers still to throttle
        self.throttled: dict[str, int] = {}  # action -> how many were throttled
        self.forwarded: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ThrottlingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                action = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                if proxy._take(action):
                    payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                    self._answer(400, {"Content-Type": "application/x-amz-json-1.1"}, payload)
                    return
                request = urllib.request.Request(proxy.upstream + self.path, data=body, method="POST")
                for key, value in self.headers.items():
                    if key.lower() not in ("host", "content-length", "connection"):
                        request.add_header(key, value)
                try:
                    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback
                        status, headers, data = resp.status, dict(resp.headers), resp.read()
                except urllib.error.HTTPError as exc:
                    status, headers, data = exc.code, dict(exc.headers), exc.read()
                with proxy._lock:
                    proxy.forwarded[action] = proxy.forwarded.get(action, 0) + 1
                self._answer(status, {"Content-Type": headers.get("Content-Type", "application/json")}, data)

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _take(self, action: str) -> bool:
        with self._lock:
            left = self.throttle.get(action, 0)
            if left <= 0:
                return False
            self.throttle[action] = left - 1
            self.throttled[action] = self.throttled.get(action, 0) + 1
            return True


class ResetProxy:
    """TCP forwarder that resets the first connection after ``reset_after`` bytes came from the server."""

    def __init__(self, upstream_port: int, reset_after: int) -> None:
        self.upstream_port = upstream_port
        self.reset_after = reset_after
        self.connections = 0
        self.resets = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ResetProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        first = self.connections == 1
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, count: bool) -> None:
            sent = 0
            while data := await src.read(4096):
                if count and first and sent + len(data) >= self.reset_after:
                    self.resets += 1
                    for writer in (client_w, server_w):
                        _reset(writer)
                    return
                sent += len(data)
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(
            pipe(client_r, server_w, count=False), pipe(server_r, client_w, count=True), return_exceptions=True
        )


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER on, timeout 0 (what a dropped NAT/LB entry looks like to both ends)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
