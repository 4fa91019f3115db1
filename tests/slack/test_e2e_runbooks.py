"""Runbooks end to end over real HTTP: `/ecs-exec run` → the real app → moto + the local agent → ONE report.

The api service has 3 tasks; each runs its commands in its own directory (`SANDBOX.task_session_options`),
and the third task's files say something else: the report must flag that task, and only it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from pathlib import Path

import pytest

from bot.config import BotConfig, parse_config
from bot.output.render import short_task_id
from bot.services import AckBudget
from bot.store.base import AuditQuery
from standins.ecs import SANDBOX
from tests.runs.slack_harness import click_payload
from tests.slack.conftest import build_services, execute_command_calls
from tests.slack.e2e_helpers import message_text, responses
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import SIGNING_SECRET, BotHarness, running_bot
from tests.support.slack_requests import block_actions_body, sign

RUNBOOK_CONFIG = """
environments:
  prod: {region: us-east-1}
services:
  api: {environment: prod, cluster: prod, service: api, timeout: 30}
fanout: {max_tasks: 5, concurrency: 2}
runbooks:
  triage:
    description: health, error count and release of every task
    services: [api]
    steps:
      - {name: health, command: cat health.txt, timeout: 20}
      - {name: errors, command: cat app.log, extract: {count: ERROR}}
      - {name: release, command: cat release.txt, extract: {regex: 'release=(\\S+)'}}
  guarded:
    services: [api]
    tasks: one
    steps:
      - {name: hello, command: echo approved-runbook}
    approval:
      approvers: {users: [U0BOB]}
  slow:
    services: [api]
    steps:
      - {name: first, command: echo first-step}
      - {name: wait, command: sleep 30}
      - {name: never, command: echo never-runs}
  dump:
    services: [api]
    steps:
      - {name: hello, command: echo hello}
      - {name: env, command: printenv}
policy:
  rules:
    - name: oncall
      users: [U0ALICE]
      groups: [S0ONCALL]
      channels: [C0INCIDENT]
      services: [api]
      commands:
        - argv: ["cat", "*"]
        - argv: ["echo", "**"]
        - argv: ["sleep", "*"]
    - name: admins
      users: [U0ROOT]
      services: [api]
      commands:
        - argv: ["printenv"]
