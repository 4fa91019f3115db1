"""SQLite store: one file, WAL, the default for a single replica (or several processes on one host); its
request claims live in a second file (``bot/store/sqlite_claims.py`` says why).

Every read-modify-write runs in ``BEGIN IMMEDIATE`` so it holds SQLite's single write lock from the first
read: two `SqliteStore` instances on one file (two processes, or two connections in one) serialise there,
and ``busy_timeout`` makes the loser wait instead of failing. CAS updates are ``UPDATE … WHERE state = ?``
and the winner is the one whose ``rowcount`` is 1.

The schema migrates itself on open (``schema_version`` table, migrations applied in order inside one
write transaction, so two replicas starting at once cannot both apply one). It is documented in
docs/store.md.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.errors import StoreError
from bot.store.base import (
    AuditEvent,
    AuditQuery,
    RunRecord,
    RunState,
    Transition,
    Vote,
    check_transition,
)
from bot.store.sqlite_claims import SqliteClaims, claims_path

# Append-only: never edit a shipped migration, add the next one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE claims (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    CREATE TABLE approvals (
        request_id TEXT PRIMARY KEY,
        requester TEXT NOT NULL, channel TEXT NOT NULL, service TEXT NOT NULL, environment TEXT NOT NULL,
        command TEXT NOT NULL, request_hash TEXT NOT NULL, reason TEXT NOT NULL, rule TEXT NOT NULL,
        approver_users TEXT NOT NULL, approver_groups TEXT NOT NULL,
        min_approvals INTEGER NOT NULL, allow_self_approval INTEGER NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, state TEXT NOT NULL,
        message_ts TEXT, decided_by TEXT, state_reason TEXT, owner TEXT, run_deadline REAL,
        updated_at REAL NOT NULL, params TEXT NOT NULL
    );
    CREATE INDEX approvals_by_state ON approvals (state, created_at);
    CREATE TABLE votes (
        request_id TEXT NOT NULL REFERENCES approvals (request_id),
        approver TEXT NOT NULL, at REAL NOT NULL, break_glass INTEGER NOT NULL,
        PRIMARY KEY (request_id, approver)
    );
    CREATE TABLE slots (
        scope TEXT NOT NULL, holder TEXT NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (scope, holder)
    );
    CREATE TABLE replicas (replica_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    CREATE TABLE audit (
        event_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
        user TEXT, requester TEXT, channel TEXT, service TEXT, environment TEXT, command TEXT,
        details TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE INDEX audit_by_user ON audit (user, at);
    CREATE INDEX audit_by_service ON audit (service, at);
    CREATE INDEX audit_by_request ON audit (request_id, at);
    """,
    # 2: the run's SSM session ids (JSON list), for the watchdog's TerminateSession.
    "ALTER TABLE approvals ADD COLUMN sessions TEXT NOT NULL DEFAULT '[]'",
)

# The WAL is checkpointed by `_write` every this many write transactions (automatic checkpoints are off:
# see `SqliteStore.__init__`); about what SQLite's default of 1,000 pages amounts to for this workload.
CHECKPOINT_EVERY_WRITES = 200

_APPROVAL_COLUMNS = (
    "request_id, requester, channel, service, environment, command, request_hash, reason, rule, "
    "approver_users, approver_groups, min_approvals, allow_self_approval, created_at, expires_at, state, "
    "message_ts, decided_by, state_reason, owner, run_deadline, updated_at, params, sessions"
)
_AUDIT_COLUMNS = (
    "event_id, request_id, kind, at, user, requester, channel, service, environment, command, details"
)


