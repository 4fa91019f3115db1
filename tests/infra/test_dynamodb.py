"""The Terraform table is the table the code expects (bot/store/dynamodb.py `table_definition`), with TTL,
point-in-time recovery and encryption on, and the bot's IAM grants cover every call the store makes."""

from __future__ import annotations

import re

from bot.store import dynamodb as store
from tests.infra.terraform import REPO, all_modules, literal_actions, policy_statements

BOT = all_modules()["bot"]
TABLE = BOT.typed("resource")[("aws_dynamodb_table", "state")]
EXPECTED = store.table_definition("t")


def test_keys_and_attributes_match_the_store() -> None:
    key_schema = {k["KeyType"]: k["AttributeName"] for k in EXPECTED["KeySchema"]}
    assert (TABLE["hash_key"], TABLE["range_key"]) == (key_schema["HASH"], key_schema["RANGE"])
    attributes = {(a["name"], a["type"]) for a in TABLE["attribute"]}
    assert attributes == {(a["AttributeName"], a["AttributeType"]) for a in EXPECTED["AttributeDefinitions"]}
    assert TABLE["billing_mode"] == EXPECTED["BillingMode"]


def test_indexes_match_the_store() -> None:
    terraform = {
        (g["name"], g["hash_key"], g["range_key"], g["projection_type"])
        for g in TABLE["global_secondary_index"]
    }
    expected = {
        (
            g["IndexName"],
            next(k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == "HASH"),
            next(k["AttributeName"] for k in g["KeySchema"] if k["KeyType"] == "RANGE"),
            g["Projection"]["ProjectionType"],
        )
        for g in EXPECTED["GlobalSecondaryIndexes"]
    }
    assert terraform == expected


def test_ttl_pitr_and_encryption_are_on() -> None:
    (ttl,) = TABLE["ttl"]
    assert ttl == {"attribute_name": store.TTL_ATTRIBUTE, "enabled": True}
    assert TABLE["point_in_time_recovery"] == [{"enabled": True}]
    (sse,) = TABLE["server_side_encryption"]
    assert sse["enabled"] is True and sse["kms_key_arn"] == "${var.table_kms_key_arn}"
    assert TABLE["deletion_protection_enabled"] == "${var.table_deletion_protection}"
    assert BOT.labelled("variable")["table_deletion_protection"]["default"] is True


# Table management done by Terraform, not by the running bot (`create_table` serves tests and the demo).
_NOT_AT_RUN_TIME = {"create_table", "update_time_to_live", "get_waiter", "close", "exceptions"}


# Only `ecs-exec-bot audit --prune-older-than` (an operator action) and an unbounded audit query use these.
_OPERATOR_ONLY = {"scan", "batch_write_item"}


def _store_operations() -> set[str]:
    source = (REPO / "bot" / "store" / "dynamodb.py").read_text()
    ops = set(re.findall(r"_client\.([a-z_]+)\b", source))
    ops |= set(re.findall(r'_conditional\(\s*"([a-z_]+)"', source))
    ops |= set(re.findall(r'_paged\(\s*"([a-z_]+)"', source))
    ops |= set(re.findall(r'_paged\(\s*"([a-z_]+)"', source))
    return ops - _NOT_AT_RUN_TIME


def test_task_role_grants_every_dynamodb_call_the_store_makes() -> None:
    ops = _store_operations()
    assert {"get_item", "put_item", "update_item", "query"} <= ops, "the scan below found the store's calls"
    needed = {"dynamodb:" + "".join(part.title() for part in op.split("_")) for op in ops - _OPERATOR_ONLY}
    granted = literal_actions(policy_statements(BOT, "task_state"))
    assert needed <= granted, f"missing: {sorted(needed - granted)}"
    # Pruning (Scan + BatchWriteItem) is the operator's, with their own credentials: never the bot's.
    assert {"scan", "batch_write_item"} <= ops
    assert not {"dynamodb:Scan", "dynamodb:BatchWriteItem"} & granted
