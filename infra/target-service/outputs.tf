output "service_name" {
  description = "Name of the service (use it as `service:` in the bot's YAML)."
  value       = aws_ecs_service.this.name
}

output "service_arn" {
  description = "ARN of the service."
  value       = aws_ecs_service.this.id
}

output "exec_linux_parameters" {
  description = "Put this as linuxParameters in every container definition of the task definition: an init process reaps what ECS Exec starts."
  value       = { initProcessEnabled = true }
}

output "exec_tags" {
  description = "The tags propagated to the tasks; give the same map to infra/bot as exec_task_tags to require them."
  value       = var.exec_tags
}
