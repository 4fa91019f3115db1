# Slack credentials live in Secrets Manager, never in Terraform state or the task definition: the module
# creates an empty secret (unless you bring one), you put the values with the CLI (docs/deploy.md), and ECS
# injects each JSON key as an environment variable at task start.

resource "aws_secretsmanager_secret" "slack" {
  #checkov:skip=CKV2_AWS_57:Slack tokens are issued by Slack; a Secrets Manager rotation Lambda cannot rotate them. Rotate in Slack, then put-secret-value.
  count = var.slack_secret_arn == null ? 1 : 0

  name_prefix = "${var.name}/slack-"
  description = "Slack credentials of ${var.name}: JSON with ${join(", ", local.slack_secret_keys)}."
  kms_key_id  = var.secrets_kms_key_arn
  tags        = local.tags
}

locals {
  slack_secret_arn = var.slack_secret_arn != null ? var.slack_secret_arn : aws_secretsmanager_secret.slack[0].arn
}
