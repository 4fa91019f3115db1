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
from bot.commands import DoctorRequest, ExecRequest, HelpRequest, ListRequest, parse_command_text
from bot.errors import BotError, StoreError, TargetError
from bot.policy import Decision, allowed_summary, evaluate, requested_container
from bot.server.jobs import BotRestarting, Job
from bot.targets import ServiceRef, resolve_service_ref
from handlers import replies
from handlers.execution import ExecOrder, audit, run_order
from handlers.slack_calls import Responder

if TYPE_CHECKING:
    from slack_bolt.app.async_app import AsyncApp
    from slack_bolt.request.async_request import AsyncBoltRequest

    from bot.app import Services

log = logging.getLogger("ecs_exec_bot.handlers")

COMMAND = "/ecs-exec"
STORE_BUSY = "The bot's state store is busy; try again in a moment."
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


def policy_groups(policy: Any) -> frozenset[str]:
    """Every user group the policy mentions: only those memberships matter, so only those are fetched."""
    groups: set[str] = set()
    for rule in getattr(policy, "rules", ()) or ():
        groups.update(rule.groups)
        if rule.approval is not None:
            groups.update(rule.approval.approvers.groups)
    return frozenset(groups)


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
        timestamp = (request.headers.get("x-slack-request-timestamp") or [None])[0]
        key = dedupe_key(body, request.raw_body, timestamp)
        try:
            claimed = await _claim(services, key)
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


async def _claim(services: Services, key: str) -> bool:
    """The dedupe claim, at once on the loop when the store can do it without waiting (SQLite), else in a
    thread, bounded so the ack stays within Slack's 3 s even when the store hangs (a SQLite
    file locked by another process waits its busy timeout; a silent DynamoDB endpoint its connect
    timeout). On timeout the request is refused and nothing runs: the claim thread may still finish
    later and record the key, but no work was started for it, so a late win runs nothing (a retry by the
    user is a new request with its own trigger id)."""
    try_now = getattr(services.store, "try_claim_now", None)  # SqliteStore: no thread hop when it can
    if try_now is not None:
        won = try_now(key, services.claim_ttl)
        if won is not None:
            return bool(won)
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(services.store.claim, key, services.claim_ttl), services.ack_store_timeout
        )
    except TimeoutError:
        log.warning("store claim for %s did not answer within %.1f s", key, services.ack_store_timeout)
        raise StoreError(STORE_BUSY) from None


