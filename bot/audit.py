"""The audit trail: every step of a request, persisted, logged as one JSON line, and summarised.

Each event goes three places:

1. the store (``Store.append_audit``), queryable with ``ecs-exec-bot audit``;
2. one JSON line on the ``ecs_exec_bot.audit`` logger (for log pipelines / SIEM);
3. for the events that end a request (and for break-glass self-approvals, immediately), one line to an
   optional ``notify`` callback the app wires to the audit channel.

Audit records never contain command output: callers pass sizes and the SHA-256 of the full output, and
free text that may carry secrets (command, error, reason) goes through the injected redactor first.
The JSON log line is written first, before the store is tried, so a store outage never leaves an event
without a trace. A failing ``notify`` is logged and swallowed: the audit channel being down must not fail
a request that has already been recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from enum import StrEnum
from typing import Any

from bot.store.base import AuditEvent, DetailValue, RunRecord, Store

AUDIT_LOGGER = "ecs_exec_bot.audit"
DEFAULT_RETENTION_DAYS = 365.0

Notify = Callable[[str], Awaitable[None]]


class AuditKind(StrEnum):
    REQUESTED = "requested"
    REFUSED = "refused"  # details: reason
    APPROVAL_REQUESTED = "approval_requested"  # details: rule, approvers, min_approvals, expires_at
    APPROVAL_VOTE = "approval_vote"  # one approver of an N-of-M request, quorum not reached yet
    CLICK_REFUSED = "click_refused"  # an approve/deny/cancel click refused; details: action, reason
    APPROVED = "approved"  # the deciding vote; details: approvers, break_glass
    DENIED = "denied"
    EXPIRED = "expired"
    STARTED = "started"  # details: task_arn, container, session_id
    FINISHED = "finished"  # details: exit_code, duration_s, bytes, sha256
    FAILED = "failed"  # details: error (redacted)
    CANCELLED = "cancelled"
    CANCEL_REQUESTED = "cancel_requested"  # the requester cancelled a running command; its owner stops it
    FILTERED = "filtered"  # a follow-up filter on a run's kept output; details: filter, matched, lines
    FILTER_REFUSED = "filter_refused"  # details: filter, reason (not allowed, expired, nothing kept)


# One audit-channel line per request: sent when the request reaches one of these.
SUMMARY_KINDS = frozenset(
    {
        AuditKind.REFUSED,
        AuditKind.DENIED,
        AuditKind.EXPIRED,
        AuditKind.FINISHED,
        AuditKind.FAILED,
        AuditKind.CANCELLED,
    }
)
# Detail keys whose text may quote secrets; they go through the redactor.
REDACTED_DETAILS = frozenset({"error", "reason", "filter"})
# Keys that would mean someone is about to store output in the audit trail.
FORBIDDEN_DETAILS = frozenset({"output", "stdout", "stderr", "text", "head", "tail"})


def _plain(value: object) -> str:
    """User- or AWS-supplied text for an mrkdwn line: ``& < >`` escaped, so a command typed as
    ``&lt;!channel&gt;`` (which Slack delivers unescaped to us as ``<!channel>``) cannot ping the audit
    channel or plant a ``<https://…|link>`` in the bot's name."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(value: object) -> str:
    """Text inside an inline code span: also no backtick, which would end the span early."""
    return _plain(value).replace("`", "\u02cb")


def summary_line(event: AuditEvent) -> str | None:
    """The one line for the audit channel, or None if this event does not end a request."""
    d = event.details
    event = replace(event, command=_code(event.command) if event.command is not None else None)
    if d.get("break_glass") and event.kind in (AuditKind.APPROVED, AuditKind.APPROVAL_VOTE):
        return (
            f":rotating_light: BREAK-GLASS: <@{event.user}> approved their own request `{event.command}` "
            f"on {event.service} ({event.environment}) · req {event.request_id}"
        )
    if event.kind not in SUMMARY_KINDS:
        return None
    who = f"<@{event.requester or event.user}>"
    where = f"{event.service} ({event.environment})" if event.service else "?"
    head = {
        AuditKind.REFUSED: f":no_entry: refused {who}: `{event.command}` on {where} — {_plain(d.get('reason', ''))}",
        AuditKind.DENIED: f":x: <@{event.user}> denied {who}: `{event.command}` on {where}",
        AuditKind.EXPIRED: f":hourglass: expired unapproved: {who} `{event.command}` on {where}",
        AuditKind.FINISHED: f":white_check_mark: {who} ran `{event.command}` on {where} · exit "
        f"{d.get('exit_code', 'unknown')} · {d.get('duration_s', '?')} s · {d.get('bytes', 0)} bytes",
        AuditKind.FAILED: f":warning: {who} `{event.command}` on {where} failed: {_plain(d.get('error', ''))}",
        AuditKind.CANCELLED: f":stop_sign: <@{event.user}> cancelled {who}: `{event.command}` on {where}",
    }[AuditKind(event.kind)]
    approvers = d.get("approved_by")
    tail = f" · approved by {approvers}" if approvers else ""
    return f"{head}{tail} · req {event.request_id}"


