"""DynamoDB specifics: the table definition, TTL attributes and clear failures."""

from __future__ import annotations

import socket

import pytest

from bot.errors import StoreError
from bot.store.base import AuditEvent
from bot.store.dynamodb import TTL_ATTRIBUTE, DynamoStore, create_table, table_definition
from tests.store.support import START, FakeClock, dynamodb_client, make_record, new_table


def test_create_table_makes_the_documented_indexes_and_ttl(dynamodb_endpoint: str) -> None:
    client = dynamodb_client(dynamodb_endpoint)
    name = new_table(dynamodb_endpoint)
    table = client.describe_table(TableName=name)["Table"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == ["gsi1", "gsi2", "gsi3"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}
    assert table_definition(name)["BillingMode"] == "PAY_PER_REQUEST"


def test_items_carry_ttl_for_native_expiry(dynamodb_endpoint: str) -> None:
    client = dynamodb_client(dynamodb_endpoint)
    name = new_table(dynamodb_endpoint)
    store = DynamoStore(name, client, clock=FakeClock())
    store.claim("k", 60)
    store.create_run(make_record())
    store.append_audit(AuditEvent("ev-1", "req-1", "requested", START), retain_seconds=90 * 86400)
    store.append_audit(AuditEvent("ev-2", "req-1", "requested", START))
    items = {i["pk"]["S"] + "|" + i["sk"]["S"]: i for i in client.scan(TableName=name)["Items"]}
    assert items["CLAIM#k|-"][TTL_ATTRIBUTE]["N"] == str(int(START + 60) + 1)
    assert int(items["APPROVAL#req-1|-"][TTL_ATTRIBUTE]["N"]) > START + 900  # outlives the approval TTL
    audit = [i for k, i in items.items() if k.startswith("AUDIT#")]
    assert sorted(TTL_ATTRIBUTE in i for i in audit) == [False, True]


def test_missing_table_is_a_store_error_with_the_fix(dynamodb_endpoint: str) -> None:
    store = DynamoStore("no-such-table", dynamodb_client(dynamodb_endpoint))
    with pytest.raises(StoreError, match="The DynamoDB table no-such-table cannot be used") as info:
        store.get_run("x")
    assert info.value.fix and "docs/store.md" in info.value.fix


def test_unreachable_endpoint_is_a_store_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = dynamodb_client(f"http://127.0.0.1:{port}", retries={"max_attempts": 1}, connect_timeout=1)
    with pytest.raises(StoreError, match="cannot be used"):
        DynamoStore("t", client).claim("k", 1)
    with pytest.raises(StoreError):
        create_table(client, "t")


class LostResponseClient:
    """Sends every conditional write twice and answers with the second attempt, as when botocore retries a
    write whose first attempt was applied but whose response was lost (timeout, 5xx)."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.exceptions = client.exceptions  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def _twice(self, op: str, **kwargs: object) -> object:
        call = getattr(self._client, op)
        try:
            call(**kwargs)
        except self.exceptions.ConditionalCheckFailedException:
            pass  # a genuine loser: the retry loses too
        return call(**kwargs)

    def put_item(self, **kwargs: object) -> object:
        return self._twice("put_item", **kwargs)

    def update_item(self, **kwargs: object) -> object:
        return self._twice("update_item", **kwargs)


def test_a_retried_winning_write_is_still_a_win(dynamodb_endpoint: str) -> None:
    from bot.store.base import RunState, Transition, Vote

    table = new_table(dynamodb_endpoint)
    store = DynamoStore(table, LostResponseClient(dynamodb_client(dynamodb_endpoint)), clock=FakeClock())
    assert store.claim("k", 60) is True
    assert store.claim("k", 60) is False  # a genuine second claim still loses
    assert store.create_run(make_record()) is True
    assert store.create_run(make_record()) is False
    voted = store.add_vote("req-1", Vote("U0BOB", START))
    assert voted is not None and voted.approvers_so_far == ("U0BOB",)
    assert store.add_vote("req-1", Vote("U0BOB", START)) is None
    won = store.transition(
        "req-1", RunState.PENDING, RunState.APPROVED, Transition(decided_by="U0BOB")
    )
    assert won is not None and won.state is RunState.APPROVED and won.decided_by == "U0BOB"
    assert store.transition("req-1", RunState.PENDING, RunState.APPROVED) is None
    running = store.transition("req-1", RunState.APPROVED, RunState.RUNNING, Transition(owner="r1"))
    assert running is not None and running.owner == "r1"
    assert (
        store.transition("req-1", RunState.APPROVED, RunState.RUNNING, Transition(owner="r2"))
        is None
    )
