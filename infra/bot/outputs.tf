output "service_name" {
  description = "Name of the bot's ECS service."
  value       = aws_ecs_service.bot.name
}

output "task_definition_arn" {
  description = "ARN of the bot's current task definition."
  value       = aws_ecs_task_definition.bot.arn
}

output "task_role_arn" {
  description = "ARN of the bot's task role: trust it from per-environment roles (infra/env-role bot_task_role_arns)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the bot's task execution role."
  value       = aws_iam_role.execution.arn
}

output "table_name" {
  description = "DynamoDB table of approvals, claims and audit (ECS_EXEC_BOT_DYNAMODB_TABLE)."
  value       = aws_dynamodb_table.state.name
}

output "table_arn" {
  description = "ARN of the DynamoDB table."
  value       = aws_dynamodb_table.state.arn
}

output "slack_secret_arn" {
  description = "Secrets Manager secret to fill with the Slack tokens (JSON keys listed in slack_secret_keys)."
  value       = local.slack_secret_arn
}

output "slack_secret_keys" {
  description = "JSON keys the Slack secret must hold for the chosen slack_mode."
  value       = local.slack_secret_keys
}

output "log_group_name" {
  description = "CloudWatch log group of the bot."
  value       = aws_cloudwatch_log_group.bot.name
}

output "security_group_id" {
  description = "Security group of the bot's tasks."
  value       = aws_security_group.bot.id
}

output "kept_outputs_bucket_name" {
  description = "S3 bucket of the runs' redacted outputs (followups.s3_bucket); null when kept_outputs_enabled is false."
  value       = one(aws_s3_bucket.kept_outputs[*].bucket)
}

output "kept_outputs_bucket_arn" {
  description = "ARN of the kept-outputs bucket; null when kept_outputs_enabled is false."
  value       = one(aws_s3_bucket.kept_outputs[*].arn)
}

output "kept_outputs_prefix" {
  description = "Key prefix the bot writes kept outputs under (followups.s3_prefix); the task role's S3 grant and the expiry rule cover only it."
  value       = local.kept_outputs_prefix
}
