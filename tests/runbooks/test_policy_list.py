"""`ecs-exec-bot policy list` shows the runbooks a user may run, as `/ecs-exec list` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.runbooks.test_runbook_decision import CONFIG


def test_policy_list_names_the_runbooks_this_user_may_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(CONFIG)
    assert main(["policy", "list", "--user", "U0ALICE", "--channel", "C0INCIDENT", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "runbook diag: `/ecs-exec run diag api` runs health, disk on every task" in out
    assert "runbook env: `/ecs-exec run env api` runs health, env on every task (needs approval)" in out
    # Alice may run its steps as typed (one needs approval); S0RELEASE has it granted by name.
    assert "runbook release-check: `/ecs-exec run release-check api` runs version, env on one task (needs" in out
    assert "guarded" in out and main(["policy", "list", "--user", "U0MALLORY", "--channel", "C0INCIDENT",
                                      "--config", str(cfg)]) == 0
    assert "runbook" not in capsys.readouterr().out  # deny by default: nothing offered
    assert main(["policy", "list", "--user", "U0DAVE", "--group", "S0RELEASE", "--channel", "C0X",
                 "--config", str(cfg)]) == 0
    assert "runbook release-check: `/ecs-exec run release-check api` runs version, env on one task" in (
        capsys.readouterr().out)
