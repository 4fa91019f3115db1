from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store.base import Store
from tests.store.support import FakeClock, moto_dynamodb_server, store_pair


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    with moto_dynamodb_server() as endpoint:
        yield endpoint


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "dynamodb"])
def stores(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[tuple[Store, Store]]:
    endpoint = request.getfixturevalue("dynamodb_endpoint") if request.param == "dynamodb" else None
    pair = store_pair(request.param, tmp_path, clock, endpoint)
    yield pair
    for store in pair:
        store.close()


@pytest.fixture
def store(stores: tuple[Store, Store]) -> Store:
    return stores[0]
