"""Approval requests and their buttons (Approve / Deny / Cancel), exactly once across replicas.

A request that needs approval is stored (`bot.approvals.ApprovalService.open`) and posted once in its
channel with three buttons; that one message then moves through every state (pending → n of m →
approved → running → result, or denied / expired / cancelled) by ``chat.update``.

Slack delivers each click to *any* replica. A click is acked at once (no I/O before the ack) and handled
in a tracked job: the vote, the ``pending → approved`` CAS and the ``approved → running`` claim happen in
the shared store, so twenty clicks on two replicas start one ExecuteCommand. The replica that wins the
claim runs the request through `handlers.execution.run_order` (the same path as an allowed command) and,
while it runs, heartbeats and watches the record so a Cancel clicked on another replica interrupts it.
Refused clicks (self-approval, not an approver, already decided) get an ephemeral sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals import ApprovalError, ApprovalService, named_approvers
from bot.errors import BotError
from bot.output.redact import Redactor, builtin_redactor
from bot.output.render import APPROVE_ACTION, CANCEL_ACTION, DENY_ACTION, ApprovalView, render_approval
from bot.policy import evaluate, requested_container
from bot.server.jobs import Job
from bot.store.base import ApprovalRecord, ApprovalState, DetailValue
from bot.targets import ServiceRef
from handlers.commands import policy_groups
from handlers.execution import ExecOrder, is_plain_run, recovered_run_message, run_order
from handlers.slack_calls import Responder, post_message, update_message

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp

    from bot.app import Services
    from bot.policy import Decision

log = logging.getLogger("ecs_exec_bot.approvals")

APPROVE, DENY, CANCEL = APPROVE_ACTION, DENY_ACTION, CANCEL_ACTION
# How often the replica running an approved command re-reads its record (a Cancel clicked on another
# replica) and renews its heartbeat (below the 30 s heartbeat TTL the watchdog uses).
WATCH_INTERVAL_S = 2.0
HEARTBEAT_EVERY_S = 10.0
# Click payloads can be replayed for 5 minutes (signed-request window); remember them longer.
CLICK_CLAIM_TTL_S = 900.0

Ack = Callable[..., Awaitable[None]]


# -- the message (pure) ----------------------------------------------------------------------------------


def button_value(record: ApprovalRecord) -> str:
    """``<request id>|<request hash>``: a click is checked against the exact request it was shown for, and
    the ``|`` tells this module's Cancel apart from a plain run's (handlers/cancel.py)."""
    return f"{record.request_id}|{record.request_hash}"


def approval_view(record: ApprovalRecord, redactor: Redactor | None = None) -> ApprovalView:
    """The record as `bot.output.render`'s view of an approval request, with its free texts redacted."""
    redact = (redactor or builtin_redactor()).redact
    target = json.loads(str(record.params.get("target") or "{}"))
    approvers = record.approvers_so_far
    decided = {
        ApprovalState.DENIED: (record.decided_by,),
        ApprovalState.CANCELLED: (record.decided_by,),
    }.get(record.state, approvers)
    return ApprovalView(
        request_id=record.request_id,
        requester=record.requester,
        service=record.service,
        environment=record.environment,
        command=redact(record.command),
        expires_at=int(record.expires_at),
        approver_users=named_approvers(record),
        approver_groups=record.approver_groups,
        min_approvals=record.min_approvals,
        reason=redact(record.reason) if record.reason else None,
        task=target.get("task"),
        all_tasks=bool(target.get("all_tasks")),
        state=record.state.value,  # type: ignore[arg-type]  # same names as render's ApprovalState
        decided_by=tuple(u for u in decided if u),
        votes=len(record.votes),
        button_value=button_value(record),
        cancel=True,
        break_glass=any(v.break_glass for v in record.votes),
        state_reason=redact(record.state_reason) if record.state_reason else None,
    )


def approval_message(record: ApprovalRecord, redactor: Redactor | None = None) -> tuple[str, list[dict[str, Any]]]:
    text, blocks = render_approval(approval_view(record, redactor))
    return text, blocks


# -- opening a request -----------------------------------------------------------------------------------


def target_of(order: ExecOrder) -> dict[str, DetailValue]:
    """What the approval is bound to (hashed): the exact cluster/service/task/container and fan-out."""
    return {
        "cluster": order.service.cluster,
        "service": order.service.service,
        "container": order.container or order.service.container,
        "task": order.task,
        "all_tasks": order.all_tasks,
    }


