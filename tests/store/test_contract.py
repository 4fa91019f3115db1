"""One contract, two backends: every test runs on SQLite and on DynamoDB (moto server on loopback)."""

from __future__ import annotations

import pytest

from bot.store.base import AuditEvent, AuditQuery, RunState, Store, Transition, Vote
from tests.store.support import START, FakeClock, make_record

P, A, R = RunState.PENDING, RunState.APPROVED, RunState.RUNNING


def test_claim_is_won_once_until_its_ttl_passes(stores: tuple[Store, Store], clock: FakeClock) -> None:
    a, b = stores
    assert a.claim("click:T1", 60) is True
    assert a.claim("click:T1", 60) is False
    assert b.claim("click:T1", 60) is False  # another replica sees the claim
    assert b.claim("click:T2", 60) is True
    clock.advance(61)
    assert b.claim("click:T1", 60) is True


def test_approval_round_trips_every_field(store: Store) -> None:
    record = make_record(
        votes=(Vote("U0BOB", START + 1, break_glass=False),),
        message_ts="1795000000.000100",
        params={"task": "3f2a", "timeout": 30, "all_tasks": False, "container": None},
        allow_self_approval=True,
        min_approvals=2,
    )
    assert store.create_run(record) is True
    assert store.create_run(record) is False  # ids are unique
    loaded = store.get_run("req-1")
    assert loaded is not None
    assert loaded.updated_at > 0
    assert loaded == record.__class__(**{**record.__dict__, "updated_at": loaded.updated_at})
    assert store.get_run("nope") is None


def test_message_ts_is_set_later(stores: tuple[Store, Store]) -> None:
    a, b = stores
    a.create_run(make_record())
    a.set_message_ts("req-1", "1795000000.000200")
    assert (rec := b.get_run("req-1")) is not None and rec.message_ts == "1795000000.000200"


def test_session_ids_are_appended_and_seen_by_every_replica(stores: tuple[Store, Store]) -> None:
    a, b = stores
    a.create_run(make_record(sessions=("ecs-execute-command-0a",)))
    a.add_session("req-1", "ecs-execute-command-1b")
    b.add_session("req-1", "ecs-execute-command-2c")
    b.add_session("missing", "ecs-execute-command-3d")  # no record: nothing to do, no error
    assert (rec := a.get_run("req-1")) is not None
    assert rec.sessions == ("ecs-execute-command-0a", "ecs-execute-command-1b", "ecs-execute-command-2c")
    assert b.get_run("missing") is None


def test_votes_are_distinct_and_only_while_pending_and_unexpired(
    stores: tuple[Store, Store], clock: FakeClock
) -> None:
    a, b = stores
    a.create_run(make_record(min_approvals=2))
    first = a.add_vote("req-1", Vote("U0BOB", clock()))
    assert first is not None and first.approvers_so_far == ("U0BOB",)
    assert b.add_vote("req-1", Vote("U0BOB", clock() + 1)) is None  # same approver twice: no second vote
    clock.advance(1)
    second = b.add_vote("req-1", Vote("U0CAROL", clock(), break_glass=True))
    assert second is not None and second.approvers_so_far == ("U0BOB", "U0CAROL")
    assert second.votes[1].break_glass is True
    assert a.add_vote("missing", Vote("U0BOB", clock())) is None

    a.create_run(make_record("req-2"))
    assert a.transition("req-2", P, RunState.DENIED, Transition(decided_by="U0BOB")) is not None
    assert a.add_vote("req-2", Vote("U0CAROL", clock())) is None  # not pending any more

    a.create_run(make_record("req-3"))
    clock.now = START + 900  # expires_at is exclusive
    assert a.add_vote("req-3", Vote("U0BOB", clock())) is None


def test_transition_is_compare_and_set(stores: tuple[Store, Store], clock: FakeClock) -> None:
    a, b = stores
    a.create_run(make_record())
    won = a.transition("req-1", P, A, Transition(decided_by="U0BOB"), require_unexpired=True)
    assert won is not None and won.state is A and won.decided_by == "U0BOB"
    assert b.transition("req-1", P, A, Transition(decided_by="U0CAROL")) is None  # already moved
    running = b.transition("req-1", A, R, Transition(owner="replica-b", run_deadline=START + 60))
    assert running is not None and (running.owner, running.run_deadline) == ("replica-b", START + 60)
    assert running.decided_by == "U0BOB"  # fields not in the Transition are kept
    assert a.transition("req-1", R, RunState.FAILED, expected_owner="replica-a") is None
    done = a.transition("req-1", R, RunState.FINISHED, expected_owner="replica-b")
    assert done is not None and done.state is RunState.FINISHED
    assert a.transition("nope", P, A) is None


def test_transition_refuses_edges_outside_the_state_machine(store: Store) -> None:
    store.create_run(make_record())
    with pytest.raises(ValueError, match="cannot go from pending to running"):
        store.transition("req-1", P, R)
    with pytest.raises(ValueError):
        store.transition("req-1", RunState.FINISHED, R)


def test_an_expired_request_cannot_be_approved_or_started(store: Store, clock: FakeClock) -> None:
    store.create_run(make_record())
    store.create_run(make_record("req-2"))
    assert store.transition("req-2", P, A, require_unexpired=True) is not None
    clock.advance(901)
    assert store.transition("req-1", P, A, require_unexpired=True) is None
    assert store.transition("req-2", A, R, require_unexpired=True) is None
    assert store.transition("req-1", P, RunState.EXPIRED, Transition(state_reason="ttl")) is not None


