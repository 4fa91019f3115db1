"""App Home: what is waiting for me, what I ran lately, what I may run, and a way to build a command.

``app_home_opened`` (the Home tab) is acked at once and the view is built in a tracked job, then
``views.publish``ed for that user: the pending requests this user may approve now, as their cards show them
(same Approve / Deny buttons, so `handlers.actions` serves both and republishes Home after a click made
there), the user's last requests (`RunLedger.recent_for_requester`), the policy's summary for them, and
"Build a command" (`handlers.builder`). Reads are bounded (`bot.runs.ledger` PENDING_SCAN, RECENT_SCAN).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.allowed import allowed_summary_with_runbooks
from bot.errors import BotError
from bot.output.render import HOME_APPROVALS, HOME_BUILD_ACTION
from bot.runs.intake import policy_groups
from handlers import replies
from handlers.builder import open_builder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.handlers")

Ack = Callable[..., Awaitable[None]]
# Pending requests read for one user's Home: the first HOME_APPROVALS are shown, the rest counted.
APPROVALS_COUNTED = 50


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    @app.event("app_home_opened")
    async def _opened(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        event = body.get("event") or {}
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str) or not user:
            return  # the Messages tab, or not a person
        start_publish(services, client, user)

    @app.action(HOME_BUILD_ACTION)
    async def _build(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        try:
            user, trigger_id = str(body["user"]["id"]), str(body["trigger_id"])
        except (KeyError, TypeError):
            log.warning("malformed Build a command click ignored")
            return
        await open_builder(services, client, user=user, trigger_id=trigger_id, channel=None)


def start_publish(services: Services, client: AsyncWebClient, user: str, notice: str | None = None) -> None:
    """Publish ``user``'s Home from a tracked job (never on the ack path)."""

    async def work(job: object) -> None:
        await publish_home(services, client, user, notice)

    try:
        services.jobs.start(f"home-{uuid.uuid4().hex[:12]}", work)
    except BotError:  # draining for a restart: Home shows its last version
        log.info("Home of %s not published: the bot is restarting", user)


async def publish_home(services: Services, client: AsyncWebClient, user: str, notice: str | None = None) -> None:
    config = services.config
    try:
        groups = await services.groups.groups_of(user, policy_groups(config.policy))
        pending = await services.runs.pending_for_approver(user, services.groups, limit=APPROVALS_COUNTED)
        recent = await services.runs.recent_for_requester(user)
    except BotError as exc:  # the store is down: Home says so rather than showing nothing
        log.warning("Home of %s: %s", user, exc.user_text())
        groups, pending, recent = frozenset(), [], []
        notice = f"⚠️ {exc.user_text()}"
    allowed = allowed_summary_with_runbooks(config, user, groups, "")  # no channel: channel-limited rules say where
    shown = pending[:HOME_APPROVALS]
    view = replies.home_view(shown, len(pending) - len(shown), recent, allowed, services.redactor, notice)
    try:
        await client.views_publish(user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("views.publish for %s failed: %s", user, exc.response.get("error"))
