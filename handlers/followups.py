"""Follow-ups on a run's kept output, answered in the run's thread: the Filter button and its form, and
the thread reply ``@ecs-exec filter …`` (parsed by `bot.commands`, planned here for `handle_request`).

1. ``block_actions`` (``FILTER_ACTION``, value: the run's request id): acked, the kept run looked up (a
   sentence to the clicker alone if it expired or was never kept), then ``views.open`` with the trigger
   (valid 3 s). ``private_metadata`` carries the request id and where to answer; it is input, so the
   answer goes where the *kept run* says, never where the metadata says.
2. ``view_submission`` (``FILTER_MODAL``): the form is checked before the ack (a bad pattern is shown on
   its field); then, in a job, claimed once on the view id, authorized and filtered by
   `bot.runs.followups.FollowUps`, and posted in the run's thread (with a file when it does not fit).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, SlackError, UsageError
from bot.output.filters import MAX_LINES, OutputFilter
from bot.output.followup_render import (
    FILTER_ACTION,
    FILTER_LINES,
    FILTER_MODAL,
    FILTER_OPTIONS,
    FILTER_PATTERN,
    FILTER_SHOW,
    OPTION_FIXED,
    OPTION_IGNORE_CASE,
    OPTION_INVERT,
    SHOW_COUNT,
    SHOW_TAIL,
)
from bot.runs.intake import policy_groups
from handlers import replies
from handlers.slack_calls import Responder, ThreadEphemeral, open_view, post_message, upload_text_file

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.commands import FilterRequest
    from bot.runs.jobs import Job
    from bot.services import Services
    from handlers.commands import CommandRequest, Plan

log = logging.getLogger("ecs_exec_bot.handlers")

Ack = Callable[..., Awaitable[None]]
# Form submissions can be replayed for 5 minutes (signed-request window); remember them longer.
VIEW_CLAIM_TTL_S = 900.0


class FilterPlace(BaseModel):
    """The form's ``private_metadata``: which run, and where to tell the user about a failure."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str
    channel: str
    thread_ts: str


class FieldError(UsageError):
    """A form value that cannot be used, and the block whose field shows why."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id


def spec_from_view(values: dict[str, Any]) -> OutputFilter:
    """The form's state → a filter (`FieldError` naming the field that shows the sentence)."""

    def element(block: str) -> dict[str, Any]:
        return dict((values.get(block) or {}).get(block) or {})

    switches = {str(o.get("value")) for o in element(FILTER_OPTIONS).get("selected_options") or ()}
    show = str((element(FILTER_SHOW).get("selected_option") or {}).get("value") or "")
    lines_text = str(element(FILTER_LINES).get("value") or "").strip()
    if lines_text and not (lines_text.isdigit() and 1 <= int(lines_text) <= MAX_LINES):
        raise FieldError(FILTER_LINES, f"A whole number from 1 to {MAX_LINES:,}.")
    lines = int(lines_text) if lines_text else None
    try:
        return OutputFilter(
            pattern=str(element(FILTER_PATTERN).get("value") or ""),
            fixed=OPTION_FIXED in switches, ignore_case=OPTION_IGNORE_CASE in switches,
            invert=OPTION_INVERT in switches, count_only=show == SHOW_COUNT,
            head=lines if show not in (SHOW_TAIL, SHOW_COUNT) else None,
            tail=lines if show == SHOW_TAIL else None,
        )
    except UsageError as exc:  # the lines were checked above: what is left is the pattern's
        raise FieldError(FILTER_PATTERN, exc.message) from None


