"""Shared state for approvals, exactly-once claims, run slots and the audit trail.

`open_store(settings)` picks the backend named by ``Settings.store`` (``sqlite`` default, ``dynamodb``
for several replicas). The implementations are imported lazily so SQLite users never import boto3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.errors import ConfigError
from bot.store.base import (
    TERMINAL_STATES,
    TRANSITIONS,
    AuditEvent,
    AuditQuery,
    RunRecord,
    RunState,
    Store,
    Transition,
    Vote,
)

if TYPE_CHECKING:
    from bot.config import Settings


def open_store(settings: Settings, *, clock: Callable[[], float] = time.time) -> Store:
    """The store named by the settings. DynamoDB honours the standard AWS variables (region, credentials,
    ``AWS_ENDPOINT_URL_DYNAMODB`` for a local endpoint)."""
    if settings.store == "dynamodb":
        import boto3

        from bot.store.dynamodb import DynamoStore

        if not settings.dynamodb_table:
            raise ConfigError(
                "ECS_EXEC_BOT_STORE=dynamodb needs a table name.", fix="Set ECS_EXEC_BOT_DYNAMODB_TABLE."
            )
        return DynamoStore(
            settings.dynamodb_table, boto3.client("dynamodb", region_name=settings.aws_region), clock=clock
        )
    from bot.store.sqlite import SqliteStore

    return SqliteStore(settings.sqlite_path, clock=clock)


__all__ = [
    "open_store",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "RunRecord",
    "RunState",
    "AuditEvent",
    "AuditQuery",
    "Store",
    "Transition",
    "Vote",
]
