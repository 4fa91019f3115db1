"""The ``/ecs-exec`` slash command: ack within Slack's 3 s, always, then work in a tracked job.

Before the ack we only do what is fast and decisive: refuse while draining, claim the request once
(replays of a signed request are possible for 5 minutes), parse (pure), look up group membership from
the cache (bounded by ``Services.ack_lookup_timeout``) and evaluate the policy (pure). The ack is the
refusal, the usage text, or "running…". Everything that talks to AWS, or to Slack beyond the ack,
happens in a `JobTracker` job whose failures reach the user as one sentence (or "internal error,
reference <id>") through the command's ``response_url``.

`handle_request` is that path for any listener: the slash command and the ``@ecs-exec`` mention
(`handlers.mentions`) each turn their payload into a `CommandRequest` and an `Answer`, and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.allowed import allowed_summary_with_runbooks
from bot.audit import AuditKind
from bot.commands import (
    DoctorRequest,
    ExecRequest,
    FilterRequest,
    HelpRequest,
    ListRequest,
    RunbookRequest,
    parse_command_text,
)
from bot.errors import BotError, StoreError
from bot.policy import Decision
from bot.runs.intake import (
    Standing,
    build_order,
    decide,
    policy_groups,
    require_some_rule,
)
from bot.runs.jobs import BotRestarting, Job, JobStepFailed
from bot.runs.order import Origin, RunOrder
from bot.runs.queue import Ticket
from bot.service_ref import ServiceRef, resolve_service_ref
from handlers import replies
from handlers.delivery import request_approval, slack_run
from handlers.followups import plan_filter
from handlers.runbook_command import plan_runbook
from handlers.slack_calls import Replier, requester_replier

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.services import Services
    from handlers.live import LiveUpdates

log = logging.getLogger("ecs_exec_bot.handlers")

COMMAND = "/ecs-exec"
# A job waits at most this long for its own ack before working anyway (the ack failed to send).
ACK_WAIT_S = 3.0
Ack = Callable[..., Awaitable[None]]
Message = tuple[str, list[dict[str, Any]]]


class Plan(NamedTuple):
    """What the pre-answer part decides: the first answer, and the work to run after it (if any).
    ``notice``: the answer only says the request is under way (see `Answer`)."""

    message: Message
    work: Callable[[Job], Awaitable[None]] | None = None
    notice: bool = False
    # A queued run: ``work`` records the request at once; ``then`` runs it when ``after`` (its queue
    # place) comes up, the job waiting in between as a callback (see `bot.runs.jobs`).
    then: Callable[[Job], Awaitable[None]] | None = None
    after: asyncio.Future[None] | None = None


class SlashCommand(BaseModel):
    """The fields of a slash-command payload we use (Slack sends more; user_name is deprecated)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    command: str
    text: str = ""
    user_id: str
    channel_id: str
    team_id: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None


def register(app: AsyncApp, services: Services, live: LiveUpdates | None = None) -> None:
    @app.command(COMMAND)
    async def _slash_command(
        ack: Ack, body: dict[str, Any], request: AsyncBoltRequest, client: AsyncWebClient
    ) -> None:
        await handle_slash_command(services, client, ack, body, request, live)


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def dedupe_key(body: Mapping[str, Any], raw_body: str, timestamp: str | None) -> str:
    """``trigger_id`` is unique per invocation; an exact replay repeats it. Without one (never seen from
    Slack, but payloads are input), the signed body + timestamp identify the request."""
    trigger = body.get("trigger_id")
    if isinstance(trigger, str) and trigger:
        return f"slack-trigger:{trigger}"
    digest = hashlib.sha256(f"{timestamp or ''}:{raw_body}".encode()).hexdigest()
    return f"slack-body:{digest}"



@dataclass(frozen=True)
class CommandRequest:
    """What a listener hands the one shared path: who asked what, where, and where the answers go.

    ``response_url`` is the slash command's requester-only channel; a mention has none and is answered
    ephemerally in its thread. ``thread_ts``: results, approval cards and files go in that thread.
    """

    user: str
    channel: str
    text: str
    dedupe_key: str
    thread_ts: str | None = None
    response_url: str | None = None

    def replier(self, client: AsyncWebClient) -> Replier:
        return requester_replier(
            client, response_url=self.response_url, channel=self.channel, user=self.user,
            thread_ts=self.thread_ts,
        )

    @property
    def origin(self) -> Origin:
        return Origin(reply_url=self.response_url, thread_ts=self.thread_ts)


