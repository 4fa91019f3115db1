output "slack_secret_arn" {
  description = "Fill it: aws secretsmanager put-secret-value --secret-id <this> --secret-string '{\"SLACK_BOT_TOKEN\":\"xoxb-...\",\"SLACK_APP_TOKEN\":\"xapp-...\"}'"
  value       = module.bot.slack_secret_arn
}

output "bot_task_role_arn" {
  description = "The bot's task role (trust it from per-environment roles made with infra/env-role)."
  value       = module.bot.task_role_arn
}

output "table_name" {
  description = "The bot's DynamoDB table."
  value       = module.bot.table_name
}

output "kept_outputs_bucket_name" {
  description = "S3 bucket of the bot's kept (redacted) outputs for follow-up filters."
  value       = module.bot.kept_outputs_bucket_name
}
