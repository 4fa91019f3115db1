"""Approvals through the real app: signed Slack requests over HTTP into two replicas sharing one DynamoDB
table, ExecuteCommand on the patched moto ECS and the command run by the local agent over the data channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.store.base import RunState
from handlers.delivery import maintain
from standins.ecs import SANDBOX, DemoCluster
from tests.runs.slack_harness import (
    SRE,
    Replica,
    approval_message,
    audit_kinds,
    blocks_text,
    replica,
    request_id_of,
    wait_state,
)
from tests.store.support import FakeClock, moto_dynamodb_server, new_table
from tests.support.fake_slack import FakeSlack
from tests.support.local_aws import LocalAws
from tests.support.polling import until


@pytest.fixture(scope="module")
def dynamodb_endpoint() -> Iterator[str]:
    with moto_dynamodb_server() as endpoint:
        yield endpoint


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as f:
        f.usergroups["S0SRE"] = list(SRE)
        yield f


@pytest.fixture
async def replicas(
    fake: FakeSlack, local_aws: LocalAws, demo_cluster: DemoCluster, dynamodb_endpoint: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    table = new_table(dynamodb_endpoint)
    async with replica(fake, local_aws, table, dynamodb_endpoint, "replica-a") as a:
        async with replica(fake, local_aws, table, dynamodb_endpoint, "replica-b") as b:
            yield a, b


async def request(fake: FakeSlack, via: Replica, text: str) -> dict:
    await via.command(text, fake)
    return await approval_message(fake)


async def test_twenty_approve_clicks_on_two_replicas_run_once(
    fake: FakeSlack, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    message = await request(fake, a, "web echo approved-hello")
    request_id = request_id_of(message)
    assert "Approval needed" in blocks_text(message) and "echo approved-hello" in blocks_text(message)
    approvers = ["U0BOB", "U0CAROL", *SRE]
    keys = await asyncio.gather(
        *((a, b)[i % 2].click("ecs_exec_approve", u, message, fake) for i, u in enumerate(approvers))
    )
    record = await wait_state(a.services.runs.store, request_id, RunState.FINISHED)  # type: ignore[arg-type]

    assert len(SANDBOX.requests) == 1  # exactly one ExecuteCommand
    assert SANDBOX.requests[0]["container"] == "nginx" and "approved-hello" in SANDBOX.requests[0]["command"]
    # Votes that landed while it was pending all count (each approver once); one of them decided it.
    voters = [v.approver for v in record.votes]
    assert len(voters) == len(set(voters)) >= 1 and record.decided_by in voters
    # One message, moved through its states by chat.update; the result is in it.
    assert len(fake.calls("chat.postMessage")) == 1
    updates = fake.calls("chat.update")
    assert {c.params["ts"] for c in updates} == {message["ts"]}
    final = blocks_text(fake.messages[message["ts"]])
    assert "approved-hello" in final and "ecs_exec_approve" not in final
    # Everyone but the decider was told, ephemerally: their vote counted too, or it came too late.
    await asyncio.sleep(3)
    print("DBG", len(voters), [(k, [c.json()["text"] for c in fake.calls(f"/response/{k}")]) for k in keys])
    await until(lambda: sum(len(replies_to(fake, k)) for k in keys) == len(approvers) - 1)
    replies = [r for k in keys for r in replies_to(fake, k)]
    late = sum("already approved" in r["text"] for r in replies)
    counted = sum("another approver completed it" in r["text"] for r in replies)
    assert (late, counted) == (len(approvers) - len(voters), len(voters) - 1)
    assert all(r["response_type"] == "ephemeral" and r["replace_original"] is False for r in replies)
    kinds = audit_kinds(a.services.runs.store, request_id)  # type: ignore[arg-type]
    assert kinds.count("approval_vote") == len(voters) - 1
    assert kinds.count("click_refused") == len(approvers) - len(voters)
    chain = [k for k in kinds if k not in ("click_refused", "approval_vote")]
    assert chain == ["requested", "approval_requested", "approved", "started", "finished"]


async def test_self_approval_is_refused_then_deny_ends_it(
    fake: FakeSlack, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    message = await request(fake, b, "web echo nope")
    request_id = request_id_of(message)
    key = await a.click("ecs_exec_approve", "U0ALICE", message, fake)
    [reply] = await wait_replies(fake, key)
    assert reply["text"].startswith(":no_entry: You cannot approve your own request. Ask ")
    assert "<@U0ALICE>" not in reply["text"]  # the requester is not offered as their own approver
    key = await b.click("ecs_exec_approve", "U0MALLORY", message, fake)
    [reply] = await wait_replies(fake, key)
    assert "You are not an approver for rule prod-needs-approval" in reply["text"]
    await a.click("ecs_exec_deny", "U0SRE03", message, fake)
    await wait_state(a.services.runs.store, request_id, RunState.DENIED)  # type: ignore[arg-type]
    await fake.await_for("chat.update")
    final = blocks_text(fake.messages[message["ts"]])
    assert "Denied by <@U0SRE03>" in final and '"actions"' not in final
    assert SANDBOX.requests == []
    assert audit_kinds(a.services.runs.store, request_id) == [  # type: ignore[arg-type]
        "requested", "approval_requested", "click_refused", "click_refused", "denied"
    ]  # fmt: skip


async def test_requester_cancels_a_running_command_from_the_other_replica(
    fake: FakeSlack, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    message = await request(fake, a, "web sleep 20")
    request_id = request_id_of(message)
    await a.click("ecs_exec_approve", "U0BOB", message, fake)
    await wait_state(a.services.runs.store, request_id, RunState.RUNNING)  # type: ignore[arg-type]
    await until(lambda: "started" in audit_kinds(a.services.runs.store, request_id))  # type: ignore[arg-type]
    # It runs on the replica that got the approving click (a); the requester presses the Cancel button of
    # the "running…" message (the same message, updated) and the click lands on the other replica.
    running = await approval_message(fake)
    assert "ecs_exec_cancel" in blocks_text(running)
    await b.click("ecs_exec_cancel", "U0ALICE", running, fake)
    await wait_state(a.services.runs.store, request_id, RunState.CANCELLED)  # type: ignore[arg-type]
    await until(lambda: "cancelled" in audit_kinds(a.services.runs.store, request_id))  # type: ignore[arg-type]
    assert len(SANDBOX.requests) == 1
    kinds = audit_kinds(a.services.runs.store, request_id)  # type: ignore[arg-type]
    assert kinds == [
        "requested",
        "approval_requested",
        "approved",
        "started",
        "cancel_requested",
        "cancelled",
    ]
    await until(lambda: "cancelled by <@U0ALICE>" in blocks_text(fake.messages[message["ts"]]))


async def test_an_unapproved_request_expires_and_its_message_says_so(
    fake: FakeSlack, local_aws: LocalAws, demo_cluster: DemoCluster, dynamodb_endpoint: str
) -> None:
    import time

    clock = FakeClock(time.time())
    table = new_table(dynamodb_endpoint)
    async with replica(
        fake, local_aws, table, dynamodb_endpoint, "replica-a", clock=clock, min_approvals=2
    ) as a:
        message = await request(fake, a, "web echo late")
        request_id = request_id_of(message)
        await a.click("ecs_exec_approve", "U0BOB", message, fake)
        await until(lambda: "1 more approval" in blocks_text(fake.messages[message["ts"]]))
        clock.advance(901)
        expired = await maintain(a.services, _client(fake))
        assert [r.request_id for r in expired] == [request_id]
        final = blocks_text(fake.messages[message["ts"]])
        assert "Expired at" in final and '"actions"' not in final
        key = await a.click("ecs_exec_approve", "U0CAROL", message, fake)
        [reply] = await wait_replies(fake, key)
        assert "This request expired at" in reply["text"]
    assert SANDBOX.requests == []
    assert audit_kinds(a.services.runs.store, request_id) == [  # type: ignore[arg-type]
        "requested", "approval_requested", "approval_vote", "expired", "click_refused"
    ]  # fmt: skip


def replies_to(fake: FakeSlack, key: str) -> list[dict]:
    """What was posted to one response_url (exact path: "click-1" must not match "click-10")."""
    return [c.json() for c in fake.calls(f"/response/{key}") if c.path == f"/response/{key}"]


async def wait_replies(fake: FakeSlack, key: str) -> list[dict]:
    await until(lambda: bool(replies_to(fake, key)))
    return replies_to(fake, key)


def _client(fake: FakeSlack):  # type: ignore[no-untyped-def]
    from handlers.app import build_web_client

    return build_web_client(fake.bot_token, fake.api_url)


async def test_a_request_the_policy_no_longer_grants_cannot_be_approved(
    fake: FakeSlack, local_aws: LocalAws, demo_cluster: DemoCluster, dynamodb_endpoint: str
) -> None:
    table = new_table(dynamodb_endpoint)
    async with (
        replica(fake, local_aws, table, dynamodb_endpoint, "replica-a") as a,
        # Replica b restarted with a policy that dropped the rule: approving must not bypass that.
        replica(fake, local_aws, table, dynamodb_endpoint, "replica-b", policy="rules: []") as b,
    ):
        message = await request(fake, a, "web echo still-allowed")
        request_id = request_id_of(message)
        key = await b.click("ecs_exec_approve", "U0BOB", message, fake)
        [reply] = await wait_replies(fake, key)
        assert "The policy no longer allows this request" in reply["text"]
        record = await asyncio.to_thread(a.services.runs.store.get_run, request_id)
        assert record is not None and record.state is RunState.PENDING and record.votes == ()
    assert SANDBOX.requests == []


def test_a_click_carries_the_message_that_holds_its_buttons() -> None:
    from handlers.actions import Click

    body = {"actions": [{"action_id": "ecs_exec_approve", "value": "req|hash", "action_ts": "1.2"}],
            "user": {"id": "U0BOB"}, "container": {"message_ts": "1700000000.000100", "channel_id": "C0X"}}
    assert Click.from_body(body).message_ts == "1700000000.000100"
    del body["container"]
    assert Click.from_body(body).message_ts is None


async def test_a_mention_in_a_thread_posts_its_approval_card_and_result_in_that_thread(
    fake: FakeSlack, replicas: tuple[Replica, Replica]
) -> None:
    from tests.support.slack_requests import event_callback_body, mention_event

    a, b = replicas
    thread = "1699990000.000700"
    event = mention_event("web echo approved-in-thread", thread_ts=thread)
    assert (await a.harness.sender.event(event_callback_body(event))).status == 200
    message = await approval_message(fake)
    [posted] = fake.calls("chat.postMessage")
    assert posted.params["thread_ts"] == thread and "Approval needed" in blocks_text(message)
    assert fake.calls("chat.postEphemeral") == []  # the card in the thread says it all
    await b.click("ecs_exec_approve", "U0BOB", message, fake)
    await wait_state(a.services.runs.store, request_id_of(message), RunState.FINISHED)  # type: ignore[arg-type]
    await fake.await_for("chat.update", 2)
    assert len(fake.calls("chat.postMessage")) == 1  # the card became the result, in the thread
    assert "approved-in-thread" in blocks_text(fake.messages[message["ts"]])
    assert len(SANDBOX.requests) == 1
