"""Socket Mode: no public URL; Slack pushes payloads over a websocket the bot opens.

The connection is opened with ``apps.connections.open`` through the *same* ``AsyncWebClient`` the app
uses (so ``SLACK_API_URL`` applies to it too), authenticated with the app-level ``xapp-`` token. Acks
travel back over the websocket; signature checks do not apply (the websocket is authenticated).
"""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

# apps.connections.open errors that no retry can fix: the token is wrong, revoked or lacks the scope.
# (The SDK's connect loop retries every error forever, logging a traceback each time.)
_FATAL_OPEN_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                                "not_allowed_token_type", "missing_scope", "invalid_token"})


class SocketModeListener:
    def __init__(
        self, bolt_app: AsyncApp, app_token: str, client: AsyncWebClient, ping_interval: float = 10
    ) -> None:
        self._handler = AsyncSocketModeHandler(
            bolt_app, app_token, web_client=client, ping_interval=ping_interval
        )

    async def start(self) -> None:
        """Open the first connection ourselves so a rejected app token stops start-up (78) at once."""
        client = self._handler.client
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error not in _FATAL_OPEN_ERRORS:
                raise
            await self._handler.close_async()  # its aiohttp session, so the exit stays one line
            raise ConfigError(
                f"Slack rejected SLACK_APP_TOKEN at start-up (apps.connections.open: {error}).",
                fix="Create an app-level token with the connections:write scope under Basic Information "
                "→ App-Level Tokens, or unset SLACK_APP_TOKEN to use HTTP mode.",
            ) from None
        await self._handler.connect_async()

    async def is_connected(self) -> bool:
        return bool(await self._handler.client.is_connected())

    async def stop(self) -> None:
        await self._handler.close_async()
