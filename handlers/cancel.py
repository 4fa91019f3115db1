"""The Cancel button of a plain (unapproved) run's "running…" message.

The click is acked at once. The run is a job on the replica that started it; if the click lands on that
replica, the job's cancel event is set and the runner interrupts the command (Ctrl-C, then
TerminateSession) — the result message then says who cancelled it. Only the requester may cancel.
A click on another replica moves the run's store record (`handlers.execution.open_run_record`) from
``running`` to ``cancelled``; the owner's watcher sees it within a few seconds and interrupts the command
the same way. Approved runs use the approvals flow's store-backed Cancel (their button value has a ``|``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.errors import BotError
from bot.output.render import CANCEL_ACTION
from bot.store.base import RunState, Transition
from handlers.slack_calls import Responder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from handlers.app import Services

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
        await _cancel_elsewhere(services, request_id, user_id, respond)
        return
    requester = job.labels.get("requester")
    if requester and user_id != requester:
        await respond(f"Only <@{requester}>, who ran this command, can cancel it.", replace_original=False)
        return
    log.info("request %s cancelled by %s", request_id, user_id)
    job.request_cancel(f"cancelled by <@{user_id}>")


async def _cancel_elsewhere(services: Services, request_id: str, user_id: str, respond: Responder) -> None:
    """The run is not a job here: through its store record, ask the replica that owns it to stop it."""
    from handlers.execution import audit, is_plain_run

    try:
        record = await asyncio.to_thread(services.store.get_run, request_id)
        if record is None or not is_plain_run(record) or record.state is not RunState.RUNNING:
            await respond("This command already finished.", replace_original=False)
            return
        if user_id != record.requester:
            await respond(f"Only <@{record.requester}>, who ran this command, can cancel it.", replace_original=False)
            return
        if record.owner not in await asyncio.to_thread(services.store.live_replicas):
            # Nobody would see a `cancelled` record; left `running`, the watchdog fails it and fixes the message.
            await respond(
                "The bot replica running this command stopped; its message will say so shortly. "
                "Check the task to see whether the command completed.",
                replace_original=False,
            )
            return
        cancelled = await asyncio.to_thread(
            services.store.transition,
            request_id,
            RunState.RUNNING,
            RunState.CANCELLED,
            Transition(decided_by=user_id, state_reason="cancelled by the requester"),
            expected_owner=record.owner,
        )
    except BotError as exc:
        await respond(f":no_entry: {exc.user_text()}", replace_original=False)
        return
    if cancelled is None:
        await respond("This command already finished.", replace_original=False)
        return
    log.info("request %s cancelled by %s (owner %s)", request_id, user_id, record.owner)
    await audit(
        services, "cancel_requested", user=user_id, request_id=request_id, requester=record.requester,
        channel=record.channel, service=record.service, environment=record.environment, command=record.command,
        details={"was": "running"},
    )  # fmt: skip
