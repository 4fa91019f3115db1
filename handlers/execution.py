"""Running an allowed (or approved) request after the ack: resolve, post, run, report, upload.

The order of steps is deliberate:

1. resolve the targets first, so "no running task" and friends are an ephemeral sentence, not a
   channel message;
2. post the "running…" message in the channel *before* ExecuteCommand: if the bot cannot post there
   (``not_in_channel``), nothing has run and the user is told how to invite it;
3. run on every target (bounded concurrency for ``--all-tasks``), auditing started/finished per target;
4. replace the "running…" message with the result, and when the output was cut, upload the full
   (bounded, redacted) output into the message's thread.

`run_order` is shared with the approvals flow (``handlers/actions.py``), which passes the approval
message's ts so the same message moves through its states.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError, StoreError
from bot.runs.jobs import Job
from bot.store.base import RunRecord, RunState, Transition
from bot.targets import ServiceRef
from handlers import replies
from handlers.slack_calls import Responder, post_message, update_message, upload_text_file

if TYPE_CHECKING:
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.store.base import DetailValue
    from bot.targets import Target
    from handlers.app import Services

log = logging.getLogger("ecs_exec_bot.handlers")


@dataclass(frozen=True)
class ExecOrder:
    """One request that may run now: who, where, what, and where to report."""

    request_id: str
    requester: str
    channel_id: str
    response_url: str | None
    service: ServiceRef
    command: str
    timeout: float
    task: str | None = None
    container: str | None = None
    all_tasks: bool = False
    reason: str | None = None
    rule: str | None = None
    approved_by: tuple[str, ...] = ()
    message_ts: str | None = None  # update this message instead of posting a new one (approvals)
    # Value of the Cancel button on the "running…" message. Default (None): the request id, handled by
    # `on_cancel_click` below for this replica's job. The approvals flow passes "<request id>|<hash>"
    # so its own Cancel handler (store-backed, any replica) receives the click instead.
    cancel_value: str | None = None
    # The approvals flow records finished/failed itself (ApprovalService.finish); plain runs audit here.
    audit_outcome: bool = True
    # A plain run (no approval record of its own): keep a light run record in the store while it runs
    # (owner replica, deadline, message ts), so a watchdog can finish its message after a crash and a
    # Cancel clicked on another replica reaches it. See `open_run_record`.
    record_run: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def audit_fields(self) -> dict[str, Any]:
        """Who asked for what, where: the audit event's fields and an approval/run record's identity."""
        return dict(
            request_id=self.request_id,
            requester=self.requester,
            channel=self.channel_id,
            service=self.service.name,
            environment=self.service.environment,
            command=self.command,
        )


async def audit(
    services: Services,
    kind: str,
    *,
    user: str | None = None,
    details: Mapping[str, DetailValue] | None = None,
    **fields: Any,
) -> None:
    """Record one audit event; an audit failure is logged, never shown as the command's failure."""
    if services.auditor is None:
        return
    from bot.audit import AuditKind

    try:
        await services.auditor.record(
            AuditKind(kind), user=user or fields.get("requester"), details=details, **fields
        )
    except Exception:
        log.exception("audit %s failed for request %s", kind, fields.get("request_id"))


async def run_order(
    services: Services, client: AsyncWebClient, order: ExecOrder, job: Job
) -> list[ExecResult] | None:
    """Run ``order``; returns the results, or None if it failed before running (the user was told)."""
    respond = Responder(order.response_url)
    ts = order.message_ts
    lease = None
    record: RunRecord | None = None
    try:
        targets = await services.backend.resolve(
            order.service,
            task=order.task,
            container=order.container,
            all_tasks=order.all_tasks,
            requester=order.requester,
        )
        if services.limiter is not None:
            lease = await services.limiter.acquire(
                user=order.requester,
                task_arns=[t.task_arn for t in targets],
                run_id=order.request_id,
                timeout_s=order.timeout,
            )
        if order.record_run:
            record = await open_run_record(services, order, targets)
        text, blocks = replies.running_message(order, targets, services.redactor)
        if ts is None:
            ts = await post_message(client, order.channel_id, text, blocks)
            if record is not None:
                await asyncio.to_thread(services.store.set_message_ts, order.request_id, ts)
        else:
            await update_message(client, order.channel_id, ts, text, blocks)
        watcher = _RunWatcher(services, order.request_id, job) if record is not None else None
        try:
            results = await _run_all(services, order, targets, job)
        finally:
            if watcher is not None:
                await watcher.stop()
    except BotError as exc:
        if order.audit_outcome:
            await audit(services, "failed", **order.audit_fields(), details={"error": exc.user_text()})
        await _end_run_record(services, record, RunState.FAILED, exc.user_text())
        await respond(*replies.refusal(exc))
        if ts is not None:
            await _best_effort_update(
                client, order, ts, *replies.error_message(order, exc.user_text(), services.redactor)
            )
        return None
    except asyncio.CancelledError:
        # Hard-cancelled at the end of a drain: say so in the channel before the process exits.
        why = "The bot restarted before the command finished."
        with contextlib.suppress(BaseException):
            await asyncio.shield(_end_run_record(services, record, RunState.FAILED, why))
        if ts is not None:
            text, blocks = replies.error_message(order, why)
            with contextlib.suppress(BaseException):
                await asyncio.shield(_best_effort_update(client, order, ts, text, blocks))
        raise
    except Exception:
        await _end_run_record(services, record, RunState.FAILED, f"internal error, reference {order.request_id}")
        if ts is not None:
            await _best_effort_update(
                client,
                order,
                ts,
                *replies.error_message(order, f"internal error, reference {order.request_id}"),
            )
        raise
    finally:
        if lease is not None and services.limiter is not None:
            with contextlib.suppress(Exception):
                await services.limiter.release(lease)
    # Before the message: once the record has left `running`, no watchdog overwrites the result.
    await _end_run_record(services, record, *_run_outcome(results, job))
    # The command ran (and is audited): a Slack failure from here on is reported, not a failed run.
    assert ts is not None
    try:
        text, blocks = replies.result_message(
            order, results, cancel_reason=job.cancel_reason, redactor=services.redactor
        )
        await update_message(client, order.channel_id, ts, text, blocks)
        await _upload_full_outputs(services, client, order, ts, results)
    except BotError as exc:
        log.warning("request %s ran but its result could not be shown: %s", order.request_id, exc.user_text())
        await respond(*replies.refusal(exc))
    return results


