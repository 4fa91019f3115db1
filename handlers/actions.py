"""The buttons: Approve, Deny and Cancel, one action id each, for every run (plain or approved).

Slack delivers a click to *any* replica. It is acked at once (no I/O before the ack) and handled in a
tracked job: a claim drops replays of the same click, then one call to the run ledger decides (the vote and
the ``pending → approved`` CAS, the ``approved → running`` claim, or the cancel), so twenty clicks on two
replicas start one ExecuteCommand. The replica that wins the claim runs the order through the executor,
the same path as an allowed command. Refused clicks get an ephemeral sentence.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.output.render import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION, PROBE_ACTION, approvals_left
from bot.runs import RunRecord, RunState
from bot.runs.fanout import run_budget
from bot.runs.intake import policy_groups, require_some_rule, require_still_granted
from bot.runs.jobs import Job
from bot.runs.order import RunOrder, order_from_record
from bot.runs.runbook import runbook_budget
from bot.service_ref import resolve_service_ref
from handlers import replies
from handlers.delivery import show_card, slack_run
from handlers.home import publish_home
from handlers.runbook_delivery import SlackRunbookRun
from handlers.slack_calls import Responder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.approvals")

APPROVE, DENY, CANCEL, PROBE = APPROVE_ACTION, DENY_ACTION, CANCEL_ACTION, PROBE_ACTION
# Click payloads can be replayed for 5 minutes (signed-request window); remember them longer.
CLICK_CLAIM_TTL_S = 900.0

Ack = Callable[..., Awaitable[None]]


class Click(BaseModel):
    """The fields of a block_actions payload we use. A button's value is ``<request id>`` or
    ``<request id>|<request hash>`` (approval cards: a click is checked against the exact request)."""

    model_config = ConfigDict(frozen=True)

    action_id: str
    request_id: str
    request_hash: str
    user_id: str
    response_url: str | None
    action_ts: str
    message_ts: str | None = None  # the message holding the buttons
    value: str = ""  # the button's whole value (Probe: ``<service>|<task id>``)
    from_home: bool = False  # clicked on App Home (no message, no response_url): Home is republished

    @property
    def dedupe_key(self) -> str:
        # Every physical click has its own action_ts; an exact replay of the signed payload repeats it.
        return f"slack-click:{self.user_id}:{self.action_id}:{self.request_id}:{self.action_ts}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Click:
        action = body["actions"][0]
        request_id, _, request_hash = str(action["value"]).partition("|")
        return cls(
            action_id=action["action_id"],
            request_id=request_id,
            request_hash=request_hash,
            user_id=body["user"]["id"],
            response_url=body.get("response_url"),
            action_ts=str(action.get("action_ts") or ""),
            message_ts=(body.get("container") or {}).get("message_ts"),
            value=str(action["value"]),
            from_home=(body.get("view") or {}).get("type") == "home",
        )


async def _probe(services: Services, click: Click) -> None:
    """The Probe button of a result that failed to run: the checklist and a live `true` on that task, for
    people some rule lets run commands on the service (as `/ecs-exec doctor`), answered to them alone."""
    alias, _, task_id = click.value.partition("|")
    ref = resolve_service_ref(services.config, alias)
    groups = await services.groups.groups_of(click.user_id, policy_groups(services.config.policy))
    require_some_rule(services.config, click.user_id, groups, ref)
    report = await services.backend.doctor(ref.name, task=task_id or None, requester=click.user_id, probe=True)
    await Responder(click.response_url)(*replies.doctor_report(report), replace_original=False)


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    for action_id in (APPROVE, DENY, CANCEL, PROBE):
        app.action(action_id)(_listener(services, live))


def _listener(services: Services, live: LiveUpdates | None) -> Callable[..., Awaitable[None]]:
    async def on_click(ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # nothing before the ack: Slack shows an error on the button after 3 s
        try:
            click = Click.from_body(body)
        except (ValidationError, ValueError, KeyError, IndexError, TypeError):
            log.warning("malformed block_actions payload ignored")
            return
        try:
            services.jobs.start(f"click-{uuid.uuid4().hex[:12]}", lambda job: handle_click(services, client, click, live))
        except BotError as exc:  # draining for a restart
            await Responder(click.response_url)(f":no_entry: {exc.user_text()}", replace_original=False)

    return on_click


async def handle_click(
    services: Services, client: AsyncWebClient, click: Click, live: LiveUpdates | None = None
) -> None:
    respond = Responder(click.response_url)
    notice: str | None = None  # a refusal, shown on Home when clicked there (Home has no response_url)
    try:
        if not await services.runs.claim(click.dedupe_key, CLICK_CLAIM_TTL_S):
            log.info("replayed click %s ignored", click.dedupe_key)
            return
        if click.action_id == APPROVE:
            await _approve(services, client, click, live)
        elif click.action_id == DENY:
            await _deny(services, client, click)
        elif click.action_id == CANCEL:
            await _cancel(services, client, click)
        elif click.action_id == PROBE:
            await _probe(services, click)
    except BotError as exc:
        notice = f":no_entry: {exc.user_text()}"
        await respond(notice, replace_original=False)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception("click failed (reference %s)", reference)
        notice = f":warning: internal error, reference {reference}"
        await respond(notice, replace_original=False)
    if click.from_home:
        await publish_home(services, client, click.user_id, notice)


async def _approve(services: Services, client: AsyncWebClient, click: Click, live: LiveUpdates | None) -> None:
    record = await services.runs.get(click.request_id)  # read 1 of at most 2
    await require_still_granted(services.config, services.groups, record)
    groups = await _approver_groups(services, click.user_id, record)
    vote = await services.runs.approve(record, click.user_id, groups, expected_hash=click.request_hash or None)
    if not vote.approved:
        await show_card(client, services.runs, services.redactor, vote.record)  # read 2: anything newer?
        more = (f"it needs {approvals_left(vote.needed)}." if vote.needed
                else "another approver completed it at the same moment.")
        await Responder(click.response_url)(f"Your approval is recorded; {more}", replace_original=False)
        return
    approved = vote.record
    if approved.message_ts is None and click.message_ts:
        # Approved before the poster stored the request's ts: the click's own message is that request,
        # so the run updates it instead of posting a second message.
        await services.runs.set_message_ts(approved.request_id, click.message_ts)
    order = order_from_record(approved).with_message(approved.message_ts or click.message_ts)
    running = await services.runs.start(approved, run_timeout_s=_budget(services, order))
    if running is None:
        return  # another caller claimed the run (cannot normally happen: this click won the approval)
    try:
        services.jobs.start(
            f"run-{running.request_id}", lambda job: _run(services, client, order, running, job, live),
            requester=running.requester, request_id=running.request_id,
        )
    except BotError as exc:  # draining for a restart: it will not run, so record that and say so
        await services.runs.finish(running, RunState.FAILED, exc.user_text())
        raise


async def _run(
    services: Services, client: AsyncWebClient, order: RunOrder, record: RunRecord, job: Job,
    live: LiveUpdates | None,
) -> None:
    if order.runbook is not None:  # approved once for the whole runbook: its steps, from the record
        await services.executor.execute_runbook(order, job, SlackRunbookRun(client, services.redactor), record=record)
        return
    await services.executor.execute(order, job, slack_run(services, client, live), record=record)


async def _deny(services: Services, client: AsyncWebClient, click: Click) -> None:
    record = await services.runs.get(click.request_id)
    groups = await _approver_groups(services, click.user_id, record)
    denied = await services.runs.deny(record, click.user_id, groups)
    await show_card(client, services.runs, services.redactor, denied)


async def _cancel(services: Services, client: AsyncWebClient, click: Click) -> None:
    cancelled = await services.runs.cancel(click.request_id, click.user_id)
    if cancelled.owner is not None:
        # It had started. Running here: interrupt it now; elsewhere, its owner's watch sees `cancelled`
        # within a few seconds. Either way the run's result message replaces this one.
        services.jobs.cancel_request(click.request_id, f"cancelled by <@{click.user_id}>")
        return
    await show_card(client, services.runs, services.redactor, cancelled)


async def _approver_groups(services: Services, user_id: str, record: RunRecord) -> frozenset[str]:
    if not record.approver_groups or user_id in record.approver_users:
        return frozenset()
    return await services.groups.groups_of(user_id, record.approver_groups)


def _budget(services: Services, order: RunOrder) -> float:
    """How long the run may take before the watchdog calls it stuck: fan-out runs in batches."""
    targets = services.config.fanout.max_tasks if order.all_tasks else 1
    if order.runbook is not None:
        return runbook_budget(order.runbook, targets, services.executor.fanout_concurrency)
    return run_budget(order.timeout, targets, services.executor.fanout_concurrency)

