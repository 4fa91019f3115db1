"""Builders for approval tests: a rule shaped like `bot.policy.ApprovalRule`, a recording notifier, and a
service pair over two store instances (two replicas)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from bot.audit import Auditor
from bot.runs.ledger import RunLedger, VoteResult
from bot.runs.order import RunOrder
from bot.service_ref import ServiceRef
from bot.store.base import AuditQuery, RunRecord, Store
from tests.store.support import FakeClock


@dataclass(frozen=True)
class Approvers:
    users: tuple[str, ...] = ("U0BOB", "U0CAROL")
    groups: tuple[str, ...] = ("S0SRE",)


@dataclass(frozen=True)
class Rule:
    approvers: Approvers = field(default_factory=Approvers)
    min_approvals: int = 1
    ttl: int = 900
    allow_self_approval: bool = False
    required: bool = True


class Notes:
    """Collects audit-channel lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, text: str) -> None:
        self.lines.append(text)


def service(store: Store, clock: FakeClock, replica: str, notes: Notes | None = None) -> RunLedger:
    return RunLedger(store, Auditor(store, notify=notes, clock=clock), replica_id=replica, clock=clock)


def order(request_id: str = "req-1") -> RunOrder:
    return RunOrder(
        request_id=request_id,
        requester="U0ALICE",
        channel_id="C0INCIDENT",
        service=ServiceRef("web", "prod", "prod", "web-nginx", container="nginx", timeout=30),
        command="cat /var/log/nginx/access.log",
        timeout=30,
        reason="incident 42",
    )


async def open_request(svc: RunLedger, request_id: str = "req-1", **rule: object) -> RunRecord:
    return await svc.open_approval(order(request_id), "oncall-logs", Rule(**rule))  # type: ignore[arg-type]


# The ledger acts on the record a click just read; these read it first, as the click handler does.
async def approve(
    svc: RunLedger, request_id: str, user: str, groups: Collection[str] = (), **kwargs: str
) -> VoteResult:
    return await svc.approve(await svc.get(request_id), user, groups, **kwargs)


async def deny(svc: RunLedger, request_id: str, user: str, reason: str = "") -> RunRecord:
    return await svc.deny(await svc.get(request_id), user, reason=reason)


async def start(svc: RunLedger, request_id: str, run_timeout_s: float) -> RunRecord | None:
    return await svc.start(await svc.get(request_id), run_timeout_s=run_timeout_s)


def kinds(store: Store, request_id: str = "req-1") -> list[str]:
    """The request's audit events, oldest first."""
    return [e.kind for e in reversed(store.query_audit(AuditQuery(request_id=request_id)))]
