"""Shared state for approvals, exactly-once claims, run slots and the audit trail.

`open_store(settings)` picks the backend named by ``Settings.store`` (``sqlite`` default, ``dynamodb``
for several replicas). The implementations are imported lazily so SQLite users never import boto3.

The store's settings (names, defaults) are owned here: ``bot.settings.Settings`` uses these names, and
``StoreSettings.from_environment`` reads them without pydantic-settings, so `ecs-exec-bot audit` starts in
a fraction of the time (pydantic-settings alone costs ~0.3 s of CPU).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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

STORE_ENV = "ECS_EXEC_BOT_STORE"
SQLITE_PATH_ENV = "ECS_EXEC_BOT_SQLITE_PATH"
DYNAMODB_TABLE_ENV = "ECS_EXEC_BOT_DYNAMODB_TABLE"
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
STORE_KINDS = ("sqlite", "dynamodb")
DEFAULT_SQLITE_PATH = Path("ecs-exec-bot.sqlite3")


class StoreSettingsLike(Protocol):
    @property
    def store(self) -> str: ...
    @property
    def sqlite_path(self) -> Path: ...
    @property
    def dynamodb_table(self) -> str | None: ...
    @property
    def aws_region(self) -> str | None: ...


@dataclass(frozen=True)
class StoreSettings:
    """What `open_store` needs, read like ``Settings`` reads it (environment first, then `.env`)."""

    store: str = "sqlite"
    sqlite_path: Path = DEFAULT_SQLITE_PATH
    dynamodb_table: str | None = None
    aws_region: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, env_file: str | None = ".env",
                         ) -> StoreSettings:
        values: dict[str, str] = {}
        if env_file and os.path.isfile(env_file):
            from dotenv import dotenv_values  # what pydantic-settings reads `.env` with

            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        store = values.get(STORE_ENV, "sqlite")
        if store not in STORE_KINDS:
            raise ConfigError(f"Setting store is invalid: {STORE_ENV}={store!r} is not one of "
                              f"{', '.join(STORE_KINDS)}.", fix="Correct the environment variable (or .env entry).")
        region = next((values[n] for n in REGION_ENVS if values.get(n)), None)
        return cls(store=store, sqlite_path=Path(values.get(SQLITE_PATH_ENV) or DEFAULT_SQLITE_PATH),
                   dynamodb_table=values.get(DYNAMODB_TABLE_ENV) or None, aws_region=region)


def open_store(settings: StoreSettingsLike, *, clock: Callable[[], float] = time.time,
               must_exist: bool = False) -> Store:
    """The store named by the settings. DynamoDB honours the standard AWS variables (region, credentials,
    ``AWS_ENDPOINT_URL_DYNAMODB`` for a local endpoint). ``must_exist``: never create one (read-only
    commands), "No store at PATH" instead."""
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

    return SqliteStore(settings.sqlite_path, clock=clock, must_exist=must_exist)


__all__ = [
    "open_store",
    "StoreSettings",
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
