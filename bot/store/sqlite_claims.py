"""The SQLite store's request claims (exactly-once delivery of a command or a click), in a file of their own.

The ack path claims on the event loop (`try_claim_now`) and needs SQLite's write lock for it. In the
store's main file that lock is also taken by every post-ack write (audit events, run records, slots),
each held across the thread's waits for the GIL while the loop runs: under a flood the acks' claims
queued behind them. Here only claims take this file's lock, and they all come from the loop.

Claims matter for minutes (Slack's retries), so this file trades durability for speed: no fsync
(``synchronous = OFF``; an OS crash forgets recent claims, as a restart of a replica forgets nothing else
that matters to them), automatic checkpoints, and expired claims deleted as new ones arrive.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable

# Expired claims are deleted once every this many claims (a few ms for that many rows).
PRUNE_EVERY_CLAIMS = 1000

_CLAIM = (
    "INSERT INTO claims (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE claims.expires_at <= ?"
)


def claims_path(store_path: str) -> str:
    """Next to the store's file, named as SQLite names its own (``…-wal``, ``…-shm``)."""
    return store_path if store_path == ":memory:" else f"{store_path}-claims"


class SqliteClaims:
    """Claims in ``path``: `claim` (waits up to ``busy_timeout_ms`` for another process) and
    `try_claim_now` (never waits). Raises ``sqlite3.Error``; the store turns it into `StoreError`."""

    def __init__(self, path: str, *, busy_timeout_ms: int, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._since_prune = 0
        self._conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._conn.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_at REAL NOT NULL)")

    def claim(self, key: str, ttl_seconds: float) -> bool:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            return self._claim_in_transaction(key, ttl_seconds)

    def try_claim_now(self, key: str, ttl_seconds: float) -> bool | None:
        """`claim`, or None when it would have to wait (this file's lock held elsewhere)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            self._conn.execute("PRAGMA busy_timeout = 0")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    return None
                raise
            finally:
                self._conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            return self._claim_in_transaction(key, ttl_seconds)
        finally:
            self._lock.release()

    def _claim_in_transaction(self, key: str, ttl_seconds: float) -> bool:
        try:
            now = self._clock()
            won = self._conn.execute(_CLAIM, (key, now + ttl_seconds, now)).rowcount == 1
            self._since_prune += 1
            if self._since_prune >= PRUNE_EVERY_CLAIMS:
                self._since_prune = 0
                self._conn.execute("DELETE FROM claims WHERE expires_at <= ?", (now,))
            self._conn.execute("COMMIT")
            return won
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def adopt(self, claims: Iterable[tuple[str, float]]) -> None:
        """Take over unexpired claims (key, expires_at) an older bot kept in the store's main file."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR IGNORE INTO claims (key, expires_at) VALUES (?, ?)", claims)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc) or "busy" in str(exc)
