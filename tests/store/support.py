"""Store fixtures shared by tests/store, tests/runs and tests/slack: a fake clock, a moto DynamoDB
server on 127.0.0.1:0, and factories for both backends (two instances on one backing store each)."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bot.store.base import RunRecord, Store
from bot.store.dynamodb import DynamoStore, create_table
from bot.store.sqlite import SqliteStore

START = 1_795_000_000.0  # 2026-11-18: a fixed "now" so tests never depend on the wall clock
_tables = itertools.count()


class FakeClock:
    """A clock tests move by hand; shared by every store instance in a test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_serialized = threading.Lock()


def serialize_moto_dynamodb() -> None:
    """Make moto's DynamoDB apply one request at a time, as DynamoDB applies each item write atomically.

    moto's backend has no locking: under the concurrency tests (20 threads) two conditional writes could
    both pass their condition, and a response could be serialised while another thread mutates the item
    ("dictionary changed size during iteration" → HTTP 500). Without this, those tests would be testing
    moto's races rather than our conditional writes. Idempotent; affects only DynamoDB in this process.
    """
    from moto.dynamodb.responses import DynamoHandler

    with _serialized:
        original = DynamoHandler.call_action
        if getattr(original, "_serialized", False):
            return
        lock = threading.RLock()

        def call_action(self: Any) -> Any:
            with lock:
                return original(self)

        call_action._serialized = True  # type: ignore[attr-defined]
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]


@contextmanager
def moto_dynamodb_server() -> Iterator[str]:
    """A moto server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    serialize_moto_dynamodb()

    # werkzeug logs every request at INFO; that buries real failures in pytest's captured log.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def dynamodb_client(endpoint: str, **config: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=32, **config),
    )


def new_table(endpoint: str) -> str:
    name = f"ecs-exec-bot-test-{next(_tables)}"
    create_table(dynamodb_client(endpoint), name)
    return name


def store_pair(kind: str, tmp_path: Path, clock: FakeClock, endpoint: str | None) -> tuple[Store, Store]:
    """Two independent store instances over one backing store: two SQLite connections on one file, or two
    boto3 clients on one DynamoDB table. Exactly-once must hold *across* them."""
    if kind == "sqlite":
        path = tmp_path / "bot.db"
        return SqliteStore(path, clock=clock), SqliteStore(path, clock=clock)
    assert endpoint is not None
    table = new_table(endpoint)
    return (
        DynamoStore(table, dynamodb_client(endpoint), clock=clock),
        DynamoStore(table, dynamodb_client(endpoint), clock=clock),
    )


def make_record(request_id: str = "req-1", **overrides: Any) -> RunRecord:
    fields: dict[str, Any] = dict(
        request_id=request_id,
        requester="U0ALICE",
        channel="C0INCIDENT",
        service="web",
        environment="prod",
        command="cat /var/log/nginx/access.log",
        request_hash="0" * 64,
        reason="incident 42",
        rule="oncall-logs",
        approver_users=("U0BOB", "U0CAROL"),
        approver_groups=("S0SRE",),
        min_approvals=1,
        allow_self_approval=False,
        created_at=START,
        expires_at=START + 900,
    )
    fields.update(overrides)
    return RunRecord(**fields)
