"""`/ecs-exec run RUNBOOK [SERVICE]`: the slash listener's branch for runbooks.

Same shape as a plain command (see handlers/commands.py): before the ack only the pure decision
(`bot.runbooks.decide_runbook`, with groups from the cache within the ack budget); after it, in the job,
the audit of the request, then ONE run through `RunExecutor.execute_runbook` or ONE approval request for
the whole runbook. A refused step is named in the refusal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.audit import AuditKind
from bot.output.render import render_notice
from bot.runbooks import RunbookDecision, decide_runbook, find_runbook
from bot.runs.intake import policy_groups
from bot.runs.order import RunOrder
from bot.service_ref import ServiceRef, resolve_service_ref
from handlers import replies
from handlers.delivery import request_approval
from handlers.runbook_delivery import SlackRunbookRun

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.commands import RunbookRequest
    from bot.runs.jobs import Job
    from bot.services import Services
    from handlers.commands import CommandRequest

Message = tuple[str, list[dict[str, Any]]]
# (the first answer, the work after it, whether the answer only says the request is under way)
RunbookPlan = tuple[Message, Callable[["Job"], Awaitable[None]] | None, bool]


async def plan_runbook(
    services: Services, client: AsyncWebClient, rq: CommandRequest, req: RunbookRequest, request_id: str
) -> RunbookPlan:
    user, channel = rq.user, rq.channel
    book, alias = find_runbook(services.config.runbooks, req.runbook, req.service)
    ref = resolve_service_ref(services.config, alias)
    wanted = policy_groups(services.config.policy)
    groups = await services.groups.groups_of_within(user, wanted, services.ack.lookup_s) if wanted else frozenset()

    def decide(member_of: frozenset[str]) -> RunbookDecision:
        return decide_runbook(services.config.policy, book, req.runbook, user=user, groups=member_of,
                              channel=channel, ref=ref)

    decision = decide(groups) if groups is not None else None

    async def work(job: Job) -> None:
        final = decision or decide(await services.groups.groups_of(user, wanted))
        await _after_decision(services, client, rq, ref=ref, decision=final, request_id=request_id, job=job,
                              acked=decision is not None, name=req.runbook)

    if decision is None:
        return replies.checking(), work, True
    return _ack(decision, ref, req.runbook), work, decision.allowed or decision.needs_approval


def _ack(decision: RunbookDecision, ref: ServiceRef, name: str) -> Message:
    if decision.allowed:
        return render_notice(f"⏳ Running runbook `{name}` on {ref.name}…")
    if decision.needs_approval:
        return render_notice(
            f"✋ Runbook `{name}` on {ref.name} needs approval; the request is posted in this channel.")
    return replies.refusal(decision.to_error())


async def _after_decision(
    services: Services, client: AsyncWebClient, rq: CommandRequest, *, ref: ServiceRef, decision: RunbookDecision,
    request_id: str, job: Job, acked: bool, name: str,
) -> None:
    user, channel = rq.user, rq.channel
    plan = decision.plan
    order = RunOrder(
        request_id=request_id, requester=user, channel_id=channel, service=ref,
        command=plan.describe() if plan else f"runbook {name}",
        timeout=plan.total_timeout if plan else float(ref.timeout),
        all_tasks=plan.all_tasks if plan else False, rule=decision.rule,
        origin=rq.origin, runbook=plan,
    )
    audit = services.auditor.record_quietly
    fields = order.audit_fields()
    await audit(AuditKind.REQUESTED, **fields, user=user, details={"runbook": name, "rule": decision.rule or ""})
    respond = rq.replier(client)
    if plan is None or not (decision.allowed or decision.needs_approval):
        await audit(AuditKind.REFUSED, **fields, user=user,
                    details={"reason": decision.reason, "step": decision.refused_step or ""})
        if not acked:
            await respond(*replies.refusal(decision.to_error()))
        return
    if not acked:
        await respond(*_ack(decision, ref, name))
    if decision.needs_approval:
        # Approval once per runbook run: the record keeps the plan, and the approved run rebuilds it from there.
        await request_approval(services, client, order, decision.rule, decision.approval)
        return
    await services.executor.execute_runbook(order, job, SlackRunbookRun(client, services.redactor))
