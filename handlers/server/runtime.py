"""The serving process: start-up checks, one listener (HTTP or Socket Mode), SIGTERM drain, shutdown.

Start-up fails fast with one sentence (token shapes, ``auth.test``, config file, store) so a bad
deploy never reports healthy. On SIGTERM (ECS stops tasks with SIGTERM, then SIGKILL after the
container's ``stopTimeout``, 30 s by default and at most 120 s) the bot keeps its listener open but
answers new commands with "restarting, try again", reports 503 on ``/healthz``, lets running commands
finish for ``drain_grace`` seconds, then cancels them (their messages say so) and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.runs.jobs import DrainReport
from bot.services import Services
from handlers.app import (
    SlackSettings,
    build_web_client,
    create_app,
    keep_alive_session,
    verify_bot_token,
)
from handlers.delivery import MAINTENANCE_STOP_S, maintenance_loop
from handlers.installation import learn_installation
from handlers.live import LiveSettings
from handlers.server.http import HttpListener, build_web_app, check_port_free
from handlers.server.socket_mode import SocketModeListener

log = logging.getLogger("ecs_exec_bot.serve")

# Builds the services once Slack answered auth.test (bot user id known).
ServicesFactory = Callable[[AsyncWebClient, dict[str, Any]], Awaitable[Services]]


@dataclass(frozen=True)
class ServeOptions:
    host: str = "0.0.0.0"
    port: int = 3000
    # Below ECS's default stopTimeout (30 s) so cancelled commands can still update their messages.
    drain_grace: float = 20.0
    cancel_grace: float = 5.0
    live: LiveSettings = field(default_factory=LiveSettings)  # live progress of running commands
    # Move what start-up built out of the collector's reach (`gc.freeze`). Off only where many bots share
    # one process (the tests), since it is process-wide and a frozen object is never freed.
    freeze_startup_heap: bool = True


@dataclass
class RunningBot:
    """Handed to ``on_ready`` (tests and the demo): where the bot listens and how to stop it."""

    services: Services
    http: HttpListener
    socket: SocketModeListener | None
    stop: asyncio.Event

    @property
    def url(self) -> str:
        return self.http.url


async def serve(
    slack: SlackSettings,
    services_factory: ServicesFactory,
    options: ServeOptions = ServeOptions(),
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[RunningBot], None] | None = None,
    install_signal_handlers: bool = True,
) -> DrainReport:
    check_port_free(options.host, options.port)  # before any network call: a taken port is a config error
    client = build_web_client(slack.bot_token, slack.api_url)
    session = keep_alive_session(client)
    try:
        return await _serve(slack, services_factory, options, client, stop, on_ready, install_signal_handlers)
    finally:
        await session.close()


async def _serve(
    slack: SlackSettings,
    services_factory: ServicesFactory,
    options: ServeOptions,
    client: AsyncWebClient,
    stop: asyncio.Event | None,
    on_ready: Callable[[RunningBot], None] | None,
    install_signal_handlers: bool,
) -> DrainReport:
    info = await verify_bot_token(client)
    installation = await learn_installation(client, info)
    services = await services_factory(client, info)
    app = create_app(services, client, slack, installation, options.live)
    stop = stop or asyncio.Event()
    socket: SocketModeListener | None = None

    async def health() -> tuple[bool, str]:
        if services.jobs.draining:
            return False, "draining"
        if socket is not None and not await socket.is_connected():
            return False, "socket mode disconnected"
        return True, f"{len(services.jobs.running())} command(s) running"

    if slack.socket_mode:
        assert slack.app_token is not None
        socket = SocketModeListener(app, slack.app_token, client)
        http = HttpListener(build_web_app(None, health), options.host, options.port)  # /healthz only
    else:
        http = HttpListener(build_web_app(app, health), options.host, options.port)
    if options.freeze_startup_heap:
        # Modules, pydantic schemas and the SDKs live as long as the process; frozen, a full collection
        # under a flood scans only what requests made (measured: total full-collection pauses per 10 s
        # of flood about halved, the longest ~150 -> ~100 ms; docs/benchmarks.md).
        gc.collect()
        gc.freeze()
    await http.start()
    if socket is not None:
        await socket.start()
    log.info(
        "serving as %s (%s) on %s:%s",
        info.get("user_id"),
        "Socket Mode" if socket else "HTTP /slack/events",
        options.host,
        http.port,
    )
    if install_signal_handlers:
        _on_signals(stop)
    maintenance_stop = asyncio.Event()
    # Run maintenance (its first round at start-up, so records left behind by a replica that died are
    # failed, their sessions ended and their messages updated before new work arrives) and audit retention.
    background = [
        asyncio.create_task(maintenance_loop(services, client, maintenance_stop), name="run-maintenance"),
        asyncio.create_task(services.auditor.retention_loop(maintenance_stop), name="audit-retention"),
        asyncio.create_task(services.followups.prune_loop(maintenance_stop), name="kept-output-pruning"),
    ]
    if on_ready is not None:
        on_ready(RunningBot(services=services, http=http, socket=socket, stop=stop))
    try:
        await stop.wait()
        log.info("stop requested: draining")
        report = await services.jobs.drain(options.drain_grace, options.cancel_grace)
    finally:
        maintenance_stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*background), MAINTENANCE_STOP_S)
        if socket is not None:
            await socket.stop()
        await http.stop()
        with contextlib.suppress(Exception):
            await services.runs.close()
    return report


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on the main thread / platform
            loop.add_signal_handler(sig, stop.set)
