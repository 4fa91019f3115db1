"""Least privilege in every IAM policy document under infra/: the bot gets exactly the actions it uses,
ecs:ExecuteCommand is never unscoped, and nothing that writes is granted on Resource "*"."""

from __future__ import annotations

import re

import pytest

from tests.infra import iam_rules
from tests.infra.terraform import INFRA, Statement, all_modules, literal_actions, policy_statements

MODULES = all_modules()
EXEC = policy_statements(MODULES["exec-permissions"])
BOT_TASK = policy_statements(MODULES["bot"], "task_state")
BOT_EXECUTION = policy_statements(MODULES["bot"], "execution")
TARGET = policy_statements(MODULES["target-service"], "ecs_exec_agent")

# What the bot process calls (bot/targets, bot/runner, bot/ssm, bot/cli/doctor, bot/store/dynamodb,
# bot/store/outputs_s3, bot/aws).
BOT_NEEDS = {
    "ecs:ExecuteCommand",
    "ecs:DescribeTasks",
    "ecs:ListTasks",
    "ecs:DescribeServices",
    "ecs:DescribeClusters",
    "ecs:DescribeTaskDefinition",
    "ssm:TerminateSession",
    "ssm:ResumeSession",
    "kms:GenerateDataKey",
    "iam:SimulatePrincipalPolicy",
    "ecs:DescribeContainerInstances",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "sts:AssumeRole",
    "sts:SetSourceIdentity",
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
}


def _by_sid(statements: list[Statement]) -> dict[str, Statement]:
    return {s.where.rsplit("[", 1)[1].rstrip("]"): s for s in statements}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_policy_breaks_the_rules(name: str) -> None:
    assert iam_rules.all_violations(policy_statements(MODULES[name])) == []


def test_the_bot_task_role_gets_every_action_it_uses() -> None:
    assert BOT_NEEDS <= literal_actions(EXEC + BOT_TASK)


def test_no_ecs_wildcard_action_anywhere_even_in_raw_text() -> None:
    """Catches "ecs:*" / "ecs:Exec*" even in places the structured checks do not read (jsonencode, heredocs)."""
    for tf in INFRA.rglob("*.tf"):
        assert not re.search(r"\becs:[A-Za-z]*\*", tf.read_text()), tf


def test_execute_command_is_scoped_to_clusters_and_tasks_with_conditions() -> None:
    sids = _by_sid(EXEC)
    cluster, task = sids["ExecIntoAllowedClusters"], sids["ExecIntoAllowedTasks"]
    assert cluster.actions == task.actions == ("ecs:ExecuteCommand",)
    assert cluster.resources == "${var.cluster_arns}"
    assert task.resources == "${local.task_arns}"
    for stmt in (cluster, task):
        variables = {c["variable"] for c in stmt.conditions}
        assert {"ecs:cluster", "ecs:container-name"} <= variables
        (cluster_cond,) = [c for c in stmt.conditions if c["variable"] == "ecs:cluster"]
        assert cluster_cond["test"] == "ArnEquals" and cluster_cond["values"] == "${var.cluster_arns}"
    # Task tags are conditions on the task resource only: a cluster does not carry its tasks' tags.
    assert any(str(c["variable"]).startswith("aws:ResourceTag/") for c in task.conditions)
    assert not any(str(c["variable"]).startswith("aws:ResourceTag/") for c in cluster.conditions)


def test_task_arns_are_derived_per_cluster() -> None:
    local = MODULES["exec-permissions"].locals()
    assert (
        local["task_arns"] == '${[for arn in var.cluster_arns : "${replace(arn, ":cluster/", ":task/")}/*"]}'
    )
    assert ':service/")}/*"' in local["service_arns"]


def _cluster_arn_pattern() -> re.Pattern[str]:
    (validation,) = [
        v
        for v in MODULES["exec-permissions"].labelled("variable")["cluster_arns"]["validation"]
        if "regex" in v["condition"]
    ]
    match = re.search(r'regex\("(.+?)", arn\)', validation["condition"])
    assert match is not None
    return re.compile(match.group(1).replace("\\\\", "\\"))


@pytest.mark.parametrize(
    ("arn", "ok"),
    [
        ("arn:aws:ecs:us-east-1:111122223333:cluster/prod", True),
        ("arn:aws-us-gov:ecs:us-gov-west-1:111122223333:cluster/prod_2", True),
        ("arn:aws:ecs:us-east-1:111122223333:cluster/*", False),
        ("arn:aws:ecs:us-east-1:111122223333:cluster/pr*", False),
        ("arn:aws:ecs:*:111122223333:cluster/prod", False),
        ("arn:aws:ecs:us-east-1:*:cluster/prod", False),
        ("*", False),
        ("prod", False),
    ],
)
def test_cluster_arns_cannot_smuggle_in_a_wildcard(arn: str, ok: bool) -> None:
    assert bool(_cluster_arn_pattern().match(arn)) is ok


