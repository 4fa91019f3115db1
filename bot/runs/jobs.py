"""Tracked background jobs: everything a command does after the ack runs here, so a SIGTERM can drain.

Slack wants an ack within 3 s, so AWS and Slack work happens in an asyncio task started after the ack.
A fire-and-forget task would be lost on shutdown (and its exception swallowed), so every job is
registered here with a cancel event. Draining happens in three steps, each giving the job a chance to
tell its user what happened:

1. stop taking new jobs (`start` raises `BotRestarting`, which the handler answers with "try again");
2. let running jobs finish for ``grace`` seconds;
3. set their cancel events (the runner interrupts the command and the job reports "cancelled"), wait
   ``cancel_grace``; then `Task.cancel()` whatever is left.

A job may have two steps: ``work`` at once, then ``then`` once its ``after`` future is done (a queued
run's turn). Between the two it is a callback on that future, not a suspended task: under a flood
thousands of runs wait, and a suspended chain of coroutines is ~100 objects each that every full
garbage collection scans while acks wait behind it. A cancel request starts the second step at once,
so a waiting job still says what happened to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.errors import BotError

log = logging.getLogger("ecs_exec_bot.jobs")


class BotRestarting(BotError):
    """New work refused while the process drains for a restart."""

    kind = "restarting"
    exit_status = 75

    def __init__(self) -> None:
        super().__init__("The bot is restarting.", fix="Try again in a minute.")


class JobStepFailed(Exception):
    """Raised by a step that has already told its user what went wrong: the job ends there, quietly."""


@dataclass
class Job:
    job_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str | None = None
    task: asyncio.Task[None] | None = None  # the step in progress (None while it waits for ``after``)
    labels: dict[str, str] = field(default_factory=dict)  # e.g. who may cancel it
    # Done when the job's last step has ended: what a drain (or a benchmark) waits for.
    finished: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    wake: Callable[[], None] | None = None  # while waiting between steps: start the next one now

    def request_cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
        self.cancel.set()
        if self.wake is not None:
            self.wake()


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

    def start(
        self,
        job_id: str,
        work: Callable[[Job], Awaitable[None]],
        *,
        then: Callable[[Job], Awaitable[None]] | None = None,
        after: asyncio.Future[Any] | None = None,
        **labels: str,
    ) -> Job:
        """Run ``work(job)`` in a tracked task; then, if given, ``then(job)`` once ``after`` is done (or a
        cancel is requested). ``then`` does not run when ``work`` raised. Raises `BotRestarting` while
        draining."""
        if self._draining:
            raise BotRestarting()
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} is already running")
        job = Job(job_id, labels=dict(labels))
        self._jobs[job_id] = job
        job.task = asyncio.create_task(self._run(job, work, then, after), name=f"job-{job_id}")
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

    async def _run(
        self,
        job: Job,
        work: Callable[[Job], Awaitable[None]],
        then: Callable[[Job], Awaitable[None]] | None = None,
        after: asyncio.Future[Any] | None = None,
    ) -> None:
        ended = True
        try:
            await work(job)
            if then is not None:
                if after is None or after.done() or job.cancel.is_set():
                    await then(job)
                else:
                    ended = False
                    self._park(job, then, after)
        except asyncio.CancelledError:
            log.warning("job %s was cancelled", job.job_id)
            raise
        except JobStepFailed:
            pass
        except Exception:
            # The handler reports errors to its user itself; this is the last line of defence so a bug
            # is never swallowed silently by an unobserved task.
            log.exception("job %s failed with an unhandled error", job.job_id)
        finally:
            if ended:
                self._end(job)

    def _park(self, job: Job, then: Callable[[Job], Awaitable[None]], after: asyncio.Future[Any]) -> None:
        """Wait for ``after`` (or a cancel request) as a callback, then run ``then`` in a new task."""

        def wake(_: object = None) -> None:
            if job.wake is None:
                return  # already started
            job.wake = None
            after.remove_done_callback(wake)
            job.task = asyncio.create_task(self._run(job, then), name=f"job-{job.job_id}")

        job.task = None
        job.wake = wake
        after.add_done_callback(wake)

    def _end(self, job: Job) -> None:
        self._jobs.pop(job.job_id, None)
        if not job.finished.done():
            job.finished.set_result(None)

    async def drain(
        self, grace: float, cancel_grace: float = 10.0, reason: str = "the bot is restarting"
    ) -> DrainReport:
        self._draining = True
        pending = self._unfinished()
        log.info("draining: %d job(s) running, grace %.0f s", len(pending), grace)
        if pending:
            await asyncio.wait(pending, timeout=grace)
        finished = len(pending) - len(self._unfinished())
        left = self._unfinished()
        for job in list(self._jobs.values()):
            job.request_cancel(reason)
        if left:
            await asyncio.wait(left, timeout=cancel_grace)
        stuck = self._tasks()
        cancelled = len(left) - len(self._unfinished())
        for task in stuck:
            task.cancel()
        if stuck:
            await asyncio.wait(stuck, timeout=cancel_grace)
        report = DrainReport(finished=finished, cancelled=cancelled, killed=len(stuck))
        log.info("drained: %s", report)
        return report

    def _tasks(self) -> set[asyncio.Task[None]]:
        return {j.task for j in self._jobs.values() if j.task is not None and not j.task.done()}

    def _unfinished(self) -> set[asyncio.Future[None]]:
        return {j.finished for j in self._jobs.values() if not j.finished.done()}