class Answer(Protocol):
    """The listener's first answer to a request (the slash command's ack; a mention's ephemeral reply).
    ``notice``: only says the request is under way, which a message in the thread will show anyway."""

    async def __call__(self, message: Message, *, notice: bool) -> None: ...


async def handle_slash_command(
    services: Services,
    client: AsyncWebClient,
    ack: Ack,
    body: dict[str, Any],
    request: AsyncBoltRequest,
    live: LiveUpdates | None = None,
) -> None:
    request_id = new_request_id()
    try:
        cmd = SlashCommand.model_validate(body)
    except ValidationError:
        log.warning("malformed slash command payload (request %s)", request_id)
        await ack(*replies.internal_error(request_id))
        return
    if not cmd.text.strip() and cmd.trigger_id:
        # No arguments: the command builder (help stays at `/ecs-exec help`). The modal's submission
        # takes handle_request like typed text.
        from handlers.builder import open_builder

        await ack()
        await open_builder(services, client, user=cmd.user_id, trigger_id=cmd.trigger_id, channel=cmd.channel_id)
        return
    stamps = request.headers.get("x-slack-request-timestamp")
    req = CommandRequest(
        user=cmd.user_id, channel=cmd.channel_id, text=cmd.text,
        dedupe_key=dedupe_key(body, request.raw_body, stamps[0] if stamps else None),
        response_url=cmd.response_url,
    )

    async def answer(message: Message, *, notice: bool) -> None:
        await ack(text=message[0], blocks=message[1])

    await handle_request(services, client, req, answer, request_id=request_id, live=live)


async def handle_request(
    services: Services,
    client: AsyncWebClient,
    req: CommandRequest,
    answer: Answer,
    *,
    request_id: str,
    live: LiveUpdates | None = None,
) -> None:
    """The one path of a request, whatever listener it came from: drain check, the exactly-once claim,
    parse, group lookup (bounded), policy; ``answer`` once, then the work in a tracked job."""
    answered = False
    ack_sent = asyncio.Event()  # jobs wait for it, so their messages never overtake the first answer

    async def reply(message: Message, *, notice: bool = False) -> None:
        nonlocal answered
        answered = True
        await answer(message, notice=notice)
        ack_sent.set()

    try:
        if services.jobs.draining:
            raise BotRestarting()
        try:
            claimed = await services.runs.claim_within(req.dedupe_key, services.ack.claim_ttl_s, services.ack.store_s)
        except StoreError as exc:
            # Without the store the bot cannot promise "exactly once": refuse, and leave an audit trace.
            await reply(replies.refusal(exc))
            _audit_store_refusal(services, request_id, req, exc)
            return
        if not claimed:
            log.info("replayed request %s ignored", req.dedupe_key)
            await reply(replies.already_received(), notice=True)
            return
        parsed = parse_command_text(req.text)
        if isinstance(parsed, HelpRequest):
            plan = Plan(replies.help_message())
        elif isinstance(parsed, ListRequest):
            plan = await _list(services, client, req)
        elif isinstance(parsed, DoctorRequest):
            plan = await _doctor(services, client, req, parsed)
        elif isinstance(parsed, FilterRequest):
            plan = plan_filter(services, client, req, parsed)
        elif isinstance(parsed, RunbookRequest):
            message, work, notice = await plan_runbook(services, client, req, parsed, request_id)
            plan = Plan(message, work, notice=notice)
        else:
            plan = await _exec(services, client, req, parsed, request_id, live)
        if plan.work is not None:
            # Started before the answer so a drain that began meanwhile is answered in it.
            _start(services, client, request_id, req, plan, ack_sent)
        await reply(plan.message, notice=plan.notice)
    except BotError as exc:
        if not answered:
            await reply(replies.refusal(exc))
        else:
            log.warning("request %s: %s", request_id, exc.user_text())
    except Exception:
        log.exception("request failed before its answer (reference %s)", request_id)
        if not answered:
            await reply(replies.internal_error(request_id))


