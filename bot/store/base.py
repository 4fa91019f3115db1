"""The store interface: what must survive a restart and be shared by every replica.

Slack delivers a button click to *any* replica (Socket Mode and HTTP load balancers alike), so everything
that decides "exactly once" lives here, behind compare-and-set operations that both implementations
(`SqliteStore`, `DynamoStore`) honour with the same contract tests:

- idempotency claims (`claim`): the first caller for a key wins until the TTL passes;
- approval records: created once, votes are conditional per approver, state changes are CAS;
- run slots (`acquire_slot`): N leases per scope with a TTL, so a crashed replica cannot leak one;
- replica heartbeats, so a watchdog can tell a dead owner from a slow one;
- audit events, queried by time / user / service / request and pruned by age.

The API is synchronous (sqlite3 and boto3 are); async callers wrap calls in ``asyncio.to_thread``.
Every failure to reach the backing store is raised as ``bot.errors.StoreError``.
Times are float epoch seconds from the store's injected clock, so tests control expiry without sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

# Values allowed in audit details: JSON scalars only, so both backends store them losslessly.
DetailValue = str | int | float | bool | None


class RunState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DENIED = "denied"
    EXPIRED = "expired"


# The only edges of the state machine; the store refuses anything else so a bug cannot resurrect a
# finished request (pending → approved → running → finished | failed | cancelled; pending → denied |
# expired | cancelled). `approved → expired|cancelled` covers an approval nobody started in time.
TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset(
        {RunState.APPROVED, RunState.DENIED, RunState.EXPIRED, RunState.CANCELLED}
    ),
    RunState.APPROVED: frozenset(
        {RunState.RUNNING, RunState.EXPIRED, RunState.CANCELLED}
    ),
    RunState.RUNNING: frozenset({RunState.FINISHED, RunState.FAILED, RunState.CANCELLED}),
    RunState.FINISHED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.CANCELLED: frozenset(),
    RunState.DENIED: frozenset(),
    RunState.EXPIRED: frozenset(),
}

TERMINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


def check_transition(expected: RunState, new: RunState) -> None:
    """Refuse an edge that is not in the state machine before touching the store."""
    if new not in TRANSITIONS[expected]:
        # A programming error, not a user-facing one: nothing in the app should ask for this.
        raise ValueError(f"approval state cannot go from {expected} to {new}")


@dataclass(frozen=True)
class Vote:
    """One approver's approval. ``break_glass`` marks a self-approval the rule allowed (announced loudly)."""

    approver: str
    at: float
    break_glass: bool = False


@dataclass(frozen=True)
class RunRecord:
    """One run, plain or approved, bound to one exact target and command. A plain run is recorded straight
    into ``running`` (no approvers); a request that needs approval starts ``pending``.

    ``request_hash`` is the SHA-256 of (environment, service, target selector, command) computed by
    `bot.runs.approvals.request_hash`; the runner re-checks it so an approval cannot be reused for another command.
    """

    request_id: str
    requester: str
    channel: str
    service: str
    environment: str
    command: str
    request_hash: str
    reason: str
    rule: str
    approver_users: tuple[str, ...]
    approver_groups: tuple[str, ...]
    min_approvals: int
    allow_self_approval: bool
    created_at: float
    expires_at: float
    state: RunState = RunState.PENDING
    message_ts: str | None = None
    votes: tuple[Vote, ...] = ()
    decided_by: str | None = None  # who denied / cancelled / gave the deciding vote
    state_reason: str | None = None  # why it failed / expired / was denied
    owner: str | None = None  # replica id that claimed approved → running
    run_deadline: float | None = None  # after this a `running` record is stuck (watchdog)
    updated_at: float = 0.0
    # SSM session ids of the run, recorded as each target starts: the watchdog ends them when it fails a
    # run whose owner stopped, so a killed replica leaves no command running unobserved.
    sessions: tuple[str, ...] = ()
    # Opaque request parameters the app needs to run it later (task, container, timeout, ...).
    params: Mapping[str, DetailValue] = field(default_factory=dict)

    @property
    def needs_approval(self) -> bool:
        """False for a plain run, recorded straight into ``running`` with no approvers."""
        return self.min_approvals > 0

    @property
    def approvers_so_far(self) -> tuple[str, ...]:
        return tuple(v.approver for v in self.votes)


