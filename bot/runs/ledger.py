"""The run ledger: the one owner of run records in the shared store, for plain and approved runs alike.

Every rule about a run's life is applied here, and nowhere else: opening (a plain run straight into
``running``; a request that needs approval into ``pending``), votes and the ``pending → approved`` CAS,
the ``approved → running`` claim, the owner's heartbeat, cancel (from any replica), finish, the expiry
sweep and the watchdog that fails runs whose owner stopped — and ends their SSM sessions.

Exactly once, across double clicks, simultaneous approvers and replicas: a vote is a conditional write
(one per approver, only while pending and unexpired); the vote that reaches ``min_approvals`` tries the CAS
``pending → approved``; whoever then wins ``approved → running`` (CAS, with this replica as owner and a run
deadline) is the only caller that may execute.

Besides `bot.audit`, this is the only way to the store (request claims included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bot.audit import AuditKind, Auditor
from bot.errors import StoreError
from bot.runs.approvals import (
    ApprovalError,
    ApprovalRuleLike,
    approvers_text,
    awaits_vote_of,
    judge_cancel,
    judge_deny,
    judge_vote,
    record_hash_ok,
    request_hash,
    state_refusal,
    votes_needed,
)
from bot.runs.order import RunOrder
from bot.store.base import AuditQuery, DetailValue, RunRecord, RunState, Store, Transition, Vote

log = logging.getLogger("ecs_exec_bot.runs")

# Extra time a `running` record gets beyond its command budget before the watchdog calls it stuck:
# session start-up, output upload and message updates happen outside the command's own timeout.
RUN_GRACE_S = 120.0
# A replica is alive while its heartbeat is younger than this; it renews every HEARTBEAT_EVERY_S.
HEARTBEAT_TTL_S = 30.0
HEARTBEAT_EVERY_S = 10.0
# How often the owner of a running run re-reads its record (a Cancel clicked on another replica).
WATCH_INTERVAL_S = 2.0
STORE_BUSY = "The bot's state store is busy; try again in a moment."
# Bounds of App Home's reads: how many pending records and audit events one view may read.
PENDING_SCAN = 200
RECENT_SCAN = 200
RECENT_DAYS = 14

T = TypeVar("T")
# Ends one SSM session of a run (the record gives the environment and requester for the AWS clients).
SessionTerminator = Callable[[RunRecord, str], Awaitable[None]]


class GroupLookup(Protocol):
    async def groups_of(self, user_id: str, group_ids: Collection[str]) -> frozenset[str]: ...


@dataclass(frozen=True)
class RecentRun:
    """One of a requester's recent requests (App Home): from its audit trail, and its record when it has
    one (a refused request has none). ``command`` is as audited (already redacted there)."""

    request_id: str
    at: float
    state: str  # the record's state, else the request's last audit event (``refused``, ``failed``…)
    service: str
    environment: str
    command: str
    channel: str
    message_ts: str | None = None


@dataclass(frozen=True)
class VoteResult:
    record: RunRecord
    approved: bool  # this vote completed the quorum and won pending → approved: the caller should start it
    needed: int  # approvals still missing (0 once approved)
    break_glass: bool


class RunLedger:
    """Run records over a shared `Store`. ``replica_id`` must be unique per running process."""

    def __init__(
        self,
        store: Store,
        auditor: Auditor,
        *,
        replica_id: str,
        clock: Callable[[], float] = time.time,
        run_grace_s: float = RUN_GRACE_S,
        heartbeat_ttl_s: float = HEARTBEAT_TTL_S,
        watch_interval_s: float = WATCH_INTERVAL_S,
    ) -> None:
        self._store = store
        self._audit = auditor
        self.replica_id = replica_id
        self._clock = clock
        self._run_grace_s = run_grace_s
        self._heartbeat_ttl_s = heartbeat_ttl_s
        self._watch_interval_s = watch_interval_s
        self._beat_at = float("-inf")  # time.monotonic() of this replica's last heartbeat
        # The ack path's own lane to the store: its claims never queue behind post-ack work in the
        # default executor (boto3 calls, audit writes), which a flood of commands keeps busy.
        self._ack_lane = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ack-claim")

    def now(self) -> float:
        return self._clock()

    @property
    def store(self) -> Store:
        """The shared store, for tests and diagnostics; adapters use the ledger's methods instead."""
        return self._store

    # -- request claims (exactly-once delivery of a command or a click) ---------------------------------
    async def claim(self, key: str, ttl_s: float) -> bool:
        return await asyncio.to_thread(self._store.claim, key, ttl_s)

    async def claim_within(self, key: str, ttl_s: float, timeout_s: float) -> bool:
        """The claim on the ack path: at once on the loop when the store can (SQLite), else in a thread,
        bounded so the ack stays within Slack's 3 s even when the store hangs. On timeout the request is
        refused (`StoreError`) and nothing runs: a late win of the claim then runs nothing either."""
        try_now = getattr(self._store, "try_claim_now", None)
        if try_now is not None:
            won = try_now(key, ttl_s)
            if won is not None:
                return bool(won)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._ack_lane, self._store.claim, key, ttl_s), timeout_s
            )
        except TimeoutError:
            log.warning("store claim for %s did not answer within %.1f s", key, timeout_s)
            raise StoreError(STORE_BUSY) from None

    # -- reading -------------------------------------------------------------------------------------
    async def get(self, request_id: str) -> RunRecord:
        record = await self.find(request_id)
        if record is None:
            raise ApprovalError(
                "This request no longer exists.", fix="Run the command again if it is still needed."
            )
        return record

    async def find(self, request_id: str) -> RunRecord | None:
        return await asyncio.to_thread(self._store.get_run, request_id)

    async def pending_for_approver(
        self, user: str, groups: GroupLookup, *, limit: int = 10, scan: int = PENDING_SCAN
    ) -> list[RunRecord]:
        """Pending, unexpired requests ``user`` may approve now (never their own unless the rule allows
        it, nor one they already approved), oldest first. Reads at most ``scan`` records and looks up only
        the user groups those records name."""
        pending = await asyncio.to_thread(self._store.list_runs, RunState.PENDING, scan)
        wanted = {g for r in pending for g in r.approver_groups}
        member_of = await groups.groups_of(user, wanted) if wanted else frozenset()
        now = self._clock()
        return [r for r in pending if awaits_vote_of(r, user, member_of, now)][:limit]

    async def recent_for_requester(
        self, user: str, *, limit: int = 10, scan: int = RECENT_SCAN, days: float = RECENT_DAYS
    ) -> list[RecentRun]:
        """The user's last ``limit`` requests, newest first: one audit query (``scan`` events of the last
        ``days``) and one record read per request shown."""
        since = self._clock() - days * 86400
        events = await asyncio.to_thread(
            self._store.query_audit, AuditQuery(since=since, users=(user,), limit=scan)
        )
        last_kind: dict[str, str] = {}
        for event in events:  # newest first: the first seen is the request's latest
            last_kind.setdefault(event.request_id, event.kind)
        asked = [e for e in events if e.kind == AuditKind.REQUESTED and (e.requester or e.user) == user][:limit]
        records = await asyncio.gather(*(self.find(e.request_id) for e in asked))
        return [
            RecentRun(
                request_id=e.request_id, at=e.at, state=record.state.value if record else last_kind[e.request_id],
                service=e.service or "", environment=e.environment or "", command=e.command or "",
                channel=(record.channel if record else e.channel) or "",
                message_ts=record.message_ts if record else None,
            )
            for e, record in zip(asked, records, strict=True)
        ]

    # -- opening -------------------------------------------------------------------------------------
    async def open_plain(self, order: RunOrder, budget_s: float) -> RunRecord:
        """Record a run that needs no approval as ``running`` (owner: this replica) before anything runs,
        so Cancel works from any replica and the watchdog finishes its message if this replica dies.
        A store failure refuses the run (`StoreError`): nothing has run yet."""
        now = self._clock()
        deadline = now + budget_s + self._run_grace_s
        record = RunRecord(
            **order.audit_fields(),
            request_hash=request_hash(
                order.service.environment, order.service.name, order.command, order.target_selector()
            ),
            reason=order.reason or "",
            rule=order.rule or "",
            approver_users=(),
            approver_groups=(),
            min_approvals=0,  # a plain run: no approval (see `is_plain`)
            allow_self_approval=False,
            created_at=now,
            expires_at=deadline,
            state=RunState.RUNNING,
            message_ts=order.origin.message_ts,
            owner=self.replica_id,
            run_deadline=deadline,
            updated_at=now,
            params=order.record_params(),
        )
        # The heartbeat goes first: the watchdog must never see this run with an owner that looks dead.
        await self.heartbeat(force=True)
        if not await asyncio.to_thread(self._store.create_run, record):
            raise StoreError(
                f"Request {order.request_id} is already recorded as running.", fix="Run the command again."
            )
        return record

    async def open_approval(self, order: RunOrder, rule_name: str, rule: ApprovalRuleLike) -> RunRecord:
        """Store a new pending request bound to the order's exact target + command, and audit it."""
        now = self._clock()
        target = order.target_selector()
        record = RunRecord(
            **order.audit_fields(),
            request_hash=request_hash(order.service.environment, order.service.name, order.command, target),
            reason=order.reason or "",
            rule=rule_name,
            approver_users=tuple(rule.approvers.users),
            approver_groups=tuple(rule.approvers.groups),
            min_approvals=max(1, rule.min_approvals),
            allow_self_approval=rule.allow_self_approval,
            created_at=now,
            expires_at=now + rule.ttl,
            updated_at=now,
            params=order.record_params(),
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
                "reason": record.reason,
                "approvers": approvers_text(record),
                "min_approvals": record.min_approvals,
                "expires_at": record.expires_at,
            },
        )
        return record

    async def set_message_ts(self, request_id: str, message_ts: str) -> None:
        await asyncio.to_thread(self._store.set_message_ts, request_id, message_ts)

    async def add_session(self, request_id: str, session_id: str) -> None:
        """Remember a session of the run for the watchdog; a failure is logged (the run goes on)."""
        try:
            await asyncio.to_thread(self._store.add_session, request_id, session_id)
        except StoreError as exc:
            log.warning("run %s: could not record session %s: %s", request_id, session_id, exc.user_text())

    # -- approvals -----------------------------------------------------------------------------------
    async def approve(
        self, record: RunRecord, approver: str, approver_groups: Collection[str] = (), *,
        expected_hash: str | None = None,
    ) -> VoteResult:
        """One approve click on ``record`` (as the caller just read it). Reads the store again only when
        the vote loses a race, to explain why."""
        record = await self._check_open(record, expected_hash)
        break_glass = await self._judged(
            record, approver, "approve", lambda: judge_vote(record, approver, approver_groups, self._clock())
        )
        vote = Vote(approver=approver, at=self._clock(), break_glass=break_glass)
        updated = await asyncio.to_thread(self._store.add_vote, record.request_id, vote)
        if updated is None:
            # Lost a race (another vote approved it, it expired, or the same person clicked twice).
            latest = await self._check_open(await self.get(record.request_id), expected_hash)
            await self._judged(
                latest, approver, "approve",
                lambda: judge_vote(latest, approver, approver_groups, self._clock()),
            )
            raise state_refusal(latest)  # pragma: no cover - judge_vote raises for every losing case
        details: dict[str, DetailValue] = {
            "break_glass": break_glass, "votes": len(updated.votes), "min_approvals": updated.min_approvals,
        }
        if len(updated.votes) >= updated.min_approvals:
            won = await self._transition(
                updated, RunState.APPROVED, Transition(decided_by=approver), require_unexpired=True
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
        self, record: RunRecord, approver: str, approver_groups: Collection[str] = (), reason: str = ""
    ) -> RunRecord:
        record = await self._check_open(record, None)
        await self._judged(
            record, approver, "deny", lambda: judge_deny(record, approver, approver_groups, self._clock())
        )
        denied = await self._transition(
            record, RunState.DENIED, Transition(decided_by=approver, state_reason=reason or None),
            require_unexpired=True,
        )
        if denied is None:
            raise state_refusal(await self.get(record.request_id))
        await self._audit.record_for(denied, AuditKind.DENIED, user=approver, details={"reason": reason})
        return denied

    async def start(self, record: RunRecord, *, run_timeout_s: float) -> RunRecord | None:
        """Claim ``approved → running`` for this replica. Returns the record only for the one caller that
        may execute it; None if another caller already did. Raises if it expired or was tampered with."""
        if not record_hash_ok(record):
            raise ApprovalError(
                "This approval does not match the request it was given for.",
                fix="Ask the requester to run the command again.",
            )
        await self.heartbeat(force=True)  # the watchdog must see this replica alive while it runs
        now = self._clock()
        running = await self._transition(
            record, RunState.RUNNING,
            Transition(owner=self.replica_id, run_deadline=now + run_timeout_s + self._run_grace_s),
            expected=RunState.APPROVED, require_unexpired=True,
        )
        if running is not None:
            return running
        latest = await self.get(record.request_id)
        if latest.state is RunState.APPROVED and self._clock() >= latest.expires_at:
            await self._expire(latest, "approved but not started before the approval expired")
            raise state_refusal(await self.get(record.request_id))
        return None

    # -- cancel and finish ---------------------------------------------------------------------------
    async def cancel(self, request_id: str, user: str) -> RunRecord:
        """The requester withdraws a request or stops a run, from any replica. A running run's owner sees
        ``cancelled`` within `WATCH_INTERVAL_S` and interrupts the command; its result message says so.
        Returns the cancelled record (an ``owner`` means it had started running)."""
        record = await self.get(request_id)
        await self._judged(record, user, "cancel", lambda: judge_cancel(record, user))
        for _ in range(3):  # it may move (approved → running) between the read and the CAS: follow it
            if record.state is RunState.RUNNING and record.owner != self.replica_id:
                await self._require_live_owner(record)
            cancelled = await self._transition(
                record, RunState.CANCELLED,
                Transition(decided_by=user, state_reason="cancelled by the requester"),
                expected_owner=record.owner if record.state is RunState.RUNNING else None,
            )
            if cancelled is not None:
                break
            record = await self.get(request_id)
            judge_cancel(record, user)
        else:
            raise state_refusal(record)
        # A running command is still being interrupted by its owner; here we only record who asked.
        kind = AuditKind.CANCEL_REQUESTED if record.state is RunState.RUNNING else AuditKind.CANCELLED
        await self._audit.record_for(cancelled, kind, user=user, details={"was": record.state.value})
        return cancelled

    async def _require_live_owner(self, record: RunRecord) -> None:
        """Nobody would see a `cancelled` record of a dead owner: left `running`, the watchdog fails it
        (and ends its sessions) and fixes its message."""
        if record.owner not in await asyncio.to_thread(self._store.live_replicas):
            raise ApprovalError(
                "The bot replica running this command stopped; its message will say so shortly.",
                fix="Check the task to see whether the command completed.",
            )

    async def finish(self, record: RunRecord, state: RunState, reason: str | None = None) -> RunRecord | None:
        """``running → state`` for a run this replica owns. None if it already left ``running``
        (cancelled from another replica, or failed by a watchdog). Failures are logged: the run is over."""
        try:
            return await self._transition(
                record, state, Transition(state_reason=reason),
                expected=RunState.RUNNING, expected_owner=self.replica_id,
            )
        except StoreError as exc:
            log.warning("could not record the end of run %s: %s", record.request_id, exc.user_text())
            return None

    # -- liveness ------------------------------------------------------------------------------------
    async def heartbeat(self, *, force: bool = False) -> None:
        """Renew this replica's heartbeat at most every `HEARTBEAT_EVERY_S`; with ``force``, whenever it is
        older than a third of its TTL (so a run is always claimed under a heartbeat valid for ≥ 20 s)."""
        now = time.monotonic()
        if now - self._beat_at < (self._heartbeat_ttl_s / 3 if force else HEARTBEAT_EVERY_S):
            return
        await asyncio.to_thread(self._store.heartbeat, self.replica_id, self._heartbeat_ttl_s)
        self._beat_at = now

    def watch(self, request_id: str, on_cancel: Callable[[str], None]) -> RunWatch:
        """While this replica runs ``request_id``: heartbeat, and call ``on_cancel(reason)`` when its record
        says ``cancelled``. Starts after the first interval: most commands end sooner."""
        return RunWatch(self, request_id, on_cancel, self._watch_interval_s)

    # -- maintenance ---------------------------------------------------------------------------------
    async def expire_due(self) -> list[RunRecord]:
        """Move pending/approved records past their TTL to ``expired``; returns those this call expired."""
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

    async def recover_stuck(self, terminate: SessionTerminator | None = None) -> list[RunRecord]:
        """Fail ``running`` records past their deadline or owned by a replica that stopped heartbeating,
        and end their SSM sessions (``terminate``) so no command outlives its dead owner unobserved.
        Returns them so the adapter can update their messages."""
        now = self._clock()
        # List first, then read the heartbeats: an owner heartbeats before it claims a run, so any run in
        # this list has an owner whose heartbeat is already written.
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
            failed = await self._transition(
                record, RunState.FAILED, Transition(state_reason=why), expected_owner=record.owner
            )
            if failed is None:
                continue
            ended = await _terminate_all(failed, terminate) if terminate is not None else 0
            await self._audit.record_for(
                failed, AuditKind.FAILED,
                details={"error": why, "watchdog": True, "sessions_terminated": ended},
            )
            recovered.append(failed)
        return recovered

    async def close(self) -> None:
        self._ack_lane.shutdown(wait=False)
        await asyncio.to_thread(self._store.close)

    # -- plumbing ------------------------------------------------------------------------------------
    async def _transition(
        self, record: RunRecord, new: RunState, change: Transition, *, expected: RunState | None = None,
        require_unexpired: bool = False, expected_owner: str | None = None,
    ) -> RunRecord | None:
        return await asyncio.to_thread(
            self._store.transition, record.request_id, expected or record.state, new, change,
            require_unexpired=require_unexpired, expected_owner=expected_owner,
        )

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

    async def _check_open(self, record: RunRecord, expected_hash: str | None) -> RunRecord:
        """A record for a vote/deny: the button's hash must match, and a TTL that passed while nobody
        looked expires it first (the judge then refuses with the reason)."""
        if expected_hash is not None and expected_hash != record.request_hash:
            raise ApprovalError(
                "This button belongs to a different request than the one stored under its id.",
                fix="Ask the requester to run the command again.",
            )
        if record.state is RunState.PENDING and self._clock() >= record.expires_at:
            await self._expire(record, "not enough approvals before the approval expired")
        return record

    async def _expire(self, record: RunRecord, why: str) -> RunRecord | None:
        expired = await self._transition(record, RunState.EXPIRED, Transition(state_reason=why))
        if expired is not None:
            await self._audit.record_for(expired, AuditKind.EXPIRED, details={"reason": why})
        return expired


