"""Second-person approval: who may approve what, and the exactly-once state machine over the store.

Two layers:

* pure rules (`judge_vote`, `judge_deny`, `judge_cancel`, `request_hash`, ...) — no I/O, unit-tested;
* `ApprovalService`, which applies them to records in the shared `Store` and writes the audit trail.

Exactly once, across double clicks, simultaneous approvers and replicas: a vote is a conditional write
(one per approver, only while pending and unexpired); the vote that reaches ``min_approvals`` tries the CAS
``pending → approved``; whoever then wins ``approved → running`` (CAS, with this replica as owner and a run
deadline) is the only caller that may execute. A watchdog (`recover_stuck`) fails ``running`` records
whose deadline passed or whose owner stopped heartbeating, so the app can update their messages.

States: pending → approved → running → finished | failed | cancelled; pending → denied | expired |
cancelled (and approved → expired | cancelled when nobody started it in time).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.audit import AuditKind, Auditor
from bot.errors import BotError
from bot.store.base import DetailValue, RunRecord, RunState, Store, Transition, Vote

# Extra time a `running` record gets beyond its command timeout before the watchdog calls it stuck:
# session start-up, output upload and message updates happen outside the command's own timeout.
RUN_GRACE_S = 120.0
HEARTBEAT_TTL_S = 30.0

T = TypeVar("T")


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
        raise ApprovalError(
            "You already approved this request.",
            fix=f"It needs {votes_needed(record)} more approval(s) from {approvers_text(record)}.",
        )
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
        raise ApprovalError(
            "Only the requester can cancel this request.", fix="Approvers can Deny it instead."
        )
    if record.state not in (RunState.PENDING, RunState.APPROVED, RunState.RUNNING):
        raise state_refusal(record)


# -- the service -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteResult:
    record: RunRecord
    approved: bool  # this vote completed the quorum and won pending → approved: the caller should start it
    needed: int  # approvals still missing (0 once approved)
    break_glass: bool


class ApprovalService:
    """Approval records over a shared `Store`. ``replica_id`` must be unique per running process."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        *,
        replica_id: str,
        clock: Callable[[], float] = time.time,
        run_grace_s: float = RUN_GRACE_S,
        heartbeat_ttl_s: float = HEARTBEAT_TTL_S,
    ) -> None:
        self._store = store
        self._audit = auditor
        self.replica_id = replica_id
        self._clock = clock
        self._run_grace_s = run_grace_s
        self._heartbeat_ttl_s = heartbeat_ttl_s

    def now(self) -> float:
        return self._clock()

    async def get(self, request_id: str) -> RunRecord:
        record = await asyncio.to_thread(self._store.get_run, request_id)
        if record is None:
            raise ApprovalError(
                "This approval request no longer exists.", fix="Ask the requester to run the command again."
            )
        return record

    async def open(
        self,
        *,
        request_id: str,
        requester: str,
        channel: str,
        service: str,
        environment: str,
        command: str,
        reason: str,
        rule_name: str,
        rule: ApprovalRuleLike,
        target: Mapping[str, DetailValue],
        params: Mapping[str, DetailValue] | None = None,
    ) -> RunRecord:
        """Store a new pending request bound to ``target`` + ``command`` and audit it."""
        now = self._clock()
        record = RunRecord(
            request_id=request_id,
            requester=requester,
            channel=channel,
            service=service,
            environment=environment,
            command=command,
            request_hash=request_hash(environment, service, command, target),
            reason=reason,
            rule=rule_name,
            approver_users=tuple(rule.approvers.users),
            approver_groups=tuple(rule.approvers.groups),
            min_approvals=max(1, rule.min_approvals),
            allow_self_approval=rule.allow_self_approval,
            created_at=now,
            expires_at=now + rule.ttl,
            updated_at=now,
            params={**(params or {}), "target": json.dumps(dict(target), sort_keys=True)},
        )
        if not await asyncio.to_thread(self._store.create_run, record):
            raise ApprovalError(
                "This request was already submitted.", fix="Use the approval message already posted."
            )
        await self._audit.record_for(
            record,
            AuditKind.APPROVAL_REQUESTED,
            details={
                "rule": rule_name,
                "reason": reason,
                "approvers": approvers_text(record),
                "min_approvals": record.min_approvals,
                "expires_at": record.expires_at,
            },
        )
        return record

    async def set_message_ts(self, request_id: str, message_ts: str) -> None:
        await asyncio.to_thread(self._store.set_message_ts, request_id, message_ts)

    async def approve(
        self,
        request_id: str,
        approver: str,
        approver_groups: Collection[str] = (),
        *,
        expected_hash: str | None = None,
    ) -> VoteResult:
        record = await self._open_record(request_id, expected_hash)
        break_glass = await self._judged(
            record, approver, "approve", lambda: judge_vote(record, approver, approver_groups, self._clock())
        )
        vote = Vote(approver=approver, at=self._clock(), break_glass=break_glass)
        updated = await asyncio.to_thread(self._store.add_vote, request_id, vote)
        if updated is None:
            # Lost a race (another vote approved it, it expired, or the same person clicked twice):
            # re-read and explain with the current state.
            latest = await self._open_record(request_id, expected_hash)
            await self._judged(
                latest,
                approver,
                "approve",
                lambda: judge_vote(latest, approver, approver_groups, self._clock()),
            )
            raise state_refusal(latest)  # pragma: no cover - judge_vote raises for every losing case
        details: dict[str, DetailValue] = {
            "break_glass": break_glass,
            "votes": len(updated.votes),
            "min_approvals": updated.min_approvals,
        }
        if len(updated.votes) >= updated.min_approvals:
            won = await asyncio.to_thread(
                self._store.transition,
                request_id,
                RunState.PENDING,
                RunState.APPROVED,
                Transition(decided_by=approver),
                require_unexpired=True,
            )
            if won is not None:
                approved_by = ", ".join(won.approvers_so_far)
                await self._audit.record_for(
                    won, AuditKind.APPROVED, user=approver, details={**details, "approved_by": approved_by}
                )
                return VoteResult(won, approved=True, needed=0, break_glass=break_glass)
        await self._audit.record_for(updated, AuditKind.APPROVAL_VOTE, user=approver, details=details)
        return VoteResult(updated, approved=False, needed=votes_needed(updated), break_glass=break_glass)

    async def deny(
        self, request_id: str, approver: str, approver_groups: Collection[str] = (), reason: str = ""
    ) -> RunRecord:
        record = await self._open_record(request_id, None)
        await self._judged(
            record, approver, "deny", lambda: judge_deny(record, approver, approver_groups, self._clock())
        )
        denied = await asyncio.to_thread(
            self._store.transition,
            request_id,
            RunState.PENDING,
            RunState.DENIED,
            Transition(decided_by=approver, state_reason=reason or None),
            require_unexpired=True,
        )
        if denied is None:
            raise state_refusal(await self.get(request_id))
        await self._audit.record_for(denied, AuditKind.DENIED, user=approver, details={"reason": reason})
        return denied

    async def cancel(self, request_id: str, user: str) -> RunRecord:
        record = await self.get(request_id)
        await self._judged(record, user, "cancel", lambda: judge_cancel(record, user))
        for _ in range(3):  # it may move (approved → running) between the read and the CAS: follow it
            cancelled = await asyncio.to_thread(
                self._store.transition,
                request_id,
                record.state,
                RunState.CANCELLED,
                Transition(decided_by=user, state_reason="cancelled by the requester"),
            )
            if cancelled is not None:
                break
            record = await self.get(request_id)
            judge_cancel(record, user)
        else:
            raise state_refusal(record)
        # A running command is still being interrupted by its owner, whose `finish` writes the outcome
        # (and the one audit-channel line); here we only record who asked.
        kind = AuditKind.CANCEL_REQUESTED if record.state is RunState.RUNNING else AuditKind.CANCELLED
        await self._audit.record_for(cancelled, kind, user=user, details={"was": record.state.value})
        return cancelled

    async def start(self, request_id: str, *, run_timeout_s: float) -> RunRecord | None:
        """Claim ``approved → running`` for this replica. Returns the record only for the one caller that
        may execute it; None if another caller already did. Raises if it expired or was tampered with."""
        record = await self.get(request_id)
        if not record_hash_ok(record):
            raise ApprovalError(
                "This approval does not match the request it was given for.",
                fix="Ask the requester to run the command again.",
            )
        await self.heartbeat()  # the watchdog must see this replica alive while it runs
        now = self._clock()
        running = await asyncio.to_thread(
            self._store.transition,
            request_id,
            RunState.APPROVED,
            RunState.RUNNING,
            Transition(owner=self.replica_id, run_deadline=now + run_timeout_s + self._run_grace_s),
            require_unexpired=True,
        )
        if running is not None:
            return running
        latest = await self.get(request_id)
        if latest.state is RunState.APPROVED and self._clock() >= latest.expires_at:
            await self._expire(latest, "approved but not started before the approval expired")
            raise state_refusal(await self.get(request_id))
        return None

    async def finish(
        self,
        record: RunRecord,
        outcome: RunState,
        details: Mapping[str, DetailValue] | None = None,
        *,
        audit: bool = True,
    ) -> RunRecord | None:
        """Record how a run this replica owns ended (finished / failed / cancelled) and audit it.
        Returns None if the record already left ``running`` (cancelled by the requester, or failed by the
        watchdog); the audit event (unless ``audit=False``) is written either way."""
        kind = {
            RunState.FINISHED: AuditKind.FINISHED,
            RunState.FAILED: AuditKind.FAILED,
            RunState.CANCELLED: AuditKind.CANCELLED,
        }[outcome]
        error = (details or {}).get("error")
        ended = await asyncio.to_thread(
            self._store.transition,
            record.request_id,
            RunState.RUNNING,
            outcome,
            Transition(state_reason=str(error) if error else None),
            expected_owner=self.replica_id,
        )
        if audit:  # False when the runner already audited each target's outcome
            await self._audit.record_for(
                record, kind, details={**(details or {}), "approved_by": ", ".join(record.approvers_so_far)}
            )
        return ended

    async def heartbeat(self) -> None:
        await asyncio.to_thread(self._store.heartbeat, self.replica_id, self._heartbeat_ttl_s)

    async def expire_due(self) -> list[RunRecord]:
        """Move pending/approved records past their TTL to ``expired``; returns those this call expired
        (so the app can update their messages)."""
        now = self._clock()
        expired: list[RunRecord] = []
        for state, why in (
            (RunState.PENDING, "not enough approvals before the approval expired"),
            (RunState.APPROVED, "approved but not started before the approval expired"),
        ):
            for record in await asyncio.to_thread(self._store.list_runs, state, 1000):
                if record.expires_at <= now and (done := await self._expire(record, why)) is not None:
                    expired.append(done)
        return expired

    async def recover_stuck(self) -> list[RunRecord]:
        """Fail ``running`` records past their run deadline or owned by a replica that stopped
        heartbeating; returns them so the app can update their messages (e.g. on start-up)."""
        now = self._clock()
        # List first, then read the heartbeats: an owner heartbeats before it claims a run (`start`), so
        # any run in this list has an owner whose heartbeat is already written; read the other way round,
        # a replica that first beat and claimed in between would look dead.
        running = await asyncio.to_thread(self._store.list_runs, RunState.RUNNING, 1000)
        live = await asyncio.to_thread(self._store.live_replicas) if running else set()
        recovered: list[RunRecord] = []
        for record in running:
            if record.run_deadline is not None and record.run_deadline <= now:
                why = "it was still marked running after its deadline; its result is unknown"
            elif record.owner not in live and record.owner != self.replica_id:
                why = f"the bot replica running it ({record.owner}) stopped; its result is unknown"
            else:
                continue
            failed = await asyncio.to_thread(
                self._store.transition,
                record.request_id,
                RunState.RUNNING,
                RunState.FAILED,
                Transition(state_reason=why),
                expected_owner=record.owner,
            )
            if failed is not None:
                await self._audit.record_for(
                    failed, AuditKind.FAILED, details={"error": why, "watchdog": True}
                )
                recovered.append(failed)
        return recovered

    async def _judged(self, record: RunRecord, user: str, action: str, judge: Callable[[], T]) -> T:
        """Apply a pure rule; a refused click is audited (``click_refused``) before the error propagates,
        so attempted self-approvals and clicks by non-approvers leave a trace."""
        try:
            return judge()
        except ApprovalError as exc:
            await self._audit.record_for(
                record, AuditKind.CLICK_REFUSED, user=user, details={"action": action, "reason": exc.message}
            )
            raise

    async def _open_record(self, request_id: str, expected_hash: str | None) -> RunRecord:
        """Load a record for a vote/deny, expiring it first if its TTL passed while nobody looked."""
        record = await self.get(request_id)
        if expected_hash is not None and expected_hash != record.request_hash:
            raise ApprovalError(
                "This button belongs to a different request than the one stored under its id.",
                fix="Ask the requester to run the command again.",
            )
        if record.state is RunState.PENDING and self._clock() >= record.expires_at:
            await self._expire(record, "not enough approvals before the approval expired")
        return record

    async def _expire(self, record: RunRecord, why: str) -> RunRecord | None:
        expired = await asyncio.to_thread(
            self._store.transition,
            record.request_id,
            record.state,
            RunState.EXPIRED,
            Transition(state_reason=why),
        )
        if expired is not None:
            await self._audit.record_for(expired, AuditKind.EXPIRED, details={"reason": why})
        return expired
