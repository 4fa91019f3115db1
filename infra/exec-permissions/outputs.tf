output "json" {
  description = "The IAM policy document (JSON) granting the ECS Exec permissions described in main.tf."
  value       = data.aws_iam_policy_document.this.json
}

output "session_arns" {
  description = "The SSM session ARN patterns the policy lets the bot terminate and resume."
  value       = local.session_arns
}
