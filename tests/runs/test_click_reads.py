"""An approving click reads its run record at most twice: once to judge the click, and (when the quorum is
not reached yet) once more after updating the card, to catch a change another replica made meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import parse_config
from bot.errors import TargetError
from bot.runs.order import RunOrder
from bot.service_ref import resolve_service_ref
from bot.services import Services, build_services
from bot.store.base import RunRecord
from bot.store.sqlite import SqliteStore
from handlers.actions import APPROVE, Click, handle_click
from handlers.app import build_web_client
from handlers.delivery import post_approval_card
from tests.runs.slack_harness import CONFIG  # approvers U0ALICE, U0BOB, U0CAROL; %(min)d approvals
from tests.support.fake_slack import FakeSlack


class CountingStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0

    def get_run(self, request_id: str) -> RunRecord | None:
        self.reads += 1
        return super().get_run(request_id)


class NoTargets:
    """The run itself is not what this test measures: it ends at once."""

    async def resolve(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise TargetError("no running task", fix="start one")

    async def terminate_session(self, *args: Any, **kwargs: Any) -> None:
        return None


class NoGroups:
    async def groups_of(self, user_id: str, group_ids: Any) -> frozenset[str]:
        return frozenset()

    async def groups_of_within(self, user_id: str, group_ids: Any, timeout: float) -> frozenset[str]:  # noqa: ASYNC109
        return frozenset()


async def _requested(
    tmp_path: Path, min_approvals: int, client: AsyncWebClient
) -> tuple[Services, CountingStore, RunRecord]:
    config = parse_config(CONFIG % {"min": min_approvals})
    store = CountingStore(tmp_path / "bot.db")
    services = build_services(config, store, NoTargets(), NoGroups())  # type: ignore[arg-type]
    ref = resolve_service_ref(config, "web")
    order = RunOrder(request_id="req-1", requester="U0ALICE", channel_id="C0OPS", service=ref,
                     command="echo hi", timeout=float(ref.timeout))
    rule = config.policy.rules[0]
    assert rule.approval is not None
    record = await services.runs.open_approval(order, rule.name, rule.approval)
    ts = await post_approval_card(client, services.redactor, record)
    await services.runs.set_message_ts(record.request_id, ts)
    return services, store, replace(record, message_ts=ts)


def _click(user: str, record: RunRecord, n: int) -> Click:
    return Click(action_id=APPROVE, request_id=record.request_id, request_hash=record.request_hash,
                 user_id=user, response_url=None, action_ts=f"1795000001.{n:06d}", message_ts=record.message_ts)


async def test_an_approving_click_that_completes_the_quorum_reads_once(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        client = build_web_client(fake.bot_token, fake.api_url)
        services, store, record = await _requested(tmp_path, 1, client)
        store.reads = 0
        await handle_click(services, client, _click("U0BOB", record, 1))
        assert store.reads == 1
        await services.jobs.drain(5)  # the run job: started, then refused for lack of a task
    assert (await services.runs.get("req-1")).state.value == "failed"


async def test_an_approving_click_short_of_the_quorum_reads_twice(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        client = build_web_client(fake.bot_token, fake.api_url)
        services, store, record = await _requested(tmp_path, 2, client)
        store.reads = 0
        await handle_click(services, client, _click("U0BOB", record, 1))
        assert store.reads == 2
        await asyncio.sleep(0)
    record = await services.runs.get("req-1")
    assert record.state.value == "pending" and record.approvers_so_far == ("U0BOB",)