def register(app: AsyncApp, services: Services) -> None:
    @app.action(FILTER_ACTION)
    async def _clicked(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await open_filter_modal(services, client, body)

    @app.view(FILTER_MODAL)
    async def _submitted(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await handle_filter_submission(services, client, ack, body)


async def open_filter_modal(services: Services, client: AsyncWebClient, body: dict[str, Any]) -> None:
    try:
        request_id = str(body["actions"][0]["value"])
        user, trigger_id = str(body["user"]["id"]), str(body["trigger_id"])
        response_url = body.get("response_url")
    except (KeyError, IndexError, TypeError):
        log.warning("malformed Filter click ignored")
        return
    respond = Responder(response_url)
    try:
        run = await services.followups.kept_run(request_id)
        place = FilterPlace(request_id=run.request_id, channel=run.channel, thread_ts=run.thread_ts)
        view = replies.filter_modal(run.command, place.model_dump_json(), services.redactor)
        await open_view(client, trigger_id, view)
    except SlackError as exc:
        # The trigger expired (3 s) or Slack refused the view: say so where the user clicked.
        log.warning("the filter form did not open: %s", exc.user_text())
        await respond(f"⚠️ {exc.message} Click Filter again, or reply `@ecs-exec filter PATTERN` in the thread.",
                      replace_original=False)
    except BotError as exc:
        await respond(*replies.refusal(exc), replace_original=False)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("filter form failed (reference %s, user %s)", reference, user)
        await respond(*replies.internal_error(reference), replace_original=False)


async def handle_filter_submission(services: Services, client: AsyncWebClient, ack: Ack, body: dict[str, Any]) -> None:
    try:
        view = body["view"]
        place = FilterPlace.model_validate_json(view["private_metadata"])
        user, view_id = str(body["user"]["id"]), str(view["id"])
        values = view["state"]["values"]
    except (ValidationError, KeyError, TypeError, ValueError, json.JSONDecodeError):
        log.warning("malformed filter form submission ignored")
        await ack()
        return
    try:
        spec = spec_from_view(values)
    except FieldError as exc:
        await ack(response_action="errors", errors={exc.block_id: exc.message[:150]})
        return
    await ack()  # the form closes; the answer goes to the run's thread
    tell = ThreadEphemeral(client, place.channel, user, place.thread_ts)

    async def work(job: Job) -> None:
        if not await services.runs.claim(f"slack-view:{view_id}", VIEW_CLAIM_TTL_S):
            return  # a replayed submission
        await run_filter(services, client, place.request_id, spec, user)

    await _start(services, f"filter-{view_id}", work, tell)


def plan_filter(services: Services, client: AsyncWebClient, rq: CommandRequest, req: FilterRequest) -> Plan:
    """``@ecs-exec filter …`` in a thread: the thread's last kept run. The slash command has no thread."""
    from handlers.commands import Plan

    if rq.thread_ts is None:
        raise UsageError(
            "A filter answers in a run's thread, and slash commands cannot be used in threads.",
            fix="Click Filter under the run's result, or reply `@ecs-exec filter PATTERN` in its thread.",
        )
    thread_ts = rq.thread_ts

    async def work(job: Job) -> None:
        request_id = await services.followups.thread_run(rq.channel, thread_ts)
        await run_filter(services, client, request_id, req.spec, rq.user)

    return Plan(replies.filtering(), work, notice=True)


async def run_filter(services: Services, client: AsyncWebClient, request_id: str, spec: OutputFilter,
                     user: str) -> None:
    """Authorize, filter and answer in the run's thread (the kept run says where)."""
    groups = await services.groups.groups_of(user, policy_groups(services.config.policy))
    answer = await services.followups.filter(request_id, spec, user=user, groups=groups)
    (text, blocks), file_text = replies.filter_answer(answer, user, services.redactor)
    await post_message(client, answer.run.channel, text, blocks, thread_ts=answer.run.thread_ts)
    if file_text is not None:
        await upload_text_file(client, answer.run.channel, answer.run.thread_ts, f"filter-{request_id}.txt",
                               f"{answer.run.service}: lines matching {spec.describe()[:100]}", file_text.encode())


async def _start(services: Services, name: str, work: Callable[[Job], Awaitable[None]], tell: ThreadEphemeral) -> None:
    async def guarded(job: Job) -> None:
        try:
            await work(job)
        except BotError as exc:
            await tell(*replies.refusal(exc))
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("filter failed (reference %s)", reference)
            await tell(*replies.internal_error(reference))

    try:
        services.jobs.start(name, guarded)
    except BotError as exc:  # draining for a restart
        await tell(*replies.refusal(exc))