def _audit_store_refusal(services: Services, request_id: str, req: CommandRequest, exc: BotError) -> None:
    """Audit a request refused for lack of store, after the ack (the JSON log line is written at once;
    the store write is attempted and its failure only logged)."""

    async def record(job: Job) -> None:
        await services.auditor.record(
            AuditKind.REFUSED, request_id=request_id, user=req.user, requester=req.user,
            channel=req.channel, command=req.text, details={"reason": exc.user_text()}, best_effort=True,
        )  # fmt: skip

    try:
        services.jobs.start(f"audit-{request_id}", record)
    except BotRestarting:
        log.warning("request %s refused (%s) while draining; not audited", request_id, exc.user_text())


async def _groups(services: Services, user_id: str) -> frozenset[str] | None:
    wanted = policy_groups(services.config.policy)
    if not wanted:
        return frozenset()
    return await services.groups.groups_of_within(user_id, wanted, services.ack.lookup_s)


async def _all_groups(services: Services, user_id: str) -> frozenset[str]:
    return await services.groups.groups_of(user_id, policy_groups(services.config.policy))


async def _list(services: Services, client: AsyncWebClient, rq: CommandRequest) -> Plan:
    def summary(groups: frozenset[str]) -> list[str]:
        return allowed_summary_with_runbooks(services.config, rq.user, groups, rq.channel)

    groups = await _groups(services, rq.user)
    if groups is not None:
        return Plan(replies.allowed_list(summary(groups)))

    async def later(job: Job) -> None:
        full = await _all_groups(services, rq.user)
        await rq.replier(client)(*replies.allowed_list(summary(full)))

    return Plan(replies.checking(), later, notice=True)


async def _doctor(services: Services, client: AsyncWebClient, rq: CommandRequest, req: DoctorRequest) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups = await _groups(services, rq.user)
    if groups is not None:
        require_some_rule(services.config, rq.user, groups, ref)

    async def work(job: Job) -> None:
        if groups is None:
            require_some_rule(services.config, rq.user, await _all_groups(services, rq.user), ref)
        report = await services.backend.doctor(ref.name, task=None, requester=rq.user)
        await rq.replier(client)(*replies.doctor_report(report))

    return Plan(replies.doctor_started(ref.name), work, notice=True)


async def _exec(
    services: Services,
    client: AsyncWebClient,
    rq: CommandRequest,
    req: ExecRequest,
    request_id: str,
    live: LiveUpdates | None,
) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups, standing = await asyncio.gather(_groups(services, rq.user), _standing(services, rq.user))
    if groups is None or standing is None:
        # Slack is slow to say who this is right now: answer, then decide once the lookups finish.

        async def decide_later(job: Job) -> None:
            full = await _all_groups(services, rq.user)
            decision = _decide(services, rq, req, ref, full, await _full_standing(services, rq.user))
            await _after_decision(services, client, rq, req, ref, decision, request_id, job, live, acked=False)

        return Plan(replies.checking(), decide_later, notice=True)

    decision = _decide(services, rq, req, ref, groups, standing)
    ticket: Ticket | None = None
    if decision.allowed:
        # The run's place in the queue is taken now, so what the ack says is what happens: running,
        # queued behind N others, or (raised here) refused at capacity with when to retry. (A drain that
        # starts before the job does leaves the place taken: the process is on its way out.)
        queue = services.executor.queue
        ahead = queue.ahead()
        ticket = queue.reserve(rq.user)
        message = replies.running(ref.name, req.command, services.redactor, ahead=ahead)
    elif decision.needs_approval:
        message = replies.approval_pending(ref.name, req.command, services.redactor)
    else:
        message = replies.refusal(decision.to_error())

    async def work(job: Job) -> None:
        await _after_decision(
            services, client, rq, req, ref, decision, request_id, job, live, acked=True, ticket=ticket
        )

    notice = decision.allowed or decision.needs_approval
    if ticket is None or ticket.waiter is None:
        return Plan(message, work, notice=notice)
    order = _order(rq, req, ref, decision, request_id)

    async def requested(job: Job) -> None:
        try:
            await _audit_requested(services, order, rq, req, decision)
        except BaseException:
            services.executor.queue.abandon(ticket)  # `run` will not come: give its place back
            raise

    async def run(job: Job) -> None:
        await services.executor.execute(order, job, slack_run(services, client, live), ticket=ticket)

    return Plan(message, requested, notice=notice, then=run, after=ticket.waiter)