class RunWatch:
    """The owner's side of a running run (`RunLedger.watch`): heartbeat, and notice a cancel made on
    another replica. A timer until the first interval, a task after it; `stop` when the run ends."""

    def __init__(
        self, ledger: RunLedger, request_id: str, on_cancel: Callable[[str], None], interval_s: float
    ) -> None:
        self._ledger = ledger
        self._request_id = request_id
        self._on_cancel = on_cancel
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(interval_s, self._start)

    def _start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name=f"watch-{self._request_id}")

    async def _watch(self) -> None:
        while True:
            try:
                await self._ledger.heartbeat()
                record = await self._ledger.find(self._request_id)
            except Exception as exc:  # noqa: BLE001 - the run goes on; the next round retries
                log.warning("run %s: store check failed: %r", self._request_id, exc)
            else:
                if record is not None and record.state is RunState.CANCELLED:
                    self._on_cancel(f"cancelled by <@{record.decided_by}>" if record.decided_by else "cancelled")
                    return
            await asyncio.sleep(self._interval_s)

    async def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _terminate_all(record: RunRecord, terminate: SessionTerminator) -> int:
    """End every recorded session of a failed run; returns how many calls succeeded (errors logged)."""
    ended = 0
    for session_id in dict.fromkeys(record.sessions):
        try:
            await terminate(record, session_id)
            ended += 1
        except Exception as exc:  # noqa: BLE001 - best effort: the run is failed either way
            log.warning("run %s: TerminateSession %s failed: %r", record.request_id, session_id, exc)
    return ended
