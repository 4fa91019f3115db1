"""The run queue: how many runs this replica works on at once, and who goes next when it is full.

Without it every acked command starts at once: under a flood all of them advance together, none within
its timeout, and ECS refuses the surplus ("Task … already has 100 session(s)"). With it, at most
``concurrency`` runs are in progress; the rest wait in a bounded queue that is FIFO per user and round
robin across users, so one busy user cannot starve the others; past ``max_waiting`` a run is refused
at once with a sentence that says when to retry. Waiting honours the run's cancel event.

Pure asyncio (no I/O): futures handed from the run that ends to the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.errors import BotError


class QueueFull(BotError):
    kind = "busy"
    exit_status = 75  # EX_TEMPFAIL: try again later


class QueueCancelled(BotError):
    kind = "cancelled"
    exit_status = 75


@dataclass(frozen=True)
class QueueLimits:
    concurrency: int = 16  # runs in progress at once on this replica
    # Runs waiting for a turn; past it, refused in the ack. A waiting run costs a few KiB (a task and a
    # future), so the bound is about how long a wait is still useful, not memory.
    max_waiting: int = 2000


@dataclass(frozen=True)
class Ticket:
    """A run's place in the queue, taken when it was acked: admitted (``waiter`` None) or waiting."""

    user: str
    waiter: asyncio.Future[None] | None


class RunQueue:
    def __init__(self, limits: QueueLimits = QueueLimits()) -> None:
        self.limits = limits
        self._active = 0
        # user -> their waiters in arrival order; the dict order is the round-robin order of users.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._count = 0

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._count

    def ahead(self) -> int | None:
        """None when a new run would start at once; else how many waiting runs it would wait behind."""
        return self._count if self._active >= self.limits.concurrency or self._count else None

    def check_room(self) -> None:
        """Refuse now (before the ack) if a new run could not even wait."""
        ahead = self.ahead()
        if ahead is not None and ahead >= self.limits.max_waiting:
            raise QueueFull(
                f"The bot is at capacity: {self._active} commands are running and {self._count} are waiting.",
                fix="Try again in a minute.",
            )

    def reserve(self, user: str) -> Ticket:
        """Take this run's place now (the ack path): admitted at once, or queued in fair order. Raises
        `QueueFull` if it could not even wait, so what the ack says is what happens."""
        if self._active < self.limits.concurrency and not self._count:
            self._active += 1
            return Ticket(user, None)
        self.check_room()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user, deque()).append(waiter)
        self._count += 1
        return Ticket(user, waiter)

    @contextlib.asynccontextmanager
    async def turn(
        self, user: str, cancel: asyncio.Event | None = None, *, ticket: Ticket | None = None
    ) -> AsyncIterator[None]:
        """Wait for this run's turn (its ``ticket``, else a place taken now), hold it while the body
        runs, hand it on after. A cancel while waiting raises `QueueCancelled`."""
        ticket = ticket or self.reserve(user)
        await self._wait(ticket, cancel)
        try:
            yield
        finally:
            self._release()

    def abandon(self, ticket: Ticket) -> None:
        """Give back a place that will never be used (the run was refused before it waited)."""
        if ticket.waiter is None:
            self._release()
        else:
            self._abandon(ticket.user, ticket.waiter)

    async def _wait(self, ticket: Ticket, cancel: asyncio.Event | None) -> None:
        waiter = ticket.waiter
        if waiter is None:
            return
        cancelled = asyncio.ensure_future(cancel.wait()) if cancel is not None else None
        waits: set[asyncio.Future[Any]] = {waiter} if cancelled is None else {waiter, cancelled}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(ticket.user, waiter)
            raise
        finally:
            if cancelled is not None:
                cancelled.cancel()
        if not waiter.done():  # cancelled while waiting: it never got a turn
            self._abandon(ticket.user, waiter)
            raise QueueCancelled("The command was cancelled before it started.", fix="Nothing ran.")

    def _abandon(self, user: str, waiter: asyncio.Future[None]) -> None:
        if waiter.done() and not waiter.cancelled():
            self._release()  # the turn was handed over just as the wait ended: pass it on
            return
        waiter.cancel()
        queue = self._waiting.get(user)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self._count -= 1
            if not queue:
                del self._waiting[user]

    def _release(self) -> None:
        """End one turn: the next user in round-robin order gets it (their oldest waiter)."""
        while self._waiting:
            user, queue = next(iter(self._waiting.items()))
            waiter = queue.popleft()
            self._count -= 1
            if queue:
                self._waiting.move_to_end(user)  # round robin: this user goes to the back
            else:
                del self._waiting[user]
            if not waiter.done():
                waiter.set_result(None)  # the turn moves to it; `active` is unchanged
                return
        self._active -= 1
