"""The audit trail of Slack requests: requested → refused | started → finished | failed, redacted."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from pathlib import Path

import pytest

from bot.audit import AuditKind
from bot.errors import ConfigError
from bot.settings import Settings
from bot.store.base import AuditEvent, AuditQuery
from handlers.app import build_slack_services as build_services
from handlers.app import build_web_client
from tests.slack.conftest import CONFIG
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import BotHarness


async def audit_by_request(bot: BotHarness, expect: int) -> dict[str, list[AuditEvent]]:
    """Poll until ``expect`` requests have a closing event (refused/finished/failed)."""
    closing = {"refused", "finished", "failed", "cancelled"}
    for _ in range(200):
        events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=1000))
        grouped: dict[str, list[AuditEvent]] = defaultdict(list)
        for e in sorted(events, key=lambda e: e.at):
            grouped[e.request_id].append(e)
        if sum(1 for evs in grouped.values() if any(e.kind in closing for e in evs)) >= expect:
            return grouped
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit incomplete: {dict(grouped)}")


async def test_every_path_is_audited_and_redacted(bot: BotHarness, fake: FakeSlack) -> None:
    await bot.command("web echo password=hunter2hunter2")
    await fake.await_for("chat.update")
    await bot.command("web uname -a")  # refused by policy
    await bot.command("legacy echo hi")  # exec not enabled: fails after the ack
    grouped = await audit_by_request(bot, 3)
    kinds = sorted(tuple(e.kind for e in evs) for evs in grouped.values())
    assert kinds == sorted(
        [("requested", "started", "finished"), ("requested", "refused"), ("requested", "failed")]
    )
    everything = [e for evs in grouped.values() for e in evs]
    assert all(e.requester == "U0ALICE" and e.channel == "C0INCIDENT" for e in everything)
    assert not any("hunter2hunter2" in (e.command or "") for e in everything)
    finished = next(e for e in everything if e.kind == "finished")
    assert finished.details["exit_code"] == 0 and len(str(finished.details["sha256"])) == 64
    started = next(e for e in everything if e.kind == "started")
    assert str(started.details["task_arn"]).startswith("arn:aws:ecs:") and started.details["session_id"]
    refused = next(e for e in everything if e.kind == "refused")
    assert "uname" in str(refused.details["reason"])
    failed = next(e for e in everything if e.kind == "failed")
    assert "enable-execute-command" in str(failed.details["error"])


async def test_production_wiring_posts_audit_summaries_to_the_audit_channel(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(CONFIG.replace("WORKDIR", str(tmp_path)))
    with FakeSlack() as fake:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            config_file=config,
            sqlite_path=tmp_path / "bot.db",
            audit_channel="C0AUDIT",
            aws_region="us-east-1",
        )
        client = build_web_client(fake.bot_token, fake.api_url)
        services = await build_services(settings, client, {"user_id": "U0BOT"})
        try:
            assert services.bot_user_id == "U0BOT"
            assert services.replica_id != "local" and str(os.getpid()) in services.replica_id
            assert services.redactor is not None and "[redacted:" in services.redactor.redact(
                "itk_" + "a1" * 16
            )
            assert services.auditor is not None
            await services.auditor.record(
                AuditKind.REFUSED,
                request_id="r1",
                requester="U0ALICE",
                service="web",
                command="id",
                details={"reason": "no rule"},
            )
            posted = await fake.await_for("chat.postMessage")
            assert posted[0].params["channel"] == "C0AUDIT" and "refused" in posted[0].params["text"]
        finally:
            services.runs.store.close()


async def test_production_wiring_needs_a_config_file(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, sqlite_path=tmp_path / "x.db")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="ECS_EXEC_BOT_CONFIG is not set"):
        await build_services(settings, build_web_client("xoxb-1-a", "http://127.0.0.1:9/api/"), {})
