"""Fan-out: one order over its targets, with bounded concurrency, emitting an event per target.

Events are how the adapters follow a run (audit, the run record's sessions, a live message) without the
fan-out knowing any of them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.output.capture import CapturedOutput
from bot.runner import ExecResult

if TYPE_CHECKING:
    from bot.runner import ExecProgress, ExecResult
    from bot.runs.backend import ExecBackend
    from bot.runs.order import RunOrder
    from bot.targets import Target


@dataclass(frozen=True)
class TargetStarted:
    target: Target
    session_id: str


@dataclass(frozen=True)
class TargetFinished:
    result: ExecResult


@dataclass(frozen=True)
class TargetProgress:
    """What a target's command printed so far (throttled by the runner: one a second, not per chunk).
    ``tail_text`` is cleaned, not redacted: whoever shows it redacts it."""

    target: Target
    bytes: int
    lines: int
    tail_text: str
    elapsed_s: float


RunEvent = TargetStarted | TargetProgress | TargetFinished
Emit = Callable[[RunEvent], Awaitable[None]]


def not_started(target: Target, command: str) -> ExecResult:
    """The result of a target the run was cancelled before reaching."""
    return ExecResult(target, command, None, "cancelled", 0.0, CapturedOutput.from_bytes(b""), None)


def run_budget(timeout_s: float, targets: int, concurrency: int) -> float:
    """How long a run may take in all: its targets run in batches of ``concurrency``."""
    return timeout_s * math.ceil(max(1, targets) / max(1, concurrency))


async def fan_out(
    backend: ExecBackend,
    order: RunOrder,
    targets: Sequence[Target],
    *,
    concurrency: int,
    cancel: asyncio.Event,
    emit: Emit,
    progress: bool = False,
) -> list[ExecResult]:
    """Run ``order`` on every target (at most ``concurrency`` at once); results in target order. With
    ``progress``, each target also emits `TargetProgress` while it runs."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(target: Target) -> ExecResult:
        async with gate:
            if cancel.is_set():
                # Cancelled while this target waited for a slot: never start a session only to interrupt it.
                result = not_started(target, order.command)
                await emit(TargetFinished(result))
                return result

            async def started(session_id: str) -> None:
                await emit(TargetStarted(target, session_id))

            async def progressed(p: ExecProgress) -> None:
                await emit(TargetProgress(target, p.bytes, p.lines, p.tail_text, p.elapsed_s))

            result = await backend.run(
                target, order.command, timeout=order.timeout, requester=order.requester,
                cancel=cancel, on_started=started, on_progress=progressed if progress else None,
            )
            await emit(TargetFinished(result))
            return result

    return list(await asyncio.gather(*(one(t) for t in targets)))