@dataclass(frozen=True)
class Transition:
    """What a CAS state change writes besides the new state."""

    decided_by: str | None = None
    state_reason: str | None = None
    owner: str | None = None
    run_deadline: float | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One persisted audit event. ``details`` never holds command output, only sizes and hashes."""

    event_id: str  # unique; generated by the Auditor
    request_id: str
    kind: str  # requested, refused, approval_requested, approved, denied, expired, started, ...
    at: float
    user: str | None = None  # who caused the event (requester, approver, canceller)
    requester: str | None = None
    channel: str | None = None
    service: str | None = None
    environment: str | None = None
    command: str | None = None
    details: Mapping[str, DetailValue] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditQuery:
    """Filters for `Store.query_audit`; results are newest first. ``user`` matches actor or requester."""

    since: float | None = None
    until: float | None = None
    users: tuple[str, ...] = ()
    service: str | None = None
    request_id: str | None = None
    limit: int = 100


@runtime_checkable
class Store(Protocol):
    """Shared state. Every method raises ``StoreError`` when the backing store cannot be reached."""

    # -- idempotency -----------------------------------------------------------------------------
    def claim(self, key: str, ttl_seconds: float) -> bool:
        """True exactly once per key until ``ttl_seconds`` pass (double clicks, replayed payloads)."""
        ...

    # -- approvals -------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> bool:
        """Insert a new record; False if the request id already exists."""
        ...

    def get_run(self, request_id: str) -> RunRecord | None: ...

    def set_message_ts(self, request_id: str, message_ts: str) -> None:
        """Remember the Slack message that shows this request, so any replica can update it."""
        ...

    def add_session(self, request_id: str, session_id: str) -> None:
        """Append one SSM session id to the run (no-op if the record does not exist)."""
        ...

    def add_vote(self, request_id: str, vote: Vote) -> RunRecord | None:
        """Add one approver's vote atomically, only while the record is ``pending`` and not expired and
        that approver has not voted yet. Returns the updated record, or None if the vote was not added."""
        ...

    def transition(
        self,
        request_id: str,
        expected: RunState,
        new: RunState,
        change: Transition | None = None,
        *,
        require_unexpired: bool = False,
        expected_owner: str | None = None,
    ) -> RunRecord | None:
        """Compare-and-set ``expected → new`` (must be an edge of ``TRANSITIONS``). Returns the updated
        record for the single winner, None for everyone else. ``require_unexpired`` also demands
        ``expires_at > now``; ``expected_owner`` demands the current owner (watchdog vs. a live runner)."""
        ...

    def list_runs(self, state: RunState, limit: int = 100) -> list[RunRecord]:
        """Records in one state, oldest first (start-up recovery, expiry sweeps, the watchdog)."""
        ...

    # -- run slots -------------------------------------------------------------------------------
    def acquire_slot(self, scope: str, limit: int, holder: str, ttl_seconds: float) -> bool:
        """Take one of ``limit`` leases on ``scope`` for ``holder``; a lease lapses after ``ttl_seconds``.
        Never releasing a lease with a TTL of the window gives an exact sliding-window rate limit."""
        ...

    def release_slot(self, scope: str, holder: str) -> None:
        """Give back ``holder``'s lease on ``scope`` (no-op if it lapsed or was never held)."""
        ...

    def active_slots(self, scope: str) -> int:
        """Leases on ``scope`` that have not lapsed."""
        ...

    # -- replicas --------------------------------------------------------------------------------
    def heartbeat(self, replica_id: str, ttl_seconds: float) -> None:
        """Record that ``replica_id`` is alive for the next ``ttl_seconds``."""
        ...

    def live_replicas(self) -> set[str]: ...

    # -- audit -----------------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent, retain_seconds: float | None = None) -> None:
        """Persist one event. ``retain_seconds`` lets backends with native expiry (DynamoDB TTL) drop it."""
        ...

    def query_audit(self, query: AuditQuery) -> list[AuditEvent]: ...

    def prune_audit(self, before: float) -> int:
        """Delete audit events older than ``before``; returns how many were deleted."""
        ...

    def close(self) -> None: ...
