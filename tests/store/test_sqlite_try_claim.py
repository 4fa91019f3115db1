"""`SqliteStore.try_claim_now`: the ack path's claim on the event loop — never waits, same answer as `claim`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.store.sqlite import SqliteStore
from bot.store.sqlite_claims import PRUNE_EVERY_CLAIMS, claims_path


def test_it_claims_once_like_claim(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert store.try_claim_now("k", 60) is True
    assert store.try_claim_now("k", 60) is False
    assert store.claim("k", 60) is False


def test_it_never_waits_and_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=5000)
    other = sqlite3.connect(claims_path(str(tmp_path / "s.db")), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        assert store.try_claim_now("k", 60) is None  # at once, not after the 5 s busy timeout
    finally:
        other.execute("ROLLBACK")
        other.close()
    with store._claims_file()._lock:  # noqa: SLF001 - this instance's claims busy in another thread
        assert store.try_claim_now("k", 60) is None
    assert store.try_claim_now("k", 60) is True
    assert store.claim("k2", 60) is True  # the busy timeout is back for the blocking calls


def test_claims_never_wait_behind_the_main_files_writes(tmp_path: Path) -> None:
    # Post-ack writes (audit, runs, slots) hold the main file's write lock; the ack's claim does not need it.
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=5000)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with store._lock:  # noqa: SLF001 - and this instance busy writing the main file in another thread
            assert store.try_claim_now("k", 60) is True
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_an_older_bots_unexpired_claims_move_to_the_claims_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    old = sqlite3.connect(path, isolation_level=None)  # what an older bot left in the main file
    old.executemany("INSERT INTO claims (key, expires_at) VALUES (?, ?)", [("live", 4e9), ("stale", 1.0)])
    old.close()
    Path(claims_path(str(path))).unlink()
    store = SqliteStore(path)
    assert store.claim("live", 60) is False  # still claimed: a Slack retry of it runs nothing
    assert store.claim("stale", 60) is True
    main = sqlite3.connect(path)
    assert main.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # moved, once
    main.close()


def test_expired_claims_are_deleted_as_new_ones_arrive(tmp_path: Path) -> None:
    now = [1000.0]
    store = SqliteStore(tmp_path / "s.db", clock=lambda: now[0])
    for n in range(PRUNE_EVERY_CLAIMS - 1):
        assert store.try_claim_now(f"old-{n}", 60) is True
    now[0] += 61
    assert store.claim("new-0", 60) is True  # the claim that triggers the pruning
    assert store._claims_file().count() == 1  # noqa: SLF001


def test_a_read_only_store_opens_no_claims_file(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqliteStore(path).close()
    Path(claims_path(str(path))).unlink()
    SqliteStore(path, must_exist=True).close()
    assert not Path(claims_path(str(path))).exists()
