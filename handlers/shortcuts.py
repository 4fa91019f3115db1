"""The "Run on ECS…" message shortcut: a modal (service, command, reason) whose submission runs in the
message's thread — for people who would rather pick than type, or are on a phone.

1. ``message_action`` (callback ``RUN_SHORTCUT``): acked, then ``views.open`` with the payload's
   ``trigger_id`` (valid 3 s) and the modal from `bot.output.render.render_run_modal`; its
   ``private_metadata`` keeps the channel and the thread (the message's thread, or the message itself).
2. ``view_submission`` (callback ``RUN_MODAL``): acked at once (the modal closes), then the very same path as
   the slash command and the mention (`handlers.commands.handle_request`), with ``--reason`` and the
   service put in front of the command text; claimed once on the view's id; answers to the requester
   alone go ephemerally to the thread (`handlers.mentions.thread_answer`).
"""

from __future__ import annotations

import json
import logging
import shlex
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import SlackError
from bot.output.render import (
    MODAL_OPTIONS,
    RUN_MODAL,
    RUN_MODAL_COMMAND,
    RUN_MODAL_REASON,
    RUN_MODAL_SERVICE,
    RUN_SHORTCUT,
)
from handlers import replies
from handlers.commands import CommandRequest, handle_request, new_request_id
from handlers.mentions import thread_answer
from handlers.slack_calls import ThreadEphemeral, open_view

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from slack_bolt.app.async_app import AsyncApp

    from bot.config import BotConfig
    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.handlers")


class ModalPlace(BaseModel):
    """Where the modal's request is answered (its ``private_metadata``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: str
    thread_ts: str


class Submission(BaseModel):
    """The fields of a ``view_submission`` we use."""

    model_config = ConfigDict(frozen=True)

    view_id: str
    user: str
    place: ModalPlace
    service: str
    command: str
    reason: str | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Submission:
        view = body["view"]
        values = view["state"]["values"]
        selected = values[RUN_MODAL_SERVICE][RUN_MODAL_SERVICE].get("selected_option") or {}
        reason = values.get(RUN_MODAL_REASON, {}).get(RUN_MODAL_REASON, {}).get("value")
        return cls(
            view_id=view["id"], user=body["user"]["id"],
            place=ModalPlace.model_validate_json(view["private_metadata"]),
            service=str(selected.get("value") or ""),
            command=str(values[RUN_MODAL_COMMAND][RUN_MODAL_COMMAND].get("value") or ""),
            reason=(reason or "").strip() or None,
        )

    @property
    def text(self) -> str:
        """As if typed after ``/ecs-exec``: the same parser, so the same rules and the same usage errors."""
        reason = f"--reason {shlex.quote(self.reason)} " if self.reason else ""
        return f"{reason}{self.service} {self.command.strip()}"


def service_choices(config: BotConfig) -> list[tuple[str, str]]:
    """The catalogue's aliases as ``(alias, "alias (environment)")``; the policy decides on submission."""
    return [(alias, f"{alias} ({config.environment_of(svc)})") for alias, svc in sorted(config.services.items())][
        :MODAL_OPTIONS
    ]


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    @app.shortcut(RUN_SHORTCUT)
    async def _shortcut(ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_run_modal(services, client, body)

    @app.view(RUN_MODAL)
    async def _submitted(ack: Callable[..., Awaitable[None]], body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # the modal closes; every answer goes to the thread
        await handle_submission(services, client, body, live)


async def open_run_modal(services: Services, client: AsyncWebClient, body: dict[str, Any]) -> None:
    try:
        channel = str(body["channel"]["id"])
        message = body["message"]
        thread_ts = str(message.get("thread_ts") or message["ts"])
        user, trigger_id = str(body["user"]["id"]), str(body["trigger_id"])
    except (KeyError, TypeError):
        log.warning("malformed message_action payload ignored")
        return
    metadata = ModalPlace(channel=channel, thread_ts=thread_ts).model_dump_json()
    choices = service_choices(services.config)
    try:
        await open_view(client, trigger_id, replies.run_modal(choices, metadata))
    except SlackError as exc:
        # The trigger expired (3 s) or Slack refused the view: say so where the user clicked.
        log.warning("the Run on ECS form did not open: %s", exc.user_text())
        await ThreadEphemeral(client, channel, user, thread_ts)(
            f"⚠️ {exc.message} Try the shortcut again, or mention @ecs-exec in the thread."
        )


async def handle_submission(
    services: Services, client: AsyncWebClient, body: dict[str, Any], live: LiveUpdates | None = None
) -> None:
    request_id = new_request_id()
    try:
        sub = Submission.from_body(body)
    except (ValidationError, KeyError, TypeError, ValueError, json.JSONDecodeError):
        log.warning("malformed view_submission ignored (request %s)", request_id)
        return
    req = CommandRequest(
        user=sub.user, channel=sub.place.channel, text=sub.text, dedupe_key=f"slack-view:{sub.view_id}",
        thread_ts=sub.place.thread_ts,
    )
    answer = thread_answer(services, req.replier(client), request_id)
    await handle_request(services, client, req, answer, request_id=request_id, live=live)