def _decide(
    services: Services, rq: CommandRequest, req: ExecRequest, ref: ServiceRef, groups: frozenset[str],
    standing: Standing,
) -> Decision:
    return decide(
        services.config, user=rq.user, groups=groups, channel=rq.channel, ref=ref, req=req, standing=standing
    )


async def _standing(services: Services, user_id: str) -> Standing | None:
    if services.people is None:
        return "member"
    return await services.people.standing_of_within(user_id, services.ack.lookup_s)


async def _full_standing(services: Services, user_id: str) -> Standing:
    return "member" if services.people is None else await services.people.standing_of(user_id)


async def _after_decision(
    services: Services,
    client: AsyncWebClient,
    rq: CommandRequest,
    req: ExecRequest,
    ref: ServiceRef,
    decision: Decision,
    request_id: str,
    job: Job,
    live: LiveUpdates | None,
    *,
    acked: bool,
    ticket: Ticket | None = None,
) -> None:
    """Post-answer: audit the request and its decision, then run it (in the queue place ``ticket`` its
    answer took) or ask for its approval."""
    order = _order(rq, req, ref, decision, request_id)
    await _audit_requested(services, order, rq, req, decision)
    respond = rq.replier(client)
    if not decision.allowed and not decision.needs_approval:
        await services.auditor.record_quietly(AuditKind.REFUSED, **order.audit_fields(), user=rq.user,
                                              details={"reason": decision.reason})
        if not acked:
            await respond(*replies.refusal(decision.to_error()))
        return
    if decision.needs_approval:
        if not acked and rq.response_url:  # in a thread, the card itself says so
            await respond(*replies.approval_pending(ref.name, req.command, services.redactor))
        await request_approval(services, client, order, decision.rule, decision.approval)
        return
    if not acked and rq.response_url:  # in a thread, the "running…" message itself says so
        await respond(*replies.running(ref.name, req.command, services.redactor))
    await services.executor.execute(order, job, slack_run(services, client, live), ticket=ticket)


def _order(rq: CommandRequest, req: ExecRequest, ref: ServiceRef, decision: Decision, request_id: str) -> RunOrder:
    return build_order(
        request_id=request_id, user=rq.user, channel=rq.channel, origin=rq.origin, ref=ref, req=req,
        decision=decision,
    )


async def _audit_requested(
    services: Services, order: RunOrder, rq: CommandRequest, req: ExecRequest, decision: Decision
) -> None:
    await services.auditor.record_quietly(
        AuditKind.REQUESTED, **order.audit_fields(), user=rq.user,
        details={"reason": req.reason or "", "rule": decision.rule or ""},
    )  # fmt: skip


def _start(
    services: Services,
    client: AsyncWebClient,
    request_id: str,
    rq: CommandRequest,
    plan: Plan,
    ack_sent: asyncio.Event,
) -> None:
    """Start the plan's work as a tracked job once the answer is out; any error reaches the requester
    alone (and a failed first step skips the second)."""

    def guard(step: Callable[[Job], Awaitable[None]]) -> Callable[[Job], Awaitable[None]]:
        async def guarded(job: Job) -> None:
            respond = rq.replier(client)
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ack_sent.wait(), ACK_WAIT_S)
                await step(job)
            except BotError as exc:
                await respond(*replies.refusal(exc))
                raise JobStepFailed() from None
            except Exception:
                log.exception("request %s failed (reference %s)", request_id, request_id)
                await respond(*replies.internal_error(request_id))
                raise JobStepFailed() from None

        return guarded

    assert plan.work is not None
    services.jobs.start(
        request_id, guard(plan.work), then=guard(plan.then) if plan.then is not None else None, after=plan.after,
        requester=rq.user, request_id=request_id,
    )
