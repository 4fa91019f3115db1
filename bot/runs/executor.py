"""Running an allowed (or approved) order: resolve, show, run on every target, record, report.

The order of steps is deliberate:

1. resolve the targets first, so "no running task" and friends reach the requester alone, not the channel;
2. take the run limits, and record a plain run as ``running`` in the ledger (an approved one already is);
3. show "running…" (`RunSink.running`) *before* ExecuteCommand: if it cannot be shown (the bot is not in
   the channel), nothing has run;
4. fan out over the targets, auditing started/finished per target and keeping each SSM session id in the
   record, while the owner's watch heartbeats and notices a cancel made on another replica;
5. end the record (finished / failed / cancelled), keep the redacted output for follow-up filters
   (`bot.runs.followups`), then show the result (`RunSink.finished`).

Every way a run can end goes through `RunSink` (the adapter renders it) and the ledger (the record's
state), from this one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.audit import AuditKind, Auditor
from bot.errors import BotError
from bot.runs.fanout import RunEvent, TargetFinished, TargetStarted, fan_out, run_budget
from bot.runs.queue import RunQueue, Ticket
from bot.runs.runbook import RunbookResult, StepEmit, run_steps, runbook_budget
from bot.store.base import DetailValue, RunRecord, RunState

if TYPE_CHECKING:
    from bot.runner import ExecResult
    from bot.runs.backend import ExecBackend
    from bot.runs.followups import FollowUps
    from bot.runs.jobs import Job
    from bot.runs.ledger import RunLedger
    from bot.runs.limits import RunLease, RunLimiter
    from bot.runs.order import RunOrder
    from bot.targets import Target

log = logging.getLogger("ecs_exec_bot.runs")

_R = TypeVar("_R")

RESTARTED = "The bot restarted before the command finished."


class RunShow(Protocol):
    """What every kind of run shows while it starts and runs, and when it fails as a whole."""

    # True: the sink shows progress while targets run, so they emit `TargetProgress` (a timer per target).
    wants_progress: bool

    async def running(self, order: RunOrder, targets: Sequence[Target]) -> str | None:
        """Show that the run starts; returns the id of the message showing it (kept in the record so any
        replica can update it), or None."""
        ...

    async def event(self, order: RunOrder, event: RunEvent) -> None:
        """A target started, progressed or finished (live progress). Must not block for long: the
        target's run waits for it."""
        ...

    async def failed(self, order: RunOrder, sentence: str, error: BotError | None) -> None:
        """The run failed as a whole (``error`` when a user can act on it): before or while running."""
        ...


class RunSink(RunShow, Protocol):
    """How a run is shown (the Slack adapter's delivery; the CLI's printer). One sink per run."""

    async def finished(self, order: RunOrder, results: Sequence[ExecResult], cancel_reason: str | None) -> None:
        """The run ended and every target has a result (ok, failed, timeout, cancelled or error)."""
        ...


class RunbookSink(RunShow, Protocol):
    """How a runbook run is shown: `event` gets each step's own order; `finished` the whole result."""

    async def finished(self, order: RunOrder, result: RunbookResult, cancel_reason: str | None) -> None:
        """Every step ran on every target, or the run was cancelled (``result`` says which steps ran)."""
        ...


def run_outcome(results: Sequence[ExecResult], cancel_reason: str | None) -> tuple[RunState, str | None]:
    """A run record's end state from its results (a non-zero exit still *finished*), with the reason."""
    statuses = {r.status for r in results}
    if "cancelled" in statuses or cancel_reason:
        return RunState.CANCELLED, cancel_reason or "cancelled"
    if statuses <= {"ok", "failed"}:
        return RunState.FINISHED, None
    return RunState.FAILED, ", ".join(sorted(statuses - {"ok", "failed"}))