def _audit_store_refusal(services: Services, request_id: str, cmd: SlashCommand, exc: BotError) -> None:
    """Audit a request refused for lack of store, after the ack (the JSON log line is written at once;
    the store write is attempted and its failure only logged)."""
    auditor = services.auditor
    if auditor is None:
        return

    async def record(job: Job) -> None:
        await auditor.record(
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
    return await services.groups.groups_of_within(user_id, wanted, services.ack_lookup_timeout)


async def _list(services: Services, cmd: SlashCommand) -> Plan:
    groups = await _groups(services, cmd.user_id)
    if groups is not None:
        return replies.allowed_list(
            allowed_summary(services.config.policy, cmd.user_id, groups, cmd.channel_id)
        ), None

    async def later(job: Job) -> None:
        respond = Responder(cmd.response_url)
        full = await services.groups.groups_of(cmd.user_id, policy_groups(services.config.policy))
        await respond(
            *replies.allowed_list(allowed_summary(services.config.policy, cmd.user_id, full, cmd.channel_id))
        )

    return replies.checking(), later


async def _doctor(services: Services, cmd: SlashCommand, req: DoctorRequest) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups = await _groups(services, cmd.user_id)
    if groups is not None:
        _require_some_rule(services, cmd, ref, groups)

    async def work(job: Job) -> None:
        respond = Responder(cmd.response_url)
        if groups is None:
            full = await services.groups.groups_of(cmd.user_id, policy_groups(services.config.policy))
            try:
                _require_some_rule(services, cmd, ref, full)
            except BotError as exc:
                await respond(*replies.refusal(exc))
                return
        report = await services.backend.doctor(ref.name, task=None, requester=cmd.user_id)
        await respond(*replies.doctor_report(report))

    return replies.doctor_started(ref.name), work


def _require_some_rule(
    services: Services, cmd: SlashCommand, ref: ServiceRef, groups: frozenset[str]
) -> None:
    """`doctor` reveals how a service is set up: only for people some rule lets run commands there."""
    rules = getattr(services.config.policy, "rules", ()) or ()
    if not any(
        r.includes_user(cmd.user_id, groups) and r.includes_service(ref.name, ref.environment) for r in rules
    ):
        raise TargetError(
            f"No policy rule lets you run commands on `{ref.name}`, so you cannot run doctor on it.",
            fix="Run `/ecs-exec list` to see what you may run, and where.",
        )


async def _exec(
    services: Services,
    client: AsyncWebClient,
    cmd: SlashCommand,
    req: ExecRequest,
    request_id: str,
) -> Plan:
    ref = resolve_service_ref(services.config, req.service)
    groups = await _groups(services, cmd.user_id)
    if groups is None:
        # Slack's group API is slow right now: ack, then decide once the lookup finishes.

        async def decide_later(job: Job) -> None:
            full = await services.groups.groups_of(cmd.user_id, policy_groups(services.config.policy))
            decision = _decide(services, cmd, req, ref, full)
            await _after_decision(services, client, cmd, req, ref, decision, request_id, job, acked=False)

        return replies.checking(), decide_later

    decision = _decide(services, cmd, req, ref, groups)
    if decision.allowed:
        message = replies.running(ref.name, req.command, services.redactor)
    elif decision.needs_approval:
        if services.on_needs_approval is None:
            decision = Decision(
                False,
                False,
                decision.rule,
                "This command needs approval, which this bot is not set up for.",
                None,
                None,
                fix="Ask the bot's admins to enable approvals, or to change the rule.",
            )
            message = replies.refusal(decision.to_error())
        else:
            message = replies.approval_pending(ref.name, req.command, services.redactor)
    else:
        message = replies.refusal(decision.to_error())

    async def work(job: Job) -> None:
        await _after_decision(services, client, cmd, req, ref, decision, request_id, job, acked=True)

    return message, work


def _decide(
    services: Services, cmd: SlashCommand, req: ExecRequest, ref: ServiceRef, groups: frozenset[str]
) -> Decision:
    return evaluate(
        services.config.policy,
        user_id=cmd.user_id,
        user_groups=groups,
        channel_id=cmd.channel_id,
        service_alias=ref.name,
        environment=ref.environment,
        command=req.command,
        requested_timeout=req.timeout,
        # Without a shell the agent splits the text itself: a `|` would reach the program as an argument.
        shell_available=ref.shell,
        container=requested_container(req.container, ref.container),
    )


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
    """Post-ack: audit the request and its decision, then run it or hand it to approvals."""
    fields = dict(
        request_id=request_id,
        user=cmd.user_id,
        requester=cmd.user_id,
        channel=cmd.channel_id,
        service=ref.name,
        environment=ref.environment,
        command=req.command,
    )
    await audit(
        services, "requested", **fields, details={"reason": req.reason or "", "rule": decision.rule or ""}
    )
    respond = Responder(cmd.response_url)
    if not decision.allowed and not decision.needs_approval:
        await audit(services, "refused", **fields, details={"reason": decision.reason})
        if not acked:
            await respond(*replies.refusal(decision.to_error()))
        return
    order = ExecOrder(
        request_id=request_id,
        requester=cmd.user_id,
        channel_id=cmd.channel_id,
        response_url=cmd.response_url,
        service=ref,
        command=req.command,
        task=req.task,
        container=req.container,
        all_tasks=req.all_tasks,
        timeout=float(decision.timeout or ref.timeout),
        reason=req.reason,
        rule=decision.rule,
        record_run=not decision.needs_approval,  # approved runs have their approval record
    )
    if decision.needs_approval:
        if services.on_needs_approval is None:
            await audit(services, "refused", **fields, details={"reason": "approval is not enabled"})
            if not acked:
                await respond(
                    *replies.refusal(
                        BotError("This command needs approval, which this bot is not set up for.")
                    )
                )
            return
        if not acked:
            await respond(*replies.approval_pending(ref.name, req.command, services.redactor))
        await services.on_needs_approval(services, client, order, decision)
        return
    if not acked:
        await respond(*replies.running(ref.name, req.command, services.redactor))
    await run_order(services, client, order, job)


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

    services.jobs.start(request_id, guarded, requester=cmd.user_id)
