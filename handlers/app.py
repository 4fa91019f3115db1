"""The Slack side's composition root: settings → Web API client → `Services` → a Bolt ``AsyncApp``.

Everything is passed in (no module-level clients), so tests build the same app against FakeSlack, moto and
the local agent. The core (`bot.services.build_services`) knows nothing of Slack; this module gives it
Slack's pieces: the group directory, the audit channel and the bot's user id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError
from handlers.installation import Installation, guard
from handlers.people import PeopleCache
from handlers.usergroups import UserGroupCache

if TYPE_CHECKING:
    from bot.services import Services
    from bot.settings import Settings
    from handlers.live import LiveSettings

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
    """The Slack part of `bot.settings.Settings`, as plain strings (validated by `from_settings`)."""

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


def create_app(
    services: Services, client: AsyncWebClient, slack: SlackSettings, installation: Installation,
    live: LiveSettings | None = None,
) -> AsyncApp:
    """A Bolt app with our handlers. ``process_before_response=True``: the handler acks itself within its
    own bounded pre-ack work and starts tracked jobs, so the HTTP answer never waits on AWS. Requests from
    any other installation are refused first (`handlers.installation`). ``live``: live progress settings
    (default `LiveSettings()`); one budget for every run of this app."""
    import handlers
    from handlers.live import LiveUpdates

    app = AsyncApp(
        client=client,
        signing_secret=slack.signing_secret or "",
        # Socket Mode requests are authenticated by the websocket, and Bolt skips the check there anyway.
        request_verification_enabled=not slack.socket_mode or bool(slack.signing_secret),
        process_before_response=True,
        logger=logging.getLogger("ecs_exec_bot.bolt"),
    )
    app.use(guard(installation))
    handlers.register(app, services, LiveUpdates(live))
    return app


async def build_slack_services(
    settings: Settings, client: AsyncWebClient, bot_info: dict[str, Any], *,
    session_factory: Callable[..., Any] | None = None,
) -> Services:
    """Production wiring (`bot.services.open_services`) with Slack's pieces: user groups, the audit
    channel, the bot's user id. ``session_factory`` makes the boto3 sessions (the demo's stand-ins)."""
    from bot.services import open_services

    notify = None
    if settings.audit_channel:
        channel = settings.audit_channel

        async def notify(line: str) -> None:
            await client.chat_postMessage(channel=channel, text=line, unfurl_links=False)

    return await open_services(
        settings, UserGroupCache(client), notify=notify, session_factory=session_factory,
        bot_user_id=str(bot_info.get("user_id") or "") or None,
        people=PeopleCache(
            client, str(bot_info.get("team_id") or ""), home_enterprise=bot_info.get("enterprise_id") or None
        ),
    )
