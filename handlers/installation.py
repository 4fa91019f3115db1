"""The one Slack installation this bot serves: every request must come from it.

A signing secret belongs to an app, not to a workspace: an app installed in a second workspace (or a
Slack Connect partner's org) sends requests that verify just as well. So each request's ``team_id`` /
``api_app_id`` (and ``enterprise_id`` when present) must match what ``auth.test`` and ``bots.info`` said
about our own bot token at start-up; anything else is refused before parsing or policy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("ecs_exec_bot.handlers")

REFUSAL = (
    "This bot serves only the Slack workspace it was installed for; your request came from another "
    "workspace or app. Ask an admin of that workspace to install its own copy."
)


@dataclass(frozen=True)
class Installation:
    team_id: str
    app_id: str | None  # None: bots.info did not say (then only the team and enterprise are checked)
    enterprise_id: str | None = None

    def refusal(self, body: Mapping[str, Any]) -> str | None:
        """Why ``body`` is not from this installation, or None when it is (pure)."""
        team, app, enterprise = request_identity(body)
        if team != self.team_id:
            return f"team {team or 'missing'} is not {self.team_id}"
        if self.app_id is not None and app != self.app_id:
            return f"app {app or 'missing'} is not {self.app_id}"
        if enterprise is not None and enterprise != self.enterprise_id:
            return f"enterprise {enterprise} is not {self.enterprise_id or 'none'}"
        return None


def request_identity(body: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(team id, app id, enterprise id) of any Slack payload: slash commands and events carry flat
    ``team_id``; interactivity payloads (buttons, shortcuts, modals) carry ``team.id``."""
    team = body.get("team_id") or _id(body.get("team"))
    enterprise = body.get("enterprise_id") or _id(body.get("enterprise"))
    app = body.get("api_app_id")
    return (_str(team), _str(app), _str(enterprise))


def _id(value: object) -> object:
    return value.get("id") if isinstance(value, Mapping) else None


def _str(value: object) -> str | None:
    return str(value) if value else None


async def learn_installation(client: AsyncWebClient, auth: Mapping[str, Any]) -> Installation:
    """Our own installation, from ``auth.test`` (team, enterprise, bot id) and ``bots.info`` (app id)."""
    app_id: str | None = None
    bot_id = auth.get("bot_id")
    if bot_id:
        try:
            resp = await client.bots_info(bot=str(bot_id))
            app_id = _str((resp.get("bot") or {}).get("app_id"))
        except SlackApiError as exc:
            log.warning("bots.info failed (%s): requests are checked by team only", exc.response.get("error"))
    if app_id is None:
        log.warning("the bot's app id is unknown: requests are checked by team (and enterprise) only")
    return Installation(
        team_id=str(auth.get("team_id") or ""), app_id=app_id, enterprise_id=_str(auth.get("enterprise_id"))
    )


Next = Callable[[], Awaitable[BoltResponse]]


def guard(installation: Installation) -> Callable[..., Awaitable[BoltResponse]]:
    """A Bolt global middleware refusing requests from any other installation."""

    async def installation_guard(req: AsyncBoltRequest, resp: BoltResponse, next: Next) -> BoltResponse:  # noqa: A002
        body = req.body or {}
        if body.get("type") == "url_verification":
            return await next()  # Slack's own handshake when the Request URL is set: no team yet
        why = installation.refusal(body)
        if why is None:
            return await next()
        log.warning("request from another installation refused (%s)", why)
        if body.get("command"):  # a slash command shows the body to its user
            return BoltResponse(status=200, body={"response_type": "ephemeral", "text": f"⛔ {REFUSAL}"})
        return BoltResponse(status=200, body="")

    return installation_guard