def order_from_record(record: ApprovalRecord) -> ExecOrder:
    """Rebuild the order from what was approved: never from the current catalogue, which may have changed."""
    target = json.loads(str(record.params["target"]))
    p = record.params
    ref = ServiceRef(
        name=record.service,
        environment=record.environment,
        cluster=target["cluster"],
        service=target["service"],
        container=_opt(p.get("service_container")),
        shell=bool(p.get("shell", True)),
        timeout=int(p.get("service_timeout") or 60),
    )
    return ExecOrder(
        request_id=record.request_id,
        requester=record.requester,
        channel_id=record.channel,
        response_url=_opt(p.get("response_url")),
        service=ref,
        command=record.command,
        timeout=float(p.get("timeout") or ref.timeout),
        task=target["task"],
        container=target["container"],
        all_tasks=bool(target["all_tasks"]),
        reason=record.reason or None,
        rule=record.rule,
        approved_by=record.approvers_so_far,
        message_ts=record.message_ts,
        cancel_value=button_value(record),  # the running message's Cancel comes back here, on any replica
        audit_outcome=True,  # execution audits every target's outcome; the approval only changes state
    )


def _opt(value: DetailValue) -> str | None:
    return str(value) if value not in (None, "") else None


class ApprovalFlow:
    """The approval side of the Slack app; one per replica, built by `register`."""

    def __init__(self, services: Services, approvals: ApprovalService) -> None:
        self.services = services
        self.approvals = approvals
        self._pruned_day: str | None = None

    # Services.on_needs_approval
    async def request_approval(
        self, services: Services, client: AsyncWebClient, order: ExecOrder, decision: Decision
    ) -> ApprovalRecord:
        if decision.approval is None:  # a policy bug; refuse rather than run unapproved
            raise ApprovalError(
                "This rule needs approval but names no approvers.",
                fix="Ask the bot's admins to fix the rule.",
            )
        record = await self.approvals.open(
            **order.audit_fields(),
            reason=order.reason or "",
            rule_name=decision.rule or "",
            rule=decision.approval,
            target=target_of(order),
            params={
                "timeout": order.timeout,
                "response_url": order.response_url,
                "service_container": order.service.container,
                "shell": order.service.shell,
                "service_timeout": order.service.timeout,
            },
        )
        text, blocks = approval_message(record, self.services.redactor)
        try:
            ts = await post_message(client, order.channel_id, text, blocks)
        except BotError:
            # Nobody can see the buttons, so nobody can approve it: withdraw it, then tell the requester.
            await self.approvals.cancel(record.request_id, record.requester)
            raise
        await self.approvals.set_message_ts(record.request_id, ts)
        return record

    # -- clicks ----------------------------------------------------------------------------------------
    async def on_click(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()  # nothing before the ack: Slack shows an error on the button after 3 s
        try:
            click = Click.from_body(body)
        except (ValidationError, ValueError, KeyError, IndexError):
            log.warning("malformed block_actions payload ignored")
            return
        try:
            self.services.jobs.start(
                f"click-{uuid.uuid4().hex[:12]}", lambda job: self._handle(click, client)
            )
        except BotError as exc:  # draining for a restart
            await Responder(click.response_url)(f":no_entry: {exc.user_text()}", replace_original=False)

    async def _handle(self, click: Click, client: AsyncWebClient) -> None:
        respond = Responder(click.response_url)
        try:
            if not await asyncio.to_thread(self.services.store.claim, click.dedupe_key, CLICK_CLAIM_TTL_S):
                log.info("replayed click %s ignored", click.dedupe_key)
                return
            if click.action_id == APPROVE:
                await self._approve(click, client)
            elif click.action_id == DENY:
                record = await self.approvals.get(click.request_id)
                groups = await self._groups(click.user_id, record)
                await self.approvals.deny(click.request_id, click.user_id, groups)
                await self._refresh_message(client, click.request_id)
            elif click.action_id == CANCEL:
                await self._cancel(click, client)
        except BotError as exc:
            await respond(f":no_entry: {exc.user_text()}", replace_original=False)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("approval click failed (reference %s)", reference)
            await respond(f":warning: internal error, reference {reference}", replace_original=False)

    async def _approve(self, click: Click, client: AsyncWebClient) -> None:
        record = await self.approvals.get(click.request_id)
        await self._require_still_granted(record)
        groups = await self._groups(click.user_id, record)
        result = await self.approvals.approve(
            click.request_id, click.user_id, groups, expected_hash=click.request_hash or None
        )
        await self._refresh_message(client, click.request_id)
        if not result.approved:
            more = (
                f"it needs {result.needed} more."
                if result.needed
                else "another approver completed it at the same moment."
            )
            await Responder(click.response_url)(f"Your approval is recorded; {more}", replace_original=False)
            return
        order = order_from_record(result.record)
        if order.message_ts is None and click.message_ts:
            # Approved before the poster stored the request's ts: the click's own message is that request,
            # so the run updates it instead of posting a second message.
            await self.approvals.set_message_ts(click.request_id, click.message_ts)
            order = dataclasses.replace(order, message_ts=click.message_ts)
        running = await self.approvals.start(click.request_id, run_timeout_s=self._run_budget(order))
        if running is None:
            return  # another caller claimed the run (cannot normally happen: this click won the approval)
        # The run is its own job so a Cancel clicked on this replica can reach it directly.
        try:
            self.services.jobs.start(
                _run_job_id(running.request_id), lambda job: self._run(running, order, client, job)
            )
        except BotError as exc:  # draining for a restart: it will not run, so record that and say so
            await self.approvals.finish(running, ApprovalState.FAILED, {"error": exc.user_text()})
            raise

    async def _run(self, record: ApprovalRecord, order: ExecOrder, client: AsyncWebClient, job: Job) -> None:
        watcher = asyncio.create_task(self._watch(record.request_id, job))
        try:
            results = await run_order(self.services, client, order, job)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        outcome, why = _outcome(results, job)
        await self.approvals.finish(record, outcome, {"error": why} if why else None, audit=False)

    async def _watch(self, request_id: str, job: Job) -> None:
        """Heartbeat for the watchdog, and stop the run when its record says ``cancelled``."""
        last_beat = 0.0
        while True:
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_EVERY_S:
                await self.approvals.heartbeat()
                last_beat = now
            record = await asyncio.to_thread(self.services.store.get_approval, request_id)
            if record is not None and record.state is ApprovalState.CANCELLED:
                job.request_cancel(
                    f"cancelled by <@{record.decided_by}>" if record.decided_by else "cancelled"
                )
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _cancel(self, click: Click, client: AsyncWebClient) -> None:
        cancelled = await self.approvals.cancel(click.request_id, click.user_id)
        if cancelled.owner is not None:
            # It had started. Running here: interrupt it now; elsewhere, its owner's watcher sees
            # `cancelled` within WATCH_INTERVAL_S. Either way the run's result message replaces this one.
            self.services.jobs.cancel(_run_job_id(click.request_id), f"cancelled by <@{click.user_id}>")
            return
        await self._refresh_message(client, click.request_id)

    async def _require_still_granted(self, record: ApprovalRecord) -> None:
        """The policy in force now must still grant the request: a rule removed (or narrowed) after the
        request was made must not be bypassed by approving what it used to allow."""
        policy = self.services.config.policy
        groups = await self.services.groups.groups_of(record.requester, policy_groups(policy))
        order = order_from_record(record)  # the container that was approved, not today's catalogue's
        decision = evaluate(
            policy,
            user_id=record.requester,
            user_groups=groups,
            channel_id=record.channel,
            service_alias=record.service,
            environment=record.environment,
            command=record.command,
            shell_available=bool(record.params.get("shell", True)),
            container=requested_container(order.container, order.service.container),
        )
        if not (decision.allowed or decision.needs_approval):
            raise ApprovalError(
                "The policy no longer allows this request, so it cannot be approved.",
                fix="Ask the requester to run the command again if it is still allowed.",
            )

    async def _groups(self, user_id: str, record: ApprovalRecord) -> frozenset[str]:
        if not record.approver_groups or user_id in record.approver_users:
            return frozenset()
        return await self.services.groups.groups_of(user_id, record.approver_groups)

    def _run_budget(self, order: ExecOrder) -> float:
        """How long the run may take before the watchdog calls it stuck: fan-out runs in batches."""
        if not order.all_tasks:
            return order.timeout
        fanout = getattr(self.services.config, "fanout", None)
        max_tasks = getattr(fanout, "max_tasks", 10)
        return order.timeout * math.ceil(max_tasks / max(1, self.services.fanout_concurrency))

    async def _refresh_message(self, client: AsyncWebClient, request_id: str) -> None:
        """Render the record's *current* state into its message. Re-read after the update: if another
        replica changed the state meanwhile, render again, so a slow update cannot leave a stale state."""
        seen: tuple[ApprovalState, int] | None = None
        for _ in range(3):
            record = await self.approvals.get(request_id)
            if record.message_ts is None or record.state is ApprovalState.RUNNING:
                return  # not posted yet / the run's own messages own it now
            if (record.state, len(record.votes)) == seen:
                return
            seen = (record.state, len(record.votes))
            text, blocks = approval_message(record, self.services.redactor)
            await update_message(client, record.channel, record.message_ts, text, blocks)

    # -- maintenance -----------------------------------------------------------------------------------
    async def maintain(self, client: AsyncWebClient) -> list[ApprovalRecord]:
        """Expire overdue requests and fail stuck runs (dead replica / past deadline), then update their
        messages. Run at start-up and periodically (`maintenance_loop`)."""
        await self.approvals.heartbeat()
        changed = [*await self.approvals.expire_due(), *await self.approvals.recover_stuck()]
        for record in changed:
            if record.message_ts is None:
                continue
            text, blocks = (  # a plain run's record (handlers/execution.py) has its own message
                recovered_run_message(record, self.services.redactor)
                if is_plain_run(record)
                else approval_message(record, self.services.redactor)
            )
            try:
                await update_message(client, record.channel, record.message_ts, text, blocks)
            except BotError as exc:
                log.warning("could not update message of request %s: %s", record.request_id, exc.user_text())
        await self._apply_retention()
        return changed

    async def _apply_retention(self) -> None:
        """Prune audit records past their retention once a day; a store claim picks one replica to do it."""
        auditor = self.services.auditor
        day = time.strftime("%Y-%m-%d", time.gmtime(self.approvals.now()))
        if auditor is None or day == self._pruned_day:
            return
        self._pruned_day = day
        if await asyncio.to_thread(self.services.store.claim, f"audit-prune:{day}", 2 * 86400):
            log.info("audit retention: deleted %d record(s)", await auditor.prune())

    async def maintenance_loop(
        self, client: AsyncWebClient, stop: asyncio.Event, interval_s: float = 10.0
    ) -> None:
        while not stop.is_set():
            try:
                await self.maintain(client)
            except Exception:  # a store hiccup must not end the loop; the next round retries
                log.exception("approval maintenance failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def _run_job_id(request_id: str) -> str:
    return f"approved-{request_id}"


def _outcome(results: list[Any] | None, job: Job) -> tuple[ApprovalState, str | None]:
    """The approval's end state from the run's results (a non-zero exit still *finished*)."""
    if results is None:
        return ApprovalState.FAILED, "the command could not be started (see the request's message)"
    statuses = {r.status for r in results}
    if "cancelled" in statuses or job.cancel_reason:
        return ApprovalState.CANCELLED, None
    if statuses <= {"ok", "failed"}:
        return ApprovalState.FINISHED, None
    return ApprovalState.FAILED, ", ".join(sorted(statuses - {"ok", "failed"}))


class Click(BaseModel):
    """The fields of a block_actions payload we use."""

    model_config = ConfigDict(frozen=True)

    action_id: str
    request_id: str
    request_hash: str
    user_id: str
    response_url: str | None
    action_ts: str
    message_ts: str | None = None  # the message holding the buttons: the approval request itself

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
        )


def register(app: AsyncApp, services: Services) -> None:
    """Wire the buttons and make this replica's flow the handler for requests that need approval."""
    if services.auditor is None:
        log.warning("approvals are disabled: no auditor configured")
        return
    flow = ApprovalFlow(
        services, ApprovalService(services.store, services.auditor, replica_id=services.replica_id)
    )
    services.on_needs_approval = flow.request_approval
    services.approval_flow = flow  # type: ignore[attr-defined]  # for the runtime's maintenance loop

    async def is_approval_button(body: dict[str, Any]) -> bool:
        # Our buttons carry "<id>|<hash>"; a plain run's Cancel (handlers/cancel.py) carries a bare id.
        actions = body.get("actions") or [{}]
        return "|" in str(actions[0].get("value", ""))

    for action_id in (APPROVE, DENY, CANCEL):
        app.action(action_id, matchers=[is_approval_button])(flow.on_click)
