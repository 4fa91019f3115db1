"""`ecs-exec-bot audit` end to end through the real CLI entry point, on SQLite and DynamoDB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.audit import format_table, parse_time
from bot.errors import UsageError
from bot.store.base import AuditEvent
from bot.store.dynamodb import DynamoStore
from bot.store.sqlite import SqliteStore
from tests.store.support import START, dynamodb_client, new_table

HOUR = 3600.0


def _events(now: float) -> list[AuditEvent]:
    common = dict(requester="U0ALICE", environment="prod", command="cat /var/log/nginx/access.log")
    return [
        AuditEvent("e1", "req-1", "requested", now - 30 * HOUR, user="U0ALICE", service="web", **common),
        AuditEvent("e2", "req-2", "approved", now - 2 * HOUR, user="U0BOB", service="web", **common),
        AuditEvent("e3", "req-2", "finished", now - HOUR, user="U0ALICE", service="web", **common,
                   details={"exit_code": 0, "bytes": 812, "sha256": "ab" * 32}),  # fmt: skip
        AuditEvent("e4", "req-3", "refused", now - 60, user="U0MALLORY", service="api", **common,
                   details={"reason": "no rule allows it"}),  # fmt: skip
    ]


@pytest.fixture(params=["sqlite", "dynamodb"])
def configured(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    """Points the CLI's Settings at a store holding `_events(now)`; returns now."""
    now = time.time()  # the CLI reads the real clock; events are placed relative to it
    if request.param == "sqlite":
        monkeypatch.setenv("ECS_EXEC_BOT_STORE", "sqlite")
        monkeypatch.setenv("ECS_EXEC_BOT_SQLITE_PATH", str(tmp_path / "bot.db"))
        store: SqliteStore | DynamoStore = SqliteStore(tmp_path / "bot.db")
    else:
        endpoint = request.getfixturevalue("dynamodb_endpoint")
        table = new_table(endpoint)
        for name, value in {"ECS_EXEC_BOT_STORE": "dynamodb", "ECS_EXEC_BOT_DYNAMODB_TABLE": table,
                            "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "AWS_REGION": "us-east-1",
                            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        store = DynamoStore(table, dynamodb_client(endpoint))
    for event in _events(now):
        store.append_audit(event)
    store.close()
    return now


def _json_lines(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["audit", "--json", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_filters_and_json(configured: float, capsys: pytest.CaptureFixture[str]) -> None:
    assert [e["event_id"] for e in _json_lines(capsys)] == ["e2", "e3", "e4"]  # default: last 24 h, oldest first
    assert [e["event_id"] for e in _json_lines(capsys, "--since", "2d")] == ["e1", "e2", "e3", "e4"]
    assert [e["event_id"] for e in _json_lines(capsys, "--since", "7d", "--user", "U0BOB", "U0MALLORY")] == [
        "e2", "e4"
    ]  # fmt: skip
    assert [e["event_id"] for e in _json_lines(capsys, "--service", "api")] == ["e4"]
    assert [e["event_id"] for e in _json_lines(capsys, "--since", "7d", "--limit", "2")] == ["e3", "e4"]
    assert [e["event_id"] for e in _json_lines(capsys, "--request", "req-2", "--until", "90m")] == ["e2"]
    (finished,) = _json_lines(capsys, "--request", "req-2", "--since", "90m")
    assert finished["details"] == {"exit_code": 0, "bytes": 812, "sha256": "ab" * 32}
    assert finished["event"] == "finished" and finished["user"] == "U0ALICE"


def test_table_output(configured: float, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--service", "api"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["TIME", "(UTC)", "EVENT", "REQUEST", "USER", "SERVICE", "COMMAND", "DETAILS"]
    assert "refused  req-3" in row and "api (prod)" in row and row.endswith("reason=no rule allows it")


def test_prune(configured: float, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--prune-older-than", "1"]) == 0
    assert capsys.readouterr().out == "deleted 1 audit record(s) older than 1 day(s)\n"
    assert [e["event_id"] for e in _json_lines(capsys, "--since", "7d")] == ["e2", "e3", "e4"]


def test_bad_arguments_are_usage_errors(configured: float, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--since", "yesterday"]) == UsageError.exit_status
    assert "Cannot read the time 'yesterday'. Use a duration such as 30m" in capsys.readouterr().err
    assert main(["audit", "--limit", "0"]) == UsageError.exit_status


def test_parse_time_and_empty_table() -> None:
    assert parse_time("90m", START) == START - 5400
    assert parse_time("1.5h", START) == START - 5400
    assert parse_time("2w", START) == START - 14 * 86400
    assert parse_time("2026-11-18T11:06:40", 0) == START
    assert parse_time("2026-11-18T12:06:40+01:00", 0) == START
    assert format_table([]) == "no audit records match"


def test_long_commands_are_cut_in_the_table() -> None:
    event = AuditEvent("e", "r", "requested", START, command="x" * 100)
    assert "x" * 47 + "…" in format_table([event]) and "x" * 48 not in format_table([event])
