"""`serve` refuses to start, in one line and with 78, on what would otherwise fail later or forever."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.serve import DEFAULT_DRAIN_GRACE_S, drain_grace
from bot.errors import ConfigError
from tests.slack.test_serve_cli import SECRET, bot_env, run_serve
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


def only_line(stderr: str) -> str:
    """The last line, after asserting no traceback came before it (log lines are JSON objects)."""
    lines = stderr.strip().splitlines()
    assert not any(line.startswith("Traceback") for line in lines), stderr
    assert all(line.startswith("{") for line in lines[:-1]), stderr
    return lines[-1]


def test_a_port_in_use_is_one_line_and_78(tmp_path: Path, fake: FakeSlack) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(tmp_path, SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SECRET,
                      SLACK_API_URL=fake.api_url, PORT=str(port))
        done = run_serve(env)
    assert done.returncode == 78
    assert only_line(done.stderr) == (f"ecs-exec-bot: Port 127.0.0.1:{port} is already in use. "
                                      "Stop the other process, or set PORT (or --port) to a free port.")
    assert fake.calls("auth.test") == []  # found before any network call


@pytest.mark.timeout(60)
def test_a_rejected_app_token_stops_socket_mode_at_start_up(tmp_path: Path, fake: FakeSlack) -> None:
    # The fake answers apps.connections.open with invalid_auth for any token but its own app token;
    # the SDK alone would retry that forever.
    env = bot_env(tmp_path, SLACK_BOT_TOKEN=fake.bot_token, SLACK_APP_TOKEN="xapp-1-revoked",
                  SLACK_API_URL=fake.api_url)
    done = run_serve(env)
    assert done.returncode == 78
    assert only_line(done.stderr).startswith(
        "ecs-exec-bot: Slack rejected SLACK_APP_TOKEN at start-up (apps.connections.open: invalid_auth).")
    assert len(fake.calls("apps.connections.open")) == 1


def test_an_environment_without_region_stops_serve_before_slack_is_called(tmp_path: Path, fake: FakeSlack) -> None:
    env = bot_env(tmp_path, SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SECRET,
                  SLACK_API_URL=fake.api_url, AWS_CONFIG_FILE="/dev/null")
    del env["AWS_REGION"]
    config = Path(env["ECS_EXEC_BOT_CONFIG"])
    config.write_text(config.read_text().replace("prod: {region: us-east-1}", "prod: {}"))
    done = run_serve(env)
    assert done.returncode == 78
    assert only_line(done.stderr) == ("ecs-exec-bot: No AWS region is configured for environment prod. "
                                      "Set `region:` under environments.prod in the config file, or AWS_REGION.")
    assert fake.calls("auth.test") == []


def test_a_missing_config_file_stops_serve_before_any_network_call(tmp_path: Path) -> None:
    env = bot_env(tmp_path, SLACK_BOT_TOKEN="xoxb-1-x", SLACK_SIGNING_SECRET=SECRET,
                  SLACK_API_URL="http://127.0.0.1:9/api/", ECS_EXEC_BOT_CONFIG=str(tmp_path / "missing.yaml"))
    done = run_serve(env)
    assert done.returncode == 78
    assert only_line(done.stderr).startswith(f"ecs-exec-bot: Cannot read config file {tmp_path / 'missing.yaml'}")


def test_a_bad_drain_grace_fails_serve_only(tmp_path: Path) -> None:
    env = bot_env(tmp_path, SLACK_BOT_TOKEN="xoxb-1-x", SLACK_SIGNING_SECRET=SECRET, ECS_EXEC_BOT_DRAIN_GRACE="abc")
    done = run_serve(env)
    assert done.returncode == 78
    assert only_line(done.stderr).startswith("ecs-exec-bot: ECS_EXEC_BOT_DRAIN_GRACE=abc is not a number")
    for sub in ("audit", "exec", "doctor", "serve"):
        helped = subprocess.run([sys.executable, "-m", "bot", sub, "--help"], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert helped.returncode == 0 and helped.stderr == "", (sub, helped.stderr)


def test_drain_grace_sources() -> None:
    assert drain_grace(None, {}) == DEFAULT_DRAIN_GRACE_S
    assert drain_grace(None, {"ECS_EXEC_BOT_DRAIN_GRACE": "45"}) == 45
    assert drain_grace(5, {"ECS_EXEC_BOT_DRAIN_GRACE": "abc"}) == 5  # the option wins
    for bad in ("abc", "-1", "nan", "inf"):
        with pytest.raises(ConfigError):
            drain_grace(None, {"ECS_EXEC_BOT_DRAIN_GRACE": bad})
