"""Process restarts: a pending approval survives one (a new bot instance on the same SQLite file can
approve and run it, once), and a command running when the process died is not left saying "running"
forever (the watchdog of the next instance marks it failed and updates its Slack message).

The first bot runs in its own process (`tests.reliability.bot_process`) so it can be SIGKILLed: no drain,
no last message. The second is served in this process on the same file."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from bot.store.base import RunState
from bot.store.sqlite import SqliteStore
from standins.ecs import SANDBOX
from tests.reliability.support import audit_events, audit_kinds, execute_command_calls, serve_bot, wait_audit
from tests.runs.slack_harness import click_payload, request_id_of
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import SIGNING_SECRET
from tests.support.slack_requests import SlackSender, block_actions_body, sign

APPROVE = "ecs_exec_approve"
_clicks = itertools.count(1)


@asynccontextmanager
async def bot_process(fake: FakeSlack, aws: LocalAws, store: Path, workdir: Path,
                      replica_id: str | None = None) -> AsyncIterator[tuple[subprocess.Popen[str], SlackSender]]:
    proc = spawn_bot(fake, aws, store, workdir, replica_id)
    try:
        assert proc.stdout is not None
        url = (await asyncio.to_thread(proc.stdout.readline)).strip()
        assert url.startswith("http://"), f"the bot process did not start (printed {url!r})"
        yield proc, SlackSender(url, SIGNING_SECRET)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def spawn_bot(fake: FakeSlack, aws: LocalAws, store: Path, workdir: Path,
              replica_id: str | None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.reliability.bot_process", "--store", str(store), "--workdir",
            str(workdir), "--slack-api", fake.api_url, *(["--replica-id", replica_id] if replica_id else [])]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **aws.env}
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


async def approval_message(fake: FakeSlack) -> dict[str, Any]:
    """The bot's one channel message (the approval request, or the "running" message), latest version."""
    await fake.await_for("chat.postMessage")
    [ts] = list(fake.messages)
    return {**fake.messages[ts], "ts": ts}


async def click(sender: SlackSender, fake: FakeSlack, user: str, message: dict[str, Any]) -> None:
    n = next(_clicks)
    payload = click_payload(APPROVE, user, message, fake.response_url(f"click-{n}"), n)
    ack = await sender.post(sign(SIGNING_SECRET, block_actions_body(payload)))
    assert ack.status == 200, ack.body


async def wait_state(store: SqliteStore, request_id: str, state: RunState, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while (record := await asyncio.to_thread(store.get_run, request_id)) is None or record.state != state:
        assert time.monotonic() < deadline, f"{request_id} is {record.state if record else None}, wanted {state}"
        await asyncio.sleep(0.05)


async def wait_message_ts(store: SqliteStore, request_id: str, within: float = 15) -> None:
    """Until the bot stored its approval message's ts (it does so right after posting it)."""
    deadline = time.monotonic() + within
    while (record := await asyncio.to_thread(store.get_run, request_id)) is None or not record.message_ts:
        assert time.monotonic() < deadline, f"no message ts stored for {request_id}"
        await asyncio.sleep(0.05)


def later(seconds: float) -> Any:
    return lambda: time.time() + seconds


async def test_a_pending_approval_survives_a_crash_and_runs_once_on_the_next_instance(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    db = tmp_path / "bot.db"
    async with bot_process(fake, local_aws, db, tmp_path) as (proc, sender):
        ack = await sender.command("api echo approved-after-restart", user_id="U0ALICE")
        assert "needs approval" in ack.body, ack.body
        message = await approval_message(fake)
        request_id = request_id_of(message)
        store = SqliteStore(db)
        await wait_message_ts(store, request_id)
        proc.kill()  # crash while the request waits for its approver
    async with serve_bot(fake, config, local_aws, SqliteStore(db)) as bot:  # the bot closes its store
        await click(bot.sender, fake, "U0BOB", message)
        await wait_state(store, request_id, RunState.FINISHED)
        await wait_audit(store, "finished")
    final = fake.messages[message["ts"]]
    assert "approved-after-restart" in str(final) and APPROVE not in str(final)
    assert len(execute_command_calls()) == 1
    assert audit_kinds(store, request_id) == ["requested", "approval_requested", "approved", "started", "finished"]


async def crash_while_running(fake: FakeSlack, aws: LocalAws, db: Path, workdir: Path, text: str,
                              replica_id: str | None) -> dict[str, Any]:
    """Start ``text`` on a bot process, approve it if it needs it, SIGKILL the process mid-run."""
    store = SqliteStore(db)
    async with bot_process(fake, aws, db, workdir, replica_id) as (proc, sender):
        await sender.command(text, user_id="U0ALICE")
        message = await approval_message(fake)
        if APPROVE in str(message.get("blocks")):
            await click(sender, fake, "U0BOB", message)
        await wait_audit(store, "started")
        proc.kill()
    assert len(execute_command_calls()) == 1
    return message


async def test_a_command_running_when_the_process_died_is_marked_failed_by_the_next_instance(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    db = tmp_path / "bot.db"
    message = await crash_while_running(fake, local_aws, db, tmp_path, "api sleep 8", "replica-a")
    request_id = request_id_of(message)
    updates_before = len(fake.calls("chat.update"))
    # The next instance starts a minute later (the dead replica's 30 s heartbeat has lapsed).
    store = SqliteStore(db)
    async with serve_bot(fake, config, local_aws, SqliteStore(db, clock=later(60)), replica="replica-b"):
        await wait_state(store, request_id, RunState.FAILED)
        await fake.await_for("chat.update", updates_before + 1)
    final = str(fake.messages[message["ts"]])
    assert "Running" not in final and "running" not in final.replace("running it", ""), final
    [failed] = [e for e in audit_events(store, request_id) if e.kind == "failed"]
    assert failed.details.get("watchdog") is True and "stopped" in str(failed.details["error"])
    assert len(execute_command_calls()) == 1  # recovered, not re-run


async def test_with_the_default_replica_id_a_restart_still_recovers_the_running_command(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    db = tmp_path / "bot.db"
    message = await crash_while_running(fake, local_aws, db, tmp_path, "api sleep 8", None)
    store = SqliteStore(db)
    async with serve_bot(fake, config, local_aws, SqliteStore(db, clock=later(60))):
        await wait_state(store, request_id_of(message), RunState.FAILED, within=3)


async def test_a_plain_command_running_when_the_process_died_is_not_left_running(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    db = tmp_path / "bot.db"
    message = await crash_while_running(fake, local_aws, db, tmp_path, "web sleep 30", "replica-a")
    [started] = [e for e in audit_events(SqliteStore(db)) if e.kind == "started"]
    session_id = str(started.details["session_id"])
    assert "terminated" not in local_aws.agent.stats(session_id).events  # the kill left it running
    updates_before = len(fake.calls("chat.update"))
    async with serve_bot(fake, config, local_aws, SqliteStore(db, clock=later(60)), replica="replica-b"):
        await fake.await_for("chat.update", updates_before + 1, within=3)
    assert "running" not in str(fake.messages[message["ts"]]).lower()
    # The watchdog also ended the dead replica's SSM session: the command does not run on unobserved.
    assert "terminated" in local_aws.agent.stats(session_id).events
    [failed] = [e for e in audit_events(SqliteStore(db)) if e.kind == "failed"]
    assert failed.details["sessions_terminated"] == 1
