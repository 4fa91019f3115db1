"""Replica ids: unique per process (and per `Services`), overridable, never the old shared "local"."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from bot.config import FollowupsConfig
from bot.services import REPLICA_ID_ENV, build_services, replica_id
from bot.store.sqlite import SqliteStore


def test_every_services_gets_its_own_replica_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLICA_ID_ENV, raising=False)
    config = SimpleNamespace(policy=SimpleNamespace(redact=()), limits=None, fanout=SimpleNamespace(concurrency=2),
                             followups=FollowupsConfig())
    store = SqliteStore(":memory:")
    limiter = object()
    a = build_services(config, store, None, None, limiter=limiter)  # type: ignore[arg-type]
    b = build_services(config, store, None, None, limiter=limiter)  # type: ignore[arg-type]
    assert a.replica_id != b.replica_id and "local" not in (a.replica_id, b.replica_id)
    assert f"-{os.getpid()}-" in a.replica_id


def test_the_replica_id_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLICA_ID_ENV, "bot-blue-1")
    assert replica_id() == "bot-blue-1"
