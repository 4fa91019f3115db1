"""A result that failed to run carries a Probe button: the doctor checklist plus a live `true` through ECS
Exec on that task, for people some rule lets run commands on the service, answered to them alone."""

from __future__ import annotations

import pytest

from standins.ecs import SANDBOX
from tests.slack.e2e_helpers import responses
from tests.slack.test_e2e_cancel import cancel_click
from tests.support.fake_slack import FakeSlack
from tests.support.slack_app import SIGNING_SECRET, BotHarness
from tests.support.slack_requests import sign


def _probe_button(fake: FakeSlack, ts: str) -> dict:
    for block in fake.messages[ts]["blocks"]:
        if block.get("type") == "actions":
            [button] = [b for b in block["elements"] if b["action_id"] == "ecs_exec_probe"]
            return button
    raise AssertionError(f"no Probe button on {fake.messages[ts]}")


@pytest.mark.timeout(60)
async def test_a_failed_run_offers_a_probe_that_reports_the_live_outcome(bot: BotHarness, fake: FakeSlack) -> None:
    SANDBOX.deny_execute_command.add("*")  # ExecuteCommand refused: the run fails as an AWS error
    await bot.command("web echo hi")
    update = (await fake.await_for("chat.update"))[-1]
    ts = str(update.params["ts"])
    button = _probe_button(fake, ts)
    assert button["value"].startswith("web|")

    stranger = await bot.sender.post(sign(SIGNING_SECRET, cancel_click("U0MALLORY", button, ts, fake.response_url("m"))))
    assert stranger.status == 200
    await fake.await_for("/response/m")
    assert "No policy rule lets you run commands on `web`" in responses(fake, "m")[0]["text"]

    mine = await bot.sender.post(sign(SIGNING_SECRET, cancel_click("U0ALICE", button, ts, fake.response_url("p"))))
    assert mine.status == 200
    await fake.await_for("/response/p", within=30)
    report = str(responses(fake, "p")[0])
    assert "probe" in report.lower() and "🔴" in report  # the live `true` was refused too: red, with its fix


def test_a_successful_result_has_no_probe_button() -> None:
    from bot.output.capture import CapturedOutput
    from bot.output.redact import Redactor
    from bot.output.render import PROBE_ACTION, RunView, TaskResultView, render_result
    from bot.output.views import output_view

    run = RunView(service="web", environment="prod", command="id", requester="U0ALICE")
    ok = TaskResultView(task_id="t1", container="app", status="ok", exit_code=0, duration_s=0.1,
                        output=output_view(CapturedOutput.from_bytes(b"uid=0\n"), Redactor()))
    failed = TaskResultView(task_id="t1", container="app", status="error", exit_code=None, duration_s=0.1,
                            output=output_view(CapturedOutput.from_bytes(b""), Redactor()), error="denied")
    assert PROBE_ACTION not in str(render_result(run, [ok]).blocks)
    assert PROBE_ACTION in str(render_result(run, [failed]).blocks)
