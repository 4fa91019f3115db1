"""Second-person approval, the pure rules: who may approve, deny or cancel what. No I/O.

`bot.runs.ledger.RunLedger` applies them to records in the shared store (exactly once, across replicas).
States: pending → approved → running → finished | failed | cancelled; pending → denied | expired |
cancelled (and approved → expired | cancelled when nobody started it in time).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from bot.errors import BotError
from bot.output.render import approvals_left
from bot.store.base import DetailValue, RunRecord, RunState


class ApprovalError(BotError):
    """An approve / deny / cancel click that cannot be honoured (self-approval, not an approver, expired...)."""

    kind = "approval"
    exit_status = 77


class ApproverSet(Protocol):
    @property
    def users(self) -> Sequence[str]: ...
    @property
    def groups(self) -> Sequence[str]: ...


class ApprovalRuleLike(Protocol):
    """The shape of `bot.policy.ApprovalRule` this module relies on."""

    @property
    def approvers(self) -> ApproverSet: ...
    @property
    def min_approvals(self) -> int: ...
    @property
    def ttl(self) -> int: ...
    @property
    def allow_self_approval(self) -> bool: ...


# -- pure rules ------------------------------------------------------------------------------------------


def request_hash(environment: str, service: str, command: str, target: Mapping[str, DetailValue]) -> str:
    """SHA-256 binding an approval to one exact target and command (canonical JSON, so key order and
    formatting cannot produce two hashes for one request)."""
    canonical = json.dumps(
        {"environment": environment, "service": service, "command": command, "target": dict(target)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_hash_ok(record: RunRecord) -> bool:
    """The stored fields still hash to the stored hash (nothing edited the command or target since)."""
    target = record.params.get("target")
    target_map = json.loads(target) if isinstance(target, str) else {}
    return request_hash(record.environment, record.service, record.command, target_map) == record.request_hash


def named_approvers(record: RunRecord) -> tuple[str, ...]:
    """The rule's approver users who can act on this request: never the requester, unless break-glass."""
    if record.allow_self_approval:
        return tuple(record.approver_users)
    return tuple(u for u in record.approver_users if u != record.requester)


def approvers_text(record: RunRecord) -> str:
    """Who may approve, in Slack mention syntax."""
    people = [f"<@{u}>" for u in named_approvers(record)]
    groups = [f"<!subteam^{g}>" for g in record.approver_groups]
    parts = people + ([f"a member of {', '.join(groups)}"] if groups else [])
    return " or ".join(parts) if parts else "nobody (the rule lists no approvers)"


def is_eligible(record: RunRecord, user: str, user_groups: Collection[str]) -> bool:
    return user in record.approver_users or bool(set(user_groups) & set(record.approver_groups))


def awaits_vote_of(record: RunRecord, user: str, user_groups: Collection[str], now: float) -> bool:
    """Whether ``user`` could approve ``record`` now (App Home's "waiting for me"): the same rules as
    `judge_vote`, asked without raising."""
    try:
        judge_vote(record, user, user_groups, now)
    except ApprovalError:
        return False
    return True


def votes_needed(record: RunRecord) -> int:
    return max(record.min_approvals - len(record.votes), 0)


def _clock_text(at: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(at))


def state_refusal(record: RunRecord) -> ApprovalError:
    """Why a record that is not pending (or has expired) cannot take a vote or a denial."""
    by = f" by <@{record.decided_by}>" if record.decided_by else ""
    again = "Ask the requester to run the command again if it is still needed."
    match record.state:
        case RunState.PENDING:
            return ApprovalError(f"This request expired at {_clock_text(record.expires_at)}.", fix=again)
        case RunState.APPROVED | RunState.RUNNING:
            return ApprovalError(f"This request was already approved{by}.", fix="Nothing else to do.")
        case RunState.FINISHED | RunState.FAILED:
            return ApprovalError(f"This request already ran ({record.state}).", fix=again)
        case RunState.DENIED:
            return ApprovalError(f"This request was denied{by}.", fix=again)
        case RunState.EXPIRED:
            return ApprovalError(f"This request expired at {_clock_text(record.expires_at)}.", fix=again)
        case RunState.CANCELLED:
            return ApprovalError(f"This request was cancelled{by}.", fix=again)
    raise AssertionError(record.state)  # pragma: no cover - exhaustive over RunState


def _require_open(record: RunRecord, now: float) -> None:
    if record.state is not RunState.PENDING or now >= record.expires_at:
        raise state_refusal(record)


def judge_vote(record: RunRecord, approver: str, approver_groups: Collection[str], now: float) -> bool:
    """Check one approve click; returns whether it is a break-glass self-approval, raises if refused."""
    _require_open(record, now)
    if not is_eligible(record, approver, approver_groups):
        raise ApprovalError(
            f"You are not an approver for rule {record.rule}.", fix=f"Ask {approvers_text(record)}."
        )
    break_glass = approver == record.requester
    if break_glass and not record.allow_self_approval:
        raise ApprovalError("You cannot approve your own request.", fix=f"Ask {approvers_text(record)}.")
    if approver in record.approvers_so_far:
        needed = votes_needed(record)
        fix = f"It needs {approvals_left(needed)} from {approvers_text(record)}." if needed else "Nothing else to do."
        raise ApprovalError("You already approved this request.", fix=fix)
    return break_glass


def judge_deny(record: RunRecord, user: str, user_groups: Collection[str], now: float) -> None:
    _require_open(record, now)
    if user == record.requester:
        raise ApprovalError("You cannot deny your own request.", fix="Use Cancel to withdraw it.")
    if not is_eligible(record, user, user_groups):
        raise ApprovalError(
            f"Only approvers for rule {record.rule} can deny this request.",
            fix=f"Ask {approvers_text(record)}.",
        )


def judge_cancel(record: RunRecord, user: str) -> None:
    """The requester may withdraw a request until it ends, including while it runs (the owner replica
    sees ``cancelled`` and interrupts the command)."""
    if user != record.requester:
        fix = "Approvers can Deny it instead." if record.state is RunState.PENDING else "Ask them to."
        raise ApprovalError(f"Only <@{record.requester}>, who made this request, can cancel it.", fix=fix)
    if record.state not in (RunState.PENDING, RunState.APPROVED, RunState.RUNNING):
        raise state_refusal(record)
