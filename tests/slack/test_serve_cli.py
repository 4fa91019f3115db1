"""`ecs-exec-bot serve` as a real process: start-up failures are one line; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slack.conftest import CONFIG
from tests.support.fake_slack import FakeSlack
from tests.support.slack_requests import command_body, sign

SECRET = "cli-secret"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        yield f


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    config = tmp_path / "bot.yaml"
    config.write_text(CONFIG.replace("WORKDIR", str(tmp_path)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ECS_EXEC_BOT_", "AWS_"))}
    env.update(
        {
            "ECS_EXEC_BOT_CONFIG": str(config),
            "ECS_EXEC_BOT_SQLITE_PATH": str(tmp_path / "bot.db"),
            "AWS_REGION": "us-east-1",
            "HOST": "127.0.0.1",
            "PORT": "0",
        }
    )
    env.update(extra)
    return env


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_user_token_is_refused_before_any_network_call(tmp_path: Path) -> None:
    done = run_serve(bot_env(tmp_path, SLACK_BOT_TOKEN="xoxp-123-user", SLACK_SIGNING_SECRET=SECRET))
    assert done.returncode == 78
    assert done.stderr.strip().splitlines() == [
        "ecs-exec-bot: SLACK_BOT_TOKEN does not look like a bot token (it must start with xoxb-). "
        "Copy the Bot User OAuth Token from OAuth & Permissions."
    ]


def test_a_revoked_token_fails_auth_test_at_start_up(tmp_path: Path, fake: FakeSlack) -> None:
    env = bot_env(
        tmp_path, SLACK_BOT_TOKEN="xoxb-1-revoked", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url
    )
    done = run_serve(env)
    assert done.returncode == 78
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "ecs-exec-bot: Slack rejected SLACK_BOT_TOKEN at start-up (auth.test: invalid_auth)."
    )


@pytest.mark.timeout(60)
def test_serve_answers_then_stops_on_sigterm(tmp_path: Path, fake: FakeSlack) -> None:
    env = bot_env(
        tmp_path, SLACK_BOT_TOKEN=fake.bot_token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake.api_url
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            entry = json.loads(line)  # every log line is one JSON object
            found = re.search(r"on 127\.0\.0\.1:(\d+)$", entry["msg"])
            port = int(found.group(1)) if found else None
        assert port, "the bot never logged where it listens"
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as health:
            assert json.load(health)["status"] == "ok"
        signed = sign(SECRET, command_body("help"))
        post = urllib.request.Request(
            f"{url}/slack/events", data=signed.body.encode(), headers=signed.headers
        )
        with urllib.request.urlopen(post, timeout=5) as resp:
            assert resp.status == 200 and "/ecs-exec SERVICE COMMAND" in resp.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
