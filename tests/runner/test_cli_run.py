"""`ecs-exec-bot run RUNBOOK SERVICE` end to end: patched moto server + local agent + the real data channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from standins.ecs import SANDBOX, DemoCluster
from tests.support.local_aws import LocalAws

CONFIG = """\
environments:
  prod: {region: us-east-1}
services:
  api: {environment: prod, cluster: prod, service: api, timeout: 30}
policy:
  rules:
    - {name: oncall, users: [U0ALICE], services: [api], commands: [{argv: [cat, "*"]}]}
runbooks:
  triage:
    services: [api]
    steps:
      - {name: health, command: cat health.txt}
      - {name: errors, command: cat app.log, extract: {count: ERROR}}
"""


def test_cli_run_prints_the_table_and_the_task_that_differs(
    shared_aws: LocalAws, shared_demo: DemoCluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    task_ids = shared_demo.services["api"].task_ids
    for task in task_ids:
        d = tmp_path / task
        d.mkdir()
        odd = task == task_ids[0]
        (d / "health.txt").write_text("degraded\n" if odd else "ok\n")
        (d / "app.log").write_text("ERROR x\nERROR y\n" if odd else "INFO\n")
        SANDBOX.task_session_options[task] = {"cwd": str(d)}
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(CONFIG)
    try:
        code = main(["run", "triage", "--config", str(cfg)])
        outputs_code = main(["run", "triage", "api", "--outputs", "--config", str(cfg)])
    finally:
        SANDBOX.task_session_options.clear()
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "runbook triage on api (prod): 3 tasks × 2 steps" in out
    assert f"differs from the majority: task {task_ids[0]} (health, errors)" in out
    assert out.count("differs from the majority: task") == 2  # the table, then every output (--outputs)
    assert outputs_code == 0 and out.count("=== step ") == 6 and "ERROR y" in out


def test_cli_run_refuses_an_unknown_runbook_with_the_known_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(CONFIG)
    code = main(["run", "nope", "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 77 and "There is no runbook `nope` (known: `triage`)" in err
