"""Tracked background jobs: everything a command does after the ack runs here, so a SIGTERM can drain.

Slack wants an ack within 3 s, so AWS and Slack work happens in an asyncio task started after the ack.
A fire-and-forget task would be lost on shutdown (and its exception swallowed), so every job is
registered here with a cancel event. Draining happens in three steps, each giving the job a chance to
tell its user what happened:

1. stop taking new jobs (`start` raises `BotRestarting`, which the handler answers with "try again");
2. let running jobs finish for ``grace`` seconds;
3. set their cancel events (the runner interrupts the command and the job reports "cancelled"), wait
   ``cancel_grace``; then `Task.cancel()` whatever is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.errors import BotError

log = logging.getLogger("ecs_exec_bot.jobs")


class BotRestarting(BotError):
    """New work refused while the process drains for a restart."""

    kind = "restarting"
    exit_status = 75

    def __init__(self) -> None:
        super().__init__("The bot is restarting.", fix="Try again in a minute.")


@dataclass
class Job:
    job_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None
    labels: dict[str, str] = field(default_factory=dict)  # e.g. who may cancel it

    def request_cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.cancel.set()


@dataclass(frozen=True)
class DrainReport:
    finished: int  # ended on their own within the grace period
    cancelled: int  # ended after their cancel event was set
    killed: int  # still running after cancel_grace: Task.cancel()ed


class JobTracker:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._draining = False

    @property
    def draining(self) -> bool:
        return self._draining

    def running(self) -> list[Job]:
        return list(self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def start(self, job_id: str, work: Callable[[Job], Awaitable[None]], **labels: str) -> Job:
        """Run ``work(job)`` in a tracked task. Raises `BotRestarting` while draining."""
        if self._draining:
            raise BotRestarting()
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} is already running")
        job = Job(job_id, labels=dict(labels))
        self._jobs[job_id] = job
        job.task = asyncio.create_task(self._run(job, work), name=f"job-{job_id}")
        return job

    def cancel(self, job_id: str, reason: str) -> bool:
        """Ask one job to stop (a Cancel button). False if no such job runs here."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.request_cancel(reason)
        return True

    def cancel_request(self, request_id: str, reason: str) -> bool:
        """Ask every job working on ``request_id`` here to stop (its ``request_id`` label). False if none."""
        jobs = [j for j in self._jobs.values() if j.labels.get("request_id") == request_id]
        for job in jobs:
            job.request_cancel(reason)
        return bool(jobs)

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[None]]) -> None:
        try:
            await work(job)
        except asyncio.CancelledError:
            log.warning("job %s was cancelled", job.job_id)
            raise
        except Exception:
            # The handler reports errors to its user itself; this is the last line of defence so a bug
            # is never swallowed silently by an unobserved task.
            log.exception("job %s failed with an unhandled error", job.job_id)
        finally:
            self._jobs.pop(job.job_id, None)

    async def drain(
        self, grace: float, cancel_grace: float = 10.0, reason: str = "the bot is restarting"
    ) -> DrainReport:
        self._draining = True
        pending = self._tasks()
        log.info("draining: %d job(s) running, grace %.0f s", len(pending), grace)
        if pending:
            await asyncio.wait(pending, timeout=grace)
        finished = len(pending) - len(self._tasks())
        left = self._tasks()
        for job in list(self._jobs.values()):
            job.request_cancel(reason)
        if left:
            await asyncio.wait(left, timeout=cancel_grace)
        stuck = self._tasks()
        cancelled = len(left) - len(stuck)
        for task in stuck:
            task.cancel()
        if stuck:
            await asyncio.wait(stuck, timeout=cancel_grace)
        report = DrainReport(finished=finished, cancelled=cancelled, killed=len(stuck))
        log.info("drained: %s", report)
        return report

    def _tasks(self) -> set[asyncio.Task[None]]:
        return {j.task for j in self._jobs.values() if j.task is not None and not j.task.done()}
