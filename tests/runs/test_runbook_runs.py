"""A runbook run through the core: one record, one request id, steps × tasks, audit per step and task,
cancel reaching every runner call; its plan survives an approval (both store backends)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.audit import Auditor
from bot.errors import BotError
from bot.output.capture import CapturedOutput
from bot.runbooks import PlannedStep, RunbookPlan
from bot.runner import ExecResult, OnStarted
from bot.runs.executor import RunExecutor
from bot.runs.fanout import RunEvent
from bot.runs.jobs import Job
from bot.runs.order import RunOrder, order_from_record
from bot.runs.runbook import RunbookResult
from bot.service_ref import ServiceRef
from bot.store.base import AuditQuery, RunState, Store
from bot.targets import Target
from tests.runs.support import Rule, service
from tests.store.support import FakeClock

PLAN = RunbookPlan("diag", (
    PlannedStep("health", "cat health.txt", 10),
    PlannedStep("wait", "sleep 600", 20),
    PlannedStep("after", "echo after", 10),
), all_tasks=True)


def _target(i: int) -> Target:
    return Target("prod", "prod", "api", f"arn:aws:ecs:us-east-1:1:task/prod/t{i}", f"t{i}", "app", None, True)


@dataclass
class FakeBackend:
    """Answers `cat`/`echo` at once; `sleep` waits for the cancel event it was given (as the runner does)."""

    targets: list[Target] = field(default_factory=lambda: [_target(i) for i in range(3)])
    calls: list[tuple[str, str, float]] = field(default_factory=list)
    sleeping: int = 0
    two_asleep: asyncio.Event = field(default_factory=asyncio.Event)
    interrupted: list[str] = field(default_factory=list)

    async def resolve(self, service: ServiceRef, *, task: str | None, container: str | None, all_tasks: bool,
                      requester: str) -> list[Target]:
        assert all_tasks
        return self.targets

    async def run(self, target: Target, command: str, *, timeout: float, requester: str,  # noqa: ASYNC109
                  cancel: asyncio.Event | None, on_started: OnStarted | None,
                  on_progress: object = None) -> ExecResult:
        self.calls.append((target.task_id, command, timeout))
        if on_started is not None:
            await on_started(f"sess-{target.task_id}-{len(self.calls)}")
        if command.startswith("sleep"):
            assert cancel is not None
            self.sleeping += 1
            if self.sleeping == 2:
                self.two_asleep.set()
            await cancel.wait()
            self.interrupted.append(target.task_id)
            return ExecResult(target, command, None, "cancelled", 0.1, CapturedOutput.from_bytes(b""), "s")
        out = b"degraded\n" if target.task_id == "t2" else b"ok\n"
        return ExecResult(target, command, 0, "ok", 0.1, CapturedOutput.from_bytes(out), "s")

    async def terminate_session(self, environment: str, session_id: str, *, requester: str) -> None:
        return None

    async def doctor(self, service_alias: str, *, task: str | None, requester: str) -> object:
        raise AssertionError("doctor is not part of a runbook run")


@dataclass
class Sink:
    events: list[tuple[str, RunEvent]] = field(default_factory=list)
    result: RunbookResult | None = None
    cancel_reason: str | None = None
    failures: list[str] = field(default_factory=list)

    async def running(self, order: RunOrder, targets: Sequence[Target]) -> str | None:
        return "1700000000.000100"

    async def event(self, order: RunOrder, event: RunEvent) -> None:
        self.events.append((order.command, event))

    async def finished(self, order: RunOrder, result: RunbookResult, cancel_reason: str | None) -> None:
        self.result, self.cancel_reason = result, cancel_reason

    async def failed(self, order: RunOrder, sentence: str, error: BotError | None) -> None:
        self.failures.append(sentence)


def _order(plan: RunbookPlan = PLAN, request_id: str = "rb-1") -> RunOrder:
    return RunOrder(
        request_id=request_id, requester="U0ALICE", channel_id="C0INCIDENT",
        service=ServiceRef("api", "prod", "prod", "api", timeout=30), command=plan.describe(),
        timeout=plan.total_timeout, all_tasks=True, runbook=plan,
    )


def _executor(store: Store, clock: FakeClock, backend: FakeBackend) -> RunExecutor:
    ledger = service(store, clock, "replica-a")
    return RunExecutor(backend, ledger, Auditor(store, clock=clock), None, fanout_concurrency=2)  # type: ignore[arg-type]


async def test_a_runbook_is_one_record_with_one_audit_record_per_step_and_task(store: Store, clock: FakeClock) -> None:
    backend = FakeBackend()
    plan = RunbookPlan("diag", (PLAN.steps[0], PLAN.steps[2]), all_tasks=True)
    sink = Sink()
    result = await _executor(store, clock, backend).execute_runbook(_order(plan), Job("rb-1"), sink)
    assert result is not None and result.complete and sink.result is result and sink.cancel_reason is None
    assert [(s.step.name, [r.status for r in s.results or ()]) for s in result.steps] == [
        ("health", ["ok"] * 3), ("after", ["ok"] * 3)]
    # steps run in order, each with its own timeout, on every task
    assert [c[1:] for c in backend.calls] == [("cat health.txt", 10)] * 3 + [("echo after", 10)] * 3
    record = store.get_run("rb-1")
    assert record is not None and record.state is RunState.FINISHED and len(record.sessions) == 6
    events = store.query_audit(AuditQuery(request_id="rb-1"))
    finished = [e for e in events if e.kind == "finished"]
    assert len(finished) == 6 and {e.command for e in finished} == {"cat health.txt", "echo after"}
    assert {e.request_id for e in store.query_audit(AuditQuery(limit=100))} == {"rb-1"}


async def test_cancel_reaches_every_task_of_the_running_step_and_no_later_step_starts(
    store: Store, clock: FakeClock
) -> None:
    backend = FakeBackend()
    job, sink = Job("rb-1"), Sink()
    run = asyncio.create_task(_executor(store, clock, backend).execute_runbook(_order(), job, sink))
    await asyncio.wait_for(backend.two_asleep.wait(), 10)  # concurrency 2: the third task waits its turn
    job.request_cancel("cancelled by <@U0ALICE>")
    result = await asyncio.wait_for(run, 10)
    assert result is not None and not result.complete
    waits = result.steps[1].results or ()
    assert [r.status for r in waits] == ["cancelled"] * 3  # the two running and the one not yet started
    assert sorted(backend.interrupted) == ["t0", "t1"]  # both running calls saw the one cancel event
    assert [c[0] for c in backend.calls if c[1] == "sleep 600"] == ["t0", "t1"]  # t2 was never started
    assert waits[2].session_id is None
    assert result.steps[2].results is None  # never started
    assert not any(c[1] == "echo after" for c in backend.calls)
    assert sink.cancel_reason == "cancelled by <@U0ALICE>"
    record = store.get_run("rb-1")
    assert record is not None and record.state is RunState.CANCELLED


async def test_an_approved_runbook_is_rebuilt_from_its_record_with_its_plan(store: Store, clock: FakeClock) -> None:
    ledger = service(store, clock, "replica-a")
    record = await ledger.open_approval(_order(), "oncall", Rule())  # type: ignore[arg-type]
    again = order_from_record(record)
    assert again.runbook == PLAN
    assert again.command.startswith("runbook diag\n1. health: cat health.txt")
