"""The Cancel button of a plain (unapproved) run's "running…" message.

The click is acked at once. The run is a job on the replica that started it; if the click lands on that
replica, the job's cancel event is set and the runner interrupts the command (Ctrl-C, then
TerminateSession) — the result message then says who cancelled it. Only the requester may cancel.
A click on another replica cannot reach the job and says so (the command still ends at its timeout);
approved runs use the approvals flow's store-backed Cancel instead (their button value has a ``|``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.output.render import CANCEL_ACTION
from handlers.slack_calls import Responder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.app import Services

log = logging.getLogger("ecs_exec_bot.handlers")

Ack = Callable[..., Awaitable[None]]


def is_plain_run_cancel(body: dict[str, Any]) -> bool:
    """Matcher: a Cancel click whose value is a bare request id (not an approval's ``id|hash``)."""
    try:
        action = body["actions"][0]
    except (KeyError, IndexError, TypeError):
        return False
    return action.get("action_id") == CANCEL_ACTION and "|" not in str(action.get("value", ""))


def register(app: AsyncApp, services: Services) -> None:
    async def matches(body: dict[str, Any]) -> bool:
        return is_plain_run_cancel(body)

    @app.action(CANCEL_ACTION, matchers=[matches])
    async def _cancel(ack: Ack, body: dict[str, Any]) -> None:
        await ack()
        await handle_cancel(services, body)


async def handle_cancel(services: Services, body: dict[str, Any]) -> None:
    respond = Responder(body.get("response_url"))
    request_id = str(body["actions"][0].get("value", ""))
    user_id = str((body.get("user") or {}).get("id", ""))
    job = services.jobs.get(request_id)
    if job is None:
        await respond(
            "This command already finished, or it runs on another replica of the bot and will stop at its timeout.",
            replace_original=False,
        )
        return
    requester = job.labels.get("requester")
    if requester and user_id != requester:
        await respond(f"Only <@{requester}>, who ran this command, can cancel it.", replace_original=False)
        return
    log.info("request %s cancelled by %s", request_id, user_id)
    job.request_cancel(f"cancelled by <@{user_id}>")
