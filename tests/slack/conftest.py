"""Fixtures for the end-to-end Slack tests: FakeSlack + moto/local agent + the real app, all on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotConfig, parse_config
from bot.services import Services
from bot.store.sqlite import SqliteStore
from standins.agent import AgentThread
from standins.ecs import SANDBOX, LocalEcsServer
from tests.support import local_aws as _local_aws
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot, wired_services

# The shared AWS fixtures (moto + local agent once per session; `local_aws`/`demo_cluster` reset and seed
# per test), re-exported for every test in tests/slack (the approvals tests use them too).
local_aws_servers = _local_aws.local_aws_servers
local_aws = _local_aws.local_aws
demo_cluster = _local_aws.demo_cluster

CONFIG = """
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx, timeout: 30}
  api: {environment: prod, cluster: prod, service: api, timeout: 30}
  legacy: {environment: prod, cluster: prod, service: legacy-batch}
fanout: {max_tasks: 5, concurrency: 3}
policy:
  rules:
    - name: oncall
      users: [U0ALICE]
      groups: [S0ONCALL]
      channels: [C0INCIDENT]
      services: [web, api, legacy]
      commands:
        - argv: ["echo", "**"]
        - argv: ["printf", "**"]
        - argv: ["seq", "**"]
        - argv: ["sleep", "*"]
        - argv: ["cat", "WORKDIR/*"]
        - argv: ["cat", "/var/log/nginx/*"]
        - argv: ["tail", "-n", "*", "/var/log/nginx/*"]
        - argv: ["ls", "**"]
        - argv: ["grep", "**"]
        - argv: ["wc", "**"]
        - argv: ["id"]
      timeout: 30
  redact:
    - {name: internal-token, pattern: 'itk_[A-Za-z0-9]{32}'}
"""


def make_config(workdir: Path) -> BotConfig:
    return parse_config(CONFIG.replace("WORKDIR", str(workdir)), source="e2e.yaml")


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        f.usergroups = {"S0ONCALL": ["U0BOB"]}
        yield f


@pytest.fixture
def config(tmp_path: Path) -> BotConfig:
    return make_config(tmp_path)


def build_services(
    config: BotConfig, aws: LocalAws, store_path: Path, client: AsyncWebClient, **overrides: Any
) -> Services:
    return wired_services(config, aws, SqliteStore(store_path), client, **overrides)


@pytest.fixture(scope="module")
def slack_aws(local_aws_servers: tuple[LocalEcsServer, AgentThread]) -> Iterator[LocalAws]:
    """`tests.support.local_aws.local_aws` + `demo_cluster`, but seeded once per module: these tests only
    read the cluster, and re-seeding moto for each of them would be most of their run time."""
    ecs, agent = local_aws_servers
    ecs.reset()
    SANDBOX.agent_url = agent.http_url
    aws = LocalAws(ecs, agent)
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            mp.delenv(name)
        for name, value in aws.env.items():
            mp.setenv(name, value)
        aws.seed()
        yield aws


@pytest.fixture
async def bot(
    fake: FakeSlack, config: BotConfig, slack_aws: LocalAws, tmp_path: Path
) -> AsyncIterator[BotHarness]:
    SANDBOX.reset()
    SANDBOX.agent_url = slack_aws.agent.http_url
    async with running_bot(
        fake, lambda client, _info: build_services(config, slack_aws, tmp_path / "bot.db", client)
    ) as h:
        yield h


def execute_command_calls() -> list[dict[str, Any]]:
    with SANDBOX.lock:
        return list(SANDBOX.requests)
