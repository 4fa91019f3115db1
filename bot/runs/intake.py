"""From a parsed request to a policy decision and a run order: what every adapter asks before a run.

Pure, except where it looks up group membership through the `GroupDirectory` it is given.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.errors import TargetError
from bot.policy import Decision, allowed_summary, evaluate, may_use_service, requested_container
from bot.runbooks import RunbookPlan, recheck_plan
from bot.runs.approvals import ApprovalError
from bot.runs.order import Origin, RunOrder, order_from_record

if TYPE_CHECKING:
    from bot.commands import ExecRequest
    from bot.config import BotConfig
    from bot.service_ref import ServiceRef
    from bot.store.base import RunRecord


# member: a full member of the bot's workspace; guest: a multi- or single-channel guest; external: a user
# of another organisation (Slack Connect), or one Slack could not describe.
Standing = Literal["member", "guest", "external"]


class _Groups(Protocol):
    async def groups_of(self, user_id: str, group_ids: Collection[str]) -> frozenset[str]: ...


def policy_groups(policy: Any) -> frozenset[str]:
    """Every user group the policy mentions: only those memberships matter, so only those are fetched."""
    groups: set[str] = set()
    for rule in getattr(policy, "rules", ()) or ():
        groups.update(rule.groups)
        if rule.approval is not None:
            groups.update(rule.approval.approvers.groups)
    return frozenset(groups)


def decide(
    config: BotConfig, *, user: str, groups: frozenset[str], channel: str, ref: ServiceRef, req: ExecRequest,
    standing: Standing = "member",
) -> Decision:
    decision = _evaluate(config, user=user, groups=groups, channel=channel, ref=ref, req=req)
    if not (decision.allowed or decision.needs_approval):
        return explain_denial(config, decision, user=user, groups=groups, channel=channel)
    if standing == "member":
        return decision
    rule = next((r for r in config.policy.rules if r.name == decision.rule), None)
    if rule is not None and rule.allow_guests:
        return decision
    who = "a guest of this workspace" if standing == "guest" else "from another organisation"
    return Decision(
        False, False, decision.rule,
        f"You are {who}, and this bot refuses guests and external users by default.",
        None, None, None,
        fix="Ask a member of the workspace to run it, or ask the bot's admins to set `allow_guests: true` "
        "on the rule.",
    )


def explain_denial(
    config: BotConfig, decision: Decision, *, user: str, groups: frozenset[str], channel: str
) -> Decision:
    """A denial says that nothing runs unless a rule allows it, and shows the closest rule's patterns in
    full (the answer is ephemeral: it has room), so the requester sees what would have run."""
    closest = next(
        (line for line in allowed_summary(config.policy, user, groups, channel, full=True)
         if decision.rule and line.startswith(f"{decision.rule}: ")),
        None,
    )
    deny = "Deny by default: only what a policy rule allows runs."
    fix = f"{deny} Rule {closest}" if closest else f"{deny} {decision.fix or ''}".strip()
    return replace(decision, fix=fix if closest is None else f"{fix}. {decision.fix or ''}".strip())


def _evaluate(
    config: BotConfig, *, user: str, groups: frozenset[str], channel: str, ref: ServiceRef, req: ExecRequest
) -> Decision:
    return evaluate(
        config.policy,
        user_id=user,
        user_groups=groups,
        channel_id=channel,
        service_alias=ref.name,
        environment=ref.environment,
        command=req.command,
        requested_timeout=req.timeout,
        # Without a shell the agent splits the text itself: a `|` would reach the program as an argument.
        shell_available=ref.shell,
        container=requested_container(req.container, ref.container),
    )


def build_order(
    *, request_id: str, user: str, channel: str, origin: Origin, ref: ServiceRef, req: ExecRequest,
    decision: Decision,
) -> RunOrder:
    return RunOrder(
        request_id=request_id,
        requester=user,
        channel_id=channel,
        service=ref,
        command=req.command,
        timeout=float(decision.timeout or ref.timeout),
        task=req.task,
        container=req.container,
        all_tasks=req.all_tasks,
        reason=req.reason,
        rule=decision.rule,
        origin=origin,
    )


def require_some_rule(config: BotConfig, user: str, groups: frozenset[str], ref: ServiceRef) -> None:
    """`doctor` reveals how a service is set up: only for people some rule lets run commands there."""
    if not may_use_service(config.policy, user, groups, ref.name, ref.environment):
        raise TargetError(
            f"No policy rule lets you run commands on `{ref.name}`, so you cannot run doctor on it.",
            fix="Run `/ecs-exec list` to see what you may run, and where.",
        )


async def require_still_granted(config: BotConfig, groups: _Groups, record: RunRecord) -> None:
    """The policy in force now must still grant the request: a rule removed (or narrowed) after the
    request was made must not be bypassed by approving what it used to allow."""
    policy = config.policy
    member_of = await groups.groups_of(record.requester, policy_groups(policy))
    if record.params.get("runbook"):
        # A runbook's record keeps its steps: each must still be allowed (or the runbook still granted).
        again = recheck_plan(
            policy, RunbookPlan.from_json(str(record.params["runbook"])), user=record.requester,
            groups=member_of, channel=record.channel, service=record.service, environment=record.environment,
            shell=bool(record.params.get("shell", True)),
        )
        still = again.allowed or again.needs_approval
    else:
        still = _still(policy, record, member_of)
    if not still:
        raise ApprovalError(
            "The policy no longer allows this request, so it cannot be approved.",
            fix="Ask the requester to run the command again if it is still allowed.",
        )


def _still(policy: Any, record: RunRecord, member_of: frozenset[str]) -> bool:
    order = order_from_record(record)  # the container that was approved, not today's catalogue's
    decision = evaluate(
        policy,
        user_id=record.requester,
        user_groups=member_of,
        channel_id=record.channel,
        service_alias=record.service,
        environment=record.environment,
        command=record.command,
        shell_available=bool(record.params.get("shell", True)),
        container=requested_container(order.container, order.service.container),
    )
    return decision.allowed or decision.needs_approval
