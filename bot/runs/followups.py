"""Follow-ups: keep each run's redacted output for a while, and filter it without touching the task.

"How many of those were 502s?" should not mean running the command again (a second ExecuteCommand, a
second approval in production, a different answer because the log moved on). After a run, its output
file view (cleaned, cut to the file bound, redacted: exactly what the thread's file shows) is kept in a
`bot.store.outputs.KeptOutputs` for ``followups.keep_hours``. A filter reads it back line by line
(`bot.output.filters`, RE2: linear time) in pieces of whole lines and answers in the run's thread.

Who may filter: whoever the policy lets run commands on that service in the run's channel (with or
without approval) — the same people who could have run a command there to see it. The filter and every
refusal are audited under the run's own request id, so ``audit --request`` shows the run and its
follow-ups together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.audit import AuditKind, Auditor
from bot.errors import BotError, PolicyDenied, StoreError
from bot.output.filters import FilterResult, OutputFilter, apply_filter
from bot.output.views import full_output_text
from bot.policy import may_use_service
from bot.store.outputs import KeptPart, KeptRun

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.runs.ledger import RunLedger
    from bot.runs.order import RunOrder
    from bot.store.outputs import KeptOutputs

log = logging.getLogger("ecs_exec_bot.runs")

PRUNE_EVERY_S = 3600.0


class FollowUpError(BotError):
    """A follow-up that cannot be answered: nothing kept, expired, or not this user's to see."""

    kind = "followup"
    exit_status = 66  # EX_NOINPUT: the output it needs is not there


@dataclass(frozen=True)
class PartResult:
    part: KeptPart
    result: FilterResult


@dataclass(frozen=True)
class FilterAnswer:
    """A filter's answer: the run it looked at and one result per kept part (task)."""

    run: KeptRun
    spec: OutputFilter
    parts: tuple[PartResult, ...]

    @property
    def matched(self) -> int:
        return sum(p.result.matched for p in self.parts)

    @property
    def total_lines(self) -> int:
        return sum(p.result.total_lines for p in self.parts)


