"""The real bot served on loopback for end-to-end tests: `running_bot(...)` → a `BotHarness`.

It goes through `handlers.server.runtime.serve` (auth.test at boot, the aiohttp listener on 127.0.0.1:0,
SIGTERM-style drain on ``harness.shutdown()``) with Slack pointed at a `FakeSlack`. Tests choose the
collaborators (store, backend, config) so the approvals tests can share one store between two bots.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.runs.backend import AwsExecBackend
from bot.runs.jobs import DrainReport
from bot.runs.limits import RunLimiter, RunLimits
from bot.services import Services, build_services
from handlers.app import SlackSettings
from handlers.live import LiveSettings
from handlers.server.runtime import RunningBot, ServeOptions, serve
from handlers.usergroups import UserGroupCache
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_requests import AckResponse, SlackSender

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.runner import ExecRunner
    from bot.store.base import Store

SIGNING_SECRET = "e2e-signing-secret"
# Live progress off: these tests read the first chat.update as the result, and a loaded machine could let a
# live update come first. Live progress has its own tests (tests/slack/test_e2e_live.py).
TEST_OPTIONS = ServeOptions(
    host="127.0.0.1", port=0, drain_grace=5.0, cancel_grace=5.0, live=LiveSettings(enabled=False),
    freeze_startup_heap=False,
)


def wired_services(
    config: BotConfig, aws: LocalAws, store: Store, client: AsyncWebClient, *, runner: ExecRunner | None = None,
    **options: Any,
) -> Services:
    """The production wiring (`bot.services.build_services`) with the test's store, local AWS and optional
    runner; a generous per-minute limit so table-driven tests are not throttled."""
    options.setdefault("limiter", RunLimiter(store, RunLimits(max_runs_per_minute_per_user=1000)))
    backend = AwsExecBackend(config, aws.factory(dict(config.environments)), runner)
    return build_services(config, store, backend, UserGroupCache(client), **options)


@dataclass
class BotHarness:
    fake: FakeSlack
    running: RunningBot
    sender: SlackSender
    served: asyncio.Task[DrainReport]

    @property
    def services(self) -> Services:
        return self.running.services

    @property
    def url(self) -> str:
        return self.running.url

    async def command(self, text: str, **fields: Any) -> AckResponse:
        # Unless a test listens on its own key, response_url posts land in FakeSlack's "default" sink.
        fields.setdefault("response_url", self.fake.response_url("default"))
        return await self.sender.command(text, **fields)

    async def shutdown(self) -> DrainReport:
        """What SIGTERM does: set the stop event, then wait for the drain to finish."""
        self.running.stop.set()
        return await self.served


ServicesBuilder = Callable[[AsyncWebClient, dict[str, Any]], Services]


@asynccontextmanager
async def running_bot(
    fake: FakeSlack,
    build: ServicesBuilder,
    *,
    options: ServeOptions = TEST_OPTIONS,
    socket_mode: bool = False,
) -> AsyncIterator[BotHarness]:
    slack = SlackSettings(
        bot_token=fake.bot_token,
        signing_secret=SIGNING_SECRET,
        app_token=fake.app_token if socket_mode else None,
        api_url=fake.api_url,
    )
    ready: asyncio.Future[RunningBot] = asyncio.get_running_loop().create_future()

    async def factory(client: AsyncWebClient, info: dict[str, Any]) -> Services:
        return build(client, info)

    served = asyncio.create_task(
        serve(slack, factory, options, on_ready=ready.set_result, install_signal_handlers=False)
    )
    done, _ = await asyncio.wait({ready, served}, return_when=asyncio.FIRST_COMPLETED)
    if served in done:
        served.result()  # start-up failed: raise it here
    running = ready.result()
    harness = BotHarness(fake, running, SlackSender(running.url, SIGNING_SECRET), served)
    try:
        yield harness
    finally:
        if not served.done():
            running.stop.set()
            await served
