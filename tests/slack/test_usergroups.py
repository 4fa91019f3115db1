"""UserGroupCache against FakeSlack: caching, single flight, bounded waits, stale-on-error, deny on error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from handlers.app import build_web_client
from handlers.usergroups import UserGroupCache
from tests.support.fake_slack import FakeSlack, Reply


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        f.usergroups = {"S0ONCALL": ["U0ALICE", "U0BOB"], "S0SRE": ["U0CAROL"]}
        yield f


async def test_membership_is_cached_per_group(fake: FakeSlack) -> None:
    clock = Clock()
    cache = UserGroupCache(build_web_client(fake.bot_token, fake.api_url), ttl=60, clock=clock)
    assert await cache.groups_of("U0ALICE", ["S0ONCALL", "S0SRE"]) == {"S0ONCALL"}
    assert await cache.groups_of("U0CAROL", ["S0ONCALL", "S0SRE"]) == {"S0SRE"}
    assert len(fake.calls("usergroups.users.list")) == 2
    clock.now += 61
    fake.usergroups["S0SRE"].append("U0ALICE")
    assert await cache.groups_of("U0ALICE", ["S0ONCALL", "S0SRE"]) == {"S0ONCALL", "S0SRE"}
    assert len(fake.calls("usergroups.users.list")) == 4


async def test_concurrent_lookups_share_one_fetch(fake: FakeSlack) -> None:
    cache = UserGroupCache(build_web_client(fake.bot_token, fake.api_url))
    results = await asyncio.gather(*(cache.groups_of(f"U{i}", ["S0ONCALL"]) for i in range(20)))
    assert all(r == frozenset() for r in results)
    assert len(fake.calls("usergroups.users.list")) == 1


async def test_a_slow_lookup_returns_none_and_finishes_in_the_background(fake: FakeSlack) -> None:
    released = threading.Event()

    def slow(_call):  # type: ignore[no-untyped-def]
        released.wait(10)  # the fake's server thread blocks until the test lets it answer
        return None

    fake.overrides["usergroups.users.list"] = slow
    cache = UserGroupCache(build_web_client(fake.bot_token, fake.api_url))
    assert await cache.groups_of_within("U0ALICE", ["S0ONCALL"], wait_s=0.05) is None
    released.set()
    assert await cache.groups_of("U0ALICE", ["S0ONCALL"]) == {"S0ONCALL"}
    assert len(fake.calls("usergroups.users.list")) == 1  # the shielded fetch was reused, not restarted


async def test_errors_keep_stale_members_then_deny(fake: FakeSlack) -> None:
    clock = Clock()
    cache = UserGroupCache(build_web_client(fake.bot_token, fake.api_url), ttl=60, stale_ttl=600, clock=clock)
    assert await cache.groups_of("U0ALICE", ["S0ONCALL"]) == {"S0ONCALL"}
    fake.overrides["usergroups.users.list"] = lambda _c: Reply({"ok": False, "error": "missing_scope"})
    clock.now += 120
    assert await cache.groups_of("U0ALICE", ["S0ONCALL"]) == {"S0ONCALL"}  # stale but within stale_ttl
    clock.now += 600
    assert await cache.groups_of("U0ALICE", ["S0ONCALL"]) == frozenset()  # deny by default


async def test_unknown_group_is_empty(fake: FakeSlack) -> None:
    cache = UserGroupCache(build_web_client(fake.bot_token, fake.api_url))
    assert await cache.groups_of("U0ALICE", ["S0TYPO"]) == frozenset()
