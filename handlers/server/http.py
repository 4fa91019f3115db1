"""The HTTP listener: Bolt's ``/slack/events`` plus ``/healthz`` on one aiohttp server.

Bolt verifies the signature and timestamp of every request to ``/slack/events`` (401 otherwise); we
hand it the raw body untouched because the signature covers the exact bytes. ``/healthz`` answers 503
while draining so a load balancer stops sending new work to a replica that is shutting down (the
replica still answers anything that does arrive with "restarting, try again").
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.app.async_app import AsyncApp

from bot.errors import ConfigError

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

# (healthy, detail) — detail is shown in the JSON body for operators.
HealthCheck = Callable[[], Awaitable[tuple[bool, str]]]


def build_web_app(bolt_app: AsyncApp | None, health: HealthCheck) -> web.Application:
    """``bolt_app=None`` gives a health-only server (Socket Mode still needs ``/healthz`` for ECS)."""
    web_app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        ok, detail = await health()
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "detail": detail}, status=200 if ok else 503
        )

    web_app.router.add_get(HEALTH_PATH, healthz)
    if bolt_app is not None:

        async def events(request: web.Request) -> web.Response:
            bolt_req = await to_bolt_request(request)
            bolt_resp = await bolt_app.async_dispatch(bolt_req)
            return await to_aiohttp_response(bolt_resp)

        web_app.router.add_post(EVENTS_PATH, events)
    return web_app


class HttpListener:
    """An aiohttp server bound to ``host:port`` (port 0 picks a free one; see ``port`` after start)."""

    def __init__(self, web_app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(web_app, access_log=None)
        self._host = host
        self._port = port
        self._site: web.TCPSite | None = None
        self.port: int | None = None

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await self._site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise self._bind_error(exc) from None
        self.port = int(self._runner.addresses[0][1])  # the real port when 0 was asked for

    def _bind_error(self, exc: OSError) -> ConfigError:
        return bind_error(self._host, self._port, exc)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self._host in ("0.0.0.0", "") else self._host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self._runner.cleanup()


def check_port_free(host: str, port: int) -> None:
    """Fail at start-up, before any network call (auth.test), if the port cannot be listened on: a quick
    bind and close. The real bind in `HttpListener.start` still reports a port taken in between."""
    if not port:
        return
    try:
        socket.create_server((host or "0.0.0.0", port)).close()
    except OSError as exc:
        raise bind_error(host, port, exc) from None


def bind_error(host: str, port: int, exc: OSError) -> ConfigError:
    """One sentence with the fix for a listen that failed."""
    where = f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"Port {where} is already in use.",
                           fix="Stop the other process, or set PORT (or --port) to a free port.")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ConfigError(f"No permission to listen on {where}.",
                           fix="Use a port above 1023, or set PORT (or --port).")
    return ConfigError(f"Cannot listen on {where} ({exc.strerror or exc}).",
                       fix="Check HOST (or --host) names an address of this machine.")
