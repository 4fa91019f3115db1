"""Socket Mode: no public URL; Slack pushes payloads over a websocket the bot opens.

The connection is opened with ``apps.connections.open`` through the *same* ``AsyncWebClient`` the app
uses (so ``SLACK_API_URL`` applies to it too), authenticated with the app-level ``xapp-`` token. Acks
travel back over the websocket; signature checks do not apply (the websocket is authenticated).
"""

from __future__ import annotations

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


class SocketModeListener:
    def __init__(
        self, bolt_app: AsyncApp, app_token: str, client: AsyncWebClient, ping_interval: float = 10
    ) -> None:
        self._handler = AsyncSocketModeHandler(
            bolt_app, app_token, web_client=client, ping_interval=ping_interval
        )

    async def start(self) -> None:
        await self._handler.connect_async()

    async def is_connected(self) -> bool:
        return bool(await self._handler.client.is_connected())

    async def stop(self) -> None:
        await self._handler.close_async()
