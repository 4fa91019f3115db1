"""Composition root: settings + clients + store → a Bolt ``AsyncApp`` with our handlers registered.

Only this module and ``handlers/`` know Slack. Everything is passed in (no module-level clients), so
tests build the same app against FakeSlack, moto and the local agent.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from bot.runs.jobs import JobTracker
from handlers.usergroups import UserGroupCache

if TYPE_CHECKING:
    from bot.audit import Auditor
    from bot.aws import AwsClientFactory
    from bot.config import BotConfig, Settings
    from bot.doctor import DoctorReport
    from bot.output.redact import Redactor
    from bot.runner import ExecResult, ExecRunner
    from bot.runs.limits import RunLimiter
    from bot.store.base import Store
    from bot.targets import ServiceRef, Target

log = logging.getLogger("ecs_exec_bot.app")

DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# Token shapes (api.slack.com/authentication/token-types). Checked before any network call so a
# pasted user token or a swapped bot/app token fails with a precise sentence instead of "invalid_auth".
_BOT_TOKEN = re.compile(r"^xoxb-[A-Za-z0-9-]+$")
_APP_TOKEN = re.compile(r"^xapp-[A-Za-z0-9-]+$")


def _plain(value: Any) -> str | None:
    """Settings may hold secrets as pydantic ``SecretStr``; handlers want the string."""
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else str(value)
    return text or None


@dataclass(frozen=True)
class SlackSettings:
    """The Slack part of `bot.config.Settings`, as plain strings (validated by `from_settings`)."""

    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    @classmethod
    def from_settings(cls, settings: Any) -> SlackSettings:
        bot_token = _plain(getattr(settings, "slack_bot_token", None))
        app_token = _plain(getattr(settings, "slack_app_token", None))
        secret = _plain(getattr(settings, "slack_signing_secret", None))
        api_url = _plain(getattr(settings, "slack_api_url", None)) or DEFAULT_SLACK_API_URL
        check_token_shapes(bot_token, app_token, secret)
        assert bot_token is not None
        return cls(
            bot_token=bot_token, signing_secret=secret, app_token=app_token, api_url=_api_base(api_url)
        )


def _api_base(url: str) -> str:
    # The SDK joins base_url + method name, so the base must end with "/" (".../api/").
    return url if url.endswith("/") else url + "/"


def check_token_shapes(bot_token: str | None, app_token: str | None, signing_secret: str | None) -> None:
    """Fail at start-up, with one sentence, on a missing or mis-shaped token."""
    if not bot_token:
        raise ConfigError(
            "SLACK_BOT_TOKEN is not set.", fix="Set it to the app's Bot User OAuth Token (xoxb-…)."
        )
    if not _BOT_TOKEN.match(bot_token):
        hint = "that is an app-level token; " if bot_token.startswith("xapp-") else ""
        raise ConfigError(
            f"SLACK_BOT_TOKEN does not look like a bot token ({hint}it must start with xoxb-).",
            fix="Copy the Bot User OAuth Token from OAuth & Permissions.",
        )
    if app_token is not None and not _APP_TOKEN.match(app_token):
        raise ConfigError(
            "SLACK_APP_TOKEN does not look like an app-level token (it must start with xapp-).",
            fix="Create one with the connections:write scope under Basic Information → App-Level Tokens, "
            "or unset SLACK_APP_TOKEN to use HTTP mode.",
        )
    if app_token is None and not signing_secret:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set (HTTP mode needs it to verify requests).",
            fix="Copy the Signing Secret from Basic Information, or set SLACK_APP_TOKEN to use Socket Mode.",
        )


def build_web_client(
    bot_token: str, api_url: str = DEFAULT_SLACK_API_URL, *, timeout: int = 30
) -> AsyncWebClient:
    """The one Web API client: our base URL (``SLACK_API_URL``) and retries for 429 and 5xx.

    The SDK only retries connection errors by default; chat.postMessage is limited to about one message
    per second per channel, so an incident with many commands will meet 429s. The rate-limit handler
    sleeps for ``Retry-After`` before retrying.
    """
    return AsyncWebClient(
        token=bot_token,
        base_url=_api_base(api_url),
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def keep_alive_session(client: AsyncWebClient) -> Any:
    """Give ``client`` one pooled aiohttp session (call from the running loop; close it at shutdown).

    Without one the SDK opens a new session, i.e. a new TCP (and in production TLS) connection, for every
    Web API call: two per command (post, update), the largest share of the bot's CPU per command under
    load. With it, calls reuse keep-alive connections. The session's total timeout is the client's."""
    import aiohttp

    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))
    client.session = session
    return session


async def verify_bot_token(client: AsyncWebClient) -> dict[str, Any]:
    """``auth.test`` at boot, so a revoked or wrong token stops the process with one clear line."""
    try:
        resp = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown_error")
        raise ConfigError(
            f"Slack rejected SLACK_BOT_TOKEN at start-up (auth.test: {error}).",
            fix="Reinstall the app to the workspace and copy the current Bot User OAuth Token.",
        ) from exc
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"Cannot reach the Slack Web API at {client.base_url} ({exc.__class__.__name__}).",
            fix="Check outbound HTTPS to slack.com (or SLACK_API_URL) from this network.",
        ) from exc
    return dict(resp.data) if isinstance(resp.data, dict) else {}


class ExecBackend(Protocol):
    """What the handlers need from AWS: resolve a catalogue service to targets and run on one target.

    `handlers.app.AwsExecBackend` implements it with `bot.targets` + `bot.runner`; unit tests may fake it.
    """

    async def resolve(
        self, service: ServiceRef, *, task: str | None, container: str | None, all_tasks: bool, requester: str
    ) -> list[Target]: ...

    async def run(
        self,
        target: Target,
        command: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the runner contract's name (docs/architecture.md)
        requester: str,
        cancel: asyncio.Event | None,
        on_started: Callable[[str], Any] | None,
    ) -> ExecResult: ...

    async def doctor(self, service_alias: str, *, task: str | None, requester: str) -> DoctorReport: ...


@dataclass
class Services:
    """Everything the handlers use, built once by `build_services` (or by a test)."""

    config: Any  # bot.config.BotConfig: services catalogue + policy
    store: Store
    backend: ExecBackend
    groups: UserGroupCache
    jobs: JobTracker = field(default_factory=JobTracker)
    auditor: Auditor | None = None
    limiter: RunLimiter | None = None
    redactor: Redactor | None = None  # applied to every text that leaves the process
    # Approvals (bot/runs/approvals.py + handlers/actions.py) plug in here; None = refuse "needs approval".
    on_needs_approval: Callable[..., Awaitable[None]] | None = None
    # Set by handlers/actions.py; `handlers.server.runtime.serve` runs its ``maintenance_loop(client, stop)``
    # (expire overdue approvals, fail runs stuck on a dead replica, heartbeat) while serving.
    approval_flow: Any = None
    bot_user_id: str | None = None
    # Unique per process (see `replica_id`): the watchdog tells a dead replica's runs from a live one's by it.
    replica_id: str = field(default_factory=lambda: replica_id())
    # time.monotonic() of this replica's last heartbeat written by a plain run (handlers/execution.py).
    heartbeat_at: float = float("-inf")
    # How long the ack path may wait for a group-membership lookup before acking "checking…" and
    # deciding after the ack (Slack's limit is 3 s for the whole round trip).
    ack_lookup_timeout: float = 1.0
    # Bound on each store call before the ack (the dedupe claim): past it the request is refused as "the
    # store is busy" and nothing runs. SQLite's busy timeout (5 s) alone would miss Slack's 3 s.
    ack_store_timeout: float = 1.5
    # Replays are possible for 5 minutes (Bolt accepts a signed request that long); keep claims longer.
    claim_ttl: float = 900.0
    fanout_concurrency: int = 4


def create_app(services: Services, client: AsyncWebClient, slack: SlackSettings) -> AsyncApp:
    """A Bolt app with our handlers. ``process_before_response=True``: the handler acks itself within its
    own bounded pre-ack work and starts tracked jobs, so the HTTP answer never waits on AWS."""
    import handlers

    app = AsyncApp(
        client=client,
        signing_secret=slack.signing_secret or "",
        # Socket Mode requests are authenticated by the websocket, and Bolt skips the check there anyway.
        request_verification_enabled=not slack.socket_mode or bool(slack.signing_secret),
        process_before_response=True,
        logger=logging.getLogger("ecs_exec_bot.bolt"),
    )
    handlers.register(app, services)
    return app


class AwsExecBackend:
    """`ExecBackend` over `bot.targets` + `bot.runner`, with clients per environment (role assumed with
    the requester as SourceIdentity, see `bot.aws.AwsClientFactory`)."""

    def __init__(
        self, config: BotConfig, factory: AwsClientFactory, runner: ExecRunner | None = None
    ) -> None:
        from bot.runner import ExecRunner

        self._config = config
        self._factory = factory
        self._runner = runner or ExecRunner(factory.for_environment)

    async def resolve(
        self, service: ServiceRef, *, task: str | None, container: str | None, all_tasks: bool, requester: str
    ) -> list[Target]:
        from bot.targets import resolve_targets

        clients = await asyncio.to_thread(self._factory.for_environment, service.environment, requester)
        return await resolve_targets(
            clients,
            service,
            task=task,
            container=container,
            all_tasks=all_tasks,
            cap=self._config.fanout.max_tasks,
        )

    async def run(
        self,
        target: Target,
        command: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the runner contract's name
        requester: str,
        cancel: asyncio.Event | None,
        on_started: Callable[[str], Any] | None,
    ) -> ExecResult:
        return await self._runner.run(
            target, command, timeout=timeout, requester=requester, cancel=cancel, on_started=on_started
        )

    async def doctor(self, service_alias: str, *, task: str | None, requester: str) -> DoctorReport:
        from bot.doctor import run_doctor

        return await run_doctor(self._config, self._factory, service_alias, task=task, requester=requester)


async def build_services(settings: Settings, client: AsyncWebClient, bot_info: dict[str, Any]) -> Services:
    """Production wiring: config file, store, AWS, auditor (with the audit channel), limits, redaction."""
    from bot.audit import Auditor
    from bot.aws import AwsClientFactory
    from bot.config import load_config
    from bot.output.redact import Redactor
    from bot.runs.limits import RunLimiter
    from bot.store import open_store

    if settings.config_file is None:
        raise ConfigError(
            "ECS_EXEC_BOT_CONFIG is not set, so there is no service catalogue or policy.",
            fix="Point it at the YAML file with environments, services and policy.",
        )
    config = load_config(settings.config_file)
    store = await asyncio.to_thread(open_store, settings)
    redactor = Redactor(getattr(config.policy, "redact", ()) or ())
    notify = None
    if settings.audit_channel:
        channel = settings.audit_channel

        async def notify(line: str) -> None:
            await client.chat_postMessage(channel=channel, text=line, unfurl_links=False)

    auditor = Auditor(store, notify=notify, redact=redactor.redact,
                      retention_days=settings.audit_retention_days or None)
    factory = AwsClientFactory(config.environments, default_region=settings.aws_region)
    return Services(
        config=config,
        store=store,
        backend=AwsExecBackend(config, factory),
        groups=UserGroupCache(client),
        auditor=auditor,
        limiter=RunLimiter(store, config.limits),
        redactor=redactor,
        bot_user_id=str(bot_info.get("user_id") or "") or None,
        replica_id=replica_id(),
        fanout_concurrency=config.fanout.concurrency,
    )


REPLICA_ID_ENV = "ECS_EXEC_BOT_REPLICA_ID"


def replica_id() -> str:
    """Unique per process: the approvals watchdog tells a dead replica's runs from a live one's by it.

    ``<hostname>-<pid>-<random>``: the random part keeps a restarted process that reuses a pid (PID 1 in a
    container, on every restart) from inheriting its predecessor's runs. ``ECS_EXEC_BOT_REPLICA_ID``
    overrides it; it must then differ between replicas *and* between restarts, or a restarted replica
    would not recover its predecessor's runs until their deadline."""
    import os
    import socket
    import uuid

    override = os.environ.get(REPLICA_ID_ENV, "").strip()
    if override:
        return override
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
