"""The store is unavailable (SQLite file locked by another process or turned read-only, DynamoDB endpoint
down): the request is refused in the ack with one sentence naming the store, and nothing runs — no
ExecuteCommand, no channel message. Without the store the bot cannot promise "exactly once", so it must
not run anything.

The stores here are built with short waits (SQLite busy timeout, one DynamoDB attempt) so the tests are
quick; the production defaults wait longer (see docs/benchmarks.md, "Findings")."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from bot.config import BotConfig
from bot.services import AckBudget
from bot.store.base import Store
from bot.store.dynamodb import DynamoStore
from bot.store.sqlite import SqliteStore
from bot.store.sqlite_claims import claims_path
from tests.reliability.support import execute_command_calls, serve_bot
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "bot.db"


@contextmanager
def write_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the write lock on the SQLite file (a stuck `sqlite3` shell, a backup job)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_dynamodb() -> DynamoStore:
    client = boto3.client(
        "dynamodb", endpoint_url=f"http://127.0.0.1:{closed_port()}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}),
    )
    return DynamoStore("ecs-exec-bot", client)


async def refused_and_nothing_ran(fake: FakeSlack, config: BotConfig, local_aws: LocalAws, store: Store,
                                  expected: str, fault: AbstractContextManager[Any] | None = None) -> str:
    async with serve_bot(fake, config, local_aws, store) as bot:
        with fault or nullcontext():  # the store fails while the bot is serving
            ack = await bot.command("web echo must-not-run", response_url=fake.response_url("st"))
            assert ack.status == 200
            await asyncio.sleep(0.5)  # anything started after the ack would show by now
    assert expected in ack.message, ack.message
    assert ack.message.count(".") >= 1 and "internal error" not in ack.message
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == [] and fake.calls("/response/st") == []
    return ack.message


async def test_sqlite_locked_by_another_process_refuses_and_runs_nothing(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, sqlite_path: Path
) -> None:
    # The ack's claim is the exactly-once gate; it lives in the claims file (bot/store/sqlite_claims.py).
    store = SqliteStore(sqlite_path, busy_timeout_ms=200)
    text = await refused_and_nothing_ran(fake, config, local_aws, store, "SQLite store",
                                         write_lock_held_elsewhere(Path(claims_path(str(sqlite_path)))))
    assert "database is locked" in text and "ECS_EXEC_BOT_SQLITE_PATH" in text


async def test_sqlite_main_file_locked_after_the_claim_runs_nothing_and_says_so(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, sqlite_path: Path
) -> None:
    # The claim (its own file) is won and the ack says "Running"; the run's first write to the main file
    # then fails: nothing reaches ECS, and the requester is told why, in one sentence with the fix.
    store = SqliteStore(sqlite_path, busy_timeout_ms=200)
    async with serve_bot(fake, config, local_aws, store) as bot:
        with write_lock_held_elsewhere(sqlite_path):
            ack = await bot.command("web echo must-not-run", response_url=fake.response_url("st"))
            told = await asyncio.to_thread(fake.wait_for, "/response/st", 1, 10.0)
    assert ack.status == 200 and "must-not-run" in ack.message
    assert execute_command_calls() == []
    text = json.dumps(told[0].json())
    assert "SQLite store" in text and "database is locked" in text and "ECS_EXEC_BOT_SQLITE_PATH" in text


async def test_sqlite_turned_read_only_refuses_and_runs_nothing(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, sqlite_path: Path
) -> None:
    store = SqliteStore(sqlite_path)

    @contextmanager
    def read_only() -> Iterator[None]:
        # What a volume remounted read-only looks like to SQLite (an error on the next write). Tests run
        # as root here, so file permissions cannot produce it.
        store._conn.execute("PRAGMA query_only = ON")  # noqa: SLF001 - fault injection
        store._claims_file()._conn.execute("PRAGMA query_only = ON")  # noqa: SLF001 - the same volume
        yield

    await refused_and_nothing_ran(fake, config, local_aws, store, "SQLite store", read_only())


async def test_dynamodb_endpoint_down_refuses_and_runs_nothing(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any
) -> None:
    text = await refused_and_nothing_ran(fake, config, local_aws, unreachable_dynamodb(), "DynamoDB table")
    assert "cannot be used" in text


async def test_a_refusal_for_lack_of_store_still_leaves_an_audit_log_line(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ecs_exec_bot.audit")
    await refused_and_nothing_ran(fake, config, local_aws, unreachable_dynamodb(), "DynamoDB table")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecs_exec_bot.audit"
             and r.getMessage().startswith("{")]
    assert [line["kind"] for line in lines] == ["refused"]


async def test_a_store_that_hangs_is_bounded_in_the_ack_and_a_late_claim_runs_nothing(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, sqlite_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLite's busy timeout (here 2 s, 5 s in production) is longer than the ack may wait: the claim is
    bounded by `Services.ack_store_timeout`, the ack says the store is busy, and when the lock goes away
    and the claim completes late, nothing runs for it."""
    caplog.set_level(logging.INFO, logger="ecs_exec_bot.audit")
    store = SqliteStore(sqlite_path, busy_timeout_ms=2000)
    async with serve_bot(fake, config, local_aws, store, ack=AckBudget(store_s=0.3)) as bot:
        with write_lock_held_elsewhere(Path(claims_path(str(sqlite_path)))):
            started = asyncio.get_running_loop().time()
            ack = await bot.command("web echo must-not-run", response_url=fake.response_url("busy"))
            waited = asyncio.get_running_loop().time() - started
            await asyncio.sleep(0.3)
        await asyncio.sleep(2.5)  # the claim thread gets the lock and completes, late
    assert ack.status == 200 and waited < 1.5, waited
    assert "The bot's state store is busy; try again in a moment." in ack.message, ack.message
    assert execute_command_calls() == []
    assert fake.calls("chat.postMessage") == [] and fake.calls("/response/busy") == []
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecs_exec_bot.audit"
             and r.getMessage().startswith("{")]
    assert [line["kind"] for line in lines] == ["refused"]