def test_list_approvals_by_state_oldest_first(store: Store) -> None:
    for i in (3, 1, 2):
        store.create_run(make_record(f"req-{i}", created_at=START + i))
    store.transition("req-2", P, A)
    assert [r.request_id for r in store.list_runs(P)] == ["req-1", "req-3"]
    assert [r.request_id for r in store.list_runs(A)] == ["req-2"]
    assert [r.request_id for r in store.list_runs(P, limit=1)] == ["req-1"]
    assert store.list_runs(R) == []


def test_slots_hold_a_limit_and_lapse_after_their_ttl(stores: tuple[Store, Store], clock: FakeClock) -> None:
    a, b = stores
    assert a.acquire_slot("user:U0ALICE", 2, "run-1", 30)
    assert b.acquire_slot("user:U0ALICE", 2, "run-2", 30)
    assert not a.acquire_slot("user:U0ALICE", 2, "run-3", 30)
    assert a.acquire_slot("user:U0ALICE", 2, "run-1", 30)  # re-acquiring one's own lease refreshes it
    assert b.active_slots("user:U0ALICE") == 2
    assert a.acquire_slot("user:U0BOB", 2, "run-3", 30)  # scopes are independent
    b.release_slot("user:U0ALICE", "run-2")
    b.release_slot("user:U0ALICE", "never-held")
    assert a.active_slots("user:U0ALICE") == 1
    assert a.acquire_slot("user:U0ALICE", 2, "run-3", 30)
    clock.advance(31)  # a crashed replica's leases lapse
    assert a.active_slots("user:U0ALICE") == 0
    assert b.acquire_slot("user:U0ALICE", 2, "run-4", 30)
    assert b.acquire_slot("user:U0ALICE", 2, "run-5", 30)


def test_replica_heartbeats_expire(stores: tuple[Store, Store], clock: FakeClock) -> None:
    a, b = stores
    a.heartbeat("replica-a", 30)
    b.heartbeat("replica-b", 90)
    assert a.live_replicas() == {"replica-a", "replica-b"}
    clock.advance(60)
    assert b.live_replicas() == {"replica-b"}
    a.heartbeat("replica-a", 30)
    assert b.live_replicas() == {"replica-a", "replica-b"}


def _event(n: int, at: float, **kw: object) -> AuditEvent:
    fields: dict = dict(event_id=f"ev-{n:03d}", request_id=f"req-{n % 3}", kind="requested", at=at,
                        user="U0ALICE", requester="U0ALICE", service="web", environment="prod")  # fmt: skip
    fields.update(kw)
    return AuditEvent(**fields)


def test_audit_query_filters_and_orders_newest_first(stores: tuple[Store, Store]) -> None:
    a, b = stores
    day = 86400.0
    a.append_audit(_event(1, START - 3 * day))
    a.append_audit(_event(2, START - day, user="U0BOB", kind="approved"))
    a.append_audit(_event(3, START - 10, service="api", details={"exit_code": 0, "sha256": "ab" * 32}))
    b.append_audit(_event(4, START - 5, user="U0CAROL", requester="U0ALICE", kind="denied"))
    b.append_audit(_event(5, START - 1, user=None, service=None, kind="expired"))

    def ids(**q: object) -> list[str]:
        return [e.event_id for e in b.query_audit(AuditQuery(**q))]

    assert ids(since=START - 2 * day) == ["ev-005", "ev-004", "ev-003", "ev-002"]
    assert ids(since=START - 4 * day, until=START - 5) == ["ev-003", "ev-002", "ev-001"]
    assert ids() == ["ev-005", "ev-004", "ev-003", "ev-002", "ev-001"]
    assert ids(limit=2) == ["ev-005", "ev-004"]
    assert ids(users=("U0BOB", "U0CAROL")) == ["ev-004", "ev-002"]
    assert ids(users=("U0ALICE",), since=START - 2 * day) == ["ev-003"]
    assert ids(service="web") == ["ev-004", "ev-002", "ev-001"]
    assert ids(service="api", users=("U0ALICE",)) == ["ev-003"]
    assert ids(users=("U0ALICE",), service="api") == ["ev-003"]
    assert ids(request_id="req-1") == ["ev-004", "ev-001"]
    assert ids(request_id="req-1", users=("U0CAROL",)) == ["ev-004"]
    (e3,) = b.query_audit(AuditQuery(service="api"))
    assert e3.details == {"exit_code": 0, "sha256": "ab" * 32}
    assert e3 == _event(3, START - 10, service="api", details={"exit_code": 0, "sha256": "ab" * 32})


def test_prune_deletes_only_older_events(store: Store) -> None:
    for n in range(30):  # more than one DynamoDB batch of 25
        store.append_audit(_event(n, START - 40 * 86400 + n))
    store.append_audit(_event(99, START - 10))
    assert store.prune_audit(START - 30 * 86400) == 30
    assert [e.event_id for e in store.query_audit(AuditQuery())] == ["ev-099"]
    assert store.prune_audit(START - 30 * 86400) == 0
