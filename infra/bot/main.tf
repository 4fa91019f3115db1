# ecs-exec-bot as an ECS Fargate service: task + execution roles (least privilege), the shared DynamoDB
# table, a bucket for kept outputs, the Slack secret, a log group, a security group that only lets TCP 443
# out, and the service with a deployment circuit breaker. Target services are prepared with
# ../target-service; see docs/deploy.md.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name

  # Where the init container writes var.bot_config_yaml and where the bot reads it (ECS_EXEC_BOT_CONFIG).
  # The directory is a VOLUME owned by the bot's UID in the image, so it is writable on a read-only root.
  config_dir  = "/etc/ecs-exec-bot"
  config_path = "/etc/ecs-exec-bot/bot.yml"

  # The numeric UID/GID the Dockerfile creates.
  container_user = "10001:10001"

  # Socket Mode authenticates with the app-level token; HTTP mode verifies request signatures.
  slack_secret_keys = var.slack_mode == "socket" ? ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"] : ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]

  tags = merge({ "app" = var.name }, var.tags)
}
