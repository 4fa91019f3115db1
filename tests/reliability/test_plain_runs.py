"""Plain (approval-free) runs keep a light run record in the store while they run (bot/runs/ledger.py
`RunLedger.open_plain`): it ends in the run's outcome, and the Cancel button of a plain run works from any
replica (the click moves the record to ``cancelled``; the owner's watcher interrupts the command). A crash
mid-run is covered in test_restart.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from bot.store.base import RunRecord, RunState
from bot.store.sqlite import SqliteStore
from standins.ecs import SANDBOX
from tests.reliability.support import audit_kinds, execute_command_calls, serve_bot, wait_audit
from tests.slack.e2e_helpers import message_text, responses
from tests.slack.test_e2e_cancel import cancel_button, cancel_click
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.polling import until
from tests.support.slack_app import SIGNING_SECRET
from tests.support.slack_requests import sign


async def test_a_plain_run_is_recorded_and_ends_finished(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    store = SqliteStore(tmp_path / "bot.db")
    async with serve_bot(fake, config, local_aws, tmp_path / "bot.db", replica="replica-a") as bot:
        await bot.command("web echo recorded")
        [finished] = await wait_audit(store, "finished")
        await fake.await_for("chat.update")
    record = store.get_run(finished.request_id)
    assert record is not None and record.state is RunState.FINISHED and record.owner == "replica-a"
    assert record.message_ts == next(iter(fake.messages)) and record.run_deadline is not None
    assert record.approver_users == () and not record.needs_approval


async def test_cancel_of_a_plain_run_clicked_on_another_replica_stops_it(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    SANDBOX.reset()
    db = tmp_path / "bot.db"
    store = SqliteStore(db)
    async with (
        serve_bot(fake, config, local_aws, db, replica="replica-a") as a,
        serve_bot(fake, config, local_aws, db, replica="replica-b") as b,
    ):
        await a.command("web sleep 30")
        [started] = await wait_audit(store, "started")
        ts = next(iter(fake.messages))
        button = cancel_button(fake, ts)
        # Someone else's click on the other replica is refused; the run goes on.
        stranger = await b.sender.post(sign(SIGNING_SECRET, cancel_click("U0MALLORY", button, ts, fake.response_url("m"))))
        assert stranger.status == 200
        await fake.await_for("/response/m")
        assert "Only <@U0ALICE>" in responses(fake, "m")[0]["text"]
        # The requester's click lands on replica b; replica a runs it.
        mine = await b.sender.post(sign(SIGNING_SECRET, cancel_click("U0ALICE", button, ts, fake.response_url("c"))))
        assert mine.status == 200
        await wait_audit(store, "cancelled", within=15)
        await until(lambda: "cancelled by <@U0ALICE>" in message_text(fake, ts))
    assert len(execute_command_calls()) == 1
    # The stranger's click leaves a trace too (click_refused), as on approval cards.
    assert audit_kinds(store, started.request_id) == [
        "requested", "started", "click_refused", "cancel_requested", "cancelled"
    ]  # fmt: skip
    record = store.get_run(started.request_id)
    assert record is not None and record.state is RunState.CANCELLED and record.decided_by == "U0ALICE"


async def test_cancel_of_a_plain_run_whose_replica_died_leaves_it_to_the_watchdog(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> None:
    async with serve_bot(fake, config, local_aws, tmp_path / "bot.db", replica="replica-b") as bot:
        await asyncio.sleep(1.0)  # past the start-up watchdog round (the next one is 10 s later)
        now = time.time()
        store = SqliteStore(tmp_path / "bot.db")
        store.create_run(RunRecord(
            request_id="req-dead", requester="U0ALICE", channel="C0INCIDENT", service="web", environment="prod",
            command="sleep 30", request_hash="0" * 64, reason="", rule="oncall", approver_users=(), approver_groups=(),
            min_approvals=0, allow_self_approval=False, created_at=now, expires_at=now + 300,
            state=RunState.RUNNING, owner="replica-dead", run_deadline=now + 300, message_ts="1.000001",
            params={"kind": "plain-run", "target": "{}"},
        ))  # fmt: skip
        button = {"action_id": "ecs_exec_cancel", "value": "req-dead"}
        ack = await bot.sender.post(sign(SIGNING_SECRET, cancel_click("U0ALICE", button, "1.000001", fake.response_url("d"))))
        assert ack.status == 200
        await fake.await_for("/response/d")
    assert "stopped" in responses(fake, "d")[0]["text"]
    record = store.get_run("req-dead")
    assert record is not None and record.state is not RunState.CANCELLED  # the watchdog's to fail