class RunExecutor:
    def __init__(
        self,
        backend: ExecBackend,
        ledger: RunLedger,
        auditor: Auditor,
        limiter: RunLimiter | None,
        *,
        fanout_concurrency: int = 4,
        queue: RunQueue | None = None,
        followups: FollowUps | None = None,
    ) -> None:
        self._backend = backend
        self._ledger = ledger
        self._auditor = auditor
        self._limiter = limiter
        self.fanout_concurrency = max(1, fanout_concurrency)
        self.queue = queue or RunQueue()
        self._followups = followups

    async def execute(
        self, order: RunOrder, job: Job, sink: RunSink, *, record: RunRecord | None = None,
        ticket: Ticket | None = None,
    ) -> list[ExecResult] | None:
        """Run ``order`` (``record``: its approved record, already claimed ``running`` by this replica)
        when the run queue gives it a turn (``ticket``: the place its ack reserved). Returns the results, or
        None if it failed before running (the sink was told)."""

        async def work(targets: Sequence[Target], emit: StepEmit) -> list[ExecResult]:
            async def one(event: RunEvent) -> None:
                await emit(order, event)

            return await fan_out(
                self._backend, order, targets, concurrency=self.fanout_concurrency, cancel=job.cancel, emit=one,
                progress=sink.wants_progress,
            )

        def budget(targets: int) -> float:
            return run_budget(order.timeout, targets, self.fanout_concurrency)

        ran = await self._lifecycle(order, job, sink, record, budget, work, ticket)
        if ran is None:
            return None
        results, record, shown = ran
        # Before the message: once the record has left `running`, no watchdog overwrites the result.
        await self._end(record, *run_outcome(results, job.cancel_reason))
        if self._followups is not None:
            # Before the message too, so its Filter button never points at output not yet kept.
            await self._followups.keep(order, results, shown)
        await sink.finished(order, results, job.cancel_reason)
        return results

    async def execute_runbook(
        self, order: RunOrder, job: Job, sink: RunbookSink, *, record: RunRecord | None = None,
        ticket: Ticket | None = None,
    ) -> RunbookResult | None:
        """A runbook run: ONE run record and request id for all its steps; each step fans out over the
        same targets, audited per step and task; the sink gets one result for the report."""
        plan = order.runbook
        if plan is None:
            raise ValueError("execute_runbook needs an order with a runbook plan")

        async def work(targets: Sequence[Target], emit: StepEmit) -> RunbookResult:
            return await run_steps(
                self._backend, order, plan, targets, concurrency=self.fanout_concurrency, cancel=job.cancel,
                emit=emit,
            )

        def budget(targets: int) -> float:
            return runbook_budget(plan, targets, self.fanout_concurrency)

        ran = await self._lifecycle(order, job, sink, record, budget, work, ticket)
        if ran is None:
            return None
        result, record, _ = ran
        cancel_reason = job.cancel_reason or (None if result.complete else "cancelled")
        await self._end(record, *run_outcome(result.all_results, cancel_reason))
        await sink.finished(order, result, cancel_reason)
        return result

    async def _lifecycle(
        self,
        order: RunOrder,
        job: Job,
        sink: RunShow,
        record: RunRecord | None,
        budget: Callable[[int], float],
        work: Callable[[Sequence[Target], StepEmit], Awaitable[_R]],
        ticket: Ticket | None,
    ) -> tuple[_R, RunRecord | None, str | None] | None:
        """Steps 1 to 4 of the module docstring around ``work`` (the fan-out, or a runbook's steps), in
        the turn the run queue gives it, with the id of the message showing the run; None when it failed
        before or while running (recorded, and the sink was told). A run refused or cancelled while
        queued ends like any other failure."""
        held = contextlib.AsyncExitStack()
        lease: RunLease | None = None
        watch = None
        try:
            await held.enter_async_context(self.queue.turn(order.requester, job.cancel, ticket=ticket))
            targets = await self._backend.resolve(
                order.service, task=order.task, container=order.container, all_tasks=order.all_tasks,
                requester=order.requester,
            )
            if self._limiter is not None:
                lease = await self._limiter.acquire(
                    user=order.requester, task_arns=[t.task_arn for t in targets], run_id=order.request_id,
                    timeout_s=order.timeout,
                )
            if record is None:
                record = await self._ledger.open_plain(order, budget(len(targets)))
            shown = await sink.running(order, targets)
            if shown is not None and shown != record.message_ts:
                await self._ledger.set_message_ts(order.request_id, shown)
            watch = self._ledger.watch(order.request_id, job.request_cancel)

            async def emit(step: RunOrder, event: RunEvent) -> None:
                await self._record_event(step, event, job)
                await sink.event(step, event)

            return await work(targets, emit), record, shown
        except BotError as exc:
            await self._audit(AuditKind.FAILED, order, {"error": exc.user_text()})
            await self._end(record, RunState.FAILED, exc.user_text())
            await sink.failed(order, exc.user_text(), exc)
            return None
        except asyncio.CancelledError:
            # Hard-cancelled at the end of a drain: say so before the process exits.
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._end(record, RunState.FAILED, RESTARTED))
            with contextlib.suppress(BaseException):
                await asyncio.shield(sink.failed(order, RESTARTED, None))
            raise
        except Exception:
            why = f"internal error, reference {order.request_id}"
            await self._end(record, RunState.FAILED, why)
            await sink.failed(order, why, None)
            raise
        finally:
            if watch is not None:
                await watch.stop()
            if lease is not None and self._limiter is not None:
                with contextlib.suppress(Exception):
                    await self._limiter.release(lease)
            await held.aclose()  # the queue turn passes on last

    async def _end(self, record: RunRecord | None, state: RunState, reason: str | None) -> None:
        if record is not None:
            await self._ledger.finish(record, state, reason)

    async def _record_event(self, order: RunOrder, event: RunEvent, job: Job) -> None:
        if isinstance(event, TargetStarted):
            await self._ledger.add_session(order.request_id, event.session_id)
            await self._audit(AuditKind.STARTED, order, {
                "task_arn": event.target.task_arn, "container": event.target.container,
                "session_id": event.session_id,
            })  # fmt: skip
        elif isinstance(event, TargetFinished):
            result = event.result
            base: dict[str, DetailValue] = {
                "task_arn": result.target.task_arn, "session_id": result.session_id or ""
            }
            if result.status in ("ok", "failed"):
                await self._audit(AuditKind.FINISHED, order, {
                    **base, "exit_code": result.exit_code, "duration_s": round(result.duration_s, 3),
                    "bytes": result.output.total_bytes, "sha256": result.output.sha256,
                })  # fmt: skip
            elif result.status == "cancelled":
                await self._audit(AuditKind.CANCELLED, order, {**base, "reason": job.cancel_reason or ""})
            else:
                error = result.error.user_text() if result.error else result.status
                await self._audit(AuditKind.FAILED, order, {**base, "error": error})

    async def _audit(self, kind: AuditKind, order: RunOrder, details: dict[str, DetailValue]) -> None:
        await self._auditor.record_quietly(kind, user=order.requester, details=details, **order.audit_fields())