def test_session_control_is_limited_to_ecs_exec_sessions() -> None:
    stmt = _by_sid(EXEC)["ControlEcsExecSessions"]
    assert set(stmt.actions) == {"ssm:TerminateSession", "ssm:ResumeSession"}
    assert stmt.resources == "${local.session_arns}"
    session_arns = MODULES["exec-permissions"].locals()["session_arns"]
    # ECS Exec session ids are "ecs-execute-command-<random>" (docs/ssm-protocol.md §1.1).
    assert ":session/ecs-execute-command-*" in session_arns and "${p[3]}:${p[4]}" in session_arns


def test_kms_data_keys_only_for_exec_keys_and_ssm_session_context() -> None:
    stmt = _by_sid(EXEC)["GenerateExecSessionDataKeys"]
    assert stmt.dynamic and stmt.actions == ("kms:GenerateDataKey",)
    assert stmt.resources == "${var.kms_key_arns}"
    (cond,) = stmt.conditions
    assert cond["variable"] == "kms:EncryptionContext:aws:ssm:SessionId"
    assert cond["values"] == ["ecs-execute-command-*"]


def test_dynamodb_item_actions_only_on_the_table_and_its_indexes() -> None:
    sids = _by_sid(BOT_TASK)
    state, audit, indexes = sids["UseStateItems"], sids["AppendAuditRecords"], sids["QueryStateIndexes"]
    assert state.resources == audit.resources == ("${aws_dynamodb_table.state.arn}",)
    assert indexes.resources == ("${aws_dynamodb_table.state.arn}/index/*",)
    assert indexes.actions == ("dynamodb:Query",)
    table_management = {"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:*"}
    for stmt in BOT_TASK + EXEC:
        assert not table_management & set(stmt.actions)


def test_the_bot_cannot_erase_audit_records() -> None:
    """Audit items ("AUDIT#<day>" partitions) are append-only for the task role; nothing grants Scan or
    BatchWriteItem; DeleteItem/UpdateItem only where the partition key is not an audit one."""
    sids = _by_sid(BOT_TASK)
    state, audit = sids["UseStateItems"], sids["AppendAuditRecords"]
    assert set(audit.actions) == {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"}
    assert list(audit.conditions) == [{"test": "ForAllValues:StringLike", "variable": "dynamodb:LeadingKeys",
                                 "values": ["AUDIT#*"]}]
    assert {"dynamodb:DeleteItem", "dynamodb:UpdateItem"} <= set(state.actions)
    assert list(state.conditions) == [{"test": "ForAllValues:StringNotLike", "variable": "dynamodb:LeadingKeys",
                                 "values": ["AUDIT#*"]}]
    erasing = {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}
    for stmt in BOT_TASK + EXEC:
        if stmt is not state:
            assert not erasing & set(stmt.actions), stmt.where


def test_assume_role_only_on_configured_environment_roles() -> None:
    stmt = _by_sid(BOT_TASK)["AssumeEnvironmentRoles"]
    assert set(stmt.actions) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    assert stmt.resources == "${var.assume_role_arns}"


def test_execution_role_reads_only_the_slack_secret_and_writes_only_its_logs() -> None:
    sids = _by_sid(BOT_EXECUTION)
    assert sids["ReadSlackSecret"].actions == ("secretsmanager:GetSecretValue",)
    assert sids["ReadSlackSecret"].resources == ("${local.slack_secret_arn}",)
    assert sids["WriteOwnLogs"].resources == ("${aws_cloudwatch_log_group.bot.arn}:*",)
    kms = sids["DecryptSlackSecret"]
    assert kms.conditions[0]["variable"] == "kms:ViaService"
    assert literal_actions(BOT_EXECUTION).isdisjoint(BOT_NEEDS), "the execution role is not the task role"


def test_env_role_trust_requires_source_identity_from_the_bot() -> None:
    (trust,) = policy_statements(MODULES["env-role"], "trust")
    assert set(trust.actions) == {"sts:AssumeRole", "sts:SetSourceIdentity"} and trust.has_principals
    (cond,) = trust.conditions
    assert cond == {"test": "Null", "variable": "sts:SourceIdentity", "values": ["false"]}


def test_target_task_role_gets_the_agent_channels_and_optional_kms_and_logging() -> None:
    sids = _by_sid(TARGET)
    assert set(sids["SsmAgentChannels"].actions) == {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
    assert sids["DecryptExecSessions"].actions == ("kms:Decrypt",) and sids["DecryptExecSessions"].dynamic
    assert sids["WriteExecSessionLogs"].resources == ("${var.exec_log_group_arn}:*",)
    assert sids["WriteExecSessionLogObjects"].resources == (
        "${var.exec_log_bucket_arn}/${var.exec_log_bucket_prefix}*",
    )


def test_exec_never_reaches_any_container_of_any_task_by_default() -> None:
    """The container names and task tags are required (never "any"), where the policy is written."""
    modules = all_modules()
    for module, names, tags in (
        ("exec-permissions", "container_names", "task_tags"),
        ("env-role", "exec_container_names", "exec_task_tags"),
    ):
        variables = modules[module].labelled("variable")
        for name in (names, tags):
            assert "default" not in variables[name], f"{module}: {name} must be required"
    permissions = modules["exec-permissions"].labelled("variable")
    for name in ("container_names", "task_tags"):
        assert "length(var." + name + ") > 0" in str(permissions[name].get("validation")), name
