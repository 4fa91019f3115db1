"""`doctor --probe`: the live outcome of `true` through ECS Exec, next to the static checks."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.doctor import probe_check
from standins.ecs import SANDBOX, DemoCluster
from tests.support.local_aws import LocalAws


def test_probe_outcomes_as_checks() -> None:
    ok = probe_check(task_id="abc", status="ok", duration_s=1.24, exit_code=0)
    assert (ok.status, ok.detail) == ("green", "`true` ran through ECS Exec on task abc in 1.2 s (exit 0).")
    assert probe_check(task_id="abc", status="ok", exit_code=None).status == "green"
    assert probe_check(task_id="abc", status="failed", exit_code=1).status == "yellow"
    denied = probe_check(task_id="abc", status="error", error="AWS denied ecs:ExecuteCommand on x.", fix="Allow it.")
    assert (denied.status, denied.fix) == ("red", "Allow it.")
    assert "could not run through ECS Exec on task abc: AWS denied" in denied.detail
    assert probe_check(task_id=None, status="timeout", duration_s=30).status == "red"


def test_doctor_probe_runs_true_on_the_task(shared_aws: LocalAws, shared_demo: DemoCluster,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    task = shared_demo.services["web-nginx"].task_ids[0]
    code = main(["doctor", "web-nginx", "--cluster", "prod", "--task", task, "--probe"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"🟢 Live probe: `true` ran through ECS Exec on task {task} in " in out
    assert SANDBOX.requests[-1]["task"].endswith(task) and "true" in SANDBOX.requests[-1]["command"]


def test_the_probe_catches_what_static_checks_cannot(shared_aws: LocalAws, shared_demo: DemoCluster,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    SANDBOX.deny_execute_command.add("*")  # e.g. an SCP: every static check stays green
    code = main(["doctor", "web-nginx", "--cluster", "prod"])
    assert code == 0 and "Live probe" not in capsys.readouterr().out
    code = main(["doctor", "web-nginx", "--cluster", "prod", "--probe"])
    out = capsys.readouterr().out
    assert code == 1
    assert "🔴 Live probe: `true` could not run through ECS Exec on task" in out
    assert "AWS denied ecs:ExecuteCommand" in out
