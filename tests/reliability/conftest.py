"""Fixtures of the reliability suite: FakeSlack, moto + the local agent, and the real app served on
loopback (`bot`). The faults here live in the sandbox switches, proxies and the agent's per-session
faults, never in ECS state, so the seeded cluster is shared (`shared_demo`) instead of re-seeded per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig
from standins.ecs import SANDBOX
from tests.reliability.support import make_config, serve_bot
from tests.support import local_aws as _local_aws
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness

local_aws_servers = _local_aws.local_aws_servers
shared_aws = _local_aws.shared_aws
shared_demo = _local_aws.shared_demo


@pytest.fixture
def local_aws(shared_aws: LocalAws) -> LocalAws:
    return shared_aws


@pytest.fixture
def demo_cluster(shared_demo: Any) -> Any:
    return shared_demo


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        f.usergroups = {"S0ONCALL": ["U0BOB"], "S0SRE": ["U0CAROL"]}
        yield f


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    return make_config(tmp_path)


@pytest.fixture
async def bot(
    fake: FakeSlack, config: BotConfig, local_aws: LocalAws, demo_cluster: Any, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    SANDBOX.reset()
    async with serve_bot(fake, config, local_aws, tmp_path / "bot.db") as harness:
        yield harness
