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
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.server.jobs import Job
from bot.targets import ServiceRef
from handlers import replies
from handlers.slack_calls import Responder, post_message, update_message, upload_text_file

if TYPE_CHECKING:
    from bot.app import Services
    from bot.runner import ExecResult
    from bot.store.base import DetailValue
    from bot.targets import Target

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
    extra: Mapping[str, Any] = field(default_factory=dict)

    def audit_fields(self) -> dict[str, Any]:
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
        text, blocks = replies.running_message(order, targets, services.redactor)
        if ts is None:
            ts = await post_message(client, order.channel_id, text, blocks)
        else:
            await update_message(client, order.channel_id, ts, text, blocks)
        results = await _run_all(services, order, targets, job)
    except BotError as exc:
        if order.audit_outcome:
            await audit(services, "failed", **order.audit_fields(), details={"error": exc.user_text()})
        await respond(*replies.refusal(exc))
        if ts is not None:
            await _best_effort_update(
                client, order, ts, *replies.error_message(order, exc.user_text(), services.redactor)
            )
        return None
    except asyncio.CancelledError:
        # Hard-cancelled at the end of a drain: say so in the channel before the process exits.
        if ts is not None:
            text, blocks = replies.error_message(order, "The bot restarted before the command finished.")
            with contextlib.suppress(BaseException):
                await asyncio.shield(_best_effort_update(client, order, ts, text, blocks))
        raise
    except Exception:
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
