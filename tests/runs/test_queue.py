"""The run queue: bounded concurrency, FIFO per user, round robin across users, a bounded wait, and a
cancel that reaches a run still waiting for its turn."""

from __future__ import annotations

import asyncio

import pytest

from bot.runs.queue import QueueCancelled, QueueFull, QueueLimits, RunQueue


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_runs_start_in_fair_order_when_the_queue_is_full() -> None:
    queue = RunQueue(QueueLimits(concurrency=1, max_waiting=10))
    started: list[str] = []
    gate = asyncio.Event()

    async def run(user: str, name: str) -> None:
        async with queue.turn(user):
            started.append(name)
            await gate.wait()

    first = asyncio.create_task(run("alice", "a1"))
    await _settle()
    # alice floods, bob and carol ask once each: they do not wait behind all of alice's runs.
    tasks = [asyncio.create_task(run(u, n)) for u, n in
             [("alice", "a2"), ("alice", "a3"), ("alice", "a4"), ("bob", "b1"), ("carol", "c1")]]  # fmt: skip
    await _settle()
    assert queue.active == 1 and queue.waiting == 5 and queue.ahead() == 5
    gate.set()
    await asyncio.gather(first, *tasks)
    assert started == ["a1", "a2", "b1", "c1", "a3", "a4"]
    assert queue.active == 0 and queue.waiting == 0 and queue.ahead() is None


async def test_no_wait_while_there_is_room() -> None:
    queue = RunQueue(QueueLimits(concurrency=2, max_waiting=0))
    async with queue.turn("alice"), queue.turn("bob"):
        assert queue.active == 2 and queue.ahead() == 0  # full: a new run would be next in line
        with pytest.raises(QueueFull, match="at capacity"):
            queue.check_room()  # a third would have to wait, and nobody may wait here
        with pytest.raises(QueueFull):
            async with queue.turn("carol"):
                pass
    assert queue.active == 0


async def test_a_cancel_reaches_a_waiting_run_and_frees_its_place() -> None:
    queue = RunQueue(QueueLimits(concurrency=1, max_waiting=5))
    hold = asyncio.Event()
    cancel = asyncio.Event()
    ran: list[str] = []

    async def run(user: str, name: str, cancel_event: asyncio.Event | None = None) -> None:
        async with queue.turn(user, cancel_event):
            ran.append(name)
            await hold.wait()

    first = asyncio.create_task(run("alice", "first"))
    await _settle()
    doomed = asyncio.create_task(run("bob", "doomed", cancel))
    after = asyncio.create_task(run("carol", "after"))
    await _settle()
    cancel.set()
    with pytest.raises(QueueCancelled, match="before it started"):
        await doomed
    assert queue.waiting == 1
    hold.set()
    await asyncio.gather(first, after)
    assert ran == ["first", "after"] and queue.active == 0


async def test_a_task_cancelled_while_waiting_or_just_handed_a_turn_leaks_nothing() -> None:
    queue = RunQueue(QueueLimits(concurrency=1, max_waiting=5))
    hold = asyncio.Event()

    async def run(user: str) -> None:
        async with queue.turn(user):
            await hold.wait()

    first = asyncio.create_task(run("alice"))
    await _settle()
    waiting = asyncio.create_task(run("bob"))
    third = asyncio.create_task(run("carol"))
    await _settle()
    waiting.cancel()  # e.g. a hard cancel at the end of a drain
    await asyncio.gather(waiting, return_exceptions=True)
    assert queue.waiting == 1
    hold.set()
    await asyncio.gather(first, third)
    assert queue.active == 0 and queue.waiting == 0


async def test_a_place_reserved_at_the_ack_keeps_its_order_and_can_be_given_back() -> None:
    queue = RunQueue(QueueLimits(concurrency=1, max_waiting=2))
    now = queue.reserve("alice")  # admitted at once
    first, second = queue.reserve("bob"), queue.reserve("carol")
    with pytest.raises(QueueFull):
        queue.reserve("dave")  # refused in the ack: what it says is what happens
    queue.abandon(second)  # carol's run was refused before it waited
    assert queue.waiting == 1
    order: list[str] = []

    async def run(user: str, ticket: object) -> None:
        async with queue.turn(user, ticket=ticket):  # type: ignore[arg-type]
            order.append(user)

    bob = asyncio.create_task(run("bob", first))
    await _settle()
    assert order == []  # alice still holds the only turn
    queue.abandon(now)  # alice's run ends without using its turn: it passes to bob
    await bob
    assert order == ["bob"] and queue.active == 0 and queue.waiting == 0
