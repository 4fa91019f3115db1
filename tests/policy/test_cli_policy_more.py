"""`policy check` joins words as `exec` does and takes options after SERVICE; `policy list` shows every
pattern; `policy test` runs a cases file and fails on any mismatch, printing each one."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from bot.cli import main
from bot.shell_syntax import join_command_words

CONFIG = """\
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx}
policy:
  rules:
    - name: logs
      users: [U0ALICE]
      services: [web]
      commands:
        - argv: [grep, {flags: -cinv}, "*", {path: "/var/log/nginx/*.log"}]
        - argv: [tail, {seq: [-n, {int: {min: 1, max: 10000}}], optional: true}, {path: "/var/log/nginx/*"}]
        - argv: [sort]
          position: filter
        - argv: [uniq, -c]
          position: filter
        - argv: [wc, -l]
          position: filter
        - argv: [ls, {flags: -la}, {path: /app}]
    - name: envoy-stats
      users: [U0ALICE]
      services: [web]
      containers: [envoy]
      commands:
        - argv: [curl, -s, {one_of: ["http://localhost:9901/stats", "http://localhost:9901/clusters"]}]
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "bot.yaml"
    path.write_text(CONFIG)
    return str(path)


def check(config: str, *argv: str) -> list[str]:
    return ["policy", "check", "--config", config, "--user", "U0ALICE", "--channel", "C0X", *argv]


def test_quoted_words_are_checked_as_the_shell_split_them(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    # What a local shell hands over for: policy check … web -- grep 'upstream timed out' /var/log/nginx/error.log
    argv = shlex.split("grep 'upstream timed out' /var/log/nginx/error.log")
    assert main(check(config, "web", "--", *argv)) == 0
    assert "command: grep 'upstream timed out' /var/log/nginx/error.log" in capsys.readouterr().out


def test_exec_and_policy_check_share_one_join() -> None:
    from bot.cli import exec as exec_cli

    words = ["grep", "upstream timed out", "/var/log/nginx/error.log"]
    assert exec_cli.command_text(words) == join_command_words(words) == (
        "grep 'upstream timed out' /var/log/nginx/error.log")
    assert join_command_words(["ps aux | grep x"]) == "ps aux | grep x"  # one word: the text as typed


def test_options_after_service(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", "--config", config, "web", "--user", "U0ALICE", "--channel=C0X", "--json",
                 "--", "ls", "-la", "/app/"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "allowed"
    # Without `--`: options until the first word that is not one.
    assert main(["policy", "check", "--config", config, "web", "--user", "U0ALICE", "--channel", "C0X",
                 "tail", "-n", "5", "/var/log/nginx/a.log"]) == 0


def test_unknown_option_after_service_is_a_usage_error(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(check(config, "web", "--bogus", "ls")) == 64
    assert "Unknown option `--bogus`" in capsys.readouterr().err
    assert main(["policy", "check", "--config", config, "web", "--", "ls"]) == 64  # no --user/--channel


def test_a_sidecar_needs_a_rule_that_names_it(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    stats = ["--", "curl", "-s", "http://localhost:9901/stats"]
    assert main(check(config, "web", "--container", "envoy", *stats)) == 0
    assert main(check(config, "web", *stats)) == 77  # the catalogue's container (nginx): no such rule
    assert main(check(config, "web", "--container", "nginx", "--", "ls", "/app")) == 0  # nginx is the default
    capsys.readouterr()
    assert main(check(config, "web", "--container", "datadog", "--", "ls", "/app")) == 77
    assert "container `datadog`" in capsys.readouterr().out


def test_denial_shows_the_closest_pattern_word_expected_and_given(config: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(check(config, "web", "--", "tail", "-n", "10f", "/var/log/nginx/a.log")) == 77
    out = capsys.readouterr().out
    assert "closest: `tail [-n <int 1..10000>] <path /var/log/nginx/*>`" in out
    assert "word 3: expected an integer from 1 to 10000; given `10f`" in out
    assert main(check(config, "--json", "web", "--", "sort")) == 77
    closest = json.loads(capsys.readouterr().out)["refusal"]["closest"]
    assert closest["pattern"] == "`sort` (only after `|`)" and closest["given"] == "as the first command"


def test_list_shows_every_pattern(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "list", "--config", config, "--user", "U0ALICE", "--channel", "C0X"]) == 0
    out = capsys.readouterr().out
    assert "and 1 more" not in out
    assert "`ls [flags -al] <path /app>`" in out  # the sixth pattern
    assert "envoy-stats: services web containers envoy:" in out


CASES = """\
cases:
  - name: grep with bundled flags
    user: U0ALICE
    channel: C0X
    service: web
    command: grep -ic 'upstream timed out' /var/log/nginx/error.log
    expect: allow
    rule: logs
  - user: U0ALICE
    channel: C0X
    service: web
    command: sort
    expect: deny
  - user: U0ALICE
    channel: C0X
    service: web
    container: envoy
    command: curl -s http://localhost:9901/clusters
    expect: allow
    rule: envoy-stats
"""


def test_policy_test_passes(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES)
    assert main(["policy", "test", "--config", config, str(cases)]) == 0
    assert capsys.readouterr().out.strip().endswith("3 cases: 3 passed, 0 failed")


def test_policy_test_prints_each_mismatch_and_exits_1(config: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES.replace("expect: deny", "expect: allow").replace("rule: envoy-stats", "rule: logs"))
    assert main(["policy", "test", "--config", config, str(cases)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if line.startswith("FAIL")]) == 2
    assert out[0].startswith(f"FAIL {cases}, line 9: `sort` by U0ALICE in C0X on web: expected allow, got deny")
    assert "expected allow by rule logs, got allow by rule envoy-stats" in out[1]
    assert out[-1] == "3 cases: 1 passed, 2 failed"


def test_policy_test_file_errors_name_the_line(config: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES.replace("expect: deny", "expect: denied"))
    assert main(["policy", "test", "--config", config, str(cases)]) == 78
    err = capsys.readouterr().err
    assert f"{cases}, line 13" in err and "cases.1.expect" in err
    assert main(["policy", "test", "--config", config, str(tmp_path / "missing.yaml")]) == 78
