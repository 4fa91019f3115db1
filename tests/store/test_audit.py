"""The Auditor: persisted events, one JSON log line each, audit-channel summaries, redaction, retention."""

from __future__ import annotations

import json
import logging

import pytest

from bot.audit import AUDIT_LOGGER, AuditKind, Auditor, summary_line
from bot.store.base import AuditEvent, AuditQuery, Store
from tests.store.support import START, FakeClock


def _redact(text: str) -> str:
    return text.replace("itk_SECRET", "[redacted:internal-token]")


async def test_every_event_is_persisted_and_logged_as_one_json_line(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    auditor = Auditor(store, clock=clock, redact=_redact)
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        started = await auditor.record(
            AuditKind.STARTED,
            request_id="req-1",
            user="U0ALICE",
            requester="U0ALICE",
            service="web",
            environment="prod",
            command="curl -H 'X-Token: itk_SECRET' localhost",
            details={"task_arn": "arn:task/1", "container": "nginx", "session_id": "ecs-execute-command-1"},
        )
    (line,) = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    logged = json.loads(line)
    assert logged["event"] == "started" and logged["request_id"] == "req-1"
    assert logged["at"] == "2026-11-18T11:06:40.000Z"
    assert logged["details"]["session_id"] == "ecs-execute-command-1"
    assert "itk_SECRET" not in line and "[redacted:internal-token]" in logged["command"]
    assert store.query_audit(AuditQuery(request_id="req-1")) == [started]


async def test_error_text_is_redacted_and_output_is_refused(store: Store, clock: FakeClock) -> None:
    auditor = Auditor(store, clock=clock, redact=_redact)
    failed = await auditor.record(
        AuditKind.FAILED,
        request_id="req-1",
        details={"error": "auth failed for itk_SECRET", "sha256": "itk_SECRET"},
    )
    assert failed.details == {"error": "auth failed for [redacted:internal-token]", "sha256": "itk_SECRET"}
    with pytest.raises(ValueError, match="must not carry output"):
        await auditor.record(AuditKind.FINISHED, request_id="req-1", details={"output": "hello"})


async def test_one_summary_line_per_request_and_notify_failures_do_not_fail(
    store: Store, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []

    async def notify(text: str) -> None:
        lines.append(text)
        raise RuntimeError("slack is down")

    auditor = Auditor(store, clock=clock, notify=notify)
    common = dict(request_id="req-1", user="U0ALICE", requester="U0ALICE", service="web", environment="prod",
                  command="ls")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger=AUDIT_LOGGER):
        await auditor.record(AuditKind.REQUESTED, **common)
        await auditor.record(AuditKind.STARTED, **common)
        await auditor.record(AuditKind.FAILED, **common, details={"error": "TargetNotConnected"})
    assert lines == [":warning: <@U0ALICE> `ls` on web (prod) failed: TargetNotConnected · req req-1"]
    assert any("notify failed" in r.getMessage() for r in caplog.records)
    assert len(store.query_audit(AuditQuery(request_id="req-1"))) == 3


def test_summary_lines() -> None:
    def line(kind: str, **details: object) -> str | None:
        event = AuditEvent("e", "req-9", kind, START, user="U0BOB", requester="U0ALICE", service="web",
                           environment="prod", command="ls", details=details)  # fmt: skip
        return summary_line(event)

    assert line("requested") is None and line("started") is None and line("approval_vote") is None
    assert line("refused", reason="no rule allows it") == (
        ":no_entry: refused <@U0ALICE>: `ls` on web (prod) — no rule allows it · req req-9"
    )
    assert line("denied") == ":x: <@U0BOB> denied <@U0ALICE>: `ls` on web (prod) · req req-9"
    assert line("cancelled") == ":stop_sign: <@U0BOB> cancelled <@U0ALICE>: `ls` on web (prod) · req req-9"
    assert line("finished", duration_s=2) == (
        ":white_check_mark: <@U0ALICE> ran `ls` on web (prod) · exit unknown · 2 s · 0 bytes · req req-9"
    )
    assert (line("approval_vote", break_glass=True) or "").startswith(":rotating_light: BREAK-GLASS")


async def test_retention_prunes_only_older_records(store: Store, clock: FakeClock) -> None:
    auditor = Auditor(store, clock=clock, retention_days=30)
    await auditor.record(AuditKind.REQUESTED, request_id="old")
    clock.advance(20 * 86400)
    await auditor.record(AuditKind.REQUESTED, request_id="new")
    clock.advance(11 * 86400)
    if getattr(store, "audit_expires_natively", False):
        # DynamoDB: TTL expires records; the bot's role may not Scan or delete them, so the bot never prunes.
        assert await auditor.prune() == 0
        assert store.prune_audit(clock() - 30 * 86400) == 1  # the operator's `audit --prune-older-than`
    else:
        assert await auditor.prune() == 1
    assert [e.request_id for e in store.query_audit(AuditQuery())] == ["new"]
    assert await Auditor(store, clock=clock, retention_days=None).prune() == 0