class FollowUps:
    """Keeping and filtering. ``kept`` None: follow-ups are off (no Filter button, a sentence if asked)."""

    def __init__(
        self,
        kept: KeptOutputs | None,
        config: BotConfig,
        ledger: RunLedger,
        auditor: Auditor,
        redactor: Redactor,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kept = kept if config.followups.enabled else None
        self._config = config
        self._ledger = ledger
        self._auditor = auditor
        self._redactor = redactor
        self._clock = clock
        self.keep_s = config.followups.keep_hours * 3600.0

    @property
    def enabled(self) -> bool:
        return self._kept is not None

    async def keep(self, order: RunOrder, results: Sequence[ExecResult], message_ts: str | None) -> bool:
        """Keep the results' redacted output for the run's thread; False if off, silent, or it failed
        (logged: the run's own result matters more than its follow-ups)."""
        thread_ts = order.origin.thread_ts or message_ts
        kept = self._kept
        if kept is None or thread_ts is None or not any(r.output.total_bytes for r in results):
            return False
        now = self._clock()
        run = KeptRun(
            request_id=order.request_id, requester=order.requester, channel=order.channel_id, thread_ts=thread_ts,
            service=order.service.name, environment=order.service.environment, command=order.command,
            kept_at=now, expires_at=now + self.keep_s,
            parts=tuple(KeptPart(task_id=r.target.task_id, container=r.target.container) for r in results),
        )
        texts = [full_output_text(r.output, self._redactor) for r in results]
        try:
            await asyncio.to_thread(kept.put, run, texts)
        except StoreError as exc:
            log.warning("request %s: output not kept for follow-ups: %s", order.request_id, exc.user_text())
            return False
        return True

    async def thread_run(self, channel: str, thread_ts: str) -> str:
        """The request id of the latest run kept for a thread (the reply form's target)."""
        kept = self._require()
        request_id = await asyncio.to_thread(kept.latest_in_thread, channel, thread_ts)
        if request_id is None:
            raise FollowUpError(
                f"No run in this thread has its output kept (outputs are kept for {self._hours()}).",
                fix="Run the command in this thread first, then filter its output.",
            )
        return request_id

    async def kept_run(self, request_id: str) -> KeptRun:
        """The kept run (who, where, which command), or why there is none (`FollowUpError`)."""
        kept = self._require()
        run = await asyncio.to_thread(kept.get, request_id)
        if run is None:
            raise await self._gone(request_id)
        return run

    async def filter(self, request_id: str, spec: OutputFilter, *, user: str, groups: frozenset[str]) -> FilterAnswer:
        """Filter a run's kept output for ``user``: authorized, audited, bounded."""
        kept = self._require()
        run: KeptRun | None = None
        try:
            run = await self.kept_run(request_id)
            if not may_use_service(self._config.policy, user, groups, run.service, run.environment,
                                   channel_id=run.channel):
                raise PolicyDenied(
                    f"You may not run commands on `{run.service}` in this channel, so you may not filter its "
                    "output either.",
                    fix="Run `/ecs-exec list` to see what you may run, and where.",
                )
            parts = await asyncio.to_thread(_filter_parts, kept, run, spec)
        except BotError as exc:
            await self._audit(AuditKind.FILTER_REFUSED, request_id, user, spec, run=run,
                              details={"reason": exc.user_text()})
            raise
        answer = FilterAnswer(run=run, spec=spec, parts=parts)
        await self._audit(AuditKind.FILTERED, request_id, user, spec, run=run, details={
            "matched": answer.matched, "lines": answer.total_lines,
        })  # fmt: skip
        return answer

    async def prune(self) -> int:
        if self._kept is None:
            return 0
        return await asyncio.to_thread(self._kept.prune)

    async def prune_loop(self, stop: asyncio.Event, interval_s: float = PRUNE_EVERY_S) -> None:
        while not stop.is_set():
            try:
                await self.prune()
            except Exception:  # a storage hiccup must not end the loop; the next round retries
                log.exception("pruning kept outputs failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    def _require(self) -> KeptOutputs:
        if self._kept is None:
            raise FollowUpError("Follow-up filters are turned off here, so no output is kept.",
                                fix="Ask the bot's admins to set followups.keep_hours in the config file.")
        return self._kept

    def _hours(self) -> str:
        hours = self.keep_s / 3600
        return f"{hours:g} hour{'s' if hours != 1 else ''}"

    async def _gone(self, request_id: str) -> FollowUpError:
        """Why a run's output is not there: expired, never kept (no output, or another replica), or unknown."""
        record = await self._ledger.find(request_id)
        if record is None:
            return FollowUpError("That run is unknown to the bot.", fix="Use the Filter button under a run's result.")
        if self._clock() >= record.updated_at + self.keep_s:
            return FollowUpError(
                f"The output of that run has expired (outputs are kept for {self._hours()}).",
                fix="Run the command again to see today's output.",
            )
        return FollowUpError(
            "The output of that run was not kept (it printed nothing, did not finish, or could not be stored).",
            fix="Run the command again; with several replicas, set followups.s3_bucket so every replica "
            "sees kept outputs.",
        )

    async def _audit(self, kind: AuditKind, request_id: str, user: str, spec: OutputFilter, *,
                     run: KeptRun | None, details: dict[str, str | int | bool | None]) -> None:
        fields = dict(requester=run.requester, channel=run.channel, service=run.service,
                      environment=run.environment, command=run.command) if run is not None else {}
        await self._auditor.record_quietly(
            kind, request_id=request_id, user=user, details={"filter": spec.describe(), **details}, **fields,
        )


def _filter_parts(kept: KeptOutputs, run: KeptRun, spec: OutputFilter) -> tuple[PartResult, ...]:
    return tuple(PartResult(part, apply_filter(kept.chunks(run.request_id, n), spec))
                 for n, part in enumerate(run.parts))
