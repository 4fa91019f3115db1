"""Fixtures for the end-to-end Slack tests: FakeSlack + moto/local agent + the real app, all on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import AwsExecBackend, Services
from bot.audit import Auditor
from bot.config import BotConfig, parse_config
from bot.limits import RunLimiter, RunLimits
from bot.output.redact import Redactor
from bot.sandbox.ecs import SANDBOX
from bot.store.sqlite import SqliteStore
from bot.usergroups import UserGroupCache
from tests.support import local_aws as _local_aws
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import BotHarness, running_bot

# The shared AWS fixtures (moto server + local agent, per-test reset, seeded cluster), re-exported.
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
    store = SqliteStore(store_path)
    redactor = Redactor(config.policy.redact)
    services = Services(
        config=config,
        store=store,
        backend=AwsExecBackend(config, aws.factory(dict(config.environments))),
        groups=UserGroupCache(client),
        auditor=Auditor(store, redact=redactor.redact),
        limiter=RunLimiter(store, RunLimits(max_runs_per_minute_per_user=1000)),
        redactor=redactor,
        fanout_concurrency=config.fanout.concurrency,
    )
    for key, value in overrides.items():
        setattr(services, key, value)
    return services


@pytest.fixture
async def bot(
    fake: FakeSlack,
    config: BotConfig,
    local_aws: LocalAws,
    demo_cluster: Any,
    tmp_path: Path,
) -> AsyncIterator[BotHarness]:
    SANDBOX.reset()
    async with running_bot(
        fake, lambda client, _info: build_services(config, local_aws, tmp_path / "bot.db", client)
    ) as h:
        yield h


def execute_command_calls() -> list[dict[str, Any]]:
    with SANDBOX.lock:
        return list(SANDBOX.requests)
