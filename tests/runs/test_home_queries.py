"""App Home's reads over both stores: the pending requests a user may approve now, and a requester's
recent requests (from the audit trail, with their records)."""

from __future__ import annotations

from collections.abc import Collection

from bot.audit import AuditKind
from bot.runs.ledger import RunLedger
from bot.store.base import RunState, Store
from tests.runs.support import open_request, order, service
from tests.store.support import FakeClock


class Groups:
    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.asked: list[frozenset[str]] = []

    async def groups_of(self, user_id: str, group_ids: Collection[str]) -> frozenset[str]:
        self.asked.append(frozenset(group_ids))
        return frozenset(g for g in group_ids if user_id in self.members.get(g, set()))


async def requested(ledger: RunLedger, request_id: str, user: str = "U0ALICE", command: str = "echo hi") -> None:
    fields = order(request_id).audit_fields()
    await ledger._audit.record(AuditKind.REQUESTED, **{**fields, "requester": user, "command": command}, user=user)


async def test_pending_for_approver_follows_the_vote_rules(store: Store, clock: FakeClock) -> None:
    ledger = service(store, clock, "r1")
    await open_request(ledger, "req-1")
    await open_request(ledger, "req-2", allow_self_approval=True)
    groups = Groups({"S0SRE": {"U0DAVE"}})
    assert [r.request_id for r in await ledger.pending_for_approver("U0BOB", groups)] == ["req-1", "req-2"]
    assert [r.request_id for r in await ledger.pending_for_approver("U0DAVE", groups)] == ["req-1", "req-2"]
    assert groups.asked[-1] == {"S0SRE"}  # only the groups the records name
    # The requester only where the rule allows self-approval; a stranger never.
    assert [r.request_id for r in await ledger.pending_for_approver("U0ALICE", groups)] == []
    assert await ledger.pending_for_approver("U0MALLORY", groups) == []
    # Once Bob voted on a 2-of-n request, it no longer waits for him; it still waits for Carol.
    await open_request(ledger, "req-3", min_approvals=2)
    record = await ledger.get("req-3")
    await ledger.approve(record, "U0BOB", ())
    assert "req-3" not in [r.request_id for r in await ledger.pending_for_approver("U0BOB", groups)]
    assert "req-3" in [r.request_id for r in await ledger.pending_for_approver("U0CAROL", groups)]
    assert len(await ledger.pending_for_approver("U0CAROL", groups, limit=1)) == 1
    clock.advance(901)  # expired while nobody looked: not offered
    assert await ledger.pending_for_approver("U0BOB", groups) == []


async def test_recent_for_requester_newest_first_with_state_and_message(store: Store, clock: FakeClock) -> None:
    ledger = service(store, clock, "r1")
    await requested(ledger, "req-1", command="echo one")
    await open_request(ledger, "req-1")
    await ledger.set_message_ts("req-1", "1700000000.000100")
    clock.advance(1)
    await requested(ledger, "req-2", command="echo two")
    await ledger._audit.record(AuditKind.REFUSED, request_id="req-2", user="U0ALICE", requester="U0ALICE")
    clock.advance(1)
    await requested(ledger, "req-3", user="U0BOB", command="echo bob")
    recent = await ledger.recent_for_requester("U0ALICE")
    assert [(r.request_id, r.state, r.command) for r in recent] == [
        ("req-2", "refused", "echo two"), ("req-1", RunState.PENDING.value, "echo one"),
    ]
    assert recent[1].message_ts == "1700000000.000100" and recent[1].channel == "C0INCIDENT"
    assert recent[0].message_ts is None
    assert [r.request_id for r in await ledger.recent_for_requester("U0ALICE", limit=1)] == ["req-2"]
    clock.advance(15 * 86400)  # older than the window: not read
    assert await ledger.recent_for_requester("U0ALICE") == []
