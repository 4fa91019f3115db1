output "role_arn" {
  description = "Put this as environments.<env>.role_arn in the bot's YAML and in infra/bot assume_role_arns."
  value       = aws_iam_role.this.arn
}
