"""`SqliteStore.try_claim_now`: the ack path's claim on the event loop — never waits, same answer as `claim`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.store.sqlite import SqliteStore


def test_it_claims_once_like_claim(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert store.try_claim_now("k", 60) is True
    assert store.try_claim_now("k", 60) is False
    assert store.claim("k", 60) is False


def test_it_never_waits_and_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=5000)
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        assert store.try_claim_now("k", 60) is None  # at once, not after the 5 s busy timeout
    finally:
        other.execute("ROLLBACK")
        other.close()
    with store._lock:  # noqa: SLF001 - this instance busy in another thread
        assert store.try_claim_now("k", 60) is None
    assert store.try_claim_now("k", 60) is True
    assert store.claim("k2", 60) is True  # the busy timeout is back for the blocking calls
