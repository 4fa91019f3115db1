"""`audit` never destroys or invents a store, and starts without the heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.store import StoreSettings
from bot.store.base import AuditEvent
from bot.store.sqlite import SqliteStore
from tests.cli.support import clean_env, cli, one_line


def seeded(path: Path) -> Path:
    store = SqliteStore(path)
    store.append_audit(AuditEvent(event_id="e1", kind="requested", request_id="r1", at=time.time() - 60, user="U1"))
    store.close()
    return path


@pytest.mark.parametrize("days", ["0", "-5", "-0.5"])
def test_prune_refuses_zero_and_negative_days(tmp_path: Path, days: str) -> None:
    db = seeded(tmp_path / "bot.db")
    done = cli("audit", f"--prune-older-than={days}", env=clean_env({"ECS_EXEC_BOT_SQLITE_PATH": str(db)}))
    assert done.returncode == 64
    assert "--prune-older-than must be a positive number of days" in one_line(done)
    listed = cli("audit", "--since", "2000-01-01", "--json", env=clean_env({"ECS_EXEC_BOT_SQLITE_PATH": str(db)}))
    assert [json.loads(line)["request_id"] for line in listed.stdout.splitlines()] == ["r1"]


@pytest.mark.parametrize("args", [(), ("--prune-older-than", "30")])
def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "typo" / "bot.db"
    done = cli("audit", *args, env=clean_env({"ECS_EXEC_BOT_SQLITE_PATH": str(missing)}))
    assert done.returncode == 75
    assert one_line(done).startswith(f"ecs-exec-bot: No store at {missing}.")
    assert not missing.parent.exists()


def test_audit_imports_neither_boto3_nor_the_data_channel_nor_pydantic_settings(tmp_path: Path) -> None:
    db = seeded(tmp_path / "bot.db")
    probe = ("import sys; from bot.cli import main; code = main(['audit', '--since', '2000-01-01']); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('boto3', 'botocore', 'websockets', 'pydantic_settings', 'yaml', 'aiohttp', 'slack_sdk') "
             "or m.startswith('bot.ssm')))")
    done = subprocess.run([sys.executable, "-c", probe], env=clean_env({"ECS_EXEC_BOT_SQLITE_PATH": str(db)}),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "r1" in done.stdout


def test_store_settings_read_like_settings(tmp_path: Path) -> None:
    from bot.settings import load_settings

    env = {"ECS_EXEC_BOT_STORE": "dynamodb", "ECS_EXEC_BOT_DYNAMODB_TABLE": "t", "AWS_DEFAULT_REGION": "eu-west-1",
           "ECS_EXEC_BOT_SQLITE_PATH": str(tmp_path / "x.db")}
    light = StoreSettings.from_environment(env, env_file=None)
    full = load_settings(**{k: v for k, v in {"store": "dynamodb", "dynamodb_table": "t", "aws_region": "eu-west-1",
                                               "sqlite_path": tmp_path / "x.db"}.items()})
    assert (light.store, light.dynamodb_table, light.aws_region, light.sqlite_path) == \
        (full.store, full.dynamodb_table, full.aws_region, full.sqlite_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text("ECS_EXEC_BOT_SQLITE_PATH=/from/dotenv.db\n")
    assert StoreSettings.from_environment({}, env_file=str(dotenv)).sqlite_path == Path("/from/dotenv.db")
    assert StoreSettings.from_environment({"ECS_EXEC_BOT_SQLITE_PATH": "/env.db"},
                                          env_file=str(dotenv)).sqlite_path == Path("/env.db")
