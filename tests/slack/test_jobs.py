"""JobTracker: tracked post-ack work and the three-step SIGTERM drain."""

from __future__ import annotations

import asyncio

import pytest

from bot.runs.jobs import BotRestarting, Job, JobStepFailed, JobTracker


async def test_a_finished_job_leaves_the_tracker() -> None:
    tracker = JobTracker()
    done = asyncio.Event()

    async def work(job: Job) -> None:
        done.set()

    job = tracker.start("r1", work)
    assert job.task is not None
    await job.task
    assert done.is_set() and tracker.running() == []


async def test_an_unhandled_error_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    tracker = JobTracker()

    async def work(job: Job) -> None:
        raise RuntimeError("boom")

    job = tracker.start("r2", work)
    assert job.task is not None
    await job.task  # the tracker swallowed it after logging
    assert "job r2 failed with an unhandled error" in caplog.text


async def test_drain_refuses_new_work_lets_jobs_finish_then_cancels_then_kills() -> None:
    tracker = JobTracker()
    release_quick = asyncio.Event()
    seen: dict[str, str | None] = {}

    async def quick(job: Job) -> None:
        await release_quick.wait()

    async def cooperative(job: Job) -> None:
        await job.cancel.wait()  # like the runner: stops when its cancel event is set
        seen["cooperative"] = job.cancel_reason

    async def stubborn(job: Job) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen["stubborn"] = "cancelled"
            raise

    tracker.start("quick", quick)
    tracker.start("coop", cooperative)
    tracker.start("stub", stubborn)
    drain = asyncio.create_task(tracker.drain(grace=0.2, cancel_grace=0.2))
    await asyncio.sleep(0)
    with pytest.raises(BotRestarting) as refused:
        tracker.start("late", quick)
    assert refused.value.user_text() == "The bot is restarting. Try again in a minute."
    release_quick.set()
    report = await drain
    assert (report.finished, report.cancelled, report.killed) == (1, 1, 1)
    assert seen == {"cooperative": "the bot is restarting", "stubborn": "cancelled"}
    assert tracker.running() == []


async def test_cancel_one_job_by_id() -> None:
    tracker = JobTracker()

    async def work(job: Job) -> None:
        await job.cancel.wait()

    job = tracker.start("r3", work)
    assert tracker.cancel("r3", "cancelled by <@U0BOB>")
    assert not tracker.cancel("nope", "x")
    assert job.task is not None
    await job.task
    assert job.cancel_reason == "cancelled by <@U0BOB>"


# --- two steps: `then` once `after` is done, the job waiting in between as a callback, not a task --------


class _Waiting:
    """A two-step job whose second step waits for ``turn``; ``seen`` records how that step started."""

    def __init__(self, tracker: JobTracker, job_id: str) -> None:
        self.turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.seen: list[str | None] = []
        self.job = tracker.start(job_id, self._first, then=self._then, after=self.turn)

    async def _first(self, job: Job) -> None:
        self.seen.append("first")

    async def _then(self, job: Job) -> None:
        self.seen.append(f"then, cancelled: {job.cancel_reason}" if job.cancel.is_set() else "then")


async def test_the_second_step_waits_for_after_without_a_task_then_runs() -> None:
    tracker = JobTracker()
    waiting = _Waiting(tracker, "q1")
    for _ in range(5):
        await asyncio.sleep(0)
    assert waiting.seen == ["first"]
    assert waiting.job.task is None and tracker.running() == [waiting.job] and not waiting.job.finished.done()
    waiting.turn.set_result(None)
    await asyncio.wait_for(waiting.job.finished, 1)
    assert waiting.seen == ["first", "then"] and tracker.running() == []


async def test_a_cancel_request_starts_the_waiting_step_at_once() -> None:
    tracker = JobTracker()
    waiting = _Waiting(tracker, "q2")
    await asyncio.sleep(0)
    assert tracker.cancel("q2", "cancelled by U0BOB")
    await asyncio.wait_for(waiting.job.finished, 1)
    assert waiting.seen == ["first", "then, cancelled: cancelled by U0BOB"]
    waiting.turn.set_result(None)  # the turn coming later starts nothing twice
    await asyncio.sleep(0)
    assert len(waiting.seen) == 2


async def test_a_failed_first_step_ends_the_job_quietly_and_skips_the_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = JobTracker()
    ran: list[str] = []

    async def first(job: Job) -> None:
        raise JobStepFailed()

    async def then(job: Job) -> None:
        ran.append("then")

    job = tracker.start("q3", first, then=then, after=None)
    await asyncio.wait_for(job.finished, 1)
    assert ran == [] and tracker.running() == [] and "failed" not in caplog.text


async def test_drain_waits_for_a_waiting_job_then_cancels_it_into_its_second_step() -> None:
    tracker = JobTracker()
    waiting = _Waiting(tracker, "q4")
    report = await tracker.drain(grace=0.05, cancel_grace=1)
    assert waiting.seen == ["first", "then, cancelled: the bot is restarting"]
    assert (report.finished, report.cancelled, report.killed) == (0, 1, 0)
