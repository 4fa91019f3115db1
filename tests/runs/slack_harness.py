"""The real app, twice: two replicas (Bolt app + aiohttp listener each) sharing one DynamoDB table, with
FakeSlack for the Web API, the patched moto ECS + local agent for ExecuteCommand and the data channel.
Used by tests/slack/test_approvals*.py."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import parse_config
from bot.policy import parse_policy
from bot.runs.backend import AwsExecBackend
from bot.runs.limits import RunLimiter, RunLimits
from bot.services import Services, build_services
from bot.store.base import AuditQuery, RunRecord, RunState
from bot.store.dynamodb import DynamoStore
from handlers.usergroups import UserGroupCache
from tests.store.support import FakeClock, dynamodb_client
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.slack_app import SIGNING_SECRET, BotHarness, running_bot
from tests.support.slack_requests import block_actions_body, sign

SRE = [f"U0SRE{i:02d}" for i in range(18)]
CONFIG = """
environments:
  prod: {region: us-east-1}
services:
  web: {environment: prod, cluster: prod, service: web-nginx, container: nginx, timeout: 30}
policy:
  rules:
    - name: prod-needs-approval
      users: [U0ALICE]
      environments: [prod]
      commands:
        - argv: ["echo", "**"]
        - argv: ["sleep", "*"]
      approval: {approvers: {users: [U0ALICE, U0BOB, U0CAROL], groups: [S0SRE]}, min_approvals: %(min)d, ttl: 900}
"""
_clicks = itertools.count(1)


@dataclass
class Replica:
    harness: BotHarness

    @property
    def services(self) -> Services:
        return self.harness.services

    async def click(self, action_id: str, user: str, message: dict[str, Any], fake: FakeSlack) -> str:
        """Click a button of ``message`` as ``user``; returns the response_url key the reply goes to."""
        n = next(_clicks)
        key = f"click-{n}"
        payload = click_payload(action_id, user, message, fake.response_url(key), n)
        ack = await self.harness.sender.post(sign(SIGNING_SECRET, block_actions_body(payload)))
        assert ack.status == 200, ack.body
        return key

    async def command(self, text: str, fake: FakeSlack) -> None:
        ack = await self.harness.command(text, user_id="U0ALICE", response_url=fake.response_url("cmd"))
        assert ack.status == 200, ack.body


def click_payload(
    action_id: str, user: str, message: dict[str, Any], response_url: str, n: int
) -> dict[str, Any]:
    [button] = [b for block in message["blocks"] if block["type"] == "actions" for b in block["elements"]
                if b["action_id"] == action_id]  # fmt: skip
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM", "domain": "fake"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"]},
        "channel": {"id": message["channel"]},
        "message": {"ts": message["ts"], "text": message.get("text", "")},
        "response_url": response_url,
        "trigger_id": f"{n}.{int(time.time())}.click",
        "actions": [{**button, "block_id": "b", "action_ts": f"{time.time():.6f}{n:04d}"}],
    }


@asynccontextmanager
async def replica(
    fake: FakeSlack,
    local_aws: LocalAws,
    table: str,
    endpoint: str,
    name: str,
    *,
    min_approvals: int = 1,
    clock: FakeClock | None = None,
    policy: str | None = None,
) -> AsyncIterator[Replica]:
    """One bot process (the real `serve()` runtime) on loopback, with its own DynamoDB client. ``policy``
    replaces the config's policy section (a replica restarted with another policy)."""
    clock_fn = clock or time.time
    config = parse_config(CONFIG % {"min": min_approvals})
    if policy is not None:
        config = config.model_copy(update={"policy": parse_policy(yaml.safe_load(policy))})

    def build(client: AsyncWebClient, _info: dict[str, Any]) -> Services:
        store = DynamoStore(table, dynamodb_client(endpoint), clock=clock_fn)
        backend = AwsExecBackend(config, local_aws.factory(dict(config.environments)))
        return build_services(
            config, store, backend, UserGroupCache(client), limiter=RunLimiter(store, RunLimits()),
            replica=name, clock=clock_fn,
        )

    async with running_bot(fake, build) as harness:
        yield Replica(harness)


async def approval_message(fake: FakeSlack) -> dict[str, Any]:
    """The approval message (the bot's only chat.postMessage here), in its latest version."""
    await fake.await_for("chat.postMessage")
    [ts] = list(fake.messages)
    return {**fake.messages[ts], "ts": ts}


def request_id_of(message: dict[str, Any]) -> str:
    [value] = {
        b["value"] for block in message["blocks"] if block["type"] == "actions" for b in block["elements"]
    }
    return str(value).split("|")[0]


async def wait_state(
    store: DynamoStore, request_id: str, *states: RunState, within: float = 20
) -> RunRecord:
    deadline = time.monotonic() + within
    while True:
        record = await asyncio.to_thread(store.get_run, request_id)
        if record is not None and record.state in states:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(
                f"request {request_id} is {record.state if record else None}, wanted {states}"
            )
        await asyncio.sleep(0.05)


def audit_kinds(store: DynamoStore, request_id: str) -> list[str]:
    return [e.kind for e in reversed(store.query_audit(AuditQuery(request_id=request_id, limit=500)))]


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []))
