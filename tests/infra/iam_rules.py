"""Least-privilege rules for the IAM policy documents under infra/, as pure functions over ``Statement``s.

Each ``*_violations`` function returns human-readable problems (empty = fine), so the tests can show every
problem at once and can also be run against deliberately bad snippets to prove they catch them.
"""

from __future__ import annotations

import re

from tests.infra.terraform import Statement

# Actions that may have Resource "*", each with the reason. Everything else on "*" is a violation.
# (the ecs:List* ones only together with an ecs:cluster condition, checked separately.)
STAR_RESOURCE_ALLOWED: dict[str, str] = {
    "ecs:DescribeTaskDefinition": "no resource-level permissions; read-only",
    "ecs:ListTasks": "resource type is container-instance only; scoped by the ecs:cluster condition",
    "ecs:ListServices": "no resource-level permissions; scoped by the ecs:cluster condition",
    "ecr:GetAuthorizationToken": "no resource-level permissions; returns a registry login only",
    "logs:DescribeLogGroups": "no resource-level permissions; read-only",
    "ec2:DescribeSubnets": "EC2 Describe* has no resource-level permissions; read-only (doctor)",
    "ec2:DescribeVpcEndpoints": "EC2 Describe* has no resource-level permissions; read-only (doctor)",
    "ec2:DescribeRouteTables": "EC2 Describe* has no resource-level permissions; read-only (doctor)",
    "ssmmessages:CreateControlChannel": "ssmmessages has no resource types (SSM agent in the target task)",
    "ssmmessages:CreateDataChannel": "ssmmessages has no resource types (SSM agent in the target task)",
    "ssmmessages:OpenControlChannel": "ssmmessages has no resource types (SSM agent in the target task)",
    "ssmmessages:OpenDataChannel": "ssmmessages has no resource types (SSM agent in the target task)",
}

# Actions that must carry an ecs:cluster condition wherever they are granted.
NEEDS_CLUSTER_CONDITION = {"ecs:ExecuteCommand", "ecs:ListTasks", "ecs:ListServices"}

_SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$")


def _is_star(resources: tuple[str, ...] | str) -> bool:
    if isinstance(resources, str):
        # An expression: a literal "*" inside it (e.g. concat(["*"], ...)) counts as a star.
        return '"*"' in resources or resources.strip() == "*"
    return "*" in resources


def _condition_variables(stmt: Statement) -> set[str]:
    return {str(c.get("variable", "")) for c in stmt.conditions}


def wildcard_action_violations(statements: list[Statement]) -> list[str]:
    """No "*" action, no service-wide "svc:*" in identity policies, and never "ecs:*" or an ecs wildcard."""
    problems = []
    for s in statements:
        actions = (s.actions,) if isinstance(s.actions, str) else s.actions
        for action in actions:
            if action.strip() in {"*", '"*"'}:
                problems.append(f"{s.where}: action '*'")
            elif action.startswith("ecs:") and "*" in action:
                problems.append(f"{s.where}: wildcard ECS action {action!r}")
            elif _SERVICE_WILDCARD.match(action) and not s.has_principals:
                problems.append(f"{s.where}: service-wide wildcard action {action!r} in an identity policy")
            elif isinstance(s.actions, str):
                problems.append(f"{s.where}: actions must be literal so they can be reviewed, not {action!r}")
    return problems


def execute_command_violations(statements: list[Statement]) -> list[str]:
    """ecs:ExecuteCommand: never on "*", always with an ecs:cluster condition."""
    problems = []
    for s in statements:
        if not isinstance(s.actions, tuple) or "ecs:ExecuteCommand" not in s.actions or s.effect != "Allow":
            continue
        if _is_star(s.resources) or not s.resources:
            problems.append(f"{s.where}: ecs:ExecuteCommand on Resource '*' (or no resource)")
        if not s.conditions:
            problems.append(f"{s.where}: ecs:ExecuteCommand without a condition")
        elif "ecs:cluster" not in _condition_variables(s):
            problems.append(f"{s.where}: ecs:ExecuteCommand without an ecs:cluster condition")
    return problems


def star_resource_violations(statements: list[Statement]) -> list[str]:
    """In identity policies, Resource "*" only for the read/agent actions listed in STAR_RESOURCE_ALLOWED."""
    problems = []
    for s in statements:
        if s.has_principals or s.effect != "Allow" or not _is_star(s.resources):
            continue
        actions = (s.actions,) if isinstance(s.actions, str) else s.actions
        for action in actions:
            if action not in STAR_RESOURCE_ALLOWED:
                problems.append(f"{s.where}: {action} on Resource '*'")
            elif action in NEEDS_CLUSTER_CONDITION and "ecs:cluster" not in _condition_variables(s):
                problems.append(f"{s.where}: {action} on Resource '*' without an ecs:cluster condition")
    return problems


def all_violations(statements: list[Statement]) -> list[str]:
    return (
        wildcard_action_violations(statements)
        + execute_command_violations(statements)
        + star_resource_violations(statements)
    )
