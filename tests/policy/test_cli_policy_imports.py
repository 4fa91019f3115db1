"""`ecs-exec-bot policy check|list` stay light: they read the config file and decide, so they must not
import pydantic-settings (process settings), boto3 (AWS) or the data channel, nor compile the
redactor's built-in detectors. Each of those is a large share of a short command's start-up CPU; this
pins that they stay out (what is loaded, not how long it takes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.support import clean_env

# The demo's config: services, a policy with approval and redact patterns, and a runbook.
DEMO_CONFIG = Path(__file__).resolve().parents[2] / "stand-ins" / "standins" / "data" / "demo" / "ecs-exec-bot.yaml"
HEAVY_PACKAGES = ("pydantic_settings", "boto3", "botocore", "websockets", "aiohttp", "slack_sdk", "slack_bolt")
USER = ["--user", "U0ALICE", "--channel", "C0INCIDENT", "--config", str(DEMO_CONFIG)]


def _heavy_modules_after(argv: list[str], *, preload: str = "") -> tuple[int, list[str], str]:
    """Run the CLI in a fresh interpreter; its exit status, the heavy modules it imported (and whether the
    redactor's built-in detectors were compiled), its stdout."""
    probe = (
        f"import json, sys{preload}\n"
        "from bot.cli import main\n"
        f"code = main({argv!r})\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_PACKAGES!r} "
        "or m.startswith('bot.ssm'))\n"
        "from bot.output.redact import builtin_detectors\n"
        "if builtin_detectors.cache_info().currsize:\n"
        "    heavy.append('builtin_detectors()')\n"
        "print(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=clean_env(), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    *out, last = done.stdout.strip().splitlines()
    result = json.loads(last)
    return result["code"], result["heavy"], "\n".join(out)


@pytest.mark.parametrize("argv", [
    ["policy", "check", *USER, "web", "--", "tail", "-n", "5", "var/log/nginx/error.log"],
    ["policy", "check", *USER, "web", "--", "cat /x; rm -rf /"],
    ["policy", "list", *USER],
], ids=["check-allowed", "check-denied", "list"])
def test_policy_commands_import_no_settings_aws_or_data_channel(argv: list[str]) -> None:
    code, heavy, out = _heavy_modules_after(argv)
    assert heavy == []
    assert out  # it did decide (or list) something: the probe ran the real command
    assert code in (0, 77)


def test_the_probe_sees_heavy_imports_when_there_are_some() -> None:
    # The same probe must report a heavy module when one is loaded, or the test above proves nothing.
    code, heavy, _ = _heavy_modules_after(["policy", "list", *USER], preload=", bot.settings, bot.aws; "
                                          "from bot.output.redact import builtin_redactor; builtin_redactor()")
    assert code == 0
    assert {"pydantic_settings", "boto3", "builtin_detectors()"} <= set(heavy)
