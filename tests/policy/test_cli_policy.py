"""`ecs-exec-bot policy check|list` against a real config file: output and exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main

CONFIG = """\
environments:
  prod: {region: us-east-1}
  staging: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx}
  web-staging: {environment: staging, cluster: staging, service: web-nginx}
policy:
  rules:
    - name: oncall-logs
      users: [U0ALICE]
      groups: [S0ONCALL]
      channels: [C0INCIDENT]
      environments: [prod]
      commands:
        - argv: ["cat", "/var/log/nginx/*"]
        - regex: '^tail -n [0-9]{1,5} /var/log/nginx/[a-z.]+$'
      timeout: 30
    - name: prod-shell
      groups: [S0SRE]
      environments: [prod]
      commands: [{argv: ["ls", "**"]}]
      approval: {required: true, approvers: {users: [U0BOB], groups: [S0SRE]}, min_approvals: 1, ttl: 900}
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "bot.yaml"
    path.write_text(CONFIG)
    return str(path)


def check(config: str, *argv: str) -> list[str]:
    return ["policy", "check", "--config", config, *argv]


def test_allowed_exits_0(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(check(config, "--user", "U0ALICE", "--channel", "C0INCIDENT", "web", "--",
                    "cat", "/var/log/nginx/access.log"))
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines() == [
        "decision: allowed", "command: cat /var/log/nginx/access.log", "rule: oncall-logs",
        "reason: Allowed by rule oncall-logs.", "timeout: 30 s",
    ]


def test_denied_exits_77_with_the_reason(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(check(config, "--user", "U0ALICE", "--channel", "C0INCIDENT", "web", "--", "cat /x; rm -rf /"))
    out = capsys.readouterr().out
    assert rc == 77
    assert "decision: denied" in out
    assert "reason: `rm -rf /` (after `;`) is refused by rule oncall-logs: `;` chains commands" in out
    assert "fix: Run `/ecs-exec list`" in out


def test_needs_approval_exits_3(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(check(config, "--user", "U0CAROL", "--group", "S0SRE", "--channel", "C0ANY", "web", "--", "ls"))
    out = capsys.readouterr().out
    assert rc == 3
    assert "decision: needs approval" in out
    assert "approval: 1 of U0BOB, S0SRE; expires after 900 s; self-approval not allowed" in out


def test_environment_comes_from_the_catalogue(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--user", "U0ALICE", "--channel", "C0INCIDENT"]
    assert main(check(config, *argv, "web-staging", "--", "cat", "/var/log/nginx/a")) == 77
    assert main(check(config, *argv, "--environment", "prod", "unknown", "--", "cat", "/var/log/nginx/a")) == 0
    assert main(check(config, *argv, "unknown", "--", "cat", "/var/log/nginx/a")) == 77
    assert "not in the catalogue" in capsys.readouterr().err


def test_requested_timeout_is_checked(config: str) -> None:
    argv = ["--user", "U0ALICE", "--channel", "C0INCIDENT", "--timeout", "60", "web", "--", "cat", "/var/log/nginx/a"]
    assert main(check(config, *argv)) == 77


def test_json_output(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(check(config, "--json", "--user", "U0ALICE", "--channel", "C0INCIDENT", "web", "--",
                    "cat /var/log/nginx/a > /etc/passwd"))
    payload = json.loads(capsys.readouterr().out)
    assert rc == 77
    assert payload["decision"] == "denied"
    assert payload["refusal"]["category"] == "redirection"
    assert payload["rule"] == "oncall-logs"


def test_list(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["policy", "list", "--config", config, "--user", "U0ALICE", "--group", "S0SRE", "--channel", "C0X"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert lines[0].startswith("oncall-logs: in prod: `cat /var/log/nginx/*`")
    assert lines[0].endswith("(timeout ≤ 30 s; only in <#C0INCIDENT>)")
    assert lines[1] == "prod-shell: in prod: `ls **` (needs 1 approval)"


def test_config_from_the_environment(config: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_EXEC_BOT_CONFIG", config)
    assert main(["policy", "check", "--user", "U0ALICE", "--channel", "C0INCIDENT", "web", "--", "tail -n 5 "
                 "/var/log/nginx/error.log"]) == 0


def test_usage_and_config_errors(config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ECS_EXEC_BOT_CONFIG", raising=False)
    assert main(["policy", "check", "--user", "U0ALICE", "--channel", "C1", "web", "--", "ls"]) == 64
    assert "No config file given" in capsys.readouterr().err
    assert main(check(config, "--user", "U0ALICE", "--channel", "C1", "web", "--")) == 64
    assert main(["policy"]) == 64
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("U0BOB", "bob"))
    assert main(check(str(bad), "--user", "U0ALICE", "--channel", "C1", "web", "--", "ls")) == 78
    err = capsys.readouterr().err
    assert "line 18" in err and "rule 'prod-shell': approver 'bob' is not a Slack user ID" in err