"""


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    return parse_config(RUNBOOK_CONFIG, source="runbooks.yaml")


def _seed_task_files(tmp_path: Path, task_ids: list[str]) -> str:
    odd = task_ids[-1]
    for task in task_ids:
        d = tmp_path / f"task-{task}"
        d.mkdir()
        bad = task == odd
        (d / "health.txt").write_text("degraded: upstream pool exhausted\n" if bad else "ok\n")
        (d / "app.log").write_text("".join(f"{'ERROR' if bad and i % 2 else 'INFO'} line {i}\n" for i in range(14)))
        (d / "release.txt").write_text("release=2026.12.1\n")
        SANDBOX.task_session_options[task] = {"cwd": str(d)}
    return odd


async def test_a_runbook_reports_every_task_and_flags_the_one_that_differs(
    bot: BotHarness, fake: FakeSlack, slack_aws: LocalAws, tmp_path: Path
) -> None:
    task_ids = [arn.rsplit("/", 1)[-1] for arn in _api_task_arns(slack_aws)]
    assert len(task_ids) == 3
    odd = _seed_task_files(tmp_path, task_ids)

    ack = await bot.command("run triage", response_url=fake.response_url("rb"))
    assert "Running runbook `triage` on api" in ack.message, ack.message
    await fake.await_for("chat.update")
    await fake.await_for("files.completeUploadExternal")
    posted = fake.calls("chat.postMessage")
    assert len(posted) == 1  # one message: "running…", then the report in its place
    report = message_text(fake, str(fake.calls("chat.update")[-1].params["ts"]))
    assert "internal error" not in report
    assert "Runbook *triage* on *api*" in report and "3 tasks × 3 steps" in report
    assert "1 task differs from the majority" in report
    assert f"⚠ task `{short_task_id(odd)}`" in report
    assert "degraded: upstream pool exhausted" in report and "(most: exit 0 `ok`)" in report
    assert "exit 0 `7`" in report  # the odd task's extracted error count
    assert report.count("⚠ ") == 2  # the table row and the "differs" line, for the odd task only
    assert "file in this thread" in report

    calls = execute_command_calls()
    assert len(calls) == 9 and Counter(c["task"].rsplit("/", 1)[-1] for c in calls) == {t: 3 for t in task_ids}
    assert len(fake.uploads) == 1
    content = next(iter(fake.uploads.values())).decode()
    assert content.count("=== step ") == 9 and "degraded: upstream pool exhausted" in content

    events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=1000))
    assert len({e.request_id for e in events}) == 1  # one request id for the whole runbook
    finished = [e for e in events if e.kind == "finished"]
    assert len(finished) == 9  # one record per step and task
    assert {e.command for e in finished} == {"cat health.txt", "cat app.log", "cat release.txt"}


async def test_a_step_the_requester_may_not_run_is_refused_by_name(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("run dump api")
    assert "Step 2 `env` of runbook `dump` is refused" in ack.message, ack.message
    refused = []
    for _ in range(200):  # the audit is written by the job, after the ack
        events = await asyncio.to_thread(bot.services.runs.store.query_audit, AuditQuery(limit=100))
        if refused := [e for e in events if e.kind == "refused"]:
            break
        await asyncio.sleep(0.05)
    assert [(e.details.get("step"), e.details.get("reason", "")[:30]) for e in refused] == [
        ("env", "Step 2 `env` of runbook `dump`")]
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == []


async def test_an_unknown_runbook_says_which_exist(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("run nope", response_url=fake.response_url("nope"))
    assert "There is no runbook `nope`" in ack.message and "`triage`" in ack.message
    assert responses(fake, "nope") == []


def _api_task_arns(aws: LocalAws) -> list[str]:
    ecs = aws.session().client("ecs")
    arns = ecs.list_tasks(cluster="prod")["taskArns"]
    tasks = ecs.describe_tasks(cluster="prod", tasks=arns)["tasks"]
    return sorted(t["taskArn"] for t in tasks if t.get("group") == "service:api")


async def test_list_shows_the_runbooks_the_user_may_run(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("list")
    assert "runbook triage" in ack.message and "/ecs-exec run triage api" in ack.message
    assert "runbook dump" not in ack.message  # its env step is not allowed to this user: not offered
    assert "runbook guarded" in ack.message and "needs approval" in ack.message


async def test_a_runbook_needing_approval_is_approved_once_then_reports(bot: BotHarness, fake: FakeSlack) -> None:
    ack = await bot.command("run guarded")
    assert "needs approval" in ack.message, ack.message
    await fake.await_for("chat.postMessage")
    [ts] = list(fake.messages)
    card = {**fake.messages[ts], "ts": ts}
    assert "runbook guarded" in message_text(fake, ts) and "echo approved-runbook" in message_text(fake, ts)
    assert execute_command_calls() == []
    payload = click_payload("ecs_exec_approve", "U0BOB", card, fake.response_url("click"), 1)
    assert (await bot.sender.post(sign(SIGNING_SECRET, block_actions_body(payload)))).status == 200
    await fake.await_for("files.completeUploadExternal")
    report = message_text(fake, ts)
    assert "Runbook *triage*" not in report and "Runbook *guarded* on *api*" in report, report
    assert "1 task × 1 step" in report and "approved by <@U0BOB>" in report
    assert [c["command"] for c in execute_command_calls()][0].count("approved-runbook") == 1
    assert len(execute_command_calls()) == 1  # tasks: one


async def test_cancel_stops_the_running_step_on_every_task_and_no_later_step_runs(
    bot: BotHarness, fake: FakeSlack
) -> None:
    await bot.command("run slow")
    await fake.await_for("chat.postMessage")
    [ts] = list(fake.messages)
    await _wait_for_calls(5)  # 3 × first, then 2 × sleep (concurrency 2)
    running = {**fake.messages[ts], "ts": ts}
    payload = click_payload("ecs_exec_cancel", "U0ALICE", running, fake.response_url("cancel"), 2)
    assert (await bot.sender.post(sign(SIGNING_SECRET, block_actions_body(payload)))).status == 200
    await fake.await_for("files.completeUploadExternal")
    report = message_text(fake, ts)
    assert "cancelled by <@U0ALICE>" in report, report
    assert report.count("not run") == 3  # step 3 on every task
    assert report.count("cancelled") >= 3  # step 2 on every task (and the reason)
    calls = execute_command_calls()
    assert not any("never-runs" in c["command"] for c in calls)
    # the third task was still waiting for a slot (concurrency 2): cancelled without a session
    assert sum("sleep 30" in c["command"] for c in calls) == 2


async def _wait_for_calls(n: int) -> None:
    for _ in range(400):
        if len(execute_command_calls()) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(execute_command_calls())} ExecuteCommand calls")


async def test_a_slow_group_lookup_acks_first_then_decides_the_runbook(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> None:
    release = threading.Event()

    def slow(_call: object) -> None:
        release.wait(10)
        return None

    fake.overrides["usergroups.users.list"] = slow
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    build = lambda c, _i: build_services(config, slack_aws, tmp_path / "bot.db", c, ack=AckBudget(lookup_s=0.1))  # noqa: E731
    async with running_bot(fake, build) as bot:
        ack = await bot.command("run slow", user_id="U0BOB", response_url=fake.response_url("slow"))
        assert "Checking your permissions" in ack.message
        release.set()
        await fake.await_for("/response/slow")
        assert "Running runbook `slow` on api" in responses(fake, "slow")[-1]["text"]
        await fake.await_for("chat.postMessage")
        [ts] = list(fake.messages)
        await _wait_for_calls(4)
        payload = click_payload("ecs_exec_cancel", "U0BOB", {**fake.messages[ts], "ts": ts},
                                fake.response_url("c"), 3)
        assert (await bot.sender.post(sign(SIGNING_SECRET, block_actions_body(payload)))).status == 200
        await fake.await_for("files.completeUploadExternal")
        assert "cancelled by <@U0BOB>" in message_text(fake, ts)
