from __future__ import annotations

# The store fixtures (both backends, fake clock, moto server) are shared with tests/store.
from tests.store.conftest import clock, dynamodb_endpoint, store, stores  # noqa: F401
