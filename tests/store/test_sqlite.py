"""SQLite specifics: WAL on one file, self-migration, state surviving a restart, clear failures."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.store.base import RunState, Vote
from bot.store.sqlite import MIGRATIONS, SqliteStore
from bot.store.sqlite_claims import claims_path
from tests.store.support import START, FakeClock, make_record


def test_new_file_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bot.db"
    store = SqliteStore(path)
    assert store.schema_version() == len(MIGRATIONS)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r[0] for r in db.execute("SELECT version FROM schema_version")] == list(
            range(1, len(MIGRATIONS) + 1)
        )
    SqliteStore(path).close()  # opening again applies nothing twice
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)


def test_pending_approval_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    first = SqliteStore(tmp_path / "bot.db", clock=clock)
    first.create_run(make_record(min_approvals=2))
    first.add_vote("req-1", Vote("U0BOB", START + 1))
    first.close()

    second = SqliteStore(tmp_path / "bot.db", clock=clock)
    record = second.get_run("req-1")
    assert record is not None and record.state is RunState.PENDING
    assert record.approvers_so_far == ("U0BOB",)
    assert second.add_vote("req-1", Vote("U0CAROL", START + 2)) is not None


def test_a_newer_schema_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer than this bot understands") as info:
        SqliteStore(path)
    assert info.value.fix and "Upgrade the bot" in info.value.fix


def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match=r"The SQLite store at .*file/bot.db cannot be used") as info:
        SqliteStore(blocker / "bot.db")
    assert info.value.fix and "ECS_EXEC_BOT_SQLITE_PATH" in info.value.fix


def test_a_lock_held_past_busy_timeout_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = SqliteStore(path, busy_timeout_ms=50)
    for file, write in ((path, lambda: store.heartbeat("r1", 10)), (claims_path(str(path)), lambda: store.claim("k", 10))):
        holder = sqlite3.connect(file, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process stuck inside a write transaction
        try:
            with pytest.raises(StoreError, match="database is locked"):
                write()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        write()  # and the store works again once the lock is gone
    assert store.claim("k", 10) is False  # the claim above was won
