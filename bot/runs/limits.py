"""Per-user and per-task run limits, held in the store so they apply across every replica.

Three limits, all store-backed leases with a TTL (a replica that crashes mid-run cannot leak a slot for
longer than the run's timeout plus a grace period):

* concurrent runs per user  — scope ``user-running:<user>``, released when the run ends;
* runs per minute per user  — scope ``user-rate:<user>``, 60 s leases that are never released, which makes
  an exact sliding window ("at most N starts in any 60 s");
* concurrent sessions per task — scope ``task:<task ARN>``, released when the run ends (ECS Exec sessions
  share the task's agent and resources; a runaway fan-out should not pile onto one task).

Order matters: the rate lease is taken last, so a run refused for concurrency does not burn a rate slot;
anything taken before a refusal is given back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import RunLimits  # the `limits:` section, a config model
from bot.errors import BotError
from bot.store.base import Store

RATE_WINDOW_S = 60.0
# Beyond the command timeout: session set-up, output upload, message updates.
SLOT_GRACE_S = 120.0


class LimitExceeded(BotError):
    """A run limit refused the request; the message says which limit and when to retry."""

    kind = "limit"
    exit_status = 75  # EX_TEMPFAIL: trying again later works


@dataclass(frozen=True)
class RunLease:
    """What one run holds; give it back with `RunLimiter.release`."""

    run_id: str
    released_scopes: tuple[str, ...]  # scopes to release at the end (not the rate window)


def user_running_scope(user: str) -> str:
    return f"user-running:{user}"


def user_rate_scope(user: str) -> str:
    return f"user-rate:{user}"


def task_scope(task_arn: str) -> str:
    return f"task:{task_arn}"


def _short_task(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1][:12]


class RunLimiter:
    def __init__(self, store: Store, limits: RunLimits, *, grace_s: float = SLOT_GRACE_S) -> None:
        self._store = store
        self._limits = limits
        self._grace_s = grace_s

    async def acquire(
        self, *, user: str, task_arns: Sequence[str], run_id: str, timeout_s: float
    ) -> RunLease:
        """Take every lease this run needs or none; raises `LimitExceeded` naming the limit that refused."""
        ttl = timeout_s + self._grace_s
        taken: list[str] = []
        try:
            scope = user_running_scope(user)
            if not await self._take(scope, self._limits.max_concurrent_per_user, run_id, ttl):
                raise LimitExceeded(
                    f"You already have {self._limits.max_concurrent_per_user} command(s) running, "
                    "the most allowed at once.",
                    fix="Wait for one to finish, then try again.",
                )
            taken.append(scope)
            for task_arn in dict.fromkeys(task_arns):
                scope = task_scope(task_arn)
                if not await self._take(scope, self._limits.max_concurrent_per_task, run_id, ttl):
                    raise LimitExceeded(
                        f"Task {_short_task(task_arn)} already has {self._limits.max_concurrent_per_task} "
                        "session(s) from this bot, the most allowed at once.",
                        fix="Wait for one to finish, or choose another task with --task.",
                    )
                taken.append(scope)
            limit = self._limits.max_runs_per_minute_per_user
            if not await self._take(user_rate_scope(user), limit, run_id, RATE_WINDOW_S):
                raise LimitExceeded(
                    f"You started {limit} command(s) in the last minute, the most allowed.",
                    fix="Try again in a minute.",
                )
        except BaseException:
            await self._release(taken, run_id)
            raise
        return RunLease(run_id=run_id, released_scopes=tuple(taken))

    async def release(self, lease: RunLease) -> None:
        await self._release(list(lease.released_scopes), lease.run_id)

    @asynccontextmanager
    async def hold(
        self, *, user: str, task_arns: Sequence[str], run_id: str, timeout_s: float
    ) -> AsyncIterator[RunLease]:
        lease = await self.acquire(user=user, task_arns=task_arns, run_id=run_id, timeout_s=timeout_s)
        try:
            yield lease
        finally:
            await self.release(lease)

    async def _take(self, scope: str, limit: int, run_id: str, ttl: float) -> bool:
        return await asyncio.to_thread(self._store.acquire_slot, scope, limit, run_id, ttl)

    async def _release(self, scopes: list[str], run_id: str) -> None:
        for scope in scopes:
            await asyncio.to_thread(self._store.release_slot, scope, run_id)
