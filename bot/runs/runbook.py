"""A runbook run: its steps over the service's tasks, step after step, each through the fan-out.

Steps run in order (step 2 starts when step 1 has finished on every task), so the report compares like
with like: every task answered the same question at nearly the same moment. Each step is one fan-out with
its own timeout and the run's bounded concurrency; the job's one cancel event reaches every runner call,
and once it is set no further step starts (those cells are reported as not run).

The run itself (one run record, one request id, the limits, the audit per step and task) is
`RunExecutor.execute_runbook`; this module only drives the steps and collects the results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.runs.fanout import RunEvent, fan_out, run_budget

if TYPE_CHECKING:
    from bot.runbooks import PlannedStep, RunbookPlan
    from bot.runner import ExecResult
    from bot.runs.backend import ExecBackend
    from bot.runs.order import RunOrder
    from bot.targets import Target

# Events carry the step's own order, so the audit names the command that ran on the task.
StepEmit = Callable[["RunOrder", RunEvent], Awaitable[None]]


@dataclass(frozen=True)
class StepResults:
    step: PlannedStep
    results: tuple[ExecResult, ...] | None  # in target order; None: not run (cancelled before it started)


@dataclass(frozen=True)
class RunbookResult:
    plan: RunbookPlan
    targets: tuple[Target, ...]
    steps: tuple[StepResults, ...]

    @property
    def all_results(self) -> list[ExecResult]:
        return [r for s in self.steps for r in (s.results or ())]

    @property
    def complete(self) -> bool:
        return all(s.results is not None for s in self.steps)


def step_order(order: RunOrder, step: PlannedStep) -> RunOrder:
    """The order of one step: the run's request id and requester, the step's command and timeout."""
    return replace(order, command=step.command, timeout=step.timeout, runbook=None)


def runbook_budget(plan: RunbookPlan, targets: int, concurrency: int) -> float:
    """How long the whole run may take: its steps one after the other, each in batches of tasks."""
    return sum(run_budget(s.timeout, targets, concurrency) for s in plan.steps)


async def run_steps(
    backend: ExecBackend,
    order: RunOrder,
    plan: RunbookPlan,
    targets: Sequence[Target],
    *,
    concurrency: int,
    cancel: asyncio.Event,
    emit: StepEmit,
) -> RunbookResult:
    done: list[StepResults] = []
    for step in plan.steps:
        if cancel.is_set():
            done.append(StepResults(step, None))
            continue
        this = step_order(order, step)

        async def emit_step(event: RunEvent, this: RunOrder = this) -> None:
            await emit(this, event)

        results = await fan_out(backend, this, targets, concurrency=concurrency, cancel=cancel, emit=emit_step)
        done.append(StepResults(step, tuple(results)))
    return RunbookResult(plan, tuple(targets), tuple(done))
