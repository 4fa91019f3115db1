"""Builders for approval tests: a rule shaped like `bot.policy.ApprovalRule`, a recording notifier, and a
service pair over two store instances (two replicas)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.audit import Auditor
from bot.runs.approvals import ApprovalService
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


def service(store: Store, clock: FakeClock, replica: str, notes: Notes | None = None) -> ApprovalService:
    return ApprovalService(store, Auditor(store, notify=notes, clock=clock), replica_id=replica, clock=clock)


async def open_request(svc: ApprovalService, request_id: str = "req-1", **rule: object) -> RunRecord:
    return await svc.open(
        request_id=request_id,
        requester="U0ALICE",
        channel="C0INCIDENT",
        service="web",
        environment="prod",
        command="cat /var/log/nginx/access.log",
        reason="incident 42",
        rule_name="oncall-logs",
        rule=Rule(**rule),  # type: ignore[arg-type]
        target={"task": None, "container": "nginx", "all_tasks": False},
        params={"timeout": 30},
    )


def kinds(store: Store, request_id: str = "req-1") -> list[str]:
    """The request's audit events, oldest first."""
    return [e.kind for e in reversed(store.query_audit(AuditQuery(request_id=request_id)))]