class Auditor:
    """Records audit events. ``notify`` posts a line to the audit channel (wired by the app)."""

    def __init__(
        self,
        store: Store,
        *,
        log: logging.Logger | None = None,
        notify: Notify | None = None,
        redact: Callable[[str], str] | None = None,
        retention_days: float | None = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._log = log or logging.getLogger(AUDIT_LOGGER)
        self._notify = notify
        self._redact = redact or (lambda text: text)
        self._retention_days = retention_days
        self._clock = clock
        self._last_at = 0.0
        self._pruned_day: str | None = None

    def _now(self) -> float:
        # Strictly increasing per Auditor, so one replica's events on one request keep their order even
        # when several land in the same clock tick (the store orders by time).
        self._last_at = max(self._clock(), self._last_at + 1e-6)
        return self._last_at

    @property
    def retain_seconds(self) -> float | None:
        return self._retention_days * 86400 if self._retention_days is not None else None

    async def record(
        self,
        kind: AuditKind,
        *,
        request_id: str,
        user: str | None = None,
        requester: str | None = None,
        channel: str | None = None,
        service: str | None = None,
        environment: str | None = None,
        command: str | None = None,
        details: Mapping[str, DetailValue] | None = None,
        best_effort: bool = False,
    ) -> AuditEvent:
        """Log the event as one JSON line, then persist it (and notify the audit channel).

        The log line is written before the store is tried, so it exists even when the store is down. A
        store failure raises, unless ``best_effort`` (a request refused *because* the store is down): then
        it is logged and the event lives only in the log."""
        details = dict(details or {})
        leaked = FORBIDDEN_DETAILS & details.keys()
        if leaked:
            # A programming error: output must be reduced to sizes and hashes before it gets here.
            raise ValueError(f"audit details must not carry output ({', '.join(sorted(leaked))})")
        for key in REDACTED_DETAILS & details.keys():
            if isinstance(value := details[key], str):
                details[key] = self._redact(value)
        at = self._now()
        event = AuditEvent(
            # Time-ordered prefix keeps ids sortable; the random part makes them unique across replicas.
            event_id=f"{int(at * 1_000_000):016d}-{uuid.uuid4().hex[:12]}",
            request_id=request_id,
            kind=kind.value,
            at=at,
            user=user,
            requester=requester,
            channel=channel,
            service=service,
            environment=environment,
            command=self._redact(command) if command is not None else None,
            details=details,
        )
        # The log line first, always: a store outage must not leave an event without any trace.
        self.log_event(event)
        try:
            await asyncio.to_thread(self._store.append_audit, event, self.retain_seconds)
        except Exception:
            if not best_effort:
                raise
            self._log.warning(
                "audit event %s (%s) is only in the log: the store refused it",
                event.event_id,
                event.kind,
                exc_info=True,
            )
        line = summary_line(event)
        if line is not None and self._notify is not None:
            try:
                await self._notify(line)
            except Exception:  # the event is persisted; a Slack outage must not fail the request
                self._log.warning("audit channel notify failed for %s", event.event_id, exc_info=True)
        return event

    async def record_quietly(self, kind: AuditKind, **fields: Any) -> None:
        """`record`, where an audit failure must not become the request's failure: it is logged."""
        try:
            await self.record(kind, **fields)
        except Exception:
            self._log.exception("audit %s failed for request %s", kind, fields.get("request_id"))

    def log_event(self, event: AuditEvent) -> None:
        """The event's JSON line on the audit logger (``kind`` repeats ``event`` for log pipelines)."""
        self._log.log(
            logging.WARNING if event.details.get("break_glass") else logging.INFO,
            json.dumps({**event_json(event), "kind": event.kind}, sort_keys=True),
        )

    async def record_for(
        self,
        record: RunRecord,
        kind: AuditKind,
        *,
        user: str | None = None,
        details: Mapping[str, DetailValue] | None = None,
    ) -> AuditEvent:
        """`record` with the request fields taken from an approval record."""
        return await self.record(
            kind,
            request_id=record.request_id,
            user=user or record.requester,
            requester=record.requester,
            channel=record.channel,
            service=record.service,
            environment=record.environment,
            command=record.command,
            details=details,
        )

    async def prune_once_a_day(self) -> int | None:
        """Apply retention at most once per UTC day across every replica (a store claim picks the one
        that does it); returns how many events were deleted, or None when it was not this one's turn (or
        the store expires audit records itself: DynamoDB's TTL, see `prune`)."""
        day = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        natively = getattr(self._store, "audit_expires_natively", False)
        if self._retention_days is None or natively or day == self._pruned_day:
            return None
        self._pruned_day = day
        if not await asyncio.to_thread(self._store.claim, f"audit-prune:{day}", 2 * 86400):
            return None
        deleted = await self.prune()
        self._log.info("audit retention: deleted %d record(s)", deleted)
        return deleted

    async def retention_loop(self, stop: asyncio.Event, interval_s: float = 3600.0) -> None:
        """Retention on its own schedule (hourly checks, one prune a day), apart from run maintenance."""
        while not stop.is_set():
            try:
                await self.prune_once_a_day()
            except Exception:  # a store hiccup must not end the loop; the next round retries
                self._log.exception("audit retention failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    async def prune(self) -> int:
        """Delete events older than the retention period; returns how many were deleted."""
        if self._retention_days is None or getattr(self._store, "audit_expires_natively", False):
            # DynamoDB: records carry a TTL from the moment they are written, and the bot's role may not
            # Scan or delete audit records (infra/bot/iam.tf), so the running bot never prunes there.
            return 0
        before = self._clock() - self._retention_days * 86400
        return await asyncio.to_thread(self._store.prune_audit, before)


def event_json(event: AuditEvent) -> dict[str, object]:
    """An event as a JSON-ready dict (the log line, `audit --json`)."""
    return {
        "event_id": event.event_id,
        "request_id": event.request_id,
        "event": event.kind,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event.at))
        + f".{int(event.at * 1000) % 1000:03d}Z",
        "user": event.user,
        "requester": event.requester,
        "channel": event.channel,
        "service": event.service,
        "environment": event.environment,
        "command": event.command,
        "details": dict(event.details),
    }
