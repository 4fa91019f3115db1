"""The security corpus through the real app (signed HTTP → Bolt → handlers → moto + local agent → FakeSlack),
reusing the owners' corpora rather than copies of them:

- every command of the policy's hostile corpus (`tests/policy/test_hostile.py`, 100+ across 21 categories),
  sent as Slack sends it (HTML-escaped) under the same permissive-looking rules: zero ExecuteCommand;
- forged, tampered and replayed Slack requests (commands and button clicks): 401 or "already received",
  and nothing runs twice;
- every kind of secret of the redaction corpus (`tests/output/redaction_corpus.py`, 46 kinds): absent
  from everything sent to Slack (messages, uploaded file, response_url posts), from the acks, and from
  the audit trail (store and JSON log lines).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig, parse_config
from bot.store.sqlite import SqliteStore
from standins.ecs import SANDBOX
from tests.output.redaction_corpus import POSITIVE
from tests.policy.rulesets import PERMISSIVE
from tests.policy.test_hostile import HOSTILE, ORDINARY
from tests.reliability.support import audit_events, execute_command_calls, serve_bot, wait_audit
from tests.slack.e2e_helpers import everything_sent
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import SIGNING_SECRET, BotHarness
from tests.support.slack_requests import command_body, sign

SERVICES = """
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx, timeout: 30}
"""


def slack_escaped(text: str) -> str:
    """Slack sends slash-command text with `&`, `<` and `>` HTML-escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture
async def permissive_bot(fake: FakeSlack, local_aws: LocalAws, demo_cluster: Any,
                         tmp_path: Path) -> AsyncIterator[BotHarness]:
    import yaml

    config: BotConfig = parse_config(SERVICES + yaml.safe_dump({"policy": PERMISSIVE}), source="permissive.yaml")
    SANDBOX.reset()
    async with serve_bot(fake, config, local_aws, tmp_path / "bot.db") as harness:
        yield harness


@pytest.mark.timeout(120)
async def test_the_policy_hostile_corpus_never_reaches_ecs(permissive_bot: BotHarness, fake: FakeSlack) -> None:
    assert len(HOSTILE) >= 50
    ran: list[str] = []
    for command, _category in HOSTILE:
        ack = await permissive_bot.command("web " + slack_escaped(command), user_id="U0BOB")  # S0ONCALL member
        if ack.status != 200 or "Running" in ack.message or "approval" in ack.message.lower():
            ran.append(f"{command[:60]!r}: {ack.status} {ack.message[:120]}")
    await asyncio.sleep(0.5)  # anything wrongly started after an ack would show by now
    assert ran == []
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == []
    # The same bot and rules do run an ordinary command: the refusals above are the hostile parts'.
    ack = await permissive_bot.command("web " + slack_escaped(ORDINARY[0]), user_id="U0BOB")
    assert "Running" in ack.message, ack.message
    await wait_audit(permissive_bot.services.runs.store, "finished")
    assert len(execute_command_calls()) == 1


async def test_forged_tampered_and_replayed_requests_run_nothing_twice(bot: BotHarness, fake: FakeSlack) -> None:
    body = command_body("web echo forged")
    good = sign(SIGNING_SECRET, body)
    now = int(time.time())
    attempts = {
        "wrong secret": sign("not-the-secret", body),
        "body changed after signing": type(good)(body.replace("forged", "tampered"), good.headers),
        "no signature": type(good)(body, {k: v for k, v in good.headers.items() if k != "X-Slack-Signature"}),
        "no timestamp": type(good)(body, {k: v for k, v in good.headers.items() if k != "X-Slack-Request-Timestamp"}),
        "six minutes old": sign(SIGNING_SECRET, body, now - 360),
        "six minutes ahead": sign(SIGNING_SECRET, body, now + 360),
        "other signature version": type(good)(body, {**good.headers,
                                                     "X-Slack-Signature": good.headers["X-Slack-Signature"]
                                                     .replace("v0=", "v1=")}),
        "signature of another body": type(good)(body, sign(SIGNING_SECRET, command_body("web echo x")).headers),
    }
    statuses = {name: (await bot.sender.post(request)).status for name, request in attempts.items()}
    assert statuses == dict.fromkeys(attempts, 401)
    assert execute_command_calls() == [] and fake.calls("chat.") == []

    first = await bot.sender.post(good)
    replays = await asyncio.gather(*(bot.sender.post(good) for _ in range(5)))  # also concurrent
    assert "Running" in first.message
    assert all(r.status == 200 and "Already received" in r.message for r in replays)
    await wait_audit(bot.services.runs.store, "finished")
    await asyncio.sleep(0.3)
    assert len(execute_command_calls()) == 1 and len(fake.calls("chat.postMessage")) == 1


def one_per_kind() -> dict[str, tuple[str, str]]:
    kinds: dict[str, tuple[str, str]] = {}
    for kind, text, secret in POSITIVE:
        kinds.setdefault(kind, (text, secret))
    return kinds


@pytest.mark.timeout(120)
async def test_every_kind_of_secret_is_redacted_in_messages_file_and_audit(
    bot: BotHarness, fake: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ecs_exec_bot.audit")
    kinds = one_per_kind()
    assert len(kinds) >= 30
    secrets = [secret for _, secret in kinds.values()]
    # 1. In a file the command prints: the message shows head and tail, the thread gets the whole file.
    filler = "\n".join(f"ordinary line {i} GET /index.html 200" for i in range(3000))
    body = "\n".join(text for text, _ in kinds.values())
    (tmp_path / "leaky.env").write_text(f"{body}\n{filler}\n{body}\n")
    await bot.command(f"web cat {tmp_path}/leaky.env")
    await fake.await_for("files.completeUploadExternal")
    await wait_audit(bot.services.runs.store, "finished")
    # 2. In the command itself (people paste secrets into commands): ack, messages and audit.
    acks = []
    single_line = [text for text, _ in kinds.values() if "\n" not in text]
    for i in range(0, len(single_line), 8):
        words = " ".join("'" + t.replace("'", "") + "'" for t in single_line[i:i + 8])
        acks.append((await bot.command(f"web echo {slack_escaped(words)}")).message)
        # One at a time: the per-user run limit would refuse a burst.
        await wait_audit(bot.services.runs.store, "finished", count=1 + len(acks))

    file_text = "\n".join(data.decode() for data in fake.uploads.values())
    assert "ordinary line 2999" in file_text and file_text.count("[redacted:") >= len(kinds)
    sent = everything_sent(fake)
    store = SqliteStore(tmp_path / "bot.db")
    audit = json.dumps([e.__dict__ for e in audit_events(store)], default=str)
    log_lines = "\n".join(r.getMessage() for r in caplog.records if r.name == "ecs_exec_bot.audit")
    places = {"sent to Slack": sent, "acks": "\n".join(acks), "audit store": audit, "audit log": log_lines}
    leaks = {where: [k for k, (_, s) in kinds.items() if s in text] for where, text in places.items()}
    assert leaks == dict.fromkeys(places, [])
    assert "[redacted:" in audit and "[redacted:" in sent and all("[redacted:" in ack for ack in acks)
    assert secrets  # (every kind above was checked)