# -- plain runs' store records ------------------------------------------------------------------------------

PLAIN_RUN_KIND = "plain-run"
# How often the replica running a plain command re-reads its record (a Cancel clicked on another replica)
# and renews its heartbeat (below the watchdog's 30 s heartbeat TTL).
WATCH_INTERVAL_S = 2.0
HEARTBEAT_EVERY_S = 10.0
RESTARTED = "The bot restarted while this command was in progress; it may have completed — check the task."


def is_plain_run(record: RunRecord) -> bool:
    """A run record of a plain (approval-free) command, not an approval request."""
    return record.params.get("kind") == PLAIN_RUN_KIND


async def open_run_record(services: Services, order: ExecOrder, targets: list[Target]) -> RunRecord:
    """Record a plain run as ``running`` (owner: this replica; deadline: its time budget + the watchdog's
    grace) before anything runs. It is the approvals state machine's record, created directly in
    ``running`` with no approvers, so `ApprovalService.recover_stuck` treats it like an approved run.
    A store failure here refuses the run (a `StoreError`): nothing has run yet."""
    from bot.runs.approvals import HEARTBEAT_TTL_S, RUN_GRACE_S, request_hash

    batches = -(-len(targets) // max(1, services.fanout_concurrency))
    now = time.time()
    target: dict[str, DetailValue] = {
        "cluster": order.service.cluster,
        "service": order.service.service,
        "container": order.container or order.service.container,
        "task": order.task,
        "all_tasks": order.all_tasks,
    }
    record = RunRecord(
        **order.audit_fields(),
        request_hash=request_hash(order.service.environment, order.service.name, order.command, target),
        reason=order.reason or "",
        rule=order.rule or "",
        approver_users=(),
        approver_groups=(),
        min_approvals=0,
        allow_self_approval=False,
        created_at=now,
        expires_at=now + order.timeout * batches + RUN_GRACE_S,
        state=RunState.RUNNING,
        owner=services.replica_id,
        run_deadline=now + order.timeout * batches + RUN_GRACE_S,
        updated_at=now,
        params={"kind": PLAIN_RUN_KIND, "target": json.dumps(target, sort_keys=True)},
    )
    # The heartbeat goes first: the watchdog must never see this run with an owner that looks dead.
    await _heartbeat(services, HEARTBEAT_TTL_S, force=True)
    if not await asyncio.to_thread(services.store.create_run, record):
        raise StoreError(
            f"Request {order.request_id} is already recorded as running.", fix="Run the command again."
        )
    return record


async def _heartbeat(services: Services, ttl_s: float, *, force: bool = False) -> None:
    """Renew this replica's heartbeat, at most every `HEARTBEAT_EVERY_S` unless ``force`` finds it older
    than a third of its TTL (so a run is always claimed under a heartbeat valid for ≥ 20 s more)."""
    now = time.monotonic()
    age = now - services.heartbeat_at
    if age < (ttl_s / 3 if force else HEARTBEAT_EVERY_S):
        return
    await asyncio.to_thread(services.store.heartbeat, services.replica_id, ttl_s)
    services.heartbeat_at = now


class _RunWatcher:
    """Runs `_watch_run` for a plain run, started only if the run is still going after the first
    interval: most commands end sooner, and a timer costs far less than a task per command."""

    def __init__(self, services: Services, request_id: str, job: Job) -> None:
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(WATCH_INTERVAL_S, self._start, services, request_id, job)

    def _start(self, services: Services, request_id: str, job: Job) -> None:
        self._task = asyncio.create_task(_watch_run(services, request_id, job), name=f"watch-{request_id}")

    async def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _watch_run(services: Services, request_id: str, job: Job) -> None:
    """While a plain run runs: heartbeat for the watchdog, and stop the run when its record says
    ``cancelled`` (the Cancel button clicked on another replica). Store hiccups are retried."""
    from bot.runs.approvals import HEARTBEAT_TTL_S

    while True:
        try:
            await _heartbeat(services, HEARTBEAT_TTL_S)
            record = await asyncio.to_thread(services.store.get_run, request_id)
        except Exception as exc:  # noqa: BLE001 - the run goes on; the next round retries
            log.warning("run %s: store check failed: %r", request_id, exc)
            continue
        if record is not None and record.state is RunState.CANCELLED:
            job.request_cancel(f"cancelled by <@{record.decided_by}>" if record.decided_by else "cancelled")
            return
        await asyncio.sleep(WATCH_INTERVAL_S)


def _run_outcome(results: list[ExecResult], job: Job) -> tuple[RunState, str | None]:
    statuses = {r.status for r in results}
    if "cancelled" in statuses or job.cancel_reason:
        return RunState.CANCELLED, job.cancel_reason
    if statuses <= {"ok", "failed"}:
        return RunState.FINISHED, None
    return RunState.FAILED, ", ".join(sorted(statuses - {"ok", "failed"}))


async def _end_run_record(
    services: Services, record: RunRecord | None, state: RunState, why: str | None
) -> None:
    """``running → state`` for a plain run this replica owns; a no-op if it already left ``running``
    (cancelled from another replica, or failed by a watchdog). Failures are logged: the run is over."""
    if record is None:
        return
    try:
        await asyncio.to_thread(
            services.store.transition,
            record.request_id,
            RunState.RUNNING,
            state,
            Transition(state_reason=why),
            expected_owner=record.owner,
        )
    except Exception:
        log.warning("could not record the end of run %s", record.request_id, exc_info=True)


def recovered_run_message(record: RunRecord, redactor: Redactor | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The channel message of a plain run the watchdog failed (its replica stopped mid-run)."""
    target = json.loads(str(record.params.get("target") or "{}"))
    order = ExecOrder(
        request_id=record.request_id,
        requester=record.requester,
        channel_id=record.channel,
        response_url=None,
        service=ServiceRef(
            name=record.service,
            environment=record.environment,
            cluster=str(target.get("cluster") or ""),
            service=str(target.get("service") or ""),
            container=target.get("container"),
        ),
        command=record.command,
        timeout=0,
    )
    return replies.error_message(order, RESTARTED, redactor)


async def _run_all(services: Services, order: ExecOrder, targets: list[Target], job: Job) -> list[ExecResult]:
    gate = asyncio.Semaphore(max(1, services.fanout_concurrency))

    async def one(target: Target) -> ExecResult:
        async with gate:

            async def started(session_id: str) -> None:
                await audit(
                    services,
                    "started",
                    **order.audit_fields(),
                    details={
                        "task_arn": target.task_arn,
                        "container": target.container,
                        "session_id": session_id,
                    },
                )

            result = await services.backend.run(
                target,
                order.command,
                timeout=order.timeout,
                requester=order.requester,
                cancel=job.cancel,
                on_started=started,
            )
            if order.audit_outcome:
                await _audit_result(services, order, result, job)
            return result

    return list(await asyncio.gather(*(one(t) for t in targets)))


async def _audit_result(services: Services, order: ExecOrder, result: ExecResult, job: Job) -> None:
    base = {"task_arn": result.target.task_arn, "session_id": result.session_id or ""}
    if result.status in ("ok", "failed"):
        await audit(
            services,
            "finished",
            **order.audit_fields(),
            details={
                **base,
                "exit_code": result.exit_code,
                "duration_s": round(result.duration_s, 3),
                "bytes": result.output.total_bytes,
                "sha256": result.output.sha256,
            },
        )
    elif result.status == "cancelled":
        await audit(
            services, "cancelled", **order.audit_fields(), details={**base, "reason": job.cancel_reason or ""}
        )
    else:
        error = result.error.user_text() if result.error else result.status
        await audit(services, "failed", **order.audit_fields(), details={**base, "error": error})


async def _upload_full_outputs(
    services: Services, client: AsyncWebClient, order: ExecOrder, ts: str, results: list[ExecResult]
) -> None:
    for result, needed in zip(results, replies.files_needed(results, services.redactor), strict=True):
        if not needed:
            continue
        filename, title, content = replies.output_file(order, result, services.redactor)
        try:
            await upload_text_file(client, order.channel_id, ts, filename, title, content)
        except BotError as exc:
            # The message already carries head and tail; a failed upload is worth a sentence, not a failure.
            await Responder(order.response_url)(*replies.refusal(exc))


async def _best_effort_update(
    client: AsyncWebClient, order: ExecOrder, ts: str, text: str, blocks: list[dict[str, Any]]
) -> None:
    try:
        await asyncio.wait_for(update_message(client, order.channel_id, ts, text, blocks), 10)
    except (BotError, TimeoutError, OSError) as exc:
        log.warning("could not update message %s of request %s: %r", ts, order.request_id, exc)
