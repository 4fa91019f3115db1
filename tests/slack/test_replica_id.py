"""Replica ids: unique per process (and per `Services`), overridable, never the old shared "local"."""

from __future__ import annotations

import os

import pytest

from handlers.app import REPLICA_ID_ENV, Services, replica_id


def test_every_services_gets_its_own_replica_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLICA_ID_ENV, raising=False)
    a = Services(config=None, store=None, backend=None, groups=None)  # type: ignore[arg-type]
    b = Services(config=None, store=None, backend=None, groups=None)  # type: ignore[arg-type]
    assert a.replica_id != b.replica_id and "local" not in (a.replica_id, b.replica_id)
    assert f"-{os.getpid()}-" in a.replica_id


def test_the_replica_id_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLICA_ID_ENV, "bot-blue-1")
    assert replica_id() == "bot-blue-1"