class SqliteStore:
    """`Store` on one SQLite file. Safe to share between threads (calls are serialised per instance)."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], float] = time.time,
        must_exist: bool = False,
    ) -> None:
        self.path = str(path)
        if must_exist and self.path != ":memory:" and not Path(self.path).is_file():
            # Read-only commands (`audit`) must not leave a new empty database, in a new directory, behind
            # a typo in ECS_EXEC_BOT_SQLITE_PATH; "no records" would then hide the real trail.
            raise StoreError(
                f"No store at {self.path}.",
                fix="Point ECS_EXEC_BOT_SQLITE_PATH at the bot's database (the bot creates it when it starts).",
            )
        self._clock = clock
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._writes_since_checkpoint = 0
        # One connection per instance behind a lock: sqlite3 connections are not safe for concurrent use,
        # and callers reach us from asyncio.to_thread worker threads.
        self._lock = threading.Lock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the last
            # commits, which is acceptable for this workload and much faster than FULL.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # No automatic checkpoint inside a commit: `try_claim_now` commits on the event loop, which
            # must not copy the WAL and fsync there. `_write` (always in a thread) checkpoints instead.
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        except (sqlite3.Error, OSError) as exc:
            raise self._error(exc) from exc
        self._migrate()
        self._claims_lock = threading.Lock()
        self._claims: SqliteClaims | None = None
        if not must_exist:  # a read-only command never claims: it opens no claims file
            self._claims_file()

    # -- plumbing --------------------------------------------------------------------------------
    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"The SQLite store at {self.path} cannot be used ({exc}).",
            fix="Check that the directory exists and is writable and the disk is not full, "
            "or set ECS_EXEC_BOT_SQLITE_PATH to another file.",
        )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the file's write lock before its first read."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                self._writes_since_checkpoint += 1
                if self._writes_since_checkpoint >= CHECKPOINT_EVERY_WRITES:
                    self._writes_since_checkpoint = 0
                    # PASSIVE: copies what no reader needs, never waits for one (what autocheckpoint does).
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"The SQLite store at {self.path} has schema version {current}, newer than this "
                    f"bot understands ({len(MIGRATIONS)}).",
                    fix="Upgrade the bot, or point ECS_EXEC_BOT_SQLITE_PATH at a new file.",
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                # executescript() would COMMIT our transaction; run the statements one by one instead.
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._claims_lock:
            if self._claims is not None:
                self._claims.close()

    # -- idempotency (in their own file: bot/store/sqlite_claims.py) ----------------------------------
    def claim(self, key: str, ttl_seconds: float) -> bool:
        try:
            return self._claims_file().claim(key, ttl_seconds)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def try_claim_now(self, key: str, ttl_seconds: float) -> bool | None:
        """`claim` without ever waiting, for a caller on the event loop (the slash command's ack path):
        ``None`` when it would have to wait (the claims file's lock held by another thread or process),
        and the caller then uses `claim` in a thread, bounded. A broken store raises `StoreError`."""
        try:
            return self._claims_file().try_claim_now(key, ttl_seconds)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _claims_file(self) -> SqliteClaims:
        with self._claims_lock:
            if self._claims is None:
                try:
                    self._claims = SqliteClaims(claims_path(self.path), busy_timeout_ms=self._busy_timeout_ms,
                                                clock=self._clock)
                    self._adopt_old_claims(self._claims)
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
            return self._claims

    def _adopt_old_claims(self, claims: SqliteClaims) -> None:
        """Claims an older bot wrote to the main file move to the claims file (the unexpired ones), once."""
        with self._write() as db:
            rows = db.execute("SELECT key, expires_at FROM claims WHERE expires_at > ?", (self._clock(),))
            claims.adopt((str(r[0]), float(r[1])) for r in rows.fetchall())
            db.execute("DELETE FROM claims")

    # -- approvals -------------------------------------------------------------------------------
    def create_run(self, record: RunRecord) -> bool:
        now = self._clock()
        with self._write() as db:
            cur = db.execute(
                f"INSERT OR IGNORE INTO approvals ({_APPROVAL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.request_id, record.requester, record.channel, record.service,
                    record.environment, record.command, record.request_hash, record.reason, record.rule,
                    json.dumps(list(record.approver_users)), json.dumps(list(record.approver_groups)),
                    record.min_approvals, int(record.allow_self_approval), record.created_at,
                    record.expires_at, record.state.value, record.message_ts, record.decided_by,
                    record.state_reason, record.owner, record.run_deadline, record.updated_at or now,
                    json.dumps(dict(record.params)), json.dumps(list(record.sessions)),
                ),
            )  # fmt: skip
            if cur.rowcount != 1:
                return False
            db.executemany(
                "INSERT INTO votes (request_id, approver, at, break_glass) VALUES (?, ?, ?, ?)",
                [(record.request_id, v.approver, v.at, int(v.break_glass)) for v in record.votes],
            )
            return True

    def get_run(self, request_id: str) -> RunRecord | None:
        with self._read() as db:
            return self._load(db, request_id)

    def set_message_ts(self, request_id: str, message_ts: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE approvals SET message_ts = ?, updated_at = ? WHERE request_id = ?",
                (message_ts, self._clock(), request_id),
            )

    def add_session(self, request_id: str, session_id: str) -> None:
        with self._write() as db:
            row = db.execute("SELECT sessions FROM approvals WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                return
            sessions = [*json.loads(row["sessions"]), session_id]
            db.execute(
                "UPDATE approvals SET sessions = ?, updated_at = ? WHERE request_id = ?",
                (json.dumps(sessions), self._clock(), request_id),
            )

    def add_vote(self, request_id: str, vote: Vote) -> RunRecord | None:
        now = self._clock()
        with self._write() as db:
            row = db.execute(
                "SELECT 1 FROM approvals WHERE request_id = ? AND state = ? AND expires_at > ?",
                (request_id, RunState.PENDING.value, now),
            ).fetchone()
            if row is None:
                return None
            cur = db.execute(
                "INSERT OR IGNORE INTO votes (request_id, approver, at, break_glass) VALUES (?, ?, ?, ?)",
                (request_id, vote.approver, vote.at, int(vote.break_glass)),
            )
            if cur.rowcount != 1:
                return None
            db.execute("UPDATE approvals SET updated_at = ? WHERE request_id = ?", (now, request_id))
            return self._load(db, request_id)

    def transition(
        self,
        request_id: str,
        expected: RunState,
        new: RunState,
        change: Transition | None = None,
        *,
        require_unexpired: bool = False,
        expected_owner: str | None = None,
    ) -> RunRecord | None:
        check_transition(expected, new)
        change = change or Transition()
        now = self._clock()
        where = "request_id = ? AND state = ?"
        args: list[Any] = [request_id, expected.value]
        if require_unexpired:
            where += " AND expires_at > ?"
            args.append(now)
        if expected_owner is not None:
            where += " AND owner = ?"
            args.append(expected_owner)
        with self._write() as db:
            cur = db.execute(
                "UPDATE approvals SET state = ?, updated_at = ?, "
                "decided_by = COALESCE(?, decided_by), state_reason = COALESCE(?, state_reason), "
                "owner = COALESCE(?, owner), run_deadline = COALESCE(?, run_deadline) "
                f"WHERE {where}",
                [
                    new.value,
                    now,
                    change.decided_by,
                    change.state_reason,
                    change.owner,
                    change.run_deadline,
                    *args,
                ],
            )
            if cur.rowcount != 1:
                return None
            return self._load(db, request_id)

    def list_runs(self, state: RunState, limit: int = 100) -> list[RunRecord]:
        with self._read() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT request_id FROM approvals WHERE state = ? ORDER BY created_at LIMIT ?",
                    (state.value, limit),
                )
            ]
            return [rec for rid in ids if (rec := self._load(db, rid)) is not None]

    def _load(self, db: sqlite3.Connection, request_id: str) -> RunRecord | None:
        row = db.execute(
            f"SELECT {_APPROVAL_COLUMNS} FROM approvals WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        votes = tuple(
            Vote(approver=v["approver"], at=v["at"], break_glass=bool(v["break_glass"]))
            for v in db.execute(
                "SELECT approver, at, break_glass FROM votes WHERE request_id = ? ORDER BY at, approver",
                (request_id,),
            )
        )
        return RunRecord(
            request_id=row["request_id"],
            requester=row["requester"],
            channel=row["channel"],
            service=row["service"],
            environment=row["environment"],
            command=row["command"],
            request_hash=row["request_hash"],
            reason=row["reason"],
            rule=row["rule"],
            approver_users=tuple(json.loads(row["approver_users"])),
            approver_groups=tuple(json.loads(row["approver_groups"])),
            min_approvals=row["min_approvals"],
            allow_self_approval=bool(row["allow_self_approval"]),
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            state=RunState(row["state"]),
            message_ts=row["message_ts"],
            votes=votes,
            decided_by=row["decided_by"],
            state_reason=row["state_reason"],
            owner=row["owner"],
            run_deadline=row["run_deadline"],
            updated_at=row["updated_at"],
            params=json.loads(row["params"]),
            sessions=tuple(json.loads(row["sessions"])),
        )

    # -- run slots -------------------------------------------------------------------------------
    def acquire_slot(self, scope: str, limit: int, holder: str, ttl_seconds: float) -> bool:
        now = self._clock()
        with self._write() as db:
            db.execute("DELETE FROM slots WHERE scope = ? AND expires_at <= ?", (scope, now))
            held = db.execute(
                "SELECT 1 FROM slots WHERE scope = ? AND holder = ?", (scope, holder)
            ).fetchone()
            if held is None:
                (count,) = db.execute("SELECT COUNT(*) FROM slots WHERE scope = ?", (scope,)).fetchone()
                if count >= limit:
                    return False
            db.execute(
                "INSERT INTO slots (scope, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, holder) DO UPDATE SET expires_at = excluded.expires_at",
                (scope, holder, now + ttl_seconds),
            )
            return True

    def release_slot(self, scope: str, holder: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM slots WHERE scope = ? AND holder = ?", (scope, holder))

    def active_slots(self, scope: str) -> int:
        with self._read() as db:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM slots WHERE scope = ? AND expires_at > ?", (scope, self._clock())
            ).fetchone()
            return int(count)

    # -- replicas --------------------------------------------------------------------------------
    def heartbeat(self, replica_id: str, ttl_seconds: float) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO replicas (replica_id, expires_at) VALUES (?, ?) "
                "ON CONFLICT (replica_id) DO UPDATE SET expires_at = excluded.expires_at",
                (replica_id, self._clock() + ttl_seconds),
            )

    def live_replicas(self) -> set[str]:
        with self._read() as db:
            rows = db.execute("SELECT replica_id FROM replicas WHERE expires_at > ?", (self._clock(),))
            return {r[0] for r in rows}

    # -- audit -----------------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent, retain_seconds: float | None = None) -> None:
        # SQLite has no native expiry: retention is `prune_audit`, so retain_seconds is not needed here.
        with self._write() as db:
            db.execute(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.event_id, event.request_id, event.kind, event.at, event.user, event.requester,
                    event.channel, event.service, event.environment, event.command,
                    json.dumps(dict(event.details)),
                ),
            )  # fmt: skip

    def query_audit(self, query: AuditQuery) -> list[AuditEvent]:
        clauses: list[str] = []
        args: list[Any] = []
        if query.since is not None:
            clauses.append("at >= ?")
            args.append(query.since)
        if query.until is not None:
            clauses.append("at < ?")
            args.append(query.until)
        if query.users:
            clauses.append(f"user IN ({', '.join('?' for _ in query.users)})")
            args.extend(query.users)
        if query.service is not None:
            clauses.append("service = ?")
            args.append(query.service)
        if query.request_id is not None:
            clauses.append("request_id = ?")
            args.append(query.request_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._read() as db:
            rows = db.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit {where} ORDER BY at DESC, event_id DESC LIMIT ?",
                [*args, query.limit],
            ).fetchall()
        return [_event_from_row(r) for r in rows]

    def prune_audit(self, before: float) -> int:
        with self._write() as db:
            return db.execute("DELETE FROM audit WHERE at < ?", (before,)).rowcount


def _event_from_row(row: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(
        event_id=row["event_id"],
        request_id=row["request_id"],
        kind=row["kind"],
        at=row["at"],
        user=row["user"],
        requester=row["requester"],
        channel=row["channel"],
        service=row["service"],
        environment=row["environment"],
        command=row["command"],
        details=json.loads(row["details"]),
    )
