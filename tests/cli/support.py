"""Run `ecs-exec-bot` as a real process: exit status, stdout and stderr as an operator sees them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def clean_env(extra: Mapping[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without any AWS, Slack or bot setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "ECS_EXEC_BOT_"))}
    env.update(extra or {})
    for name in drop:
        env.pop(name, None)
    return env


def cli(*args: str, env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=dict(env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """stderr, asserted to be exactly one line (no traceback) and returned."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ecs-exec-bot: "), done.stderr
    return lines[0]
