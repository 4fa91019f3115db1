"""The run ledger's approvals over both stores: the state machine, exactly-once across two replicas, the watchdog,
and the audit trail each path leaves."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.runs.approvals import ApprovalError
from bot.store.base import AuditEvent, AuditQuery, RunRecord, RunState, Store
from bot.store.sqlite import SqliteStore
from tests.runs.support import Approvers, Notes, approve, deny, kinds, open_request, service, start
from tests.store.support import FakeClock


async def test_one_approval_runs_once_and_leaves_a_full_trail(store: Store, clock: FakeClock) -> None:
    notes = Notes()
    svc = service(store, clock, "replica-a", notes)
    await open_request(svc)
    result = await approve(svc, "req-1", "U0BOB")
    assert result.approved and result.needed == 0 and not result.break_glass
    assert result.record.state is RunState.APPROVED and result.record.decided_by == "U0BOB"
    running = await start(svc, "req-1", 30)
    assert running is not None and running.owner == "replica-a"
    assert await start(svc, "req-1", 30) is None  # a second start loses
    ended = await svc.finish(running, RunState.FINISHED)
    assert ended is not None and ended.state is RunState.FINISHED
    # The executor audits each target's outcome (tests/slack/test_e2e_audit.py); the ledger its decisions.
    assert kinds(store) == ["approval_requested", "approved"]
    (approved,) = store.query_audit(AuditQuery(request_id="req-1", limit=1))
    assert approved.details["approved_by"] == "U0BOB"
    assert notes.lines == []  # the audit channel hears the outcome, not the approval


async def test_self_approval_is_refused_and_audited(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc, approvers=_approvers("U0ALICE", "U0BOB"))
    with pytest.raises(ApprovalError, match="cannot approve your own request"):
        await approve(svc, "req-1", "U0ALICE")
    assert (await svc.get("req-1")).state is RunState.PENDING
    assert kinds(store) == ["approval_requested", "click_refused"]


async def test_non_approver_is_refused(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc)
    with pytest.raises(ApprovalError, match="not an approver"):
        await approve(svc, "req-1", "U0MALLORY", {"S0OTHER"})
    assert (await svc.get("req-1")).votes == ()


async def test_break_glass_is_recorded_and_announced_loudly(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    notes = Notes()
    svc = service(store, clock, "replica-a", notes)
    await open_request(svc, allow_self_approval=True, approvers=_approvers("U0ALICE"))
    with caplog.at_level(logging.INFO, logger="ecs_exec_bot.audit"):
        result = await approve(svc, "req-1", "U0ALICE")
    assert result.approved and result.break_glass
    assert result.record.votes[0].break_glass
    assert notes.lines[0].startswith(":rotating_light: BREAK-GLASS: <@U0ALICE> approved their own request")
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert '"break_glass": true' in warning.getMessage()


async def test_n_of_m_needs_distinct_approvers(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc, min_approvals=2)
    first = await approve(svc, "req-1", "U0BOB")
    assert not first.approved and first.needed == 1
    with pytest.raises(ApprovalError, match="already approved"):
        await approve(svc, "req-1", "U0BOB")
    assert await start(svc, "req-1", 30) is None  # not approved yet: nothing runs
    second = await approve(svc, "req-1", "U0DAVE", {"S0SRE"})
    assert second.approved and second.record.approvers_so_far == ("U0BOB", "U0DAVE")
    assert kinds(store) == ["approval_requested", "approval_vote", "click_refused", "approved"]


async def test_an_expired_request_cannot_be_approved(store: Store, clock: FakeClock) -> None:
    notes = Notes()
    svc = service(store, clock, "replica-a", notes)
    await open_request(svc)
    clock.advance(900)
    with pytest.raises(ApprovalError, match="expired"):
        await approve(svc, "req-1", "U0BOB")
    record = await svc.get("req-1")
    assert record.state is RunState.EXPIRED and record.votes == ()
    assert kinds(store) == ["approval_requested", "expired", "click_refused"]
    assert notes.lines[0].startswith(":hourglass: expired unapproved: <@U0ALICE>")


async def test_an_approved_request_that_expires_cannot_run(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc)
    await approve(svc, "req-1", "U0BOB")
    clock.advance(901)
    with pytest.raises(ApprovalError, match="expired"):
        await start(svc, "req-1", 30)
    assert (await svc.get("req-1")).state is RunState.EXPIRED


async def test_deny_and_cancel(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc, "req-1")
    await open_request(svc, "req-2")
    denied = await deny(svc, "req-1", "U0CAROL", reason="not during the freeze")
    assert (denied.state, denied.decided_by, denied.state_reason) == (
        RunState.DENIED, "U0CAROL", "not during the freeze"
    )  # fmt: skip
    with pytest.raises(ApprovalError, match="was denied by <@U0CAROL>"):
        await approve(svc, "req-1", "U0BOB")
    with pytest.raises(ApprovalError, match="Only <@U0ALICE>, who made this request"):
        await svc.cancel("req-2", "U0BOB")
    cancelled = await svc.cancel("req-2", "U0ALICE")
    assert cancelled.state is RunState.CANCELLED
    with pytest.raises(ApprovalError, match="was cancelled by <@U0ALICE>"):
        await approve(svc, "req-2", "U0BOB")
    assert kinds(store, "req-1") == ["approval_requested", "denied", "click_refused"]
    assert kinds(store, "req-2") == ["approval_requested", "click_refused", "cancelled", "click_refused"]


async def test_cancelling_a_running_command_reaches_its_owner(
    stores: tuple[Store, Store], clock: FakeClock
) -> None:
    notes = Notes()
    owner, other = (
        service(stores[0], clock, "replica-a", notes),
        service(stores[1], clock, "replica-b", notes),
    )
    await open_request(owner)
    await approve(owner, "req-1", "U0BOB")
    running = await start(owner, "req-1", 30)
    assert running is not None
    clock.advance(1)  # (two replicas' events in one clock tick have no defined order)
    cancelled = await other.cancel("req-1", "U0ALICE")  # the click lands on another replica
    assert cancelled.state is RunState.CANCELLED and cancelled.decided_by == "U0ALICE"
    assert notes.lines == []  # the owner reports the outcome, once
    clock.advance(1)
    assert await owner.finish(running, RunState.CANCELLED, "cancelled by <@U0ALICE>") is None
    assert kinds(stores[0]) == ["approval_requested", "approved", "cancel_requested"]
    with pytest.raises(ApprovalError, match="was cancelled by <@U0ALICE>"):
        await other.cancel("req-1", "U0ALICE")


async def test_a_button_for_another_request_is_refused(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    record = await open_request(svc)
    with pytest.raises(ApprovalError, match="different request"):
        await approve(svc, "req-1", "U0BOB", expected_hash="f" * 64)
    assert (await approve(svc, "req-1", "U0BOB", expected_hash=record.request_hash)).approved


async def test_a_tampered_record_is_not_run(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc)
    await approve(svc, "req-1", "U0BOB")
    # Same id, other command: e.g. a hand-edited row. The hash no longer matches, so it must not run.
    record = await svc.get("req-1")
    tampered = record.__class__(**{**record.__dict__, "request_id": "req-x", "command": "rm -rf /"})
    store.create_run(tampered)
    with pytest.raises(ApprovalError, match="does not match"):
        await start(svc, "req-x", 30)


async def test_twenty_concurrent_approvals_on_two_replicas_start_once(
    stores: tuple[Store, Store], clock: FakeClock
) -> None:
    a, b = service(stores[0], clock, "replica-a"), service(stores[1], clock, "replica-b")
    await open_request(a, approvers=_approvers(*(f"U{i:03d}" for i in range(20))))

    async def click(i: int) -> bool:
        svc = (a, b)[i % 2]
        try:
            result = await approve(svc, "req-1", f"U{i:03d}")
        except ApprovalError:
            return False  # lost the race after the approval: told "already approved"
        return result.approved and await start(svc, "req-1", 30) is not None

    started = await asyncio.gather(*(click(i) for i in range(20)))
    assert started.count(True) == 1
    assert (await a.get("req-1")).state is RunState.RUNNING
    assert kinds(stores[0]).count("approved") == 1


async def test_a_pending_approval_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = SqliteStore(tmp_path / "bot.db", clock=clock)
    await open_request(service(first, clock, "replica-a"), min_approvals=2)
    await approve(service(first, clock, "replica-a"), "req-1", "U0BOB")
    first.close()
    second = SqliteStore(tmp_path / "bot.db", clock=clock)
    result = await approve(service(second, clock, "replica-b"), "req-1", "U0CAROL")
    assert result.approved and result.record.approvers_so_far == ("U0BOB", "U0CAROL")


async def test_expire_due_sweeps_pending_and_unstarted(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    await open_request(svc, "req-1")
    await open_request(svc, "req-2")
    await approve(svc, "req-2", "U0BOB")
    clock.advance(100)
    await open_request(svc, "req-3")
    clock.advance(850)
    assert sorted(r.request_id for r in await svc.expire_due()) == ["req-1", "req-2"]
    assert (await svc.get("req-3")).state is RunState.PENDING
    assert await svc.expire_due() == []


async def test_watchdog_fails_runs_past_deadline_or_of_dead_replicas(
    stores: tuple[Store, Store], clock: FakeClock
) -> None:
    a, b = service(stores[0], clock, "replica-a"), service(stores[1], clock, "replica-b")
    for rid in ("req-1", "req-2", "req-3"):
        await open_request(a, rid)
        await approve(a, rid, "U0BOB")
    assert await start(a, "req-1", 10) is not None  # owner a: long deadline below
    assert await start(b, "req-2", 3600) is not None  # owner b, which will stop heartbeating
    assert await start(a, "req-3", 3600) is not None  # owner a, alive and in time
    clock.advance(200)  # req-1: 10 s + 120 s grace passed; replica-b's 30 s heartbeat lapsed
    await a.heartbeat()
    recovered = await a.recover_stuck()
    assert sorted(r.request_id for r in recovered) == ["req-1", "req-2"]
    by_id = {r.request_id: r for r in recovered}
    assert "deadline" in (by_id["req-1"].state_reason or "")
    assert "replica-b" in (by_id["req-2"].state_reason or "")
    assert (await a.get("req-3")).state is RunState.RUNNING
    assert kinds(stores[0], "req-2")[-1] == "failed"
    # The dead replica's late result does not resurrect the record.
    clock.advance(1)
    late = await b.finish(by_id["req-2"], RunState.FINISHED)
    assert late is None and (await a.get("req-2")).state is RunState.FAILED


async def test_a_missing_request_is_explained(store: Store, clock: FakeClock) -> None:
    svc = service(store, clock, "replica-a")
    with pytest.raises(ApprovalError, match="no longer exists"):
        await approve(svc, "nope", "U0BOB")
    await open_request(svc)
    with pytest.raises(ApprovalError, match="already submitted"):
        await open_request(svc)


def _approvers(*users: str) -> Approvers:
    return Approvers(users=tuple(users), groups=("S0SRE",))


async def test_daily_retention_runs_on_one_replica(stores: tuple[Store, Store], clock: FakeClock) -> None:
    from bot.audit import Auditor

    a = Auditor(stores[0], clock=clock, retention_days=30)
    b = Auditor(stores[1], clock=clock, retention_days=30)

    def old_event(request_id: str) -> None:  # 40 days old: past the 30-day retention
        stores[0].append_audit(AuditEvent(request_id, request_id, "requested", clock() - 40 * 86400))

    def present(request_id: str) -> bool:
        return bool(stores[0].query_audit(AuditQuery(request_id=request_id)))

    old_event("old-1")
    if getattr(stores[0], "audit_expires_natively", False):
        # DynamoDB: records expire by TTL; the bot's role may not Scan or delete audit records
        # (infra/bot/iam.tf), so no replica prunes them.
        assert await b.prune_once_a_day() is None and present("old-1")
        return
    assert await b.prune_once_a_day() == 1
    assert not present("old-1")  # b took today's prune
    old_event("old-2")
    assert await a.prune_once_a_day() is None
    assert present("old-2")  # same day: the claim is b's, a does not prune again
    clock.advance(86400)
    assert await a.prune_once_a_day() == 1
    assert not present("old-2")  # next day, whoever comes first prunes


async def test_a_plain_run_is_one_record_with_the_same_rules(
    stores: tuple[Store, Store], clock: FakeClock
) -> None:
    from tests.runs.support import order

    owner, other = service(stores[0], clock, "replica-a"), service(stores[1], clock, "replica-b")
    record = await owner.open_plain(order("run-1"), budget_s=30)
    assert record.state is RunState.RUNNING and not record.needs_approval and record.owner == "replica-a"
    with pytest.raises(ApprovalError, match="Only <@U0ALICE>"):
        await other.cancel("run-1", "U0MALLORY")
    cancelled = await other.cancel("run-1", "U0ALICE")  # from another replica: the owner's watch stops it
    assert cancelled.state is RunState.CANCELLED and cancelled.owner == "replica-a"
    assert await owner.finish(record, RunState.FINISHED) is None  # the cancel stands
    assert kinds(stores[0], "run-1") == ["click_refused", "cancel_requested"]


async def test_a_cancel_for_a_dead_owner_is_left_to_the_watchdog(stores: tuple[Store, Store], clock: FakeClock) -> None:
    from tests.runs.support import order

    dead, live = service(stores[0], clock, "replica-dead"), service(stores[1], clock, "replica-b")
    await dead.open_plain(order("run-1"), budget_s=3600)
    clock.advance(60)  # the dead replica's 30 s heartbeat lapsed
    with pytest.raises(ApprovalError, match="replica running this command stopped"):
        await live.cancel("run-1", "U0ALICE")
    assert (await live.get("run-1")).state is RunState.RUNNING


async def test_the_watchdog_ends_the_sessions_of_a_dead_owner(stores: tuple[Store, Store], clock: FakeClock) -> None:
    from tests.runs.support import order

    dead, live = service(stores[0], clock, "replica-dead"), service(stores[1], clock, "replica-b")
    await dead.open_plain(order("run-1"), budget_s=3600)
    await dead.add_session("run-1", "ecs-execute-command-aaa")
    await dead.add_session("run-1", "ecs-execute-command-bbb")
    clock.advance(60)
    ended: list[tuple[str, str]] = []

    async def terminate(record: RunRecord, session_id: str) -> None:
        ended.append((record.environment, session_id))
        if session_id.endswith("bbb"):
            raise OSError("network down")  # best effort: logged, the run is failed all the same

    await live.heartbeat()
    [failed] = await live.recover_stuck(terminate)
    assert failed.state is RunState.FAILED and "replica-dead" in (failed.state_reason or "")
    assert ended == [("prod", "ecs-execute-command-aaa"), ("prod", "ecs-execute-command-bbb")]
    [event] = [e for e in stores[0].query_audit(AuditQuery(request_id="run-1")) if e.kind == "failed"]
    assert event.details["sessions_terminated"] == 1 and event.details["watchdog"] is True
    assert await live.recover_stuck(terminate) == []  # once
