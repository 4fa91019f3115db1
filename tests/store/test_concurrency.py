"""Exactly once under contention: 20 threads spread over two store instances (two SQLite connections on one
file, or two boto3 clients on one DynamoDB table) race for the same vote / transition / claim / slot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bot.store.base import RunState, Store, Transition, Vote
from tests.store.support import FakeClock, make_record

T = TypeVar("T")
THREADS = 20


def race(stores: tuple[Store, Store], fn: Callable[[Store, int], T]) -> list[T]:
    """Run fn(store, i) on THREADS threads released together, alternating between the two instances."""
    barrier = threading.Barrier(THREADS)

    def one(i: int) -> T:
        barrier.wait()
        return fn(stores[i % 2], i)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(THREADS)))


def test_twenty_approvers_one_approval_one_run(stores: tuple[Store, Store], clock: FakeClock) -> None:
    stores[0].create_run(make_record(min_approvals=3))

    def vote_approve_claim(store: Store, i: int) -> tuple[bool, bool, bool]:
        voted = store.add_vote("req-1", Vote(f"U{i:03d}", clock()))
        # The service's rule: only a vote that reaches the quorum may try pending → approved.
        approved = (
            voted is not None
            and len(voted.votes) >= 3
            and store.transition(
                "req-1", RunState.PENDING, RunState.APPROVED, Transition(decided_by=f"U{i:03d}")
            )
            is not None
        )
        # Every thread tries to start it: the approved → running CAS must still pick one.
        claimed = store.transition(
            "req-1",
            RunState.APPROVED,
            RunState.RUNNING,
            Transition(owner=f"r{i}"),
            require_unexpired=True,
        )
        return voted is not None, approved, claimed is not None

    results = race(stores, vote_approve_claim)
    assert sum(approved for _, approved, _ in results) == 1
    assert sum(claimed for _, _, claimed in results) == 1
    record = stores[1].get_run("req-1")
    assert record is not None and record.state is RunState.RUNNING
    # Votes that landed before the approval all count, each approver once; later ones were refused.
    assert 3 <= len(record.votes) == sum(voted for voted, _, _ in results)
    assert len({v.approver for v in record.votes}) == len(record.votes)


def test_one_approver_clicking_twenty_times_votes_once(stores: tuple[Store, Store], clock: FakeClock) -> None:
    stores[0].create_run(make_record(min_approvals=2))
    results = race(stores, lambda store, i: store.add_vote("req-1", Vote("U0BOB", clock())) is not None)
    assert results.count(True) == 1
    record = stores[0].get_run("req-1")
    assert record is not None and record.approvers_so_far == ("U0BOB",)


def test_twenty_claims_one_winner(stores: tuple[Store, Store]) -> None:
    assert race(stores, lambda store, i: store.claim("approve:req-1", 60)).count(True) == 1


def test_twenty_claims_of_approved_to_running_one_winner(stores: tuple[Store, Store]) -> None:
    stores[0].create_run(make_record(state=RunState.APPROVED))
    results = race(
        stores,
        lambda store, i: store.transition(
            "req-1", RunState.APPROVED, RunState.RUNNING, Transition(owner=f"replica-{i}")
        ),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    final = stores[1].get_run("req-1")
    assert final is not None and final.owner == winners[0].owner


def test_twenty_runs_for_three_slots(stores: tuple[Store, Store]) -> None:
    results = race(stores, lambda store, i: store.acquire_slot("task:arn:1", 3, f"run-{i}", 60))
    assert results.count(True) == 3
    assert stores[0].active_slots("task:arn:1") == 3
