"""The IAM rules flag the policies they exist to prevent (so a passing infra test means something)."""

from __future__ import annotations

from tests.infra import iam_rules
from tests.infra.terraform import load_module, policy_statements


def _statements(tmp_path, body: str):  # type: ignore[no-untyped-def]
    (tmp_path / "p.tf").write_text('data "aws_iam_policy_document" "p" {\n' + body + "\n}\n")
    return policy_statements(load_module(tmp_path))


def test_execute_command_on_star_and_without_condition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(tmp_path, 'statement {\n actions = ["ecs:ExecuteCommand"]\n resources = ["*"]\n}')
    problems = iam_rules.execute_command_violations(stmts)
    assert any("Resource '*'" in p for p in problems) and any("without a condition" in p for p in problems)


def test_execute_command_needs_the_cluster_condition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(
        tmp_path,
        'statement {\n actions = ["ecs:ExecuteCommand"]\n resources = var.arns\n'
        ' condition {\n test = "StringEquals"\n variable = "ecs:container-name"\n values = ["app"]\n }\n}',
    )
    (problem,) = iam_rules.execute_command_violations(stmts)
    assert problem.endswith(
        "data.aws_iam_policy_document.p[?]: ecs:ExecuteCommand without an ecs:cluster condition"
    )


def test_star_hidden_in_an_expression_counts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(
        tmp_path, 'statement {\n actions = ["ecs:ExecuteCommand"]\n resources = concat(["*"], var.x)\n}'
    )
    assert any("Resource '*'" in p for p in iam_rules.execute_command_violations(stmts))


def test_wildcard_actions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(
        tmp_path,
        'statement {\n actions = ["ecs:*"]\n resources = ["arn:x"]\n}\n'
        'dynamic "statement" {\n for_each = [1]\n content {\n actions = ["s3:*", "ecs:Describe*"]\n resources = ["arn:y"]\n }\n}',
    )
    problems = iam_rules.wildcard_action_violations(stmts)
    assert len(problems) == 3, problems


def test_write_action_on_star_but_listed_read_actions_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(
        tmp_path,
        'statement {\n actions = ["dynamodb:PutItem", "ecs:DescribeTaskDefinition"]\n resources = ["*"]\n}\n'
        'statement {\n actions = ["ecs:ListTasks"]\n resources = ["*"]\n}',
    )
    problems = iam_rules.star_resource_violations(stmts)
    assert len(problems) == 2, problems
    assert "dynamodb:PutItem on Resource '*'" in problems[0]
    assert "ecs:ListTasks on Resource '*' without an ecs:cluster condition" in problems[1]


def test_resource_policies_may_use_star(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stmts = _statements(
        tmp_path,
        'statement {\n actions = ["kms:*"]\n resources = ["*"]\n'
        ' principals {\n type = "AWS"\n identifiers = ["arn:aws:iam::111122223333:root"]\n }\n}',
    )
    assert iam_rules.all_violations(stmts) == []
