"""ecs-exec-bot: run commands in ECS tasks from Slack over ECS Exec, with policy, approvals and an audit trail."""

__version__ = "0.1.0"
