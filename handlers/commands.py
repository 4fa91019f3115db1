"""The ``/ecs-exec`` slash command: ack within Slack's 3 s, always, then work in a tracked job.

Before the ack we only do what is fast and decisive: refuse while draining, claim the request once
(replays of a signed request are possible for 5 minutes), parse (pure), look up group membership from
the cache (bounded by ``Services.ack_lookup_timeout``) and evaluate the policy (pure). The ack is the
refusal, the usage text, or "running…". Everything that talks to AWS, or to Slack beyond the ack,
happens in a `JobTracker` job whose failures reach the user as one sentence (or "internal error,
reference <id>") through the command's ``response_url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from bot.audit import AuditKind
from bot.commands import (
    DoctorRequest,
    ExecRequest,
    HelpRequest,
    ListRequest,
    RunbookRequest,
    parse_command_text,
)
from bot.errors import BotError, StoreError
from bot.policy import Decision
from bot.runs.approvals import ApprovalError
from bot.runs.intake import (
    allowed_summary_with_runbooks,
    build_order,
    decide,
    policy_groups,
    require_some_rule,
)
from bot.runs.jobs import BotRestarting, Job
from bot.runs.order import Origin, RunOrder
from bot.targets import ServiceRef, resolve_service_ref
from handlers import replies
from handlers.delivery import SlackRun, post_approval_card
from handlers.runbook_command import plan_runbook
from handlers.slack_calls import Responder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.services import Services

log = logging.getLogger("ecs_exec_bot.handlers")

COMMAND = "/ecs-exec"
# A job waits at most this long for its own ack before working anyway (the ack failed to send).
ACK_WAIT_S = 3.0
Ack = Callable[..., Awaitable[None]]
Message = tuple[str, list[dict[str, Any]]]
# What the pre-ack part decides: the ack message, and the work to run after it (if any).
Plan = tuple[Message, Callable[[Job], Awaitable[None]] | None]


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


def register(app: AsyncApp, services: Services) -> None:
    @app.command(COMMAND)
    async def _slash_command(
        ack: Ack, body: dict[str, Any], request: AsyncBoltRequest, client: AsyncWebClient
    ) -> None:
        await handle_slash_command(services, client, ack, body, request)


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



async def handle_slash_command(
    services: Services, client: AsyncWebClient, ack: Ack, body: dict[str, Any], request: AsyncBoltRequest
) -> None:
    request_id = new_request_id()
    acked = False
    ack_sent = asyncio.Event()  # jobs wait for it, so their messages never overtake the ack

    async def reply(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        nonlocal acked
        acked = True
        await ack(text=text, blocks=blocks)
        ack_sent.set()

    try:
        cmd = SlashCommand.model_validate(body)
        if services.jobs.draining:
            raise BotRestarting()
        stamps = request.headers.get("x-slack-request-timestamp")
        timestamp = stamps[0] if stamps else None
        key = dedupe_key(body, request.raw_body, timestamp)
        try:
            claimed = await services.runs.claim_within(key, services.ack.claim_ttl_s, services.ack.store_s)
        except StoreError as exc:
            # Without the store the bot cannot promise "exactly once": refuse, and leave an audit trace.
            await reply(*replies.refusal(exc))
            _audit_store_refusal(services, request_id, cmd, exc)
            return
        if not claimed:
            log.info("replayed slash command %s ignored", key)
            await reply(*replies.already_received())
            return
        parsed = parse_command_text(cmd.text)
        if isinstance(parsed, HelpRequest):
            message, work = replies.help_message(), None
        elif isinstance(parsed, ListRequest):
            message, work = await _list(services, cmd)
        elif isinstance(parsed, DoctorRequest):
            message, work = await _doctor(services, cmd, parsed)
        elif isinstance(parsed, RunbookRequest):
            message, work = await plan_runbook(services, client, user=cmd.user_id, channel=cmd.channel_id,
                                               response_url=cmd.response_url, req=parsed, request_id=request_id)
        else:
            message, work = await _exec(services, client, cmd, parsed, request_id)
        if work is not None:
            # Started before the ack so a drain that began meanwhile is answered in the ack itself.
            _start(services, request_id, cmd, work, ack_sent)
        await reply(*message)
    except ValidationError:
        log.warning("malformed slash command payload (request %s)", request_id)
        if not acked:
            await reply(*replies.internal_error(request_id))
    except BotError as exc:
        if not acked:
            await reply(*replies.refusal(exc))
        else:
            log.warning("request %s: %s", request_id, exc.user_text())
    except Exception:
        log.exception("slash command failed before its ack (reference %s)", request_id)
        if not acked:
            await reply(*replies.internal_error(request_id))



def _audit_store_refusal(services: Services, request_id: str, cmd: SlashCommand, exc: BotError) -> None:
    """Audit a request refused for lack of store, after the ack (the JSON log line is written at once;
    the store write is attempted and its failure only logged)."""

    async def record(job: Job) -> None:
        await services.auditor.record(
            AuditKind.REFUSED, request_id=request_id, user=cmd.user_id, requester=cmd.user_id,
            channel=cmd.channel_id, command=cmd.text, details={"reason": exc.user_text()}, best_effort=True,
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


async def _list(services: Services, cmd: SlashCommand) -> Plan:
    def summary(groups: frozenset[str]) -> list[str]:
        return allowed_summary_with_runbooks(services.config, cmd.user_id, groups, cmd.channel_id)

    groups = await _groups(services, cmd.user_id)
    if groups is not None:
        return replies.allowed_list(summary(groups)), None

    async def later(job: Job) -> None:
        full = await _all_groups(services, cmd.user_id)
        await Responder(cmd.response_url)(
            *replies.allowed_list(summary(full))
        )

    return replies.checking(), later


async def _doctor(services: Services, cmd: SlashCommand, req: DoctorRequest) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups = await _groups(services, cmd.user_id)
    if groups is not None:
        require_some_rule(services.config, cmd.user_id, groups, ref)

    async def work(job: Job) -> None:
        if groups is None:
            require_some_rule(services.config, cmd.user_id, await _all_groups(services, cmd.user_id), ref)
        report = await services.backend.doctor(ref.name, task=None, requester=cmd.user_id)
        await Responder(cmd.response_url)(*replies.doctor_report(report))

    return replies.doctor_started(ref.name), work


async def _exec(
    services: Services, client: AsyncWebClient, cmd: SlashCommand, req: ExecRequest, request_id: str
) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups = await _groups(services, cmd.user_id)
    if groups is None:
        # Slack's group API is slow right now: ack, then decide once the lookup finishes.

        async def decide_later(job: Job) -> None:
            full = await _all_groups(services, cmd.user_id)
            decision = _decide(services, cmd, req, ref, full)
            await _after_decision(services, client, cmd, req, ref, decision, request_id, job, acked=False)

        return replies.checking(), decide_later

    decision = _decide(services, cmd, req, ref, groups)
    if decision.allowed:
        message = replies.running(ref.name, req.command, services.redactor)
    elif decision.needs_approval:
        message = replies.approval_pending(ref.name, req.command, services.redactor)
    else:
        message = replies.refusal(decision.to_error())

    async def work(job: Job) -> None:
        await _after_decision(services, client, cmd, req, ref, decision, request_id, job, acked=True)

    return message, work


def _decide(
    services: Services, cmd: SlashCommand, req: ExecRequest, ref: ServiceRef, groups: frozenset[str]
) -> Decision:
    return decide(services.config, user=cmd.user_id, groups=groups, channel=cmd.channel_id, ref=ref, req=req)


async def _after_decision(
    services: Services,
    client: AsyncWebClient,
    cmd: SlashCommand,
    req: ExecRequest,
    ref: ServiceRef,
    decision: Decision,
    request_id: str,
    job: Job,
    *,
    acked: bool,
) -> None:
    """Post-ack: audit the request and its decision, then run it or ask for its approval."""
    order = build_order(
        request_id=request_id, user=cmd.user_id, channel=cmd.channel_id,
        origin=Origin(reply_url=cmd.response_url), ref=ref, req=req, decision=decision,
    )
    audit = services.auditor.record_quietly
    fields = order.audit_fields()
    await audit(AuditKind.REQUESTED, **fields, user=cmd.user_id,
                details={"reason": req.reason or "", "rule": decision.rule or ""})  # fmt: skip
    respond = Responder(cmd.response_url)
    if not decision.allowed and not decision.needs_approval:
        await audit(AuditKind.REFUSED, **fields, user=cmd.user_id, details={"reason": decision.reason})
        if not acked:
            await respond(*replies.refusal(decision.to_error()))
        return
    if decision.needs_approval:
        if not acked:
            await respond(*replies.approval_pending(ref.name, req.command, services.redactor))
        await _request_approval(services, client, order, decision)
        return
    if not acked:
        await respond(*replies.running(ref.name, req.command, services.redactor))
    await services.executor.execute(order, job, SlackRun(client, services.redactor))


async def _request_approval(
    services: Services, client: AsyncWebClient, order: RunOrder, decision: Decision
) -> None:
    """Store the request, then post its card; nobody can approve a card nobody sees, so a failed post
    withdraws the request before the requester is told."""
    if decision.approval is None:  # a policy bug; refuse rather than run unapproved
        raise ApprovalError("This rule needs approval but names no approvers.", fix="Ask the bot's admins to fix the rule.")
    record = await services.runs.open_approval(order, decision.rule or "", decision.approval)
    try:
        ts = await post_approval_card(client, services.redactor, record)
    except BotError:
        await services.runs.cancel(record.request_id, record.requester)
        raise
    await services.runs.set_message_ts(record.request_id, ts)


def _start(
    services: Services,
    request_id: str,
    cmd: SlashCommand,
    work: Callable[[Job], Awaitable[None]],
    ack_sent: asyncio.Event,
) -> None:
    """Start ``work`` as a tracked job once the ack is out; any error reaches the user via response_url."""

    async def guarded(job: Job) -> None:
        respond = Responder(cmd.response_url)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ack_sent.wait(), ACK_WAIT_S)
            await work(job)
        except BotError as exc:
            await respond(*replies.refusal(exc))
        except Exception:
            log.exception("request %s failed (reference %s)", request_id, request_id)
            await respond(*replies.internal_error(request_id))

    services.jobs.start(request_id, guarded, requester=cmd.user_id, request_id=request_id)
