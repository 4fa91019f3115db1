"""The command builder: a modal that builds ``SERVICE COMMAND`` by picking, for a phone at 3 a.m.

Opened by ``/ecs-exec`` with no arguments (in that channel) and by App Home's "Build a command" (the channel
is then a field). Steps, each a ``block_actions`` with ``dispatch_action`` answered by ``views.update`` (the
view's id and hash): channel (Home only) → service (those the policy offers there, `bot.builder`) → one of
the command patterns allowed there, which pre-fills the command → the command and an optional reason.

``view_submission`` (callback ``BUILDER_MODAL``) turns the fields into the text a user would have typed and
sends it through `handlers.commands.handle_request`, the one path (parse, policy, limits, audit,
approvals). Its first answer is the modal's own: a refusal or usage error stays in the form
(``response_action: errors`` on the command), anything under way closes it and shows in the channel.
``private_metadata`` (the channel) is input like any other: checked again on every step and on submission.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.builder import BuilderState, builder_view, command_text, valid_channel, valid_ts
from bot.errors import SlackError
from bot.output.render import (
    BUILDER_CHANNEL,
    BUILDER_COMMAND,
    BUILDER_MODAL,
    BUILDER_PATTERN,
    BUILDER_REASON,
    BUILDER_SERVICE,
)
from bot.runs.intake import policy_groups
from handlers import replies
from handlers.commands import CommandRequest, Message, handle_request, new_request_id
from handlers.slack_calls import ThreadEphemeral, open_view

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.handlers")
# The membership check from Home runs before the form's ack; past this, the user submits again.
MEMBERSHIP_CHECK_S = 1.5

Ack = Callable[..., Awaitable[None]]
FORM_ERROR_CHARS = 300


class BuilderPlace(BaseModel):
    """The builder's ``private_metadata``: where it was opened."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: str | None = None
    thread_ts: str | None = None
    home: bool = False

    def checked(self) -> BuilderPlace:
        return BuilderPlace(channel=valid_channel(self.channel), thread_ts=valid_ts(self.thread_ts), home=self.home)


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    async def _step(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await update_builder(services, client, body)

    for action_id in (BUILDER_CHANNEL, BUILDER_SERVICE, BUILDER_PATTERN):
        app.action(action_id)(_step)

    @app.view(BUILDER_MODAL)
    async def _submitted(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await handle_builder_submission(services, client, ack, body, live)


async def open_builder(
    services: Services, client: AsyncWebClient, *, user: str, trigger_id: str, channel: str | None,
    thread_ts: str | None = None,
) -> None:
    """``views.open`` within the trigger's 3 s: group memberships only as far as the ack budget allows (past
    it every service is offered; the submission decides anyway). ``channel`` None: from Home."""
    place = BuilderPlace(channel=channel, thread_ts=thread_ts, home=channel is None)
    wanted = policy_groups(services.config.policy)
    groups = await services.groups.groups_of_within(user, wanted, services.ack.lookup_s) if wanted else frozenset()
    state = BuilderState(channel=channel, from_home=place.home)
    view = builder_view(services.config, user, groups, state, place.model_dump_json())
    try:
        await open_view(client, trigger_id, replies.builder_modal(view))
    except SlackError as exc:
        log.warning("the command builder did not open: %s", exc.user_text())
        if channel is not None:
            await ThreadEphemeral(client, channel, user, thread_ts)(
                f"⚠️ {exc.message} Try `/ecs-exec` again, or type `/ecs-exec SERVICE COMMAND`."
            )


def _place(view: dict[str, Any]) -> BuilderPlace | None:
    try:
        return BuilderPlace.model_validate_json(str(view.get("private_metadata") or "{}")).checked()
    except ValidationError:
        return None


def _selected(values: dict[str, Any], block_id: str, action_id: str) -> str | None:
    element = (values.get(block_id) or {}).get(action_id) or {}
    if "selected_conversation" in element:
        value = element.get("selected_conversation")
    else:
        value = (element.get("selected_option") or {}).get("value")
    return value if isinstance(value, str) and value else None


def _command_field(values: dict[str, Any]) -> tuple[str, str]:
    """(block id, text) of the command input, whose block id changes with its pre-fill."""
    for block_id, elements in values.items():
        if isinstance(block_id, str) and block_id.split("-")[0] == BUILDER_COMMAND and isinstance(elements, dict):
            value = (elements.get(BUILDER_COMMAND) or {}).get("value")
            return block_id, value if isinstance(value, str) else ""
    return BUILDER_COMMAND, ""


def _state(view: dict[str, Any], place: BuilderPlace, action: dict[str, Any] | None = None) -> BuilderState:
    values = (view.get("state") or {}).get("values") or {}
    channel = valid_channel(_selected(values, "channel", BUILDER_CHANNEL)) if place.home else place.channel
    service = _selected(values, "service", BUILDER_SERVICE)
    pattern = _selected(values, "pattern", BUILDER_PATTERN)
    if action is not None and action.get("action_id") in (BUILDER_CHANNEL, BUILDER_SERVICE):
        pattern = None  # another service (or channel): its own patterns, nothing pre-filled
    return BuilderState(channel=channel, from_home=place.home, service=service, pattern=pattern)


async def update_builder(services: Services, client: AsyncWebClient, body: dict[str, Any]) -> None:
    try:
        view, user = body["view"], str(body["user"]["id"])
        action = body["actions"][0]
        view_id, view_hash = str(view["id"]), view.get("hash")
    except (KeyError, IndexError, TypeError):
        log.warning("malformed builder block_actions ignored")
        return
    place = _place(view)
    if place is None:
        log.warning("builder step with unreadable private_metadata ignored")
        return
    state = _state(view, place, action)
    groups = await services.groups.groups_of(user, policy_groups(services.config.policy))
    new = builder_view(services.config, user, groups, state, place.model_dump_json())
    try:
        await client.views_update(view_id=view_id, hash=view_hash, view=replies.builder_modal(new))
    except SlackApiError as exc:
        # hash_conflict: a newer step already updated it; the user's latest choice wins.
        log.info("views.update (builder) refused: %s", exc.response.get("error"))


def form_error(message: Message) -> str:
    """A refusal as the form shows it: plain text (the notification text, unescaped), short."""
    text = html.unescape(message[0]).strip()
    return text if len(text) <= FORM_ERROR_CHARS else text[: FORM_ERROR_CHARS - 1] + "…"


async def handle_builder_submission(
    services: Services, client: AsyncWebClient, ack: Ack, body: dict[str, Any], live: LiveUpdates | None = None
) -> None:
    request_id = new_request_id()
    try:
        view, user = body["view"], str(body["user"]["id"])
        values = view["state"]["values"]
    except (KeyError, TypeError):
        log.warning("malformed builder view_submission ignored (request %s)", request_id)
        await ack()
        return
    place = _place(view)
    if place is None or not isinstance(values, dict):
        log.warning("builder submission with unreadable private_metadata ignored (request %s)", request_id)
        await ack()
        return
    state = _state(view, place)
    command_block, command = _command_field(values)
    reason = (values.get(BUILDER_REASON) or {}).get(BUILDER_REASON, {}).get("value")
    errors: dict[str, str] = {}
    if state.channel is None:  # from Home: not picked; from a channel: the metadata did not say a valid one
        errors["channel" if place.home else "service"] = "Pick the channel where it runs and the result goes."
    if state.service not in services.config.services:
        errors["service"] = "Pick a service."
    if not command.strip():
        errors[command_block] = "Type the command to run."
    if not errors and place.home and state.channel is not None:
        problem = await _cannot_run_there(client, state.channel, user)
        if problem:
            errors["channel"] = problem
    if errors or state.channel is None or state.service is None:
        await ack(response_action="errors", errors=errors)
        return
    # Each submission has its own trigger_id (a replay repeats it); a form sent back with errors and
    # submitted again is a new request.
    trigger = body.get("trigger_id")
    key = (f"slack-trigger:{trigger}" if isinstance(trigger, str) and trigger
           else f"slack-view:{view.get('id')}:{view.get('hash')}")
    text = command_text(state.service, command, reason if isinstance(reason, str) else None)
    req = CommandRequest(user=user, channel=state.channel, text=text, dedupe_key=key, thread_ts=place.thread_ts)
    acked = False

    async def answer(message: Message, *, notice: bool) -> None:
        nonlocal acked
        acked = True
        if notice:  # under way: the modal closes, the run's message (or the card) appears in the channel
            await ack()
        else:  # refused, or a usage error: said in the form, which stays open to fix it
            await ack(response_action="errors", errors={command_block: form_error(message)})

    await handle_request(services, client, req, answer, request_id=request_id, live=live)
    if not acked:
        await ack()


async def _cannot_run_there(client: AsyncWebClient, channel: str, user: str) -> str | None:
    """From Home the channel is picked, not where the user is: a rule limited to a channel must not be
    reachable by someone who is not in it. ``chat.postEphemeral`` to the user there is the membership test
    that needs no extra scope (``user_not_in_channel``), and tells them where the result will appear."""
    try:
        # Before the form's ack (Slack waits 3 s for it): bounded.
        await asyncio.wait_for(client.chat_postEphemeral(
            channel=channel, user=user,
            text="⏳ Your command from the Home tab runs here; its result appears in this channel.",
        ), MEMBERSHIP_CHECK_S)
    except TimeoutError:
        return "Slack did not confirm that you are in that channel in time: submit again."
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error == "user_not_in_channel":
            return "You are not a member of that channel: join it, or pick one you are in."
        return f"The bot cannot post in that channel ({error}): invite @ecs-exec there, or pick another."
    return None
