"""JobTracker: tracked post-ack work and the three-step SIGTERM drain."""

from __future__ import annotations

import asyncio

import pytest

from bot.runs.jobs import BotRestarting, Job, JobTracker


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
